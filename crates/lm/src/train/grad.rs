//! The backward ops of exact-mode fine-tuning (docs/exact-ops.md, "Fine-tuning"): each output
//! element is one formula over integers, as in the forward ops. Signals (gradients of the loss
//! with respect to activations) are Q24 in `i32`, clamped to `±GRAD_MAX`; weight gradients are
//! Q32 in `i64`. Where a product can pass 2^63 the formula is evaluated in `i128`: the result
//! is the same integer either way, the width is only the container.

use crate::exact::arith::{clamp, rdiv, rdiv_signed, rowquant, rs, sh};
use crate::exact::kernel::{dot_w8, dot_w16};
use crate::exact::ops::{SCORE_MAX, exp_weight, sigmoid};
use crate::exact::tables::{GELU_K1, GELU_K2};
use crate::weights::{QData, QMat};

/// Fractional bits of a signal.
pub const GRAD_BITS: u32 = 24;
/// Signals are clamped to `±2^30` (±64.0).
pub const GRAD_MAX: i64 = 1 << 30;
/// A sequence's weight-gradient sum is clamped to `±2^50` (Q32, ±2^18).
pub const GSUM_MAX: i64 = 1 << 50;

/// `clamp(v, ±GRAD_MAX)` as an `i32`.
#[inline]
fn g32(v: i64) -> i32 {
    clamp(v, GRAD_MAX) as i32
}

/// `v · 2^(−t)` rounded as [`rs`] (right) or exact (left), in 128 bits, then clamped to `±m`.
pub(crate) fn sh_clamp128(v: i128, t: i32, m: i64) -> i64 {
    let r = if t > 0 {
        let t = t.min(127) as u32;
        (v + (1i128 << (t - 1))) >> t
    } else {
        let u = (-t) as u32;
        if u >= 64 || v.unsigned_abs() >= (1u128 << (126 - u)) {
            v.signum() << 100
        } else {
            v << u
        }
    };
    r.clamp(-i128::from(m), i128::from(m)) as i64
}

/// The loss signal of one position: with `s_j = clamp(rs(z_j, 2), ±SCORE_MAX)` (Q10),
/// `w_j = exp_weight(max s − s_j)`, `p_j = rdiv(w_j · 2^24, Σw)` (Q24), the signal is
/// `p_j − 2^24·[j = target]`. Returns `−ln p_target` (for reports only: not committed).
pub fn xent_grad(z: &[i32], target: usize, out: &mut [i32]) -> f64 {
    let s: Vec<i64> = z
        .iter()
        .map(|&v| clamp(rs(i64::from(v), 2), SCORE_MAX))
        .collect();
    let max = s.iter().copied().max().unwrap_or(0);
    let w: Vec<i64> = s.iter().map(|&v| exp_weight(max - v)).collect();
    let total: i64 = w.iter().sum();
    for (j, (o, &wj)) in out.iter_mut().zip(&w).enumerate() {
        let p = rdiv(wj << GRAD_BITS, total);
        *o = (p - if j == target { 1 << GRAD_BITS } else { 0 }) as i32;
    }
    // ln(Σw / w_t) with w in Q30 of e^(−δ/1024); a weight that underflowed to 0 is 16.0 away.
    let wt = w[target].max(1) as f64;
    (total as f64 / wt).ln()
}

/// A weight matrix transposed (`cols × rows`, row `k` holds column `k`), for [`input_grad`]'s
/// dot products along the rows of `dy`.
#[derive(Debug, Clone)]
pub struct Transposed {
    rows: usize,
    cols: usize,
    shift: Vec<i8>,
    smin: i8,
    data: QData,
}

impl Transposed {
    /// The transpose of `w`.
    pub fn of(w: &QMat) -> Self {
        fn t<T: Copy + Default>(q: &[T], rows: usize, cols: usize) -> Vec<T> {
            let mut out = vec![T::default(); q.len()];
            for (j, row) in q.chunks(cols).enumerate() {
                for (k, &v) in row.iter().enumerate() {
                    out[k * rows + j] = v;
                }
            }
            out
        }
        Self {
            rows: w.rows,
            cols: w.cols,
            shift: w.shift.clone(),
            smin: w.shift.iter().copied().min().unwrap_or(0),
            data: match &w.data {
                QData::I8(q) => QData::I8(t(q, w.rows, w.cols)),
                QData::I16(q) => QData::I16(t(q, w.rows, w.cols)),
            },
        }
    }
}

