//! The fixed-point formats, bounds and scalar rounding rules of exact mode. Every number here
//! is part of the protocol: docs/exact-ops.md states the same values, and the Solidity
//! referee and the zk circuit implement the same formulas.

/// Fractional bits of activations and logits (Q8).
pub const ACT_FRAC_BITS: u32 = 8;
/// Activations and logits are clamped to `±ACT_MAX` (±4.0).
pub const ACT_MAX: i32 = 1024;
/// Fractional bits of the forward (quantized) weights (Q12).
pub const WQ_FRAC_BITS: u32 = 12;
/// Forward weights are clamped to `±WQ_MAX` (±0.5).
pub const WQ_MAX: i32 = 2048;
/// Fractional bits of master weights, biases, velocities and mean gradients (Q16).
pub const MASTER_FRAC_BITS: u32 = 16;
/// Master weights are clamped to `±W_MASTER_MAX` (±0.5), so their Q12 image stays in range.
pub const W_MASTER_MAX: i32 = 1 << 15;
/// Master biases are clamped to `±BIAS_MAX` (±4.0).
pub const BIAS_MAX: i32 = 1 << 18;
/// Velocities are clamped to `±VELOCITY_MAX` (±4.0).
pub const VELOCITY_MAX: i32 = 1 << 18;
/// Fractional bits of back-propagated signals (Q10).
pub const GRAD_FRAC_BITS: u32 = 10;
/// Back-propagated signals are clamped to `±GRAD_MAX` (±1.0).
pub const GRAD_MAX: i32 = 1024;
/// Fractional bits of the softmax probabilities and of the exponential table (Q15).
pub const PROB_FRAC_BITS: u32 = 15;
/// Fractional bits of the learning rate and the momentum (Q12): 4096 is 1.0.
pub const HYPER_FRAC_BITS: u32 = 12;
/// Largest learning rate or momentum (1.0 in Q12).
pub const HYPER_MAX: i32 = 1 << HYPER_FRAC_BITS;
/// Largest batch (a power of two); it bounds the weight-gradient accumulator.
pub const MAX_BATCH: usize = 1024;
/// Largest width of any layer, input included: it bounds every dot-product accumulator so
/// that `width · 1024 · 2048 + 2^22 < 2^31`.
pub const MAX_WIDTH: usize = 1020;

/// Round-half-up arithmetic shift: `(v + 2^(s−1)) >> s` for `s > 0`, `v` for `s = 0`. The
/// shift is arithmetic (floor), so halves round toward +∞ for either sign.
pub const fn round_shift(v: i64, s: u32) -> i64 {
    if s == 0 {
        v
    } else {
        (v + (1i64 << (s - 1))) >> s
    }
}

/// `v` clamped to `[−max, max]`.
pub const fn clamp_sym(v: i64, max: i32) -> i64 {
    let m = max as i64;
    if v > m {
        m
    } else if v < -m {
        -m
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_shift_rounds_halves_up_for_both_signs() {
        assert_eq!(round_shift(3, 1), 2); // 1.5 → 2
        assert_eq!(round_shift(-3, 1), -1); // −1.5 → −1
        assert_eq!(round_shift(5, 2), 1); // 1.25 → 1
        assert_eq!(round_shift(-5, 2), -1); // −1.25 → −1
        assert_eq!(round_shift(-6, 2), -1); // −1.5 → −1
        assert_eq!(round_shift(-7, 2), -2); // −1.75 → −2
        assert_eq!(round_shift(7, 0), 7);
    }

    #[test]
    fn the_accumulator_bounds_hold_at_the_limits() {
        let forward = MAX_WIDTH as i64 * ACT_MAX as i64 * WQ_MAX as i64 + ((BIAS_MAX as i64) << 4);
        assert!(forward < i32::MAX as i64);
        let backward = MAX_WIDTH as i64 * GRAD_MAX as i64 * WQ_MAX as i64;
        assert!(backward < i32::MAX as i64);
        let weight_grad = MAX_BATCH as i64 * ACT_MAX as i64 * GRAD_MAX as i64;
        assert!(weight_grad < i32::MAX as i64);
        let momentum = HYPER_MAX as i64 * VELOCITY_MAX as i64;
        assert!(momentum < i32::MAX as i64);
        let prob = (super::super::exp_lut::EXP_LUT[0] as i64) << PROB_FRAC_BITS;
        assert!(prob < i32::MAX as i64);
    }
}
