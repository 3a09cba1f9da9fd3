//! The referee's formulas: which input rows an element reads, and the element from them.
//! Ops whose output row is a function of one row of each input (norms, softmax, the loss
//! signal, Adam, …) are computed a row at a time ([`super::rows`]); the rest (dot products
//! and transposes) one element at a time here.

use super::rows::{join, pair_half, row};
use super::{OpKind, ProgramOp, StepParams};
use crate::exact::arith::{MANT_MAX, clamp, rowquant, rs, sh};
use crate::exact::ops::{ACT_MAX, score};
use crate::train::grad::{GRAD_MAX, GSUM_MAX, sh_clamp128};

/// Which row of each input the referee opens for element `(r, c)` of `op`, in input order.
/// `sample` is the dataset row of the op's example slot and `data` that row (an embedding's
/// table row is the token at position `r`). Empty for the state hash.
pub fn input_rows(
    op: &ProgramOp,
    p: &StepParams,
    r: usize,
    c: usize,
    sample: usize,
    data: &[i32],
) -> Vec<usize> {
    use OpKind::*;
    let (hd, heads) = (p.head_dim, p.heads);
    let group = heads / p.kv_heads;
    let last = |i: usize| op.inputs[i].rows - 1;
    match op.kind {
        Embed => {
            let tok = data.get(1 + r).map_or(usize::MAX, |&t| t as usize);
            let mut v = vec![sample, tok];
            if op.inputs.len() == 3 {
                v.push(r);
            }
            v
        }
        Norm | NormBack => {
            let mut v = vec![r, if op.kind == Norm { 0 } else { r }];
            v.extend(std::iter::repeat_n(0, op.inputs.len() - 2));
            v
        }
        Linear => {
            let mut v = vec![r, c];
            if op.inputs.len() == 3 {
                v.push(0);
            }
            v
        }
        Quant | Softmax | RoundAttn | Gelu | Step | Requant | NormN => vec![r],
        PosGrad => vec![r.min(last(0))],
        GammaGrad => vec![c / 2, c / 2],
        BiasGrad => vec![c / 2],
        EmbedGrad => vec![sample, c / 2],
        Add | AddGrad | GradSum | GeluBack => vec![r, r],
        Rope | RopeBack | Swiglu | SwigluBackGate | SwigluBackUp => vec![r; op.inputs.len()],
        Xent => vec![r, sample],
        Tokens => {
            if op.inputs.len() == 2 {
                vec![0, sample]
            } else {
                vec![sample]
            }
        }
        AdamM | AdamV => vec![r, r, 0],
        AdamW => vec![r, r, r],
        Transpose | TransposeExp => vec![c],
        GroupT => vec![c % op.inputs[0].rows],
        Score => vec![r / heads, c],
        AttendRaw => {
            let (t, h, d) = (r, c / 2 / hd, c / 2 % hd);
            vec![t * heads + h, h / group * hd + d]
        }
        InputGrad => vec![r, c, last(1)],
        WeightGrad => vec![r, last(0), c / 2, last(2)],
        ScoreGrad => vec![r, r / heads, c, r / heads],
        Dq => {
            let (h, d) = (c / hd, c % hd);
            vec![r * heads + h, h / group * hd + d]
        }
        Dk | Dv => vec![r, c],
        StateHash => Vec::new(),
        TransposeChunk | LinearChunk | XentMax | XentSum | XentChunk | AbsMax | ShiftMin
        | InputGradPart | InputGradSum => super::vocab::input_rows(op, r, c, sample),
    }
}