/// `linear`'s signal to its input: `(m, e) = rowquant(dy)`, `a_j = rs(m_j, s_j − s_min)` (0 when
/// the shift passes 62), `dx_k = clamp(sh(Σ_j a_j · q[j][k], s_min − e), ±GRAD_MAX)`, where
/// `s_min` is the smallest shift of the matrix. Rows of `dy` are `w.rows` wide.
pub fn input_grad(dy: &[i32], w: &Transposed) -> Vec<i32> {
    let mut out = vec![0i32; dy.len() / w.rows * w.cols];
    let mut a = vec![0i16; w.rows];
    for (row, dx) in dy.chunks(w.rows).zip(out.chunks_mut(w.cols)) {
        let (m, e) = rowquant(row);
        for ((a, &mj), &s) in a.iter_mut().zip(&m).zip(&w.shift) {
            let t = u32::from((s - w.smin) as u8);
            *a = if t > 62 {
                0
            } else {
                rs(i64::from(mj), t) as i16
            };
        }
        for (k, d) in dx.iter_mut().enumerate() {
            let range = k * w.rows..(k + 1) * w.rows;
            let acc = match &w.data {
                QData::I8(q) => dot_w8(&a, &q[range]),
                QData::I16(q) => dot_w16(&a, &q[range]),
            };
            *d = g32(sh(acc, i32::from(w.smin) - e));
        }
    }
    out
}

/// [`input_grad`] straight from its definition, over the untransposed matrix: the reference the
/// tests hold the fast form to.
pub fn input_grad_reference(dy: &[i32], w: &QMat) -> Vec<i32> {
    let smin = w.shift.iter().copied().min().unwrap_or(0);
    let mut out = vec![0i32; dy.len() / w.rows * w.cols];
    for (row, dx) in dy.chunks(w.rows).zip(out.chunks_mut(w.cols)) {
        let (m, e) = rowquant(row);
        for (k, d) in dx.iter_mut().enumerate() {
            let acc: i64 = (0..w.rows)
                .map(|j| {
                    let t = u32::from((w.shift[j] - smin) as u8);
                    if t > 62 {
                        0
                    } else {
                        rs(i64::from(m[j]), t) * w.value(j, k)
                    }
                })
                .sum();
            *d = g32(sh(acc, i32::from(smin) - e));
        }
    }
    out
}

/// The weight gradient of one sequence, `Σ_t dy_t ⊗ x_t` in Q32 (`rows × cols`, row `j` output
/// `j`): with `(g_t, f_t) = rowquant(dy_t)`, `(m_t, e_t) = rowquant(x_t)`, `F = max_t (f_t + e_t)`,
/// `acc_jk = Σ_t rs(g_tj · m_tk, F − f_t − e_t)` and the result `clamp(sh(acc_jk, 4 − F − σ),
/// ±GSUM_MAX)`. `dy` is Q24, `x` Q12; `σ` scales the product by `2^σ` (a LoRA `B`'s scale).
pub fn weight_grad(dy: &[i32], x: &[i32], rows: usize, cols: usize, sigma: i32) -> Vec<i64> {
    let qd: Vec<(Vec<i16>, i32)> = dy.chunks(rows).map(rowquant).collect();
    let qx: Vec<(Vec<i16>, i32)> = x.chunks(cols).map(rowquant).collect();
    let f_max = qd
        .iter()
        .zip(&qx)
        .map(|((_, f), (_, e))| f + e)
        .max()
        .unwrap_or(0);
    let mut acc = vec![0i64; rows * cols];
    for ((g, f), (m, e)) in qd.iter().zip(&qx) {
        let t = (f_max - f - e).min(62) as u32;
        // `rs(g·m, t)` without a branch in the loop (`half` is 0 when `t` is), so that it
        // runs on vector lanes: a product of two mantissas fits an `i32`.
        let half = (1i64 << t) >> 1;
        for (j, &gj) in g.iter().enumerate() {
            if gj == 0 {
                continue;
            }
            let row = &mut acc[j * cols..(j + 1) * cols];
            for (a, &mk) in row.iter_mut().zip(m) {
                *a += (i64::from(i32::from(gj) * i32::from(mk)) + half) >> t;
            }
        }
    }
    acc.into_iter()
        .map(|a| clamp(sh(a, 4 - f_max - sigma), GSUM_MAX))
        .collect()
}

