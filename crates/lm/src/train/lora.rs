//! LoRA adapters in exact mode (docs/exact-ops.md, "Fine-tuning"): for a targeted projection
//! `y = W·x`, `y = clamp(W·x + B'·(A·x))` with `A` (`r × in`) and `B` (`out × r`) trained and the
//! base frozen. Master values are Q24 in `i32`; the forward reads each row through the row
//! quantizer, so `A` and `B' = 2^σ·B` are 16-bit matrices with one shift per row, like every
//! weight of the model.

use alloy_primitives::keccak256;

use crate::config::{Family, LmConfig};
use crate::error::LmError;
use crate::exact::arith::{isqrt, rowquant};
use crate::exact::device::OnDevice;
use crate::weights::{QData, QMat};

/// Largest master value: `2^30 − 1`, so a row's exponent stays within `−15..=15`.
pub const W_MAX: i64 = (1 << 30) - 1;
/// Fractional bits of a master value.
pub const W_BITS: i32 = 24;

/// A projection an adapter can target, named as Hugging Face Llama names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// `q_proj`.
    Q,
    /// `k_proj`.
    K,
    /// `v_proj`.
    V,
    /// `o_proj`.
    O,
    /// `gate_proj` (Llama family).
    Gate,
    /// `up_proj`.
    Up,
    /// `down_proj`.
    Down,
}

impl Target {
    /// Every target, in the order adapters are numbered and stored.
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    /// The Hugging Face module name (`q_proj`, …).
    pub fn name(self) -> &'static str {
        match self {
            Target::Q => "q_proj",
            Target::K => "k_proj",
            Target::V => "v_proj",
            Target::O => "o_proj",
            Target::Gate => "gate_proj",
            Target::Up => "up_proj",
            Target::Down => "down_proj",
        }
    }

    /// Parses a module name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Its index in [`Target::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// `(in, out)` of the projection in a model.
    pub fn dims(self, c: &LmConfig) -> (usize, usize) {
        match self {
            Target::Q => (c.hidden, c.q_width()),
            Target::K | Target::V => (c.hidden, c.kv_width()),
            Target::O => (c.q_width(), c.hidden),
            Target::Gate | Target::Up => (c.hidden, c.intermediate),
            Target::Down => (c.intermediate, c.hidden),
        }
    }
}

/// What is adapted and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraConfig {
    /// Rank `r`, `1..=64`.
    pub rank: usize,
    /// `σ` with `alpha / r = 2^σ`, `−8..=8`.
    pub scale_log2: i32,
    /// The targeted projections, sorted, without repeats.
    pub targets: Vec<Target>,
}

impl LoraConfig {
    /// A config from peft's terms: `alpha / rank` must be a power of two (it becomes a shift).
    pub fn new(rank: usize, alpha: usize, targets: &[&str]) -> Result<Self, LmError> {
        let bad = |m: String| Err(LmError::Config(m));
        if !(1..=64).contains(&rank) {
            return bad(format!("LoRA rank {rank} is outside 1..=64"));
        }
        let ratio = alpha as f64 / rank as f64;
        let sigma = ratio.log2().round() as i32;
        if alpha == 0 || (sigma as f64).exp2() != ratio || !(-8..=8).contains(&sigma) {
            return bad(format!(
                "LoRA alpha {alpha} over rank {rank} is not a power of two between 1/256 and 256; \
                 pick alpha = rank, 2·rank, rank/2, …"
            ));
        }
        let mut ts = Vec::new();
        for name in targets {
            let Some(t) = Target::parse(name) else {
                return bad(format!(
                    "unknown LoRA target {name:?}; targets are q_proj, k_proj, v_proj, o_proj, \
                     gate_proj, up_proj, down_proj"
                ));
            };
            ts.push(t);
        }
        ts.sort();
        ts.dedup();
        if ts.is_empty() {
            return bad("LoRA needs at least one target".into());
        }
        Ok(Self {
            rank,
            scale_log2: sigma,
            targets: ts,
        })
    }

