//! The transformer ops of exact mode, each defined element by element in docs/exact-ops.md
//! ("Transformers"). Plain Rust over `i64`: this is the executable form of that page, and
//! every bound it states is the reason an intermediate here fits 64 bits.

use super::arith::{clamp, isqrt, rdiv, rdiv_signed, rowquant, rs, sh};
use super::kernel::{dot_w8, dot_w16};
use super::tables::{EXP_HI, EXP_LO, GELU_K1, GELU_K2};
use rayon::prelude::*;

use crate::weights::{QData, QMat};

/// Activations (the residual stream, every op's output): Q12 in `i32`, clamped to `±2^29`.
pub const ACT_MAX: i64 = 1 << 29;
/// Attention scores and sampling logits: Q10, clamped to `±2^24`.
pub const SCORE_MAX: i64 = 1 << 24;
/// Norm weights γ: Q16, `|γ| ≤ 2^30`.
pub const GAMMA_MAX: i64 = 1 << 30;
/// Norm epsilon: Q40, `0 ≤ ε < 2^31`.
pub const EPS_MAX: i64 = (1 << 31) - 1;
/// Rotary cosines and sines: Q16.
pub const ROPE_BITS: u32 = 16;
/// Largest input width of a matrix product, norm width and context length: `2^16`.
pub const MAX_WIDTH: usize = 1 << 16;
/// Largest head dimension.
pub const MAX_HEAD_DIM: usize = 512;
/// Score differences at or beyond this (16.0 in Q10) weigh nothing in a softmax.
pub const EXP_CUTOFF: i64 = 1 << 14;

/// `e^(−δ/1024)` in Q30 for a score difference `δ ≥ 0` in Q10:
/// `rs(EXP_HI[δ >> 6] · EXP_LO[δ & 63], 30)`, and 0 from `δ ≥ 2^14`.
#[inline]
pub fn exp_weight(delta: i64) -> i64 {
    debug_assert!(delta >= 0);
    if delta >= EXP_CUTOFF {
        0
    } else {
        rs(
            EXP_HI[(delta >> 6) as usize] * EXP_LO[(delta & 63) as usize],
            30,
        )
    }
}

/// `σ(t/1024)` in Q16 for `t` in Q10: with `w = exp_weight(|t|)`,
/// `rdiv(2^46, 2^30 + w)` for `t ≥ 0` and `rdiv(w · 2^16, 2^30 + w)` for `t < 0`.
#[inline]
pub fn sigmoid(t: i64) -> i64 {
    let w = exp_weight(t.abs());
    if t >= 0 {
        rdiv(1 << 46, (1 << 30) + w)
    } else {
        rdiv(w << 16, (1 << 30) + w)
    }
}

/// `h = clamp(rs(silu(g) · u, 12), ±ACT_MAX)` with `silu(g) = rs(g · sigmoid(rs(g, 2)), 16)`.
#[inline]
pub fn swiglu(g: i32, u: i32) -> i32 {
    let g = i64::from(g);
    let silu = rs(g * sigmoid(rs(g, 2)), 16);
    clamp(rs(silu * i64::from(u), 12), ACT_MAX) as i32
}

/// GELU, tanh form, as `x · σ(2u)`: `xc = clamp(x, ±2^16)`,
/// `v = rs(xc · 2^24 + rs(K2 · xc³, 16), 26)`, `gelu = clamp(rs(x · sigmoid(rs(K1 · v, 16)), 16), ±ACT_MAX)`.
#[inline]
pub fn gelu(x: i32) -> i32 {
    let x = i64::from(x);
    let xc = clamp(x, 1 << 16);
    let v = rs((xc << 24) + rs(GELU_K2 * xc * xc * xc, 16), 26);
    clamp(rs(x * sigmoid(rs(GELU_K1 * v, 16)), 16), ACT_MAX) as i32
}

