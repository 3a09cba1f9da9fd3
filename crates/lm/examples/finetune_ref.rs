//! Writes what `scripts/lm_finetune_ref.py` needs to fine-tune the same model in float with
//! PyTorch and `peft`, and runs the exact fine-tune itself:
//!
//! ```text
//! cargo run --release -p pedals-lm --example finetune_ref -- OUT [RUN]
//! ```
//!
//! OUT gets `base/` (the exact model's real values as a Hugging Face folder), `adapter_init/`
//! (the initial adapters in `peft`'s format), `plan.json` (the terms, the tokenized examples
//! and every step's batch), then, after the exact run, `adapter_exact/` and `exact.json` (its
//! losses and greedy tokens). RUN is `crates/lm/tests/fixtures/finetune/run.json` unless given
//! (its `model` names a folder of `crates/lm/tests/fixtures`). A run with `"method": "full"`
//! trains every weight instead (`run_full.json`): no adapters, and the fine-tuned model's real
//! values in `full_exact/`.

use std::path::{Path, PathBuf};

use pedals_lm::train::data::parse_jsonl;
use pedals_lm::train::peft::save_peft;
use pedals_lm::train::{Example, FullState, Terms};
use pedals_lm::{Checkpoint, Tokenizer};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Run {
    model: String,
    bits: u8,
    prompt: String,
    greedy_tokens: usize,
    #[serde(default)]
    method: Option<String>,
    #[serde(flatten)]
    terms: Terms,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tokens(ex: &[Example]) -> serde_json::Value {
    ex.iter()
        .map(|e| json!({"tokens": e.tokens, "prompt": e.prompt}))
        .collect()
}

fn main() -> eyre::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or_else(|| eyre::eyre!("usage: finetune_ref OUT"))?,
    );
    let run_file = std::env::args()
        .nth(2)
        .map_or_else(|| fixtures().join("finetune/run.json"), PathBuf::from);
    let run: Run = serde_json::from_slice(&std::fs::read(run_file)?)?;
    let model = pedals_lm::quantize(
        &Checkpoint::load_hf(&fixtures().join(&run.model))?,
        run.bits,
    )?;
    let tok = Tokenizer::from_bytes(model.tokenizer.as_deref().unwrap_or_default())?;
    let read = |name: &str| -> eyre::Result<Vec<Example>> {
        let text = std::fs::read_to_string(fixtures().join("finetune").join(name))?;
        Ok(parse_jsonl(&text, &tok, model.config.context)?)
    };
    let (train, heldout) = (read("train.jsonl")?, read("heldout.jsonl")?);
    let full = run.method.as_deref() == Some("full");
    let ft = run.terms.full_tune()?;
    ft.check(&model, &train)?;
    model.to_checkpoint().save_hf(&out.join("base"))?;
    let batches: Vec<Vec<usize>> = (0..run.terms.steps)
        .map(|t| ft.batch_of(t, train.len()))
        .collect();
    let prompt = tok.encode(&run.prompt)?;
    write(
        &out.join("plan.json"),
        &json!({
            "terms": run.terms,
            "train": tokens(&train),
            "heldout": tokens(&heldout),
            "batches": batches,
            "prompt": prompt,
            "greedy_tokens": run.greedy_tokens,
            "method": if full { "full" } else { "lora" },
        }),
    )?;
    let mut losses = Vec::new();
    let (held_init, held, greedy, secs) = if full {
        let mut state = FullState::init(&model)?;
        let held_init = ft.loss(&model, &state, &heldout);
        let started = std::time::Instant::now();
        for _ in 0..run.terms.steps {
            losses.push(ft.step(&model, &mut state, &train).loss);
        }
        let secs = started.elapsed().as_secs_f64();
        state
            .model(&model)
            .to_checkpoint()
            .save_hf(&out.join("full_exact"))?;
        let greedy = ft.greedy(&model, &state, &prompt, run.greedy_tokens)?;
        (held_init, ft.loss(&model, &state, &heldout), greedy, secs)
    } else {
        let ft = run.terms.fine_tune()?;
        let mut state = ft.init(&model);
        save_peft(&out.join("adapter_init"), &model.config, &ft.lora, &state)?;
        let held_init = ft.loss(&model, &state, &heldout);
        let started = std::time::Instant::now();
        for _ in 0..run.terms.steps {
            losses.push(ft.step(&model, &mut state, &train).loss);
        }
        let secs = started.elapsed().as_secs_f64();
        save_peft(&out.join("adapter_exact"), &model.config, &ft.lora, &state)?;
        let greedy = ft.greedy(&model, &state, &prompt, run.greedy_tokens)?;
        (held_init, ft.loss(&model, &state, &heldout), greedy, secs)
    };
    let scored: u64 = batches
        .iter()
        .flatten()
        .map(|&i| train[i].tokens.len() as u64 - 1)
        .sum();
    println!(
        "exact: held-out loss {held_init:.4} -> {held:.4}; {} steps in {secs:.1} s ({:.0} tokens/s)",
        run.terms.steps,
        scored as f64 / secs
    );
    write(
        &out.join("exact.json"),
        &json!({
            "train_loss": losses,
            "heldout_init": held_init,
            "heldout_final": held,
            "greedy": greedy,
            "seconds": secs,
            "tokens": scored,
        }),
    )
}

fn write(path: &Path, v: &serde_json::Value) -> eyre::Result<()> {
    std::fs::write(path, serde_json::to_string(v)?)?;
    Ok(())
}
