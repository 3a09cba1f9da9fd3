//! `pedals model import|inspect|generate|finetune|export`: language models in exact mode. `import`
//! quantizes a Hugging Face checkpoint folder (nothing is downloaded) and keeps the result in
//! the store under its CID, which is what a job names; `generate` runs it (or, with `--float`,
//! the checkpoint in f32); `export` writes a checkpoint folder back.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use eyre::{Context, ContextCompat};
use pedals_core::{Cid, cid_of, parse_cid};
use pedals_lm::{
    Checkpoint, ExactModel, GenParams, Sampling, Tokenizer, float::FloatModel, quantize,
    sample::sample,
};
use serde_json::json;

use super::data::StoreArgs;

/// Language-model commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ModelCommand {
    /// Quantize a Hugging Face checkpoint folder (config.json, model.safetensors,
    /// tokenizer.json) to exact mode and keep it in the store; prints its CID.
    ///
    /// Example: pedals model import ./my-llama --bits 8
    Import {
        /// The checkpoint folder.
        dir: PathBuf,
        /// Bits per weight: 8 (smaller, faster) or 16 (closer to the float model).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(8..=16))]
        bits: u8,
        #[command(flatten)]
        store: StoreArgs,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Describe a model: its family, shape, weights, tokenizer and CID.
    ///
    /// Example: pedals model inspect bafkrei…
    Inspect {
        /// A CID in the store, a stored model file, or a checkpoint folder.
        model: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Generate a completion.
    ///
    /// Example: pedals model generate bafkrei… --prompt "Once upon a time" --max-tokens 40
    Generate(Box<GenerateArgs>),
    /// Fine-tune with LoRA in exact mode on a JSONL dataset; writes the adapter for Hugging
    /// Face peft, the final state and every step's state hash.
    ///
    /// Example: pedals model finetune bafkrei… --data train.jsonl --out ./adapter --steps 100
    Finetune(Box<super::finetune::FinetuneArgs>),
    /// Write a model back as a Hugging Face checkpoint folder (f32 safetensors).
    ///
    /// Example: pedals model export bafkrei… --out ./exported
    Export {
        /// A CID in the store, a stored model file, or a checkpoint folder.
        model: String,
        /// The folder to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `pedals model generate`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// A CID in the store, a stored model file, or a checkpoint folder (quantized on the fly,
    /// or run in f32 with --float).
    model: String,
    /// The prompt text (needs the model's tokenizer).
    #[arg(
        long,
        conflicts_with = "prompt_ids",
        required_unless_present = "prompt_ids"
    )]
    prompt: Option<String>,
    /// The prompt as token ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
    /// New tokens at most.
    #[arg(long, default_value_t = 32)]
    max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Keep only the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Keep the most likely tokens up to this probability mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// The seed of the draws: the same prompt and seed give the same tokens everywhere.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop before this text (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Weight bits when quantizing a checkpoint folder on the fly.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(8..=16))]
    bits: u8,
    /// Run the checkpoint folder in f32 (float mode: not bit-exact across machines).
    #[arg(long)]
    float: bool,
    /// Where exact mode's matrix products run: `cpu` (the SIMD kernel), `flex` (burn's CPU
    /// backend) or `gpu` (wgpu over Vulkan); every one gives the same tokens.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "flex", "gpu"])]
    device: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Loads a model named by a CID in the store, a stored file, or a checkpoint folder, with the
/// CID of its stored bytes (serialized once, here, and only for a folder).
pub(crate) fn load(model: &str, store: &StoreArgs, bits: u8) -> eyre::Result<(ExactModel, Cid)> {
    let path = Path::new(model);
    if path.is_dir() {
        let m = quantize(&Checkpoint::load_hf(path)?, bits)?;
        let cid = cid_of(&m.to_bytes()?);
        return Ok((m, cid));
    }
    let (bytes, cid) = if path.is_file() {
        let bytes = std::fs::read(path).wrap_err_with(|| format!("cannot read {model}"))?;
        let cid = cid_of(&bytes);
        (bytes, cid)
    } else {
        let cid = parse_cid(model).wrap_err_with(|| {
            format!("{model:?} is neither a file, a folder nor a CID; `pedals model import` prints a model's CID")
        })?;
        let (dir, store) = store.open()?;
        let bytes = store.blob(&cid)?.with_context(|| {
            format!(
                "model {cid} is not in the store at {}; import it first, or `pedals data get` it",
                dir.display()
            )
        })?;
        (bytes, cid)
    };
    Ok((ExactModel::from_bytes(&bytes)?, cid))
}

fn describe(model: &ExactModel, cid: &Cid) -> serde_json::Value {
    let c = &model.config;
    json!({
        "cid": cid.to_string(),
        "family": c.family,
        "parameters": c.parameters(),
        "bits": model.bits(),
        "weightBytes": model.weight_bytes(),
        "config": c,
        "tokenizer": model.tokenizer.is_some(),
    })
}

impl ModelCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Import {
                dir,
                bits,
                store,
                json,
            } => {
                let ck = Checkpoint::load_hf(&dir)?;
                let model = quantize(&ck, bits)?;
                let bytes = model.to_bytes()?;
                let (_, st) = store.open()?;
                let cid = st.put_blob(&bytes)?;
                let mut d = describe(&model, &cid);
                d["bytes"] = bytes.len().into();
                if json {
                    println!("{d}");
                } else {
                    println!(
                        "{cid}\n{:?} model, {} parameters, {bits}-bit weights, {} bytes stored",
                        model.config.family,
                        model.config.parameters(),
                        bytes.len()
                    );
                }
                Ok(())
            }
            Self::Inspect { model, store, json } => {
                let (m, cid) = load(&model, &store, 8)?;
                let d = describe(&m, &cid);
                if json {
                    println!("{d}");
                } else {
                    println!("{}", serde_json::to_string_pretty(&d)?);
                }
                Ok(())
            }
            Self::Export { model, out, store } => {
                let (m, _) = load(&model, &store, 8)?;
                m.to_checkpoint().save_hf(&out)?;
                println!("wrote {}", out.display());
                Ok(())
            }
            Self::Generate(args) => args.run(),
            Self::Finetune(args) => args.run(),
        }
    }
}

