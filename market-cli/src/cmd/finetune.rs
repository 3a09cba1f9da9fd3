//! `pedals model finetune`: LoRA or full fine-tuning in exact mode on this machine. Writes the
//! adapter in Hugging Face peft's format (with `--full`, the whole model as a Hugging Face
//! folder), the final state in canonical bytes, and the trace (every step's state hash and
//! their root) that a fine-tune job commits to.

use std::path::PathBuf;

use clap::Args;
use eyre::Context;
use pedals_lm::Tokenizer;
use pedals_lm::train::data::parse_jsonl;
use pedals_lm::train::peft::save_peft;
use pedals_lm::train::{Example, FullState, Terms};
use serde_json::json;

use super::data::StoreArgs;

/// `pedals model finetune`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct FinetuneArgs {
    /// A CID in the store, a stored model file, or a checkpoint folder (quantized with --bits).
    model: String,
    /// The training examples: JSONL of {"text": …} or {"prompt": …, "completion": …}.
    #[arg(long)]
    data: PathBuf,
    /// Held-out examples (same format): their loss is reported before and after.
    #[arg(long)]
    heldout: Option<PathBuf>,
    /// The folder to write: adapter_model.safetensors, adapter_config.json (peft), state.pdls
    /// (the final state) and trace.json (every step's state hash).
    #[arg(long)]
    out: PathBuf,
    /// Train every weight of the model instead of LoRA adapters (small models: the state holds
    /// three values per weight). Writes the fine-tuned model to OUT/model as a Hugging Face
    /// folder; --rank, --alpha and --targets do not apply.
    #[arg(long)]
    full: bool,
    /// LoRA rank (1 to 64).
    #[arg(long, default_value_t = 8)]
    rank: usize,
    /// LoRA alpha; alpha / rank must be a power of two.
    #[arg(long, default_value_t = 16)]
    alpha: usize,
    /// Projections to adapt, comma-separated (q_proj, k_proj, v_proj, o_proj, gate_proj,
    /// up_proj, down_proj).
    #[arg(long, value_delimiter = ',', default_value = "q_proj,v_proj")]
    targets: Vec<String>,
    /// Optimizer steps.
    #[arg(long, default_value_t = 100)]
    steps: u64,
    /// Examples per step (1 to 1024).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Peak learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Learning rate at the last step (linear decay after the warm-up).
    #[arg(long, default_value_t = 1e-4)]
    lr_end: f64,
    /// Warm-up steps.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Adam's β1.
    #[arg(long, default_value_t = 0.9)]
    beta1: f64,
    /// Adam's β2.
    #[arg(long, default_value_t = 0.999)]
    beta2: f64,
    /// Adam's ε (at least 2.3e-10).
    #[arg(long, default_value_t = 1e-6)]
    eps: f64,
    /// Seed of the adapters' initialization and of the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Weight bits when quantizing a checkpoint folder.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(8..=16))]
    bits: u8,
    #[command(flatten)]
    store: StoreArgs,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

