//! A span of a model's blocks, the unit of split-model inference (docs/split-inference.md): a
//! client embeds the tokens, each server runs its span of blocks over the hidden states it is
//! sent and keeps that span's key/value cache per session, and the client turns the last
//! span's output into logits. Exact mode makes the chain's logits those of one process, bit
//! for bit, however the blocks are split and wherever each span runs; a server that lost its
//! session is given the session's prefix again and is back where it was.

use std::ops::Range;

use alloy_primitives::{B256, keccak256};

use crate::LmError;
use crate::exact::ops::ACT_MAX;
use crate::forward::KvCache;
use crate::weights::ExactModel;

/// Hidden states of consecutive positions of one sequence, as they pass between spans:
/// `rows × hidden` values, each within `±ACT_MAX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activations {
    /// The position of the first row.
    pub start: usize,
    /// The values, row by row.
    pub rows: Vec<i32>,
}

impl Activations {
    /// Rows held, for a model of width `hidden`.
    pub fn len(&self, hidden: usize) -> usize {
        self.rows.len() / hidden.max(1)
    }

    /// The canonical bytes: `start` as a little-endian `u64`, then every value as a
    /// little-endian `i32`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 4 * self.rows.len());
        out.extend_from_slice(&(self.start as u64).to_le_bytes());
        for v in &self.rows {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads canonical bytes, refusing a length that is not whole values.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LmError> {
        if bytes.len() < 8 || !(bytes.len() - 8).is_multiple_of(4) {
            return Err(LmError::Format(format!(
                "activations of {} bytes: an 8-byte position and whole 4-byte values are expected",
                bytes.len()
            )));
        }
        let mut start = [0u8; 8];
        start.copy_from_slice(&bytes[..8]);
        let rows = bytes[8..]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Self {
            start: u64::from_le_bytes(start) as usize,
            rows,
        })
    }

    /// Fails unless the values are one or more whole rows of `hidden`.
    fn whole_rows(&self, hidden: usize) -> Result<(), LmError> {
        if self.rows.is_empty() || !self.rows.len().is_multiple_of(hidden) {
            return Err(LmError::Format(format!(
                "{} activation values are not whole rows of {hidden}",
                self.rows.len()
            )));
        }
        Ok(())
    }

    /// `keccak256` of the canonical bytes: what a server commits to for what it returned.
    pub fn hash(&self) -> B256 {
        keccak256(self.to_bytes())
    }
}

impl ExactModel {
    /// The hidden states the first span takes: the embeddings of `tokens` at positions
    /// `start..` (plus the learned positions' in the GPT-2 family).
    pub fn embed_tokens(&self, tokens: &[u32], start: usize) -> Result<Activations, LmError> {
        self.check_tokens(tokens, start)?;
        Ok(Activations {
            start,
            rows: self.embed_rows(tokens, start),
        })
    }

    /// Runs the blocks `cache` is for over `input`, which must continue the positions the
    /// cache holds, and returns the span's output (the next span's input). Activations that are
    /// not whole rows, leave the context, or hold values outside `±ACT_MAX` (what no span
    /// produces) are refused, and the cache is unchanged.
    pub fn run_span(
        &self,
        cache: &mut KvCache,
        input: &Activations,
    ) -> Result<Activations, LmError> {
        let c = &self.config;
        let blocks = cache.blocks();
        if blocks.end > self.blocks.len() || blocks.is_empty() {
            return Err(LmError::Config(format!(
                "blocks {blocks:?} are not a span of this model's {} blocks",
                self.blocks.len()
            )));
        }
        let d = c.hidden;
        input.whole_rows(d)?;
        if input.start != cache.len {
            return Err(LmError::Format(format!(
                "the activations start at position {} but the span has {} positions cached: \
                 send the session's prefix from position {} again",
                input.start, cache.len, cache.len
            )));
        }
        let t_len = input.len(d);
        if cache.len + t_len > c.context {
            return Err(LmError::TooLong {
                tokens: cache.len + t_len,
                context: c.context,
            });
        }
        if input.rows.iter().any(|&v| i64::from(v).abs() > ACT_MAX) {
            return Err(LmError::Format(format!(
                "an activation value is outside ±{ACT_MAX}: no span produces it"
            )));
        }
        let mut h = input.rows.clone();
        rayon::scope(|_| self.blocks_in_pool(cache, &mut h, t_len));
        Ok(Activations {
            start: input.start,
            rows: h,
        })
    }

    /// Q12 logits of the last span's output: every row's when `all`, else the last row's.
    pub fn span_logits(&self, output: &Activations, all: bool) -> Result<Vec<i32>, LmError> {
        let d = self.config.hidden;
        output.whole_rows(d)?;
        Ok(rayon::scope(|_| {
            self.head_rows(&output.rows, output.len(d), all)
        }))
    }

    /// Splits the model's blocks into `n` spans as even as they can be (the first ones one
    /// block longer), for a chain of `n` servers.
    pub fn even_spans(&self, n: usize) -> Vec<Range<usize>> {
        let (layers, n) = (self.blocks.len(), n.clamp(1, self.blocks.len().max(1)));
        let mut start = 0;
        (0..n)
            .map(|i| {
                let len = layers / n + usize::from(i < layers % n);
                let span = start..start + len;
                start += len;
                span
            })
            .collect()
    }

    /// A model of `layers` blocks, block `i` being this one's block `i mod L`, with the same
    /// widths, embeddings and head: a deeper model to test and measure split inference with,
    /// when no large checkpoint is at hand. It round-trips through the stored format.
    pub fn repeat_blocks(&self, layers: usize) -> Result<Self, LmError> {
        if layers == 0 || self.blocks.is_empty() {
            return Err(LmError::Config(
                "a model needs at least one block to repeat, and one block to make".into(),
            ));
        }
        let mut hf: serde_json::Value = serde_json::from_str(&self.hf_config)
            .map_err(|e| LmError::Config(format!("config.json: {e}")))?;
        for key in ["num_hidden_layers", "n_layer"] {
            if hf.get(key).is_some() {
                hf[key] = layers.into();
            }
        }
        let mut m = self.clone();
        m.blocks = (0..layers)
            .map(|i| self.blocks[i % self.blocks.len()].clone())
            .collect();
        m.config.layers = layers;
        m.hf_config = hf.to_string();
        Ok(m)
    }
}