/// RMSNorm's or LayerNorm's signal to its input, for one row `x` and its output's signal `dy`.
/// With the forward's `(m, e)`, `inv` and `n_k = rs(m_k · inv, 16)` recomputed:
/// ```text
/// dn_k = clamp(rs(dy_k · γ_k, 16), ±GRAD_MAX);  (g, f) = rowquant(dn)
/// μ2 = clamp(rdiv_signed(Σ g_k · n_k, d), ±2^32);  μ1 = rdiv_signed(Σ g_k, d) (LayerNorm, else 0)
/// t_k = g_k − μ1 − rs(n_k · μ2, 32);  dx_k = clamp(sh(t_k · inv, 20 + e − f), ±GRAD_MAX)
/// ```
pub fn norm_backward(x: &[i32], dy: &[i32], gamma: &[i32], eps: i64, center: bool, dx: &mut [i32]) {
    let d = x.len() as i64;
    let (n, inv, e) = normalized(x, eps, center);
    let dn: Vec<i32> = dy
        .iter()
        .zip(gamma)
        .map(|(&a, &b)| g32(rs(i64::from(a) * i64::from(b), 16)))
        .collect();
    let (g, f) = rowquant(&dn);
    let dot: i128 = g
        .iter()
        .zip(&n)
        .map(|(&a, &b)| i128::from(a) * i128::from(b))
        .sum();
    let mu2 = clamp(
        (2 * dot + i128::from(d)).div_euclid(2 * i128::from(d)) as i64,
        1 << 32,
    );
    let mu1 = if center {
        rdiv_signed(g.iter().map(|&v| i64::from(v)).sum(), d)
    } else {
        0
    };
    for ((o, &gk), &nk) in dx.iter_mut().zip(&g).zip(&n) {
        let t = i64::from(gk) - mu1 - rs(nk * mu2, 32);
        *o = sh_clamp128(i128::from(t) * i128::from(inv), 20 + e - f, GRAD_MAX) as i32;
    }
}

/// The forward's normalized row `n_k = rs(m_k · inv, 16)` (Q16) of one norm input `x`, with
/// `inv` and the row exponent `e`, recomputed as [`crate::exact::ops::norm_row`] computes them.
pub(crate) fn normalized(x: &[i32], eps: i64, center: bool) -> (Vec<i64>, i64, i32) {
    let d = x.len() as i64;
    let c: Vec<i32> = if center {
        let mean = rdiv_signed(x.iter().map(|&v| i64::from(v)).sum(), d);
        x.iter()
            .map(|&v| clamp(i64::from(v) - mean, crate::exact::ops::ACT_MAX) as i32)
            .collect()
    } else {
        x.to_vec()
    };
    let (m, e) = rowquant(&c);
    let s: i64 = m.iter().map(|&v| i64::from(v) * i64::from(v)).sum();
    let eps_term = if e <= 0 {
        eps << (-2 * e)
    } else {
        eps >> (2 * e)
    };
    let r = crate::exact::arith::isqrt((((s << 16) / d) + eps_term) as u64).max(1) as i64;
    let inv = (1i64 << 40) / r;
    (
        m.iter().map(|&v| rs(i64::from(v) * inv, 16)).collect(),
        inv,
        e,
    )
}