/// `clamp(a + b, ±ACT_MAX)`, element by element, into `a`.
pub fn residual_add(a: &mut [i32], b: &[i32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = clamp(i64::from(*x) + i64::from(*y), ACT_MAX) as i32;
    }
}

/// `y = clamp(sh(acc, s_j − e) + b_j, ±ACT_MAX)` for one output from its dot product.
#[inline]
fn finish(acc: i64, e: i32, shift: i8, bias: i64) -> i32 {
    clamp(sh(acc, i32::from(shift) - e) + bias, ACT_MAX) as i32
}

/// `linear(x, W, b)` over every row of a `rows × w.cols` matrix:
/// `(m, e) = rowquant(x_r)`, `y_rj = clamp(sh(Σ_k m_k · q[j][k], s_j − e) + b_j, ±ACT_MAX)`.
/// Outputs are spread over the rayon pool by weight row (each weight row is read for every
/// input row while it is in cache); each output is computed whole by one thread, so the pool's size cannot
/// change a bit.
pub fn linear(x: &[i32], w: &QMat, bias: Option<&[i32]>) -> Vec<i32> {
    let quant: Vec<(Vec<i16>, i32)> = x.chunks(w.cols).map(rowquant).collect();
    let rows = quant.len();
    if let Some(dw) = &w.device.0 {
        let m: Vec<&[i16]> = quant.iter().map(|(m, _)| m.as_slice()).collect();
        let sums = super::device::dots(w, dw, &m);
        return sums
            .chunks(w.rows)
            .zip(&quant)
            .flat_map(|(row, (_, e))| {
                row.iter().enumerate().map(move |(j, &acc)| {
                    finish(acc, *e, w.shift[j], bias.map_or(0, |b| i64::from(b[j])))
                })
            })
            .collect();
    }
    let mut by_col = vec![0i32; w.rows * rows];
    by_col
        .par_chunks_mut(rows)
        .enumerate()
        .with_min_len(8)
        .for_each(|(j, col)| {
            let b = bias.map_or(0, |b| i64::from(b[j]));
            let range = j * w.cols..(j + 1) * w.cols;
            for ((m, e), y) in quant.iter().zip(col.iter_mut()) {
                let acc = match &w.data {
                    QData::I8(q) => dot_w8(m, &q[range.clone()]),
                    QData::I16(q) => dot_w16(m, &q[range.clone()]),
                };
                *y = finish(acc, *e, w.shift[j], b);
            }
        });
    if rows == 1 {
        return by_col;
    }
    let mut out = vec![0i32; rows * w.rows];
    for (j, col) in by_col.chunks(rows).enumerate() {
        for (r, &v) in col.iter().enumerate() {
            out[r * w.rows + j] = v;
        }
    }
    out
}

/// Row `v` of an embedding table as activations: `h_k = clamp(sh(q[v][k], s_v − 12), ±ACT_MAX)`.
pub fn gather_row(table: &QMat, v: usize, out: &mut [i32]) {
    let s = i32::from(table.shift[v]) - 12;
    for (k, h) in out.iter_mut().enumerate() {
        *h = clamp(sh(table.value(v, k), s), ACT_MAX) as i32;
    }
}

