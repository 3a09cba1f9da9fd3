//! A fine-tuning state as canonical state bytes and a state hash (docs/commitments.md §3), so a
//! fine-tune's steps are committed like every other training job's: per adapter `b<l>.<target>`
//! (`<target>` the peft module name), `.lora_A` and `.lora_B` (`i32`, Q24), their Adam moments
//! `.lora_A.m`, `.lora_A.v`, `.lora_B.m`, `.lora_B.v` (64-bit values, each stored as its two
//! 32-bit halves, low first: shape `[rows, 2·cols]`, one committed row per matrix row), and
//! `step`, the optimizer steps taken (a scalar `i32`).

use pedals_core::{ModelState, StateTensor};

use super::lora::{Adapter, LoraConfig, LoraState, Target};
use crate::config::LmConfig;
use crate::error::LmError;

fn core(e: pedals_core::CoreError) -> LmError {
    LmError::Format(e.to_string())
}

/// 64-bit values as two 32-bit halves each, low first.
pub(super) fn halves(v: &[i64]) -> Vec<i32> {
    v.iter()
        .flat_map(|&x| [x as u32 as i32, (x >> 32) as i32])
        .collect()
}

/// [`halves`] joined back.
pub(super) fn join(v: &[i32]) -> Vec<i64> {
    v.chunks(2)
        .map(|p| (i64::from(p[1]) << 32) | i64::from(p[0] as u32))
        .collect()
}

fn dims(rows: usize, cols: usize) -> Vec<u32> {
    vec![rows as u32, cols as u32]
}

impl LoraState {
    /// The state's tensors, in any order ([`ModelState::new`] sorts them).
    pub fn to_model_state(&self, c: &LmConfig, lora: &LoraConfig) -> Result<ModelState, LmError> {
        let mut tensors =
            vec![StateTensor::new("step", vec![], vec![self.step as i32]).map_err(core)?];
        for (l, row) in self.adapters.iter().enumerate() {
            for (ad, t) in row.iter().zip(Target::ALL) {
                let Some(ad) = ad else { continue };
                let (inp, out) = t.dims(c);
                let p = format!("b{l}.{}", t.name());
                for (name, (rows, cols), master, m, v) in [
                    ("lora_A", (lora.rank, inp), &ad.a, &ad.m_a, &ad.v_a),
                    ("lora_B", (out, lora.rank), &ad.b, &ad.m_b, &ad.v_b),
                ] {
                    let base = format!("{p}.{name}");
                    let wide = |d: &[i64]| (vec![rows as u32, 2 * cols as u32], halves(d));
                    tensors.push(
                        StateTensor::new(&base, dims(rows, cols), master.clone()).map_err(core)?,
                    );
                    for (suffix, data) in [("m", m), ("v", v)] {
                        let (shape, data) = wide(data);
                        tensors.push(
                            StateTensor::new(format!("{base}.{suffix}"), shape, data)
                                .map_err(core)?,
                        );
                    }
                }
            }
        }
        ModelState::new(tensors).map_err(core)
    }

    /// Canonical bytes.
    pub fn to_bytes(&self, c: &LmConfig, lora: &LoraConfig) -> Result<Vec<u8>, LmError> {
        self.to_model_state(c, lora)?
            .to_canonical_bytes()
            .map_err(core)
    }

    /// The state hash.
    pub fn state_hash(
        &self,
        c: &LmConfig,
        lora: &LoraConfig,
    ) -> Result<alloy_primitives::B256, LmError> {
        self.to_model_state(c, lora)?.state_hash().map_err(core)
    }

    /// Reads canonical bytes for a model and adapters: every tensor the config implies must be
    /// there with its shape, and nothing else.
    pub fn from_bytes(bytes: &[u8], c: &LmConfig, lora: &LoraConfig) -> Result<Self, LmError> {
        let st = ModelState::from_canonical_bytes(bytes).map_err(core)?;
        let get = |name: &str, shape: &[u32]| tensor(&st, name, shape);
        let step = step_of(&st)?;
        let mut expected = 1;
        let adapters = lora.each(c, |l, t| -> Result<Adapter, LmError> {
            expected += 6;
            let (inp, out) = t.dims(c);
            let p = format!("b{l}.{}", t.name());
            let (ra, ca, rb, cb) = (lora.rank, inp, out, lora.rank);
            let a_name = format!("{p}.lora_A");
            let b_name = format!("{p}.lora_B");
            let w =
                |n: &str, r: usize, k: usize| get(n, &[r as u32, 2 * k as u32]).map(|v| join(&v));
            Ok(Adapter {
                a: get(&a_name, &dims(ra, ca))?,
                b: get(&b_name, &dims(rb, cb))?,
                m_a: w(&format!("{a_name}.m"), ra, ca)?,
                v_a: w(&format!("{a_name}.v"), ra, ca)?,
                m_b: w(&format!("{b_name}.m"), rb, cb)?,
                v_b: w(&format!("{b_name}.v"), rb, cb)?,
            })
        })?;
        if st.tensors.len() != expected {
            return Err(LmError::Format(format!(
                "the fine-tuning state has {} tensors; these adapters have {expected}",
                st.tensors.len()
            )));
        }
        Ok(Self { adapters, step })
    }
}

/// The data of tensor `name` of a fine-tuning state, which must have shape `shape`.
pub(super) fn tensor(st: &ModelState, name: &str, shape: &[u32]) -> Result<Vec<i32>, LmError> {
    let t = st
        .tensor(name)
        .ok_or_else(|| LmError::Format(format!("the fine-tuning state has no {name}")))?;
    if t.shape != shape {
        return Err(LmError::Format(format!(
            "{name} has shape {:?}, not {shape:?}",
            t.shape
        )));
    }
    Ok(t.data.clone())
}

/// A fine-tuning state's `step`, which must not be negative.
pub(super) fn step_of(st: &ModelState) -> Result<u64, LmError> {
    let step = tensor(st, "step", &[])?[0];
    u64::try_from(step).map_err(|_| LmError::Format(format!("step {step} is negative")))
}