/// A norm's parameter gradients from one row (full fine-tuning), added into the sums: with the
/// forward's `n_k` (Q16, [`normalized`]) and the output's signal `dy_k` (Q24),
/// `dγ_k += rs(dy_k · n_k, 8)` and `dβ_k += dy_k · 2^8` (both Q32).
pub fn norm_param_grads(
    x: &[i32],
    dy: &[i32],
    eps: i64,
    center: bool,
    dgamma: &mut [i64],
    dbeta: Option<&mut [i64]>,
) {
    let (n, _, _) = normalized(x, eps, center);
    for ((g, &dyk), &nk) in dgamma.iter_mut().zip(dy).zip(&n) {
        *g += rs(i64::from(dyk) * nk, 8);
    }
    if let Some(b) = dbeta {
        bias_grads(dy, b);
    }
}

/// A bias's (or β's) gradient from rows of its output's signal, added into `sums` (Q32):
/// `db_k += Σ_t dy_tk · 2^8`. `dy`'s rows are `sums.len()` wide.
pub fn bias_grads(dy: &[i32], sums: &mut [i64]) {
    for row in dy.chunks(sums.len()) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s += i64::from(v) << 8;
        }
    }
}

/// Rotary embedding's signal, in place: the rotation by `−θ`,
/// `dx_i = clamp(rs(dy_i·c + dy_(i+h)·s, 16))`, `dx_(i+h) = clamp(rs(dy_(i+h)·c − dy_i·s, 16))`.
pub fn rope_backward(dy: &mut [i32], cos: &[i32], sin: &[i32]) {
    let h = dy.len() / 2;
    for i in 0..h {
        let (a, b) = (i64::from(dy[i]), i64::from(dy[i + h]));
        let (c, s) = (i64::from(cos[i]), i64::from(sin[i]));
        dy[i] = g32(rs(a * c + b * s, 16));
        dy[i + h] = g32(rs(b * c - a * s, 16));
    }
}

/// SwiGLU's signals to the gate `g` and the up projection `u` from the output's `da`:
/// `σ = sigmoid(rs(g, 2))`, `silu = rs(g·σ, 16)`, `du = clamp(rs(da·silu, 12))`,
/// `silu' = σ + rs(g·σ·(2^16 − σ), 28)` (Q16), `dg = clamp(rs(clamp(rs(da·u, 12))·silu', 16))`.
pub fn swiglu_backward(g: i32, u: i32, da: i32) -> (i32, i32) {
    let (g, u, da) = (i64::from(g), i64::from(u), i64::from(da));
    let sig = sigmoid(rs(g, 2));
    let silu = rs(g * sig, 16);
    let du = g32(rs(da * silu, 12));
    let dsilu = sig + rs(g * (sig * ((1 << 16) - sig)), 28);
    let t = clamp(rs(da * u, 12), GRAD_MAX);
    (g32(rs(t * dsilu, 16)), du)
}

/// GELU's signal: with the forward's `xc`, `v` and `σ = sigmoid(rs(K1·v, 16))`,
/// `D = rs(K1 · (2^16 + 3·rs(K2·xc², 24)), 16)` (`dz/dx`, Q16),
/// `gelu' = σ + rs(rs(xc · rs(σ·(2^16 − σ), 16), 12) · D, 16)` (Q16),
/// `dx = clamp(rs(da · gelu', 16))`.
pub fn gelu_backward(x: i32, da: i32) -> i32 {
    let x = i64::from(x);
    let xc = clamp(x, 1 << 16);
    let v = rs((xc << 24) + rs(GELU_K2 * xc * xc * xc, 16), 26);
    let sig = sigmoid(rs(GELU_K1 * v, 16));
    let dz = rs(GELU_K1 * ((1 << 16) + 3 * rs(GELU_K2 * xc * xc, 24)), 16);
    let s1 = rs(sig * ((1 << 16) - sig), 16);
    let dgelu = sig + rs(rs(xc * s1, 12) * dz, 16);
    g32(rs(i64::from(da) * dgelu, 16))
}

/// `clamp(a + b, ±GRAD_MAX)`, element by element, into `a`.
pub fn add_grad(a: &mut [i32], b: &[i32]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x = g32(i64::from(*x) + i64::from(y));
    }
}