/// RMSNorm (`beta = None`, `center = false`) or LayerNorm (`center = true`) of one row:
/// ```text
/// c_k = clamp(x_k − rdiv(Σx, d), ±ACT_MAX) if centring, else x_k
/// (m, e) = rowquant(c);  S = Σ m_k²;  V = floor(S · 2^16 / d)
/// E = ε · 2^(−2e) (floor);  R = max(1, isqrt(V + E));  inv = floor(2^40 / R)
/// n_k = rs(m_k · inv, 16);  y_k = clamp(rs(n_k · γ_k, 20) + β_k, ±ACT_MAX)
/// ```
pub fn norm_row(
    x: &[i32],
    gamma: &[i32],
    beta: Option<&[i32]>,
    eps: i64,
    center: bool,
    out: &mut [i32],
) {
    let d = x.len() as i64;
    let centred: Vec<i32>;
    let src = if center {
        let sum: i64 = x.iter().map(|&v| i64::from(v)).sum();
        let mean = rdiv_signed(sum, d);
        centred = x
            .iter()
            .map(|&v| clamp(i64::from(v) - mean, ACT_MAX) as i32)
            .collect();
        &centred[..]
    } else {
        x
    };
    let (m, e) = rowquant(src);
    let s: i64 = m.iter().map(|&v| i64::from(v) * i64::from(v)).sum();
    let v = (s << 16) / d;
    let eps_term = if e <= 0 {
        eps << (-2 * e)
    } else {
        eps >> (2 * e)
    };
    let r = isqrt((v + eps_term) as u64).max(1) as i64;
    let inv = (1i64 << 40) / r;
    for (k, y) in out.iter_mut().enumerate() {
        let n = rs(i64::from(m[k]) * inv, 16);
        let b = beta.map_or(0, |b| i64::from(b[k]));
        *y = clamp(rs(n * i64::from(gamma[k]), 20) + b, ACT_MAX) as i32;
    }
}

/// Rotary embedding of one head vector at one position, pairs `(i, i + h)` with `h = len/2`:
/// `y_i = clamp(rs(x_i·c − x_(i+h)·s, 16))`, `y_(i+h) = clamp(rs(x_(i+h)·c + x_i·s, 16))`.
pub fn rope(x: &mut [i32], cos: &[i32], sin: &[i32]) {
    let h = x.len() / 2;
    for i in 0..h {
        let (a, b) = (i64::from(x[i]), i64::from(x[i + h]));
        let (c, s) = (i64::from(cos[i]), i64::from(sin[i]));
        x[i] = clamp(rs(a * c - b * s, ROPE_BITS), ACT_MAX) as i32;
        x[i + h] = clamp(rs(b * c + a * s, ROPE_BITS), ACT_MAX) as i32;
    }
}

/// The attention scale `C = isqrt(floor(2^32 / head_dim))`: `1/sqrt(head_dim)` in Q16.
pub fn score_scale(head_dim: usize) -> i64 {
    isqrt((1u64 << 32) / head_dim as u64) as i64
}

/// One attention score in Q10: `clamp(sh(Σ mq·mk · C, 30 − eq − ek), ±SCORE_MAX)`.
#[inline]
pub fn score(mq: &[i16], eq: i32, mk: &[i16], ek: i32, scale: i64) -> i64 {
    let dot: i64 = mq
        .iter()
        .zip(mk)
        .map(|(&a, &b)| i64::from(i32::from(a) * i32::from(b)))
        .sum();
    clamp(sh(dot * scale, 30 - eq - ek), SCORE_MAX)
}

/// Softmax weights in Q16 of one row of Q10 scores: `w_j = exp_weight(max − s_j)`,
/// `p_j = rdiv(w_j · 2^16, Σw)`.
pub fn softmax_q16(scores: &[i64], out: &mut Vec<i64>) {
    out.clear();
    let max = scores.iter().copied().max().unwrap_or(0);
    out.extend(scores.iter().map(|&s| exp_weight(max - s)));
    let total: i64 = out.iter().sum();
    for p in out.iter_mut() {
        *p = rdiv(*p << 16, total);
    }
}

/// The weighted sum of value rows: `o_d = clamp(rs(Σ_j p_j · v_j[d], 16), ±ACT_MAX)`.
pub fn weighted_sum<'a>(p: &[i64], values: impl Iterator<Item = &'a [i32]>, out: &mut [i32]) {
    let mut acc = vec![0i64; out.len()];
    for (&pj, v) in p.iter().zip(values) {
        if pj != 0 {
            for (a, &x) in acc.iter_mut().zip(v) {
                *a += pj * i64::from(x);
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = clamp(rs(a, 16), ACT_MAX) as i32;
    }
}
