//! The exact forward pass with a key/value cache: the order of ops of docs/exact-ops.md
//! ("A transformer forward pass"). Keys are cached row-quantized (mantissas and one exponent
//! per position and head), values as Q12 activations.

use rayon::prelude::*;

use crate::config::{Family, LmConfig};
use crate::error::LmError;
use crate::exact::arith::{rowquant, rowquant_into};
use crate::exact::ops::{
    gather_row, gelu, linear, norm_row, residual_add, rope, score, score_scale, softmax_q16,
    swiglu, weighted_sum,
};
use crate::weights::{ExactModel, Linear, Norm};

/// The cached keys and values of one block.
#[derive(Debug, Clone, Default)]
struct LayerCache {
    k_mant: Vec<i16>,
    k_exp: Vec<i32>,
    v: Vec<i32>,
}

/// The key/value cache of one sequence, for every block of a model or for a span of them
/// (`crate::span`).
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(crate) len: usize,
    /// The first block cached.
    pub(crate) first: usize,
    layers: Vec<LayerCache>,
}

impl KvCache {
    /// An empty cache for a model.
    pub fn new(config: &LmConfig) -> Self {
        Self::for_blocks(0..config.layers)
    }

    /// An empty cache for blocks `blocks` of a model (a span a server runs).
    pub fn for_blocks(blocks: std::ops::Range<usize>) -> Self {
        Self {
            len: 0,
            first: blocks.start,
            layers: vec![LayerCache::default(); blocks.len()],
        }
    }

    /// The blocks it caches.
    pub fn blocks(&self) -> std::ops::Range<usize> {
        self.first..self.first + self.layers.len()
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| 2 * l.k_mant.len() + 4 * l.k_exp.len() + 4 * l.v.len())
            .sum()
    }
}

fn norm_rows(x: &[i32], n: &Norm, eps: i64, center: bool, width: usize) -> Vec<i32> {
    let mut out = vec![0i32; x.len()];
    for (xr, yr) in x.chunks(width).zip(out.chunks_mut(width)) {
        norm_row(xr, &n.gamma, n.beta.as_deref(), eps, center, yr);
    }
    out
}

fn project(x: &[i32], l: &Linear) -> Vec<i32> {
    linear(x, &l.w, l.b.as_deref())
}

