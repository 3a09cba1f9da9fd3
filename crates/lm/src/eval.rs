//! Held-out evaluation: the mean next-token negative log-likelihood and the argmax predictions
//! of a model over a token sequence, in chunks of the context that start from an empty cache
//! (the method scripts/lm_fixtures.py records for `transformers`, so the two compare).

use crate::error::LmError;
use crate::float::FloatModel;
use crate::forward::KvCache;
use crate::weights::ExactModel;

/// What a model predicts on a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Mean negative log-likelihood of each next token (natural log).
    pub nll: f64,
    /// The most likely next token at every predicted position, chunk by chunk.
    pub top1: Vec<u32>,
}

impl Evaluation {
    /// Perplexity, `e^nll`.
    pub fn perplexity(&self) -> f64 {
        self.nll.exp()
    }

    /// The share of positions where both predict the same next token.
    pub fn agreement(&self, other: &[u32]) -> f64 {
        let same = self.top1.iter().zip(other).filter(|(a, b)| a == b).count();
        same as f64 / self.top1.len().max(1) as f64
    }
}

fn score(logits: &[f64], vocab: usize, ids: &[u32], nll: &mut f64, top1: &mut Vec<u32>) {
    for (t, row) in logits
        .chunks(vocab)
        .take(ids.len().saturating_sub(1))
        .enumerate()
    {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        *nll += lse - row[ids[t + 1] as usize];
        let best = row
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > row[b] { i } else { b });
        top1.push(best as u32);
    }
}

fn evaluate(
    ids: &[u32],
    chunk: usize,
    vocab: usize,
    mut logits: impl FnMut(&[u32]) -> Result<Vec<f64>, LmError>,
) -> Result<Evaluation, LmError> {
    let (mut nll, mut top1) = (0.0, Vec::new());
    for part in ids.chunks(chunk.max(2)) {
        score(&logits(part)?, vocab, part, &mut nll, &mut top1);
    }
    Ok(Evaluation {
        nll: nll / top1.len().max(1) as f64,
        top1,
    })
}

impl ExactModel {
    /// Evaluates exact mode over `ids` in chunks of `chunk` tokens.
    pub fn evaluate(&self, ids: &[u32], chunk: usize) -> Result<Evaluation, LmError> {
        evaluate(ids, chunk, self.config.vocab, |part| {
            let z = self.forward(part, &mut KvCache::new(&self.config), true)?;
            Ok(z.iter().map(|&v| f64::from(v) / 4096.0).collect())
        })
    }
}

impl FloatModel<'_> {
    /// Evaluates float mode over `ids` in chunks of `chunk` tokens.
    pub fn evaluate(&self, ids: &[u32], chunk: usize) -> Result<Evaluation, LmError> {
        evaluate(ids, chunk, self.vocab(), |part| {
            Ok(self.forward(part)?.into_iter().map(f64::from).collect())
        })
    }
}
