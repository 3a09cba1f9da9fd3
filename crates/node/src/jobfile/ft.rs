//! `[finetune]`: a LoRA fine-tuning job in a job file. The model is a Hugging Face checkpoint
//! folder (quantized here), a stored model file, or a model's CID in the requester's store;
//! the dataset is a JSONL file; the rest are the terms every worker must train with.
//!
//! ```toml
//! payment_eth = "0.01"
//! [finetune]
//! model = "crates/lm/tests/fixtures/llama-tiny"
//! dataset = "train.jsonl"
//! targets = ["q_proj", "v_proj"]
//! steps = 20
//! ```

use std::path::{Path, PathBuf};

use pedals_core::Cid;
use pedals_lm::train::Terms;
use pedals_lm::{FinetuneSpec, Method};
use serde::Deserialize;

use super::lm::load_model;
use super::{Context, Expect, JobFile, JobFileError};
use crate::{FtJobFiles, PostTerms};

/// `[finetune]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FinetuneSection {
    model: String,
    #[serde(default = "default_bits")]
    bits: u8,
    dataset: PathBuf,
    #[serde(default)]
    rank: Option<usize>,
    #[serde(default)]
    alpha: Option<usize>,
    #[serde(default)]
    targets: Option<Vec<String>>,
    steps: u64,
    #[serde(default = "default_batch")]
    batch: usize,
    #[serde(default = "default_lr")]
    lr: f64,
    #[serde(default)]
    lr_end: Option<f64>,
    #[serde(default)]
    warmup: Option<u64>,
    #[serde(default = "default_betas")]
    betas: (f64, f64),
    #[serde(default = "default_eps")]
    eps: f64,
    #[serde(default)]
    seed: u64,
    /// `"lora"` (the default) or `"full"` (every weight of a small model trained).
    #[serde(default)]
    method: Option<String>,
}

fn default_bits() -> u8 {
    8
}
fn default_rank() -> usize {
    8
}
fn default_alpha() -> usize {
    16
}
fn default_targets() -> Vec<String> {
    vec!["q_proj".into(), "v_proj".into()]
}
fn default_batch() -> usize {
    8
}
fn default_lr() -> f64 {
    1e-3
}
fn default_betas() -> (f64, f64) {
    (0.9, 0.999)
}
fn default_eps() -> f64 {
    1e-6
}

/// What a `[finetune]` job file turns into.
pub struct FtPrepared {
    /// The spec, the stored model and the dataset, as posted.
    pub files: FtJobFiles,
    /// The payment and the deadlines.
    pub terms: PostTerms,
}

impl JobFile {
    /// Whether this is a fine-tuning job (`[finetune]`).
    pub fn is_finetune(&self) -> bool {
        self.finetune.is_some()
    }

    /// A `[finetune]` job's files and terms. `stored` looks a model up by CID in the
    /// requester's store. Every problem is reported here, before anything is sent.
    pub fn prepare_ft(
        self,
        dir: &Path,
        stored: impl Fn(&Cid) -> Option<Vec<u8>>,
    ) -> Result<FtPrepared, JobFileError> {
        let terms = self.optimistic_terms()?;
        self.refuse_keys(
            "a [finetune] job",
            &[(self.generate.is_some(), "[generate]")],
        )?;
        let f = self
            .finetune
            .context("a fine-tuning job needs a [finetune] section")?;
        let method = match f.method.as_deref() {
            None | Some("lora") => Method::Lora,
            Some("full") => {
                ensure!(
                    f.rank.is_none() && f.alpha.is_none() && f.targets.is_none(),
                    "finetune.method = \"full\" trains every weight: remove rank, alpha and \
                     targets (they are LoRA's terms)"
                );
                Method::Full
            }
            Some(other) => {
                return Err(JobFileError(format!(
                    "finetune.method {other:?} is unknown: use \"lora\" or \"full\""
                )));
            }
        };
        let path = |p: &Path| super::lm::resolve(dir, p);
        let model = load_model(
            "finetune",
            &f.model,
            &path(Path::new(&f.model)),
            f.bits,
            stored,
        )?;
        let dataset_path = path(&f.dataset);
        let dataset = std::fs::read(&dataset_path).wrap_err_with(|| {
            format!(
                "cannot read finetune.dataset {}: give a JSONL file, one {{\"text\": \"…\"}} or \
                 {{\"prompt\": \"…\", \"completion\": \"…\"}} per line",
                dataset_path.display()
            )
        })?;
        let text = std::str::from_utf8(&dataset)
            .map_err(|_| JobFileError("finetune.dataset is not UTF-8 text".into()))?;
        ensure!(
            text.lines().any(|l| !l.trim().is_empty()),
            "finetune.dataset holds no examples"
        );
        let run = Terms {
            rank: f.rank.unwrap_or_else(default_rank),
            alpha: f.alpha.unwrap_or_else(default_alpha),
            targets: f.targets.unwrap_or_else(default_targets),
            lr: f.lr,
            lr_end: f.lr_end.unwrap_or(f.lr / 10.0),
            betas: f.betas,
            eps: f.eps,
            warmup: f.warmup.unwrap_or(f.steps / 10).min(f.steps),
            steps: f.steps,
            batch: f.batch,
            seed: f.seed,
        };
        let spec = FinetuneSpec::with_method(&model, &dataset, &run, method).wrap_err(
            "[finetune] is not a valid job: check rank, alpha, targets and the optimizer terms",
        )?;
        if let Some(steps) = self.steps {
            ensure!(
                steps == spec.steps,
                "steps = {steps}, but [finetune] steps = {} (leave the top-level steps out)",
                spec.steps
            );
        }
        // `FinetuneSpec::new` parsed, tokenized and checked these very bytes against the terms
        // and computed the spec's roots from them: loading them again would only repeat it.
        let files = FtJobFiles {
            spec,
            model,
            dataset,
        };
        Ok(FtPrepared { files, terms })
    }
}
