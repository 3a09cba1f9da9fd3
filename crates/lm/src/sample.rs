//! Exact sampling (docs/exact-ops.md, "Sampling"): the next token is a function of the Q12
//! logits, the parameters, the seed and the position alone, in integers, so the same prompt
//! and seed give the same tokens on every backend and machine.

use alloy_primitives::keccak256;

use crate::error::LmError;
use crate::exact::ops::{SCORE_MAX, exp_weight};

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    /// Temperature in Q16; 0 is greedy (the largest logit, the lowest id on a tie).
    pub temperature_q16: u32,
    /// Keep only the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the fewest most likely tokens whose weight reaches this share, Q16 (65536: all).
    pub top_p_q16: u32,
    /// The seed of the draws.
    pub seed: u64,
}

impl Sampling {
    /// Greedy decoding.
    pub const GREEDY: Self = Self {
        temperature_q16: 0,
        top_k: 0,
        top_p_q16: 1 << 16,
        seed: 0,
    };

    /// From user-facing values: temperature in `0.0..=100.0` (0 = greedy), top-p in `(0, 1]`.
    pub fn new(temperature: f64, top_k: usize, top_p: f64, seed: u64) -> Result<Self, LmError> {
        if !(0.0..=100.0).contains(&temperature) {
            return Err(LmError::Sampling(format!(
                "temperature {temperature} is outside 0..=100"
            )));
        }
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(LmError::Sampling(format!(
                "top-p {top_p} is outside (0, 1]"
            )));
        }
        let q16 = |v: f64| (v * 65536.0).round() as u32;
        let temperature_q16 = q16(temperature);
        if temperature > 0.0 && temperature_q16 == 0 {
            return Err(LmError::Sampling(format!(
                "temperature {temperature} is below 2^-17; use 0 for greedy"
            )));
        }
        Ok(Self {
            temperature_q16,
            top_k,
            top_p_q16: q16(top_p).max(1),
            seed,
        })
    }
}

/// The uniform draw of a position: `u64_be(keccak256("pedals.sample" ‖ u64_be(seed) ‖ u64_be(position))[0..8])`.
pub fn draw(seed: u64, position: u64) -> u64 {
    let mut msg = b"pedals.sample".to_vec();
    msg.extend_from_slice(&seed.to_be_bytes());
    msg.extend_from_slice(&position.to_be_bytes());
    let h = keccak256(&msg);
    u64::from_be_bytes(h[..8].try_into().unwrap_or([0; 8]))
}

/// The largest logit's id (the lowest on a tie).
pub fn argmax(logits: &[i32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The next token after `position − 1` positions:
/// ```text
/// s_j  = clamp(floor(z_j · 2^14 / T), ±SCORE_MAX)            Q10 logits at temperature T (Q16)
/// order tokens by (s desc, id asc); keep the first top_k
/// w_j  = exp_weight(max s − s_j);  W = Σ kept w
/// keep the shortest prefix with (Σ w) · 2^16 ≥ top_p · W;  W' = its Σ w
/// t    = floor(draw(seed, position) · W' / 2^64)
/// the first kept token in increasing id whose running Σ w exceeds t
/// ```
pub fn sample(logits: &[i32], s: &Sampling, position: u64) -> u32 {
    if s.temperature_q16 == 0 {
        return argmax(logits);
    }
    let t = i64::from(s.temperature_q16);
    let scaled: Vec<i64> = logits
        .iter()
        .map(|&z| {
            (i64::from(z) << 14)
                .div_euclid(t)
                .clamp(-SCORE_MAX, SCORE_MAX)
        })
        .collect();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| scaled[b].cmp(&scaled[a]).then(a.cmp(&b)));
    if s.top_k > 0 {
        order.truncate(s.top_k);
    }
    let max = scaled[order[0]];
    let weights: Vec<i64> = order.iter().map(|&j| exp_weight(max - scaled[j])).collect();
    let total: u128 = weights.iter().map(|&w| w as u128).sum();
    let mut cum = 0u128;
    let mut keep = order.len();
    for (n, &w) in weights.iter().enumerate() {
        cum += w as u128;
        if cum << 16 >= u128::from(s.top_p_q16) * total {
            keep = n + 1;
            break;
        }
    }
    let mut kept: Vec<(usize, i64)> = order[..keep]
        .iter()
        .copied()
        .zip(weights[..keep].iter().copied())
        .collect();
    kept.sort_by_key(|&(j, _)| j);
    let kept_total: u128 = kept.iter().map(|&(_, w)| w as u128).sum();
    let target = (u128::from(draw(s.seed, position)) * kept_total) >> 64;
    let mut run = 0u128;
    for &(j, w) in &kept {
        run += w as u128;
        if run > target {
            return j as u32;
        }
    }
    kept[kept.len() - 1].0 as u32
}
