//! `[generate]`: a language-model batch job in a job file. The model is a Hugging Face
//! checkpoint folder (quantized here), a stored model file, or a model's CID in the
//! requester's store; the prompts are a JSONL file; the rest are the generation parameters
//! every worker must use.
//!
//! ```toml
//! payment_eth = "0.01"
//! [generate]
//! model = "crates/lm/tests/fixtures/llama-tiny"
//! prompts = "prompts.jsonl"
//! chunk = 4
//! max_tokens = 16
//! ```

use std::path::{Path, PathBuf};

use pedals_core::{Cid, cid_of, parse_cid};
use pedals_lm::{Checkpoint, GenParams, LmJobSpec, Sampling, quantize};
use serde::Deserialize;

use super::{Context, Expect, JobFile, JobFileError, VerificationMode};
use crate::{LmJobFiles, PostTerms};

/// `[generate]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenerateSection {
    model: String,
    #[serde(default = "default_bits")]
    bits: u8,
    prompts: PathBuf,
    #[serde(default = "default_chunk")]
    chunk: u64,
    #[serde(default = "default_max_tokens")]
    max_tokens: u64,
    #[serde(default)]
    temperature: f64,
    #[serde(default)]
    top_k: u64,
    #[serde(default = "default_top_p")]
    top_p: f64,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    stop: Vec<String>,
}

fn default_bits() -> u8 {
    8
}
fn default_chunk() -> u64 {
    4
}
fn default_max_tokens() -> u64 {
    32
}
fn default_top_p() -> f64 {
    1.0
}

/// What a `[generate]` job file turns into.
pub struct LmPrepared {
    /// The spec, the stored model and the prompts, as posted.
    pub files: LmJobFiles,
    /// The payment and the deadlines.
    pub terms: PostTerms,
}

impl JobFile {
    /// A `[generate]` job's files and terms. `stored` looks a model up by CID in the
    /// requester's store. Every problem is reported here, before anything is sent.
    pub fn prepare_lm(
        self,
        dir: &Path,
        stored: impl Fn(&Cid) -> Option<Vec<u8>>,
    ) -> Result<LmPrepared, JobFileError> {
        let terms = self.optimistic_terms()?;
        self.refuse_keys(
            "a [generate] job (a language model's batch job)",
            &[(self.finetune.is_some(), "[finetune]")],
        )?;
        let g = self
            .generate
            .context("a language-model job needs a [generate] section")?;
        let path = |p: &Path| resolve(dir, p);
        let model = load_model(
            "generate",
            &g.model,
            &path(Path::new(&g.model)),
            g.bits,
            stored,
        )?;
        let prompts_path = path(&g.prompts);
        let prompts = std::fs::read(&prompts_path).wrap_err_with(|| {
            format!(
                "cannot read generate.prompts {}: give a JSONL file, one {{\"prompt\": \"…\"}} \
                 per line",
                prompts_path.display()
            )
        })?;
        let sampling = Sampling::new(g.temperature, g.top_k as usize, g.top_p, g.seed)
            .wrap_err("[generate] temperature, top_k or top_p")?;
        let params = GenParams {
            max_tokens: usize::try_from(g.max_tokens).unwrap_or(usize::MAX),
            sampling,
            stop: g.stop,
        };
        let count = count_lines(&prompts)?;
        let spec = LmJobSpec::new(
            &cid_of(&model),
            &cid_of(&prompts),
            count as u64,
            g.chunk,
            &params,
        )
        .wrap_err("[generate] is not a valid job: check chunk, max_tokens and stop")?;
        if let Some(steps) = self.steps {
            ensure!(
                steps == spec.steps,
                "steps = {steps}, but {count} prompts in chunks of {} make {} (leave steps out)",
                spec.chunk,
                spec.steps
            );
        }
        let files = LmJobFiles {
            spec,
            model,
            prompts,
        };
        files
            .load()
            .wrap_err("the job's files do not make a job a worker would run")?;
        Ok(LmPrepared { files, terms })
    }
}

/// A path of the job file: absolute, or relative to the job file's folder `dir`.
pub(crate) fn resolve(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

impl JobFile {
    /// Refuses the keys of an MLP job in a language-model job file (`what`), and `others`.
    pub(crate) fn refuse_keys(
        &self,
        what: &str,
        others: &[(bool, &str)],
    ) -> Result<(), JobFileError> {
        let not_here = [
            (self.model.is_some(), "[model]"),
            (self.dataset.is_some(), "[dataset]"),
            (self.inference.is_some(), "[inference]"),
            (self.model_file.is_some(), "model_file"),
            (self.checkpoint_every.is_some(), "checkpoint_every"),
            (self.holdout > 0, "holdout"),
            (self.shuffle_seed.is_some(), "shuffle_seed"),
            (
                self.verification == Some(VerificationMode::Zk),
                "verification = \"zk\"",
            ),
        ];
        if let Some((_, key)) = not_here.iter().chain(others).find(|(set, _)| *set) {
            bail!("{key} does not apply to {what}: leave it out");
        }
        Ok(())
    }
}

/// The prompts in a prompts file: its non-empty lines ([`LmJobSpec::load`] then parses each,
/// with the model's tokenizer for text).
fn count_lines(prompts: &[u8]) -> Result<usize, JobFileError> {
    let text = std::str::from_utf8(prompts)
        .map_err(|_| JobFileError("generate.prompts is not UTF-8 text".into()))?;
    let n = text.lines().filter(|l| !l.trim().is_empty()).count();
    ensure!(n > 0, "generate.prompts holds no prompts");
    Ok(n)
}

/// The stored bytes of `<section>.model`: a checkpoint folder quantized to `bits`, a stored
/// model file, or a CID in the requester's store.
pub(crate) fn load_model(
    section: &str,
    given: &str,
    path: &Path,
    bits: u8,
    stored: impl Fn(&Cid) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, JobFileError> {
    ensure!(
        bits == 8 || bits == 16,
        "{section}.bits = {bits}: write 8 or 16 (bits per weight when a folder is quantized)"
    );
    if path.is_dir() {
        let checkpoint = Checkpoint::load_hf(path)
            .wrap_err_with(|| format!("{section}.model {} is not a checkpoint", path.display()))?;
        let model =
            quantize(&checkpoint, bits).wrap_err_with(|| format!("quantizing {section}.model"))?;
        return model
            .to_bytes()
            .wrap_err_with(|| format!("storing {section}.model"));
    }
    if path.is_file() {
        return std::fs::read(path).wrap_err_with(|| format!("cannot read {}", path.display()));
    }
    let cid = parse_cid(given).map_err(|_| {
        JobFileError(format!(
            "{section}.model = {given:?} is neither a folder, a file nor a CID: give a Hugging \
             Face checkpoint folder, or the CID `pedals model import` printed"
        ))
    })?;
    stored(&cid).with_context(|| {
        format!("{section}.model {cid} is not in the store: `pedals model import` it first")
    })
}
