//! The ops of a long vocabulary (docs/protocol.md §9, "Long rows"): a vocabulary of more than
//! [`LONG_ROW`] tokens is laid out in chunks of [`VOCAB_CHUNK`], so that no row an element reads
//! is longer than a chunk. The head's transpose, the logits and the loss signal are tensors of
//! chunk rows (row `t·k + ch` holds tokens `ch·R ..` of position `t`, zero past the
//! vocabulary), and the sums over the vocabulary (the loss's softmax, the head's input gradient)
//! are split into partial sums over one chunk each, then added: integer sums, so the result is
//! the engine's to the bit. Every op here carries the vocabulary size as its `arg`, but the
//! sum of the partial input gradients, whose `arg` is the outputs per partial row.

use super::ProgramOp;
use super::element::mant;
use super::rows::{join, pair_half};
use crate::exact::arith::{clamp, rdiv, rowquant, rs, sh};
use crate::exact::ops::{SCORE_MAX, exp_weight};
use crate::train::grad::{GRAD_BITS, GRAD_MAX};

/// A vocabulary of more tokens than this is laid out in chunks (a row of it read whole would
/// cost more gas than a move may).
pub const LONG_ROW: usize = 8192;
/// Tokens per chunk of a long vocabulary: the head's partial input gradient reads three chunk
/// rows, about 6 000 values.
pub const VOCAB_CHUNK: usize = 2048;

/// The chunk layout of a vocabulary of `v` tokens in chunks of `r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunks {
    /// Tokens.
    pub v: usize,
    /// Tokens per chunk.
    pub r: usize,
    /// Chunks, `⌈v / r⌉`.
    pub k: usize,
}

impl Chunks {
    /// The layout of `v` tokens in chunks of `r`.
    pub fn new(v: usize, r: usize) -> Self {
        Self {
            v,
            r,
            k: v.div_ceil(r.max(1)),
        }
    }

    /// Tokens in chunk `ch`.
    fn valid(&self, ch: usize) -> usize {
        self.r.min(self.v.saturating_sub(ch * self.r))
    }

    /// The head's partial input gradient puts `j` outputs of each position in a row, every
    /// chunk's partial sum of each as two halves: `j = max(1, ⌊r / 2k⌋)`.
    pub fn per_part_row(&self) -> usize {
        (self.r / (2 * self.k)).max(1)
    }
}

fn layout(op: &ProgramOp, chunked: usize) -> Chunks {
    Chunks::new(op.arg.max(0) as usize, chunked)
}

/// `max_j clamp(rs(z_j, 2), ±SCORE_MAX)` over the first `n` values of a logits chunk row.
fn score_max(z: &[i32], n: usize) -> Option<i64> {
    z.get(..n)?
        .iter()
        .map(|&v| clamp(rs(i64::from(v), 2), SCORE_MAX))
        .max()
}

/// Which row of each input element `(r, c)` of a long-vocabulary op reads.
pub(super) fn input_rows(op: &ProgramOp, r: usize, c: usize, sample: usize) -> Vec<usize> {
    use super::OpKind::*;
    match op.kind {
        TransposeChunk => {
            let ch = layout(op, op.cols);
            let v = (r % ch.k) * ch.r + c;
            vec![if v < ch.v { v } else { 0 }]
        }
        LinearChunk => {
            let ch = layout(op, op.cols);
            let v = (r % ch.k) * ch.r + c;
            vec![r / ch.k, if v < ch.v { v } else { 0 }]
        }
        XentMax | AbsMax => vec![r * op.cols + c],
        XentSum => vec![r * op.inputs[1].cols + c / 2, r],
        XentChunk => vec![r, r / op.inputs[1].cols, r / op.inputs[1].cols, sample],
        ShiftMin => vec![op.inputs[0].rows - op.cols + c],
        InputGradPart => {
            let ch = layout(op, op.inputs[0].cols);
            let d = op.inputs[1].rows / ch.k - 1;
            let nb = d.div_ceil(ch.per_part_row());
            let (t, b) = (r / nb, r % nb);
            let j = b * ch.per_part_row() + c / 2 / ch.k;
            let piece = c / 2 % ch.k;
            let j = if j < d { j } else { 0 };
            vec![t * ch.k + piece, j * ch.k + piece, d * ch.k + piece, t, 0]
        }
        InputGradSum => {
            let nb = op.inputs[0].rows / op.rows;
            vec![r * nb + c / op.arg.max(1) as usize, r, 0]
        }
        _ => Vec::new(),
    }
}