impl FinetuneArgs {
    pub(crate) fn run(self) -> eyre::Result<()> {
        let terms = Terms {
            rank: self.rank,
            alpha: self.alpha,
            targets: self.targets.clone(),
            lr: self.lr,
            lr_end: self.lr_end,
            betas: (self.beta1, self.beta2),
            eps: self.eps,
            warmup: self.warmup.min(self.steps),
            steps: self.steps,
            batch: self.batch,
            seed: self.seed,
        };
        let ft = terms.fine_tune()?;
        let (model, cid) = super::model::load(&self.model, &self.store, self.bits)?;
        let tok = Tokenizer::from_bytes(model.tokenizer.as_deref().ok_or_else(|| {
            eyre::eyre!("this model has no tokenizer.json: a JSONL dataset needs one")
        })?)?;
        let read = |path: &PathBuf| -> eyre::Result<Vec<Example>> {
            let text = std::fs::read_to_string(path)
                .wrap_err_with(|| format!("cannot read {}", path.display()))?;
            parse_jsonl(&text, &tok, model.config.context)
                .wrap_err_with(|| format!("{} is not a usable dataset", path.display()))
        };
        let train = read(&self.data)?;
        let heldout = self.heldout.as_ref().map(read).transpose()?;
        ft.check(&model, &train)?;
        std::fs::create_dir_all(&self.out)
            .wrap_err_with(|| format!("cannot create {}", self.out.display()))?;
        let c = &model.config;
        let mut run = if self.full {
            let full = terms.full_tune()?;
            let mut state = FullState::init(&model)?;
            let before = heldout.as_deref().map(|h| full.loss(&model, &state, h));
            let mut run = Run::new(&self, before, |step| {
                if step {
                    let r = full.step(&model, &mut state, &train);
                    return Ok((r.tokens, r.loss, state.state_hash(c)?));
                }
                Ok((0, 0.0, state.state_hash(c)?))
            })?;
            run.held_after = heldout.as_deref().map(|h| full.loss(&model, &state, h));
            std::fs::write(self.out.join("state.pdls"), state.to_bytes(c)?)?;
            state
                .model(&model)
                .to_checkpoint()
                .save_hf(&self.out.join("model"))?;
            run
        } else {
            let mut state = ft.init(&model);
            let before = heldout.as_deref().map(|h| ft.loss(&model, &state, h));
            let mut run = Run::new(&self, before, |step| {
                if step {
                    let r = ft.step(&model, &mut state, &train);
                    return Ok((r.tokens, r.loss, state.state_hash(c, &ft.lora)?));
                }
                Ok((0, 0.0, state.state_hash(c, &ft.lora)?))
            })?;
            run.held_after = heldout.as_deref().map(|h| ft.loss(&model, &state, h));
            save_peft(&self.out, c, &ft.lora, &state)?;
            std::fs::write(self.out.join("state.pdls"), state.to_bytes(c, &ft.lora)?)?;
            run
        };
        run.seconds = run.seconds.max(1e-9);
        let Run {
            hashes,
            tokens,
            losses,
            seconds,
            held_before,
            held_after,
        } = run;
        let trace = pedals_core::TraceCommitment::new(hashes.clone())?;
        let summary = json!({
            "model": cid.to_string(),
            "terms": if self.full {
                // The LoRA terms do not apply to a full fine-tune.
                let mut t = serde_json::to_value(&terms)?;
                if let Some(o) = t.as_object_mut() {
                    for k in ["rank", "alpha", "targets"] {
                        o.remove(k);
                    }
                }
                t
            } else {
                serde_json::to_value(&terms)?
            },
            "method": if self.full { "full" } else { "lora" },
            "examples": train.len(),
            "steps": self.steps,
            "tokens": tokens,
            "seconds": seconds,
            "trainLoss": losses,
            "heldoutBefore": held_before,
            "heldoutAfter": held_after,
            "traceRoot": trace.root(),
            "finalStateHash": trace.final_hash(),
            "out": self.out,
        });
        std::fs::write(
            self.out.join("trace.json"),
            serde_json::to_string_pretty(&json!({
                "traceRoot": trace.root(),
                "stateHashes": hashes,
            }))?,
        )?;
        if self.json {
            println!("{summary}");
        } else {
            if let (Some(b), Some(a)) = (held_before, held_after) {
                println!("held-out loss {b:.4} -> {a:.4}");
            }
            println!(
                "{} steps in {seconds:.1} s ({:.0} tokens/s); trace root {}; {} in {}",
                self.steps,
                tokens as f64 / seconds,
                trace.root(),
                if self.full { "model" } else { "adapter" },
                self.out
                    .join(if self.full { "model" } else { "" })
                    .display()
            );
        }
        Ok(())
    }
}

/// What a run measured: every state's hash (the initial one first), the losses.
struct Run {
    hashes: Vec<alloy::primitives::B256>,
    tokens: u64,
    losses: Vec<f64>,
    seconds: f64,
    held_before: Option<f64>,
    held_after: Option<f64>,
}

type StepOut = eyre::Result<(u64, f64, alloy::primitives::B256)>;

impl Run {
    /// Runs `args.steps` steps: `step(true)` takes one and hashes the new state, `step(false)`
    /// hashes the current one.
    fn new(
        args: &FinetuneArgs,
        held_before: Option<f64>,
        mut step: impl FnMut(bool) -> StepOut,
    ) -> eyre::Result<Self> {
        let mut hashes = vec![step(false)?.2];
        let started = std::time::Instant::now();
        let (mut tokens, mut losses) = (0u64, Vec::new());
        for t in 0..args.steps {
            let (n, l, h) = step(true)?;
            hashes.push(h);
            tokens += n;
            losses.push(l);
            if !args.json && (t + 1) % 10 == 0 || t + 1 == args.steps {
                eprintln!("step {}/{}: loss {l:.4}", t + 1, args.steps);
            }
        }
        Ok(Self {
            hashes,
            tokens,
            losses,
            seconds: started.elapsed().as_secs_f64(),
            held_before,
            held_after: None,
        })
    }
}
