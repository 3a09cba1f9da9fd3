//! Exact and float mode against Hugging Face `transformers` on held-out text, for any folder
//! scripts/lm_fixtures.py wrote (it holds the checkpoint and `reference.json`):
//! `cargo run --release -p pedals-lm --example accuracy -- crates/lm/tests/fixtures/llama-10m`.
//! Prints one Markdown table row per mode: top-1 next-token agreement with `transformers` and
//! the perplexity ratio. docs/exact-ops.md records the table.

use std::path::PathBuf;

use pedals_lm::{Checkpoint, float::FloatModel, quantize};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    eval_ids: Vec<u32>,
    eval_chunk_len: usize,
    eval_nll: f64,
    eval_top1: Vec<u32>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .ok_or("give a fixture folder")?
        .into();
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json"))?)?;
    let ck = Checkpoint::load_hf(&dir)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    println!("| model | parameters | mode | top-1 agreement | perplexity ratio | perplexity |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let row = |mode: &str, e: pedals_lm::eval::Evaluation| {
        println!(
            "| {name} | {} | {mode} | {:.2}% | {:.4} | {:.2} (transformers {:.2}) |",
            ck.config.parameters(),
            100.0 * e.agreement(&r.eval_top1),
            (e.nll - r.eval_nll).exp(),
            e.perplexity(),
            r.eval_nll.exp()
        );
    };
    row(
        "float",
        FloatModel::new(&ck).evaluate(&r.eval_ids, r.eval_chunk_len)?,
    );
    for bits in [8, 16] {
        row(
            &format!("exact, {bits}-bit"),
            quantize(&ck, bits)?.evaluate(&r.eval_ids, r.eval_chunk_len)?,
        );
    }
    Ok(())
}