    /// Checks the targets against a model (GPT-2 has no `gate_proj`).
    pub fn check(&self, c: &LmConfig) -> Result<(), LmError> {
        if c.family == Family::Gpt2 && self.targets.contains(&Target::Gate) {
            return Err(LmError::Config(
                "gate_proj is a Llama-family projection; this model is GPT-2".into(),
            ));
        }
        Ok(())
    }
}

/// One adapter's master values and Adam moments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    /// `A`, `r × in`, Q24.
    pub a: Vec<i32>,
    /// `B`, `out × r`, Q24.
    pub b: Vec<i32>,
    /// Adam's first moments of `A` and `B`, Q32.
    pub m_a: Vec<i64>,
    /// See `m_a`.
    pub m_b: Vec<i64>,
    /// Adam's second moments of `A` and `B`, Q48.
    pub v_a: Vec<i64>,
    /// See `v_a`.
    pub v_b: Vec<i64>,
}

/// Every adapter of a model: `adapters[block][target index]`, `None` where not targeted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraState {
    /// The adapters.
    pub adapters: Vec<Vec<Option<Adapter>>>,
    /// Optimizer steps taken.
    pub step: u64,
}

/// `u64_be(keccak256("pedals.lora" ‖ u64_be(seed) ‖ u64_be(block) ‖ u64_be(target) ‖ u64_be(i))[0..8])`.
fn draw(seed: u64, block: usize, target: usize, i: usize) -> u64 {
    let mut msg = Vec::with_capacity(43);
    msg.extend_from_slice(b"pedals.lora");
    for v in [seed, block as u64, target as u64, i as u64] {
        msg.extend_from_slice(&v.to_be_bytes());
    }
    let h = keccak256(&msg);
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

impl LoraState {
    /// The initial adapters of a seed: `A[i][k] = draw mod (2·lim + 1) − lim` with
    /// `lim = isqrt(floor(2^48 / in))` (peft's uniform bound `1/sqrt(in)`, Q24), `B = 0`.
    pub fn init(c: &LmConfig, lora: &LoraConfig, seed: u64) -> Self {
        let adapters = lora
            .each(c, |l, t| -> Result<Adapter, std::convert::Infallible> {
                let (inp, out) = t.dims(c);
                let lim = isqrt((1u64 << 48) / inp as u64);
                let a = (0..lora.rank * inp)
                    .map(|i| {
                        ((draw(seed, l, t.index(), i) % (2 * lim + 1)) as i64 - lim as i64) as i32
                    })
                    .collect();
                let n_b = out * lora.rank;
                Ok(Adapter {
                    a,
                    b: vec![0; n_b],
                    m_a: vec![0; lora.rank * inp],
                    m_b: vec![0; n_b],
                    v_a: vec![0; lora.rank * inp],
                    v_b: vec![0; n_b],
                })
            })
            .unwrap_or_else(|e| match e {});
        Self { adapters, step: 0 }
    }
}

impl LoraConfig {
    /// `f(block, target)` for every adapted projection, laid out `[block][target index]` with
    /// `None` where a projection is not adapted.
    pub fn each<T, E>(
        &self,
        c: &LmConfig,
        mut f: impl FnMut(usize, Target) -> Result<T, E>,
    ) -> Result<Vec<Vec<Option<T>>>, E> {
        (0..c.layers)
            .map(|l| {
                Target::ALL
                    .iter()
                    .map(|&t| {
                        if self.targets.contains(&t) {
                            f(l, t).map(Some)
                        } else {
                            Ok(None)
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// A master matrix (`rows × cols`, Q24) as the forward reads it: each row through the row
/// quantizer, `q = m`, `shift = 24 − e − σ`.
pub fn qmat(master: &[i32], rows: usize, cols: usize, sigma: i32) -> QMat {
    let mut data = Vec::with_capacity(rows * cols);
    let shift = master
        .chunks(cols)
        .map(|row| {
            let (m, e) = rowquant(row);
            data.extend_from_slice(&m);
            (W_BITS - e - sigma) as i8
        })
        .collect();
    QMat {
        rows,
        cols,
        shift,
        data: QData::I16(data),
        device: OnDevice::default(),
    }
}
