//! Times what a worker does when one of its fine-tuning steps is disputed: the op trace of the
//! step (every op's output by the referee's formulas, every output's row root), against the
//! engine's own step, on the same model, terms and examples (docs/BENCHMARKS.md):
//!
//! ```text
//! cargo run --release -p pedals-lm --example step_trace -- [MODEL] [BATCH]
//! ```
//!
//! MODEL is a folder of `crates/lm/tests/fixtures` (`llama-tiny` unless given) and BATCH the
//! examples per step (8 unless given); the examples are the fine-tuning fixture's.

use std::path::PathBuf;
use std::time::Instant;

use pedals_lm::dispute::{OpTrace, StepInputs};
use pedals_lm::train::data::parse_jsonl;
use pedals_lm::train::{AdamConfig, FineTune, LoraConfig, Target};
use pedals_lm::{Checkpoint, Tokenizer};

fn main() -> eyre::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("llama-tiny", String::as_str);
    let batch: usize = args.get(1).map_or(Ok(8), |b| b.parse())?;
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let model = pedals_lm::quantize(&Checkpoint::load_hf(&fixtures.join(name))?, 16)?;
    let tok = Tokenizer::from_bytes(model.tokenizer.as_deref().unwrap_or_default())?;
    let text = std::fs::read_to_string(fixtures.join("finetune/train.jsonl"))?;
    let data = parse_jsonl(&text, &tok, model.config.context)?;
    let llama = name.starts_with("llama");
    let targets: Vec<&str> = Target::ALL
        .iter()
        .filter(|t| llama || **t != Target::Gate)
        .map(|t| t.name())
        .collect();
    let ft = FineTune {
        lora: LoraConfig::new(8, 16, &targets)?,
        adam: AdamConfig::new(3e-3, 3e-4, (0.9, 0.999), 1e-6, 1, 10)?,
        batch,
        seed: 11,
    };
    let mut state = ft.init(&model);
    ft.step(&model, &mut state, &data);
    let inputs = StepInputs::new(&model, &ft, &state, &data)?;
    let tokens: usize = inputs.data.iter().map(|d| d.len() - 2).sum();
    let t0 = Instant::now();
    let mut next = state.clone();
    ft.step(&model, &mut next, &data);
    let engine = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let trace = OpTrace::run(&inputs)?;
    let traced = t1.elapsed().as_secs_f64();
    let c = &model.config;
    eyre::ensure!(
        trace.leaves.last() == Some(&next.state_hash(c, &ft.lora)?),
        "the op trace does not end in the engine's next state"
    );
    let values: usize = trace.tensors.iter().map(Vec::len).sum();
    println!(
        "{name}, batch {batch} ({tokens} positions): engine step {engine:.3} s; op trace {traced:.3} s \
         ({:.0}x), {} ops, {:.1} M values ({:.0} MB)",
        traced / engine,
        inputs.program.ops.len(),
        values as f64 / 1e6,
        values as f64 * 4.0 / 1e6
    );
    Ok(())
}
