//! The committed checkpoints and their reference outputs.

use std::path::PathBuf;

use pedals_lm::Checkpoint;
use serde::Deserialize;

/// What scripts/lm_fixtures.py recorded from Hugging Face `transformers`.
#[derive(Deserialize)]
pub(crate) struct Reference {
    pub prompt_ids: Vec<u32>,
    pub logits: Vec<Vec<f32>>,
    pub greedy: Vec<u32>,
    pub eval_ids: Vec<u32>,
    pub eval_chunk_len: usize,
    pub eval_nll: f64,
    pub eval_top1: Vec<u32>,
}

pub(crate) const FAMILIES: [&str; 2] = ["llama-tiny", "gpt2-tiny"];

pub(crate) fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub(crate) fn checkpoint(name: &str) -> Checkpoint {
    Checkpoint::load_hf(&dir(name)).expect("the committed fixture loads")
}

pub(crate) fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(dir(name).join("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json parses")
}
