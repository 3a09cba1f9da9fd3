//! The ops whose output row `r` reads one row of each input: the whole row at once, from the
//! same functions the engine runs.

use super::{OpKind, ProgramOp, StepParams};
use crate::exact::arith::{clamp, rowquant, rs, sh};
use crate::exact::ops::{ACT_MAX, GAMMA_MAX, gelu, norm_row, rope, softmax_q16, swiglu};
use crate::train::adam::{descend, first_moment, second_moment};
use crate::train::grad::{
    GRAD_MAX, gelu_backward, norm_backward, normalized, rope_backward, swiglu_backward, xent_grad,
};
use crate::train::lora::W_BITS;

/// 64-bit values from their halves (low, high) in adjacent columns.
pub(super) fn join(v: &[i32]) -> Vec<i64> {
    v.chunks(2)
        .map(|p| (i64::from(p[1]) << 32) | i64::from(p[0] as u32))
        .collect()
}

/// Column `c` of a 64-bit value laid out as halves: the low half for even `c`.
pub(super) fn pair_half(v: i64, c: usize) -> i32 {
    if c.is_multiple_of(2) {
        v as u32 as i32
    } else {
        (v >> 32) as i32
    }
}

fn halves(v: impl IntoIterator<Item = i64>) -> Vec<i32> {
    v.into_iter()
        .flat_map(|x| [x as u32 as i32, (x >> 32) as i32])
        .collect()
}

/// Scored positions of an example's data row `[prompt, tokens…]`: target `j` is scored when
/// `j ≥ max(prompt, 1)`, for targets `1..n`.
pub fn scored(data: &[i32]) -> Option<i64> {
    let (prompt, n) = (i64::from(*data.first()?).max(1), data.len() as i64 - 1);
    Some((n - prompt).max(0))
}

fn gather(row: &[i32]) -> Vec<i32> {
    let (vals, shift) = row.split_at(row.len() - 1);
    let s = shift[0] - 12;
    vals.iter()
        .map(|&v| clamp(sh(i64::from(v), s), ACT_MAX) as i32)
        .collect()
}

fn zip2(a: &[i32], b: &[i32], f: impl Fn(i32, i32) -> i32) -> Vec<i32> {
    a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
}

fn heads(
    x: &[i32],
    cos: &[i32],
    sin: &[i32],
    hd: usize,
    f: fn(&mut [i32], &[i32], &[i32]),
) -> Vec<i32> {
    let mut out = x.to_vec();
    out.chunks_mut(hd).for_each(|h| f(h, cos, sin));
    out
}

/// Output row `r` of a row-local op from its input rows; `None` for other ops or bad rows.
pub(super) fn row(op: &ProgramOp, p: &StepParams, r: usize, rows: &[&[i32]]) -> Option<Vec<i32>> {
    use OpKind::*;
    let g32 = |v: i64| clamp(v, GRAD_MAX) as i32;
    let out = match op.kind {
        Embed => {
            let h = gather(rows[1]);
            match rows.get(2) {
                Some(pos) => zip2(&h, &gather(pos), |a, b| {
                    clamp(i64::from(a) + i64::from(b), ACT_MAX) as i32
                }),
                None => h,
            }
        }
        Norm => {
            let mut out = vec![0; rows[0].len()];
            norm_row(
                rows[0],
                rows[1],
                rows.get(2).copied(),
                p.eps_q40,
                p.center,
                &mut out,
            );
            out
        }
        NormBack => {
            let mut out = vec![0; rows[0].len()];
            norm_backward(rows[0], rows[1], rows[2], p.eps_q40, p.center, &mut out);
            out
        }
        Quant => {
            let (m, e) = rowquant(rows[0]);
            let mut out: Vec<i32> = m.into_iter().map(i32::from).collect();
            out.push(W_BITS - e - op.arg);
            out
        }
        Add => zip2(rows[0], rows[1], |a, b| {
            clamp(i64::from(a) + i64::from(b), ACT_MAX) as i32
        }),
        AddGrad => zip2(rows[0], rows[1], |a, b| g32(i64::from(a) + i64::from(b))),
        Rope => heads(rows[0], rows[1], rows[2], p.head_dim, rope),
        RopeBack => heads(rows[0], rows[1], rows[2], p.head_dim, rope_backward),
        Softmax => {
            let t = r / p.heads;
            let scores: Vec<i64> = rows[0][..=t].iter().map(|&s| i64::from(s)).collect();
            let mut probs = Vec::new();
            softmax_q16(&scores, &mut probs);
            let mut out: Vec<i32> = probs.into_iter().map(|v| v as i32).collect();
            out.resize(rows[0].len(), 0);
            out
        }
        RoundAttn => join(rows[0])
            .into_iter()
            .map(|a| clamp(rs(a, 16), ACT_MAX) as i32)
            .collect(),
        Swiglu => zip2(rows[0], rows[1], swiglu),
        Gelu => rows[0].iter().map(|&x| gelu(x)).collect(),
        SwigluBackGate | SwigluBackUp => rows[0]
            .iter()
            .zip(rows[1])
            .zip(rows[2])
            .map(|((&g, &u), &da)| {
                let (dg, du) = swiglu_backward(g, u, da);
                if op.kind == SwigluBackGate { dg } else { du }
            })
            .collect(),
        GeluBack => zip2(rows[0], rows[1], gelu_backward),
        Xent => {
            let (z, data) = (rows[0], rows[1]);
            let mut out = vec![0; z.len()];
            let prompt = usize::try_from(*data.first()?).ok()?;
            if r + 1 >= prompt.max(1) {
                let target = usize::try_from(*data.get(r + 2)?).ok()?;
                if target >= z.len() {
                    return None;
                }
                xent_grad(z, target, &mut out);
            }
            out
        }
        GradSum => {
            let (a, b) = (join(rows[0]), join(rows[1]));
            halves(a.iter().zip(&b).map(|(x, y)| x + y))
        }
        Tokens => {
            let prev = if rows.len() == 2 { rows[0][0] } else { 0 };
            vec![prev + scored(rows.last()?)? as i32]
        }
        AdamM | AdamV => {
            let (m, g) = (join(rows[0]), join(rows[1]));
            let n = i64::from(rows[2][0]).max(1);
            halves(m.iter().zip(&g).map(|(&m, &g)| {
                let g = crate::exact::arith::rdiv_signed(g, n);
                if op.kind == AdamM {
                    first_moment(p.beta1, m, g)
                } else {
                    second_moment(p.beta2, m, g)
                }
            }))
        }
        AdamW => {
            let (m, v) = (join(rows[1]), join(rows[2]));
            rows[0]
                .iter()
                .zip(m.iter().zip(&v))
                .map(|(&w, (&m, &v))| descend((p.lr_t, p.eps_t), w, m, v))
                .collect()
        }
        Step => vec![rows[0][0] + 1],
        Requant => {
            let bound = if op.arg == 8 { GAMMA_MAX } else { ACT_MAX };
            rows[0]
                .iter()
                .map(|&x| clamp(sh(i64::from(x), op.arg), bound) as i32)
                .collect()
        }
        NormN => normalized(rows[0], p.eps_q40, p.center)
            .0
            .into_iter()
            .map(|n| i32::try_from(n).ok())
            .collect::<Option<_>>()?,
        PosGrad => {
            if r < op.inputs[0].rows {
                halves(rows[0].iter().map(|&v| i64::from(v) << 8))
            } else {
                vec![0; op.cols]
            }
        }
        _ => return None,
    };
    Some(out)
}