/// Element `(r, c)` of `op` from the input rows [`input_rows`] names, each exactly as wide as
/// its operand (a data row: as long as it is). `None` when a row has the wrong width, an index
/// is out of range, or for the state hash (decided from its inputs' roots, not an element).
pub fn element(op: &ProgramOp, p: &StepParams, r: usize, c: usize, rows: &[&[i32]]) -> Option<i32> {
    use OpKind::*;
    if r >= op.rows || c >= op.cols || rows.len() != op.inputs.len() {
        return None;
    }
    for (o, x) in op.inputs.iter().zip(rows) {
        if !matches!(o.source, super::Source::Data(_)) && x.len() != o.cols {
            return None;
        }
    }
    let (hd, heads) = (p.head_dim, p.heads);
    let group = heads / p.kv_heads;
    match op.kind {
        StateHash => None,
        TransposeChunk | LinearChunk | XentMax | XentSum | XentChunk | AbsMax | ShiftMin
        | InputGradPart | InputGradSum => super::vocab::element(op, r, c, rows),
        Linear => linear(rows[0], rows[1], rows.get(2).copied(), c),
        Transpose => rows[0].get(r).copied(),
        TransposeExp => {
            let x = rows[0];
            if r < x.len() {
                Some(x[r])
            } else {
                Some(rowquant(x).1)
            }
        }
        GroupT => {
            let t_len = op.inputs[0].rows;
            let (i, g, d) = (c / t_len, r / hd, r % hd);
            rows[0].get((g * group + i) * hd + d).copied()
        }
        Score => {
            let (t, h) = (r / heads, r % heads);
            if c > t {
                return Some(0);
            }
            let g = h / group;
            let (mq, eq) = rowquant(rows[0].get(h * hd..(h + 1) * hd)?);
            let (mk, ek) = rowquant(rows[1].get(g * hd..(g + 1) * hd)?);
            Some(score(&mq, eq, &mk, ek, p.scale) as i32)
        }
        AttendRaw => {
            let t = r;
            let acc: i64 = rows[0][..=t]
                .iter()
                .zip(rows[1])
                .map(|(&pj, &v)| i64::from(pj) * i64::from(v))
                .sum();
            Some(pair_half(acc, c))
        }
        InputGrad => Some(input_grad(rows[0], rows[1], rows[2])),
        WeightGrad => {
            let (dy, f, x, e) = (rows[0], rows[1], rows[2], rows[3]);
            let f_max = f.iter().zip(e).map(|(a, b)| a + b).max()?;
            let mut acc = 0i64;
            for t in 0..dy.len() {
                let g = mant(dy[t], f[t]);
                let m = mant(x[t], e[t]);
                let s = (f_max - f[t] - e[t]).min(62) as u32;
                acc += rs(g * m, s);
            }
            let v = clamp(sh(acc, 4 - f_max - op.arg), GSUM_MAX);
            Some(pair_half(v, c))
        }
        GammaGrad => {
            let acc: i64 = rows[0]
                .iter()
                .zip(rows[1])
                .map(|(&dy, &n)| rs(i64::from(dy) * i64::from(n), 8))
                .sum();
            Some(pair_half(clamp(acc, GSUM_MAX), c))
        }
        BiasGrad => Some(pair_half(
            rows[0].iter().map(|&v| i64::from(v) << 8).sum(),
            c,
        )),
        EmbedGrad => {
            let tokens = rows[0].get(1..)?;
            let acc: i64 = rows[1]
                .iter()
                .zip(tokens)
                .filter(|&(_, &tok)| usize::try_from(tok).ok() == Some(r))
                .map(|(&v, _)| i64::from(v) << 8)
                .sum();
            Some(pair_half(acc, c))
        }
        ScoreGrad => {
            let (t, h) = (r / heads, r % heads);
            let pj = i128::from(rows[0][c]);
            if c > t || pj == 0 {
                return Some(0);
            }
            let g = h / group;
            let d_o = rows[1].get(h * hd..(h + 1) * hd)?;
            let v = rows[2].get(g * hd..(g + 1) * hd)?;
            let raw = join(rows[3].get(2 * h * hd..2 * (h + 1) * hd)?);
            let dot = |a: &[i32], b: &mut dyn Iterator<Item = i128>| -> i128 {
                a.iter()
                    .map(|&x| i128::from(x) * b.next().unwrap_or(0))
                    .sum()
            };
            let dp = dot(d_o, &mut v.iter().map(|&x| i128::from(x)));
            let total = dot(d_o, &mut raw.iter().map(|&x| i128::from(x)));
            Some(sh_clamp128(pj * ((dp << 16) - total), 44, GRAD_MAX) as i32)
        }
        Dq => {
            let acc: i128 = rows[0]
                .iter()
                .zip(rows[1])
                .map(|(&ds, &k)| i128::from(ds) * i128::from(k))
                .sum();
            Some(sh_clamp128(acc * i128::from(p.scale), 28, GRAD_MAX) as i32)
        }
        Dk | Dv => {
            let t_len = op.rows;
            let g = c / hd;
            let mut acc = 0i128;
            for t in 0..t_len {
                for i in 0..group {
                    let a = i64::from(rows[0][t * heads + g * group + i]);
                    let a = if op.kind == Dk { p.scale * a } else { a };
                    acc += i128::from(a) * i128::from(rows[1][i * t_len + t]);
                }
            }
            let s = if op.kind == Dk { 28 } else { 16 };
            Some(sh_clamp128(acc, s, GRAD_MAX) as i32)
        }
        _ => row(op, p, r, rows)?.get(c).copied(),
    }
}

/// `linear`'s output `c` from input row `x` and the matrix's row `w` (its shift last), with
/// the bias row if any.
pub(super) fn linear(x: &[i32], w: &[i32], bias: Option<&[i32]>, c: usize) -> Option<i32> {
    let (m, e) = rowquant(x);
    let acc: i64 = m
        .iter()
        .zip(w)
        .map(|(&a, &b)| i64::from(a) * i64::from(b))
        .sum();
    let bias = bias.map_or(0, |b| i64::from(b[c]));
    let shift = *w.last()?;
    Some(clamp(sh(acc, shift - e) + bias, ACT_MAX) as i32)
}

/// The mantissa of `v` in a row quantized at exponent `e` (docs/exact-ops.md, the row
/// quantizer).
pub(super) fn mant(v: i32, e: i32) -> i64 {
    if e <= 0 {
        i64::from(v) << (-e).min(32)
    } else {
        clamp(rs(i64::from(v), e as u32), MANT_MAX)
    }
}

/// `linear`'s signal to input `k`: `dy` row, column `k` of the matrix and its row shifts.
fn input_grad(dy: &[i32], col: &[i32], shifts: &[i32]) -> i32 {
    let smin = shifts.iter().copied().min().unwrap_or(0);
    let (m, e) = rowquant(dy);
    let acc: i64 = m
        .iter()
        .zip(col)
        .zip(shifts)
        .map(|((&mj, &q), &s)| {
            let t = (s - smin) as u32;
            if t > 62 {
                0
            } else {
                rs(i64::from(mj), t) * i64::from(q)
            }
        })
        .sum();
    clamp(sh(acc, smin - e), GRAD_MAX) as i32
}