/// Element `(r, c)` of a long-vocabulary op from its input rows (each checked to be its
/// operand's width by the caller).
pub(super) fn element(op: &ProgramOp, r: usize, c: usize, rows: &[&[i32]]) -> Option<i32> {
    use super::OpKind::*;
    match op.kind {
        TransposeChunk => {
            let ch = layout(op, op.cols);
            let v = (r % ch.k) * ch.r + c;
            if v >= ch.v {
                return Some(0);
            }
            rows[0].get(r / ch.k).copied()
        }
        LinearChunk => {
            let ch = layout(op, op.cols);
            if (r % ch.k) * ch.r + c >= ch.v {
                return Some(0);
            }
            super::element::linear(rows[0], rows[1], None, 0)
        }
        XentMax => {
            let ch = layout(op, op.inputs[0].cols);
            Some(score_max(rows[0], ch.valid(c))? as i32)
        }
        XentSum => {
            let ch = layout(op, op.inputs[0].cols);
            let m = rows[1].iter().copied().max()?;
            let n = ch.valid(c / 2);
            let sum: i64 = rows[0][..n]
                .iter()
                .map(|&z| exp_weight(i64::from(m) - clamp(rs(i64::from(z), 2), SCORE_MAX)))
                .sum();
            Some(pair_half(sum, c))
        }
        XentChunk => {
            let ch = layout(op, op.cols);
            let (t, piece) = (r / ch.k, r % ch.k);
            let v = piece * ch.r + c;
            let data = rows[3];
            let prompt = usize::try_from(*data.first()?).ok()?;
            if t + 1 < prompt.max(1) {
                return Some(0);
            }
            let target = usize::try_from(*data.get(t + 2)?).ok()?;
            if target >= ch.v {
                return None;
            }
            if v >= ch.v {
                return Some(0);
            }
            let m = i64::from(rows[1].iter().copied().max()?);
            let total: i64 = join(rows[2]).iter().sum();
            let w = exp_weight(m - clamp(rs(i64::from(rows[0][c]), 2), SCORE_MAX));
            let p = rdiv(w << GRAD_BITS, total);
            Some((p - if v == target { 1 << GRAD_BITS } else { 0 }) as i32)
        }
        AbsMax => Some(rows[0].iter().map(|v| v.unsigned_abs()).max()? as i32),
        ShiftMin => {
            let ch = layout(op, op.inputs[0].cols);
            rows[0][..ch.valid(c)].iter().copied().min()
        }
        InputGradPart => {
            let ch = layout(op, op.inputs[0].cols);
            let d = op.inputs[1].rows / ch.k - 1;
            let nb = d.div_ceil(ch.per_part_row());
            let j = (r % nb) * ch.per_part_row() + c / 2 / ch.k;
            if j >= d {
                return Some(0);
            }
            let n = ch.valid(c / 2 % ch.k);
            let (dz, q, shifts) = (rows[0], rows[1], rows[2]);
            let e = exponent(rows[3])?;
            let smin = rows[4].iter().copied().min()?;
            let acc: i64 = (0..n)
                .map(|i| {
                    let t = shifts[i] - smin;
                    if !(0..=62).contains(&t) {
                        0
                    } else {
                        rs(mant(dz[i], e), t as u32) * i64::from(q[i])
                    }
                })
                .sum();
            Some(pair_half(acc, c))
        }
        InputGradSum => {
            let k = rows[1].len();
            let at = c % op.arg.max(1) as usize * k;
            let acc: i64 = join(rows[0].get(2 * at..2 * (at + k))?).iter().sum();
            let e = exponent(rows[1])?;
            let smin = rows[2].iter().copied().min()?;
            Some(clamp(sh(acc, smin - e), GRAD_MAX) as i32)
        }
        _ => None,
    }
}

/// The row quantizer's exponent of a row whose chunks' largest magnitudes are `maxes`.
fn exponent(maxes: &[i32]) -> Option<i32> {
    let m = maxes.iter().map(|v| v.unsigned_abs()).max()?;
    Some(rowquant(&[m.min(i32::MAX as u32) as i32]).1)
}