/// One attention head's signals for one query row. `p` are the query's softmax weights (Q16)
/// over visible positions `0..p.len()`, `do_` the signal of its output, `q` its (rotated) query
/// row and `keys(j)`, `values(j)` the rotated key and value rows of position `j`, all Q12.
/// `scale` is [`crate::exact::ops::score_scale`]. With `dp_j = Σ_d do_d · v_j[d]` (Q36) and
/// `P = Σ_j p_j · dp_j`:
/// ```text
/// ds_j = clamp(rs(p_j · (dp_j · 2^16 − P), 44))             Q24, the signal of score j
/// dq_d = clamp(rs(C · Σ_j ds_j · k_j[d], 28))
/// dk_j[d] += C · ds_j · q_d  and  dv_j[d] += p_j · do_d     (summed raw into `dk`, `dv`)
/// ```
/// The raw sums are finished by [`finish_kv`] once every query has added to them.
pub struct HeadGrad<'a> {
    /// Softmax weights, Q16.
    pub p: &'a [i64],
    /// The output's signal, Q24.
    pub do_: &'a [i32],
    /// The query row, Q12.
    pub q: &'a [i32],
}

/// See [`HeadGrad`]: returns `dq` and adds into the raw key and value sums of positions
/// `0..p.len()` (`dk_raw`, `dv_raw`: one `head_dim` row per position).
pub fn head_backward<'a>(
    h: &HeadGrad<'_>,
    keys: impl Fn(usize) -> &'a [i32],
    values: impl Fn(usize) -> &'a [i32],
    scale: i64,
    dk_raw: &mut [i128],
    dv_raw: &mut [i128],
) -> Vec<i32> {
    let hd = h.q.len();
    let ds = score_grads(h.p, h.do_, &values);
    let mut dq = vec![0i128; hd];
    for (j, (&pj, &ds)) in h.p.iter().zip(&ds).enumerate() {
        if pj == 0 {
            continue;
        }
        for (d, &k) in keys(j).iter().enumerate() {
            dq[d] += i128::from(ds) * i128::from(k);
            dk_raw[j * hd + d] += i128::from(scale * ds) * i128::from(h.q[d]);
            dv_raw[j * hd + d] += i128::from(pj) * i128::from(h.do_[d]);
        }
    }
    dq.into_iter()
        .map(|a| sh_clamp128(a * i128::from(scale), 28, GRAD_MAX) as i32)
        .collect()
}

/// The signals of one query row's scores (Q24): with `dp_j = Σ_d do_d · v_j[d]` and
/// `P = Σ_j p_j · dp_j`, `ds_j = clamp(rs(p_j · (dp_j · 2^16 − P), 44))` (0 where `p_j = 0`).
pub fn score_grads<'a>(p: &[i64], do_: &[i32], values: impl Fn(usize) -> &'a [i32]) -> Vec<i64> {
    let dp: Vec<i128> = (0..p.len())
        .map(|j| {
            values(j)
                .iter()
                .zip(do_)
                .map(|(&v, &g)| i128::from(v) * i128::from(g))
                .sum()
        })
        .collect();
    let total: i128 = p.iter().zip(&dp).map(|(&pj, &d)| i128::from(pj) * d).sum();
    p.iter()
        .zip(&dp)
        .map(|(&pj, &dpj)| {
            if pj == 0 {
                0
            } else {
                sh_clamp128(i128::from(pj) * ((dpj << 16) - total), 44, GRAD_MAX)
            }
        })
        .collect()
}

/// Finishes [`head_backward`]'s raw sums: `dk = clamp(rs(Σ, 28))`, `dv = clamp(rs(Σ, 16))`.
pub fn finish_kv(dk_raw: &[i128], dv_raw: &[i128]) -> (Vec<i32>, Vec<i32>) {
    (
        dk_raw
            .iter()
            .map(|&a| sh_clamp128(a, 28, GRAD_MAX) as i32)
            .collect(),
        dv_raw
            .iter()
            .map(|&a| sh_clamp128(a, 16, GRAD_MAX) as i32)
            .collect(),
    )
}
