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

/// Mean next-token negative log-likelihood and the argmax predictions of logits rows
/// (`vocab` wide) for `ids` (row `t` predicts `ids[t + 1]`).
pub(crate) fn nll_and_top1(logits: &[f64], vocab: usize, ids: &[u32]) -> (f64, Vec<u32>, usize) {
    let (mut nll, mut top1) = (0.0, Vec::new());
    for (t, row) in logits.chunks(vocab).take(ids.len() - 1).enumerate() {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        nll += lse - row[ids[t + 1] as usize];
        let best = row
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > row[b] { i } else { b });
        top1.push(best as u32);
    }
    (nll, top1, ids.len() - 1)
}