impl GenerateArgs {
    fn run(self) -> eyre::Result<()> {
        eyre::ensure!(
            !self.float || self.device == "cpu",
            "--float runs on the CPU; --device is for exact mode"
        );
        let sampling = Sampling::new(self.temperature, self.top_k, self.top_p, self.seed)?;
        let params = GenParams {
            max_tokens: self.max_tokens,
            sampling,
            stop: self.stop.clone(),
        };
        if self.float {
            return self.run_float(&params);
        }
        let (mut model, cid) = load(&self.model, &self.store, self.bits)?;
        let device = pedals_lm::exact::device::named(&self.device)?;
        if let Some((d, _)) = &device {
            model.to_device(d);
        }
        let tok = model
            .tokenizer
            .as_deref()
            .map(Tokenizer::from_bytes)
            .transpose()?;
        let prompt = self.prompt_ids(tok.as_ref())?;
        let g = model.generate(&prompt, &params, tok.as_ref())?;
        if self.json {
            println!(
                "{}",
                json!({
                    "model": cid.to_string(),
                    "device": device.map_or_else(|| "cpu".to_string(), |d| d.1),
                    "prompt": prompt,
                    "completion": g,
                })
            );
        } else {
            println!("{}", g.text.unwrap_or_else(|| format!("{:?}", g.tokens)));
        }
        Ok(())
    }

    fn prompt_ids(&self, tok: Option<&Tokenizer>) -> eyre::Result<Vec<u32>> {
        match (&self.prompt_ids, &self.prompt) {
            (Some(ids), _) => Ok(ids.clone()),
            (None, Some(text)) => {
                let tok = tok.context("this model has no tokenizer.json: give --prompt-ids")?;
                Ok(tok.encode(text)?)
            }
            (None, None) => eyre::bail!("give --prompt or --prompt-ids"),
        }
    }

    /// Float mode: the checkpoint's f32 weights, recomputed per token (no cache); the logits
    /// are rounded to Q12 and chosen by the same sampler.
    fn run_float(&self, params: &GenParams) -> eyre::Result<()> {
        let dir = Path::new(&self.model);
        eyre::ensure!(
            dir.is_dir(),
            "--float runs a checkpoint folder; {} is not one",
            self.model
        );
        eyre::ensure!(
            params.stop.is_empty(),
            "--stop is for exact mode; float mode stops at --max-tokens"
        );
        let ck = Checkpoint::load_hf(dir)?;
        let tok = ck
            .tokenizer
            .as_deref()
            .map(Tokenizer::from_bytes)
            .transpose()?;
        let mut tokens = self.prompt_ids(tok.as_ref())?;
        let start = tokens.len();
        let float = FloatModel::new(&ck);
        let vocab = ck.config.vocab;
        for _ in 0..params.max_tokens {
            let logits = float.forward(&tokens)?;
            let last: Vec<i32> = logits[logits.len() - vocab..]
                .iter()
                .map(|v| {
                    (f64::from(*v) * 4096.0)
                        .round()
                        .clamp(-(1 << 29) as f64, (1 << 29) as f64) as i32
                })
                .collect();
            tokens.push(sample(&last, &params.sampling, tokens.len() as u64));
        }
        let new = &tokens[start..];
        let text = tok.as_ref().map(|t| t.decode(new)).transpose()?;
        if self.json {
            println!(
                "{}",
                json!({ "prompt": &tokens[..start], "tokens": new, "text": text })
            );
        } else {
            println!("{}", text.unwrap_or_else(|| format!("{new:?}")));
        }
        Ok(())
    }
}
