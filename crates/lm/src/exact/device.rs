//! The matrix products of exact mode on a burn device (flex on the CPU, wgpu over Vulkan on a
//! GPU), with the same bits as the CPU kernel.
//!
//! A product `Σ_k m_k · q_jk` (docs/exact-ops.md, `linear`) can reach 2^46, and a GPU sums in
//! 32-bit integers (WGSL has no 64-bit ones). So every operand is cut into 8-bit limbs and the
//! reduction into blocks, small enough that no 32-bit partial sum can overflow:
//!
//! ```text
//!  m    = 2^8 · m_hi + m_lo             m_lo ∈ [0, 255], m_hi ∈ [−128, 127]   (|m| ≤ 2^15 − 1)
//!  q    = q                              8-bit weights, |q| ≤ 127
//!  q    = 2^8 · q_hi + q_lo              16-bit weights, q_lo ∈ [0, 255], q_hi ∈ [−128, 127]
//!  every limb product is below 2^16 in magnitude (255 · 255), so a block of 2^15 columns sums
//!  below 2^31; each block is one i32 matrix product on the device:
//!  [m_lo; m_hi] (2·rows × block) · [q] or [q_lo | q_hi] (block × N or 2N)
//!  Σ = Σ_blocks (lo·lo + 2^8 · hi·lo + 2^8 · lo·hi + 2^16 · hi·hi)     in i64, on the host
//! ```
//!
//! Integer sums are exact and associative, so however the device orders a block's products the
//! result is the plain sum, bit for bit the CPU kernel's: the tests compare every logit.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::weights::{QData, QMat};

/// Columns per block of the reduction: 2^15 products below 2^16 sum below 2^31.
pub const BLOCK: usize = 1 << 15;

/// A weight matrix's limbs on a device, transposed and cut into blocks of [`BLOCK`] rows.
#[derive(Clone)]
pub struct DeviceWeights {
    device: Device,
    blocks: Vec<Tensor<2, Int>>,
    /// 1 for 8-bit weights, 2 for 16-bit ones (`q_lo`, then `q_hi`).
    limbs: usize,
}

/// A matrix's copy on a device, if it has one. It is a cache of the matrix's own values, so
/// it takes no part in equality.
#[derive(Clone, Default)]
pub struct OnDevice(pub Option<Arc<DeviceWeights>>);

impl PartialEq for OnDevice {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for OnDevice {}

impl std::fmt::Debug for OnDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "OnDevice(yes)"
        } else {
            "OnDevice(no)"
        })
    }
}

/// The device a user names: `cpu` (the CPU kernel: `None`), `flex` (burn's CPU backend) or
/// `gpu` (wgpu over Vulkan, the best adapter), with its name.
pub fn named(name: &str) -> Result<Option<(Device, String)>, crate::LmError> {
    match name {
        "cpu" => Ok(None),
        "flex" => Ok(Some((Device::flex(), "flex".into()))),
        "gpu" => {
            let ops = pedals_ml::exact::BurnOps::gpu()
                .map_err(|e| crate::LmError::Unsupported(e.to_string()))?;
            let adapter = ops.adapter_name().unwrap_or_else(|| "wgpu".into());
            Ok(Some((ops.device().clone(), adapter)))
        }
        other => Err(crate::LmError::Unsupported(format!(
            "device {other:?}: write cpu, flex or gpu"
        ))),
    }
}

fn split(v: i32) -> (i32, i32) {
    (v & 0xff, v >> 8)
}

/// Uploads `w`'s limbs to `device`.
pub fn upload(w: &QMat, device: &Device) -> DeviceWeights {
    let limbs = usize::from(w.bits() / 8);
    let n = w.rows;
    let blocks = (0..w.cols)
        .step_by(BLOCK)
        .map(|start| {
            let len = BLOCK.min(w.cols - start);
            let mut t = vec![0i32; len * n * limbs];
            for j in 0..n {
                for k in 0..len {
                    let at = k * n * limbs;
                    match &w.data {
                        QData::I8(q) => t[at + j] = i32::from(q[j * w.cols + start + k]),
                        QData::I16(q) => {
                            let (lo, hi) = split(i32::from(q[j * w.cols + start + k]));
                            t[at + j] = lo;
                            t[at + n + j] = hi;
                        }
                    }
                }
            }
            Tensor::<2, Int>::from_data(TensorData::new(t, [len, n * limbs]), device)
        })
        .collect();
    DeviceWeights {
        device: device.clone(),
        blocks,
        limbs,
    }
}

/// `Σ_k m_rk · q_jk` for every input row `r` (mantissas, each `w.cols` long) and output `j`,
/// row-major (`rows × w.rows`), computed on the device.
pub fn dots(w: &QMat, dw: &DeviceWeights, mantissas: &[&[i16]]) -> Vec<i64> {
    let (rows, n) = (mantissas.len(), w.rows);
    let mut out = vec![0i64; rows * n];
    for (b, block) in dw.blocks.iter().enumerate() {
        let start = b * BLOCK;
        let len = BLOCK.min(w.cols - start);
        let mut a = vec![0i32; 2 * rows * len];
        for (r, m) in mantissas.iter().enumerate() {
            for (k, &v) in m[start..start + len].iter().enumerate() {
                let (lo, hi) = split(i32::from(v));
                a[r * len + k] = lo;
                a[(rows + r) * len + k] = hi;
            }
        }
        let a = Tensor::<2, Int>::from_data(TensorData::new(a, [2 * rows, len]), &dw.device);
        let data = a.matmul(block.clone()).into_data();
        let sums: Vec<i64> = match data.as_slice::<i32>() {
            Ok(s) => s.iter().map(|&v| i64::from(v)).collect(),
            Err(_) => data.iter::<i64>().collect(),
        };
        let width = n * dw.limbs;
        for r in 0..rows {
            for j in 0..n {
                let lo = sums[r * width + j];
                let hi = sums[(rows + r) * width + j];
                let mut v = lo + (hi << 8);
                if dw.limbs == 2 {
                    let lo_hi = sums[r * width + n + j];
                    let hi_hi = sums[(rows + r) * width + n + j];
                    v += (lo_hi << 8) + (hi_hi << 16);
                }
                out[r * n + j] += v;
            }
        }
    }
    out
}
