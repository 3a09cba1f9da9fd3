//! The quantizer: float checkpoint → exact model, deterministic (every step is exact `f64`
//! arithmetic on `f32` inputs, rounded half to even), as docs/exact-ops.md defines it:
//! a weight row's shift is the largest `s` in `SHIFT_MIN..=SHIFT_MAX` with
//! `round(max|w| · 2^s) ≤ 2^(bits−1) − 1`, and `q = round(w · 2^s)`; biases and β are Q12,
//! γ is Q16, each refused if it leaves its range.

use crate::checkpoint::Checkpoint;
use crate::config::LmConfig;
use crate::error::LmError;
use crate::exact::ops::{ACT_MAX, GAMMA_MAX};
use crate::weights::{ExactModel, Linear, Norm, QData, QMat};

/// Smallest per-row weight shift.
pub const SHIFT_MIN: i32 = -16;
/// Largest per-row weight shift.
pub const SHIFT_MAX: i32 = 47;

fn rne(v: f64) -> f64 {
    v.round_ties_even()
}

/// One row's shift, or `None` if even `SHIFT_MIN` cannot hold it.
fn row_shift(max_abs: f64, qmax: f64) -> Option<i32> {
    if max_abs == 0.0 {
        return Some(0);
    }
    let guess = (qmax / max_abs).log2().floor() as i32;
    let fits = |s: i32| rne(max_abs * f64::from(s).exp2()) <= qmax;
    let mut s = guess.clamp(SHIFT_MIN, SHIFT_MAX);
    while s < SHIFT_MAX && fits(s + 1) {
        s += 1;
    }
    while s > SHIFT_MIN && !fits(s) {
        s -= 1;
    }
    fits(s).then_some(s)
}

/// Quantizes a `rows × cols` float matrix to `bits` (8 or 16) with per-row shifts.
pub fn quantize_matrix(
    name: &str,
    rows: usize,
    cols: usize,
    data: &[f32],
    bits: u8,
) -> Result<QMat, LmError> {
    let qmax = f64::from((1u32 << (bits - 1)) - 1);
    let mut shift = Vec::with_capacity(rows);
    let mut values = Vec::with_capacity(rows * cols);
    for (r, row) in data.chunks(cols).enumerate() {
        let max_abs = row.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max);
        let s = row_shift(max_abs, qmax).ok_or_else(|| {
            LmError::tensor(name, format!("row {r} reaches {max_abs}, beyond what {bits}-bit weights with shift {SHIFT_MIN} hold"))
        })?;
        shift.push(s as i8);
        let scale = f64::from(s).exp2();
        values.extend(row.iter().map(|&v| rne(f64::from(v) * scale) as i32));
    }
    let data = match bits {
        8 => QData::I8(values.into_iter().map(|v| v as i8).collect()),
        _ => QData::I16(values.into_iter().map(|v| v as i16).collect()),
    };
    Ok(QMat {
        rows,
        cols,
        shift,
        data,
        device: Default::default(),
    })
}

/// A vector in fixed point Qf, refused beyond `±max`.
pub fn quantize_fixed(name: &str, data: &[f32], frac: i32, max: i64) -> Result<Vec<i32>, LmError> {
    let scale = f64::from(frac).exp2();
    data.iter()
        .map(|&v| {
            let q = rne(f64::from(v) * scale);
            if q.abs() > max as f64 {
                Err(LmError::tensor(
                    name,
                    format!(
                        "value {v} is outside exact mode's range ±{}",
                        max as f64 / scale
                    ),
                ))
            } else {
                Ok(q as i32)
            }
        })
        .collect()
}

struct Quantizer<'a> {
    ck: &'a Checkpoint,
    bits: u8,
}

impl Quantizer<'_> {
    fn matrix(&self, name: &str) -> Result<QMat, LmError> {
        let t = self.ck.get(name)?;
        quantize_matrix(name, t.shape[0], t.shape[1], &t.data, self.bits)
    }

    fn linear(&self, name: &str) -> Result<Linear, LmError> {
        let w = self.matrix(&format!("{name}.weight"))?;
        let bias = format!("{name}.bias");
        let b = match self.ck.tensors.get(&bias) {
            Some(t) => Some(quantize_fixed(&bias, &t.data, 12, ACT_MAX)?),
            None => None,
        };
        Ok(Linear { w, b })
    }

    fn norm(&self, name: &str) -> Result<Norm, LmError> {
        let weight = format!("{name}.weight");
        let gamma = quantize_fixed(&weight, &self.ck.get(&weight)?.data, 16, GAMMA_MAX)?;
        let bias = format!("{name}.bias");
        let beta = match self.ck.tensors.get(&bias) {
            Some(t) => Some(quantize_fixed(&bias, &t.data, 12, ACT_MAX)?),
            None => None,
        };
        Ok(Norm { gamma, beta })
    }
}

/// Quantizes a checkpoint to an exact model with `bits`-bit weights (8 or 16).
pub fn quantize(ck: &Checkpoint, bits: u8) -> Result<ExactModel, LmError> {
    if bits != 8 && bits != 16 {
        return Err(LmError::Config(format!(
            "weight bits {bits}: choose 8 or 16"
        )));
    }
    ck.check_shapes()?;
    let q = Quantizer { ck, bits };
    let c: &LmConfig = &ck.config;
    ExactModel::assemble(
        c.clone(),
        0..c.layers,
        ck.hf_config.clone(),
        ck.tokenizer.clone(),
        |n| q.matrix(n),
        |n| q.linear(n),
        |n| q.norm(n),
    )
}