impl ExactModel {
    /// Checks that `tokens` may follow `cached` positions.
    pub fn check_tokens(&self, tokens: &[u32], cached: usize) -> Result<(), LmError> {
        let c = &self.config;
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= c.vocab) {
            return Err(LmError::Token { id, vocab: c.vocab });
        }
        if cached + tokens.len() > c.context {
            return Err(LmError::TooLong {
                tokens: cached + tokens.len(),
                context: c.context,
            });
        }
        Ok(())
    }

    /// Runs `tokens` after the cached positions and returns Q12 logits: one row per new
    /// position when `all`, else the last row only.
    ///
    /// The whole pass runs on one thread of the rayon pool (`rayon::scope` moves it there),
    /// so the parallel ops inside it split work without a hand-off between threads per op.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        all: bool,
    ) -> Result<Vec<i32>, LmError> {
        self.check_tokens(tokens, cache.len)?;
        if cache.blocks() != (0..self.blocks.len()) {
            return Err(LmError::Config(format!(
                "a cache of blocks {:?} is a span's: the whole forward pass needs one of all {} \
                 blocks (KvCache::new), a span runs with run_span",
                cache.blocks(),
                self.blocks.len()
            )));
        }
        Ok(rayon::scope(|_| self.forward_in_pool(tokens, cache, all)))
    }

    fn forward_in_pool(&self, tokens: &[u32], cache: &mut KvCache, all: bool) -> Vec<i32> {
        let (start, t_len) = (cache.len, tokens.len());
        if t_len == 0 {
            return Vec::new();
        }
        let mut h = self.embed_rows(tokens, start);
        self.blocks_in_pool(cache, &mut h, t_len);
        self.head_rows(&h, t_len, all)
    }

    /// The hidden states of `tokens` at positions `start..`: their embeddings, plus the learned
    /// positions' (GPT-2 family).
    pub(crate) fn embed_rows(&self, tokens: &[u32], start: usize) -> Vec<i32> {
        let d = self.config.hidden;
        let mut h = vec![0i32; tokens.len() * d];
        for (t, row) in h.chunks_mut(d).enumerate() {
            gather_row(&self.embed, tokens[t] as usize, row);
            if let Some(pos) = &self.pos_embed {
                let mut p = vec![0i32; d];
                gather_row(pos, start + t, &mut p);
                residual_add(row, &p);
            }
        }
        h
    }

    /// Runs the blocks `cache` holds over `t_len` rows of hidden states `h` (positions after
    /// the cached ones), and caches their keys and values.
    pub(crate) fn blocks_in_pool(&self, cache: &mut KvCache, h: &mut [i32], t_len: usize) {
        let start = cache.len;
        let first = cache.first;
        for (block, lc) in self.blocks[first..].iter().zip(cache.layers.iter_mut()) {
            self.block_rows(block, lc, h, start, t_len);
        }
        cache.len += t_len;
    }

    /// Q12 logits of the final hidden states `h` (`t_len` rows): every row's when `all`, else
    /// the last row's.
    pub(crate) fn head_rows(&self, h: &[i32], t_len: usize, all: bool) -> Vec<i32> {
        let c = &self.config;
        let d = c.hidden;
        let rows = if all { h } else { &h[(t_len - 1) * d..] };
        let x = norm_rows(
            rows,
            &self.final_norm,
            c.eps_q40(),
            c.family == Family::Gpt2,
            d,
        );
        linear(&x, self.head(), None)
    }

    /// One block over `t_len` rows at positions `start..`.
    fn block_rows(
        &self,
        block: &crate::weights::Block,
        lc: &mut LayerCache,
        h: &mut [i32],
        start: usize,
        t_len: usize,
    ) {
        let c = &self.config;
        let d = c.hidden;
        let center = c.family == Family::Gpt2;
        let eps = c.eps_q40();
        let x = norm_rows(h, &block.attn_norm, eps, center, d);
        let mut q = project(&x, &block.q);
        let mut k = project(&x, &block.k);
        let v = project(&x, &block.v);
        if let Some(rot) = &self.rotary {
            let half = c.head_dim / 2;
            for t in 0..t_len {
                let p = start + t;
                let (cos, sin) = (
                    &rot.cos[p * half..(p + 1) * half],
                    &rot.sin[p * half..(p + 1) * half],
                );
                for head in q[t * c.q_width()..(t + 1) * c.q_width()].chunks_mut(c.head_dim) {
                    rope(head, cos, sin);
                }
                for head in k[t * c.kv_width()..(t + 1) * c.kv_width()].chunks_mut(c.head_dim) {
                    rope(head, cos, sin);
                }
            }
        }
        for head in k.chunks(c.head_dim) {
            let e = rowquant_into(head, &mut lc.k_mant);
            lc.k_exp.push(e);
        }
        lc.v.extend_from_slice(&v);
        let o = self.attend(&q, lc, start, t_len);
        residual_add(h, &project(&o, &block.o));
        let x = norm_rows(h, &block.mlp_norm, eps, center, d);
        let up = project(&x, &block.up);
        let act: Vec<i32> = match &block.gate {
            Some(gate) => project(&x, gate)
                .iter()
                .zip(&up)
                .map(|(&g, &u)| swiglu(g, u))
                .collect(),
            None => up.iter().map(|&u| gelu(u)).collect(),
        };
        residual_add(h, &project(&act, &block.down));
    }

    /// Causal attention of `t_len` query rows at positions `start..` over the cache, one
    /// query row per rayon task.
    fn attend(&self, q: &[i32], lc: &LayerCache, start: usize, t_len: usize) -> Vec<i32> {
        let c = &self.config;
        let (hd, group, width) = (c.head_dim, c.heads / c.kv_heads, c.q_width());
        let scale = score_scale(hd);
        let mut out = vec![0i32; t_len * width];
        out.par_chunks_mut(width).enumerate().for_each(|(t, row)| {
            let visible = start + t + 1;
            let (mut scores, mut probs) =
                (Vec::with_capacity(visible), Vec::with_capacity(visible));
            for (head, o) in row.chunks_mut(hd).enumerate() {
                let g = head / group;
                let off = t * width + head * hd;
                let (mq, eq) = rowquant(&q[off..off + hd]);
                scores.clear();
                scores.extend((0..visible).map(|j| {
                    let kh = j * c.kv_heads + g;
                    score(
                        &mq,
                        eq,
                        &lc.k_mant[kh * hd..(kh + 1) * hd],
                        lc.k_exp[kh],
                        scale,
                    )
                }));
                softmax_q16(&scores, &mut probs);
                let values = (0..visible).map(|j| {
                    let vh = (j * c.kv_heads + g) * hd;
                    &lc.v[vh..vh + hd]
                });
                weighted_sum(&probs, values, o);
            }
        });
        out
    }
}
