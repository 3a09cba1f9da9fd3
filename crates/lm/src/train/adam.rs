//! Exact Adam with a warm-up and linear decay (docs/exact-ops.md, "Fine-tuning"). The update is
//! PyTorch's `Adam` written over integers: the bias corrections are powers of `β` computed by
//! repeated rounded products, the square root is [`isqrt`], the division is rounded.

use crate::error::LmError;
use crate::exact::arith::{clamp, isqrt, isqrt128, rdiv, rs};

/// A weight gradient is clamped to `±2^38` (Q32, ±64.0).
pub const G_MAX: i64 = 1 << 38;
/// First moments are clamped to `±2^40` (Q32).
pub const M_MAX: i64 = 1 << 40;
/// Second moments are capped at `2^62` (Q48).
pub const V_MAX: i64 = 1 << 62;

/// The optimizer's hyperparameters, in the units the update uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdamConfig {
    /// Peak learning rate, Q32, `1..=2^32`.
    pub lr: i64,
    /// Learning rate at the last step, Q32, `0..=lr`.
    pub lr_end: i64,
    /// `β1`, Q30, `0..2^30`.
    pub beta1: i64,
    /// `β2`, Q30, `0..2^30`.
    pub beta2: i64,
    /// `ε`, Q32, `1..=2^32`.
    pub eps: i64,
    /// Warm-up steps (the rate rises linearly over them).
    pub warmup: u64,
    /// Steps in all (the rate falls linearly from the end of the warm-up to `lr_end` at the last).
    pub steps: u64,
}

fn q(v: f64, bits: i32) -> i64 {
    (v * f64::from(bits).exp2()).round() as i64
}

impl AdamConfig {
    /// From the usual real values; refuses what the exact formats cannot hold.
    pub fn new(
        lr: f64,
        lr_end: f64,
        (beta1, beta2): (f64, f64),
        eps: f64,
        warmup: u64,
        steps: u64,
    ) -> Result<Self, LmError> {
        let c = Self {
            lr: q(lr, 32),
            lr_end: q(lr_end, 32),
            beta1: q(beta1, 30),
            beta2: q(beta2, 30),
            eps: q(eps, 32),
            warmup,
            steps,
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks every value against what the exact formats hold.
    pub fn validate(&self) -> Result<(), LmError> {
        let c = self;
        let bad = |m: &str| Err(LmError::Config(m.into()));
        if !(1..=1 << 32).contains(&c.lr) {
            return bad("learning rate must be between 2^-32 and 1");
        }
        if !(0..=c.lr).contains(&c.lr_end) {
            return bad("the final learning rate must be between 0 and the peak rate");
        }
        if !(0..1 << 30).contains(&c.beta1) || !(0..1 << 30).contains(&c.beta2) {
            return bad("Adam's betas must be in [0, 1)");
        }
        if !(1..=1 << 32).contains(&c.eps) {
            return bad("Adam's epsilon must be between 2^-32 (2.3e-10) and 1");
        }
        if c.steps == 0 || c.warmup > c.steps || c.steps > 1 << 20 {
            return bad("steps must be 1..=2^20 and warm-up at most the steps");
        }
        Ok(())
    }

    /// The scheduled rate of step `t` (0-based), Q32: `rdiv(lr·(t+1), warmup)` during the
    /// warm-up, then `lr − rdiv((lr − lr_end)·(t + 1 − warmup), steps − warmup)`.
    pub fn rate(&self, t: u64) -> i64 {
        if t < self.warmup {
            rdiv(self.lr * (t as i64 + 1), self.warmup as i64)
        } else if self.steps == self.warmup {
            self.lr
        } else {
            let done = (t + 1 - self.warmup).min(self.steps - self.warmup) as i64;
            self.lr
                - rdiv(
                    (self.lr - self.lr_end) * done,
                    (self.steps - self.warmup) as i64,
                )
        }
    }

    /// `(lr_t, eps_t)` of step `t` (0-based) with the bias corrections folded in:
    /// `c1 = 2^30 − pow30(β1, t + 1)`, `c2 = 2^30 − pow30(β2, t + 1)`, `r2 = isqrt(c2 · 2^30)`;
    /// `lr_t = rdiv(rate(t) · r2, c1)` (Q32) and `eps_t = max(1, rs(eps · r2, 30))` (Q32).
    pub fn scalars(&self, t: u64) -> (i64, i64) {
        let (b1, b2) = (pow30(self.beta1, t + 1), pow30(self.beta2, t + 1));
        let (c1, c2) = ((1i64 << 30) - b1, (1i64 << 30) - b2);
        let r2 = isqrt((c2 as u64) << 30) as i64;
        let lr_t = ((2 * i128::from(self.rate(t)) * i128::from(r2) + i128::from(c1))
            / (2 * i128::from(c1))) as i64;
        (lr_t, rs(self.eps * r2, 30).max(1))
    }
}

/// `β^n` in Q30 by squaring, each product rounded (`rs(·, 30)`): from the lowest bit of `n`
/// up, `r = rs(r · b, 30)` where the bit is set, then `b = rs(b · b, 30)`; `r` starts at
/// `2^30` and `b` at `β`. Logarithmic in `n`, so a referee computes any step's corrections.
pub fn pow30(beta: i64, mut n: u64) -> i64 {
    let (mut r, mut b) = (1i64 << 30, beta);
    while n > 0 {
        if n & 1 == 1 {
            r = rs(r * b, 30);
        }
        b = rs(b * b, 30);
        n >>= 1;
    }
    r
}

/// One Adam update of master values `w` (Q24) with gradient `g` (Q32):
/// ```text
/// m = clamp(rs(β1·m, 30) + rs((2^30 − β1)·g, 30), ±M_MAX)
/// v = min(rs(β2·v, 30) + rs((2^30 − β2)·rs(g², 16), 30), V_MAX)
/// w = clamp(w − rdiv_signed(lr_t · m, (isqrt(v · 2^16) + eps_t) · 2^8), ±W_MAX)
/// ```
pub fn update(
    c: &AdamConfig,
    scalars: (i64, i64),
    w: &mut [i32],
    m: &mut [i64],
    v: &mut [i64],
    g: &[i64],
) {
    for (((w, m), v), &g) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
        *m = first_moment(c.beta1, *m, g);
        *v = second_moment(c.beta2, *v, g);
        *w = descend(scalars, *w, *m, *v);
    }
}

/// The new first moment of one element: `clamp(rs(β1·m, 30) + rs((2^30 − β1)·g, 30), ±M_MAX)`
/// with `g` clamped to `±G_MAX`.
pub fn first_moment(beta1: i64, m: i64, g: i64) -> i64 {
    let (b1, g) = (i128::from(beta1), i128::from(clamp(g, G_MAX)));
    let mm = rs128(b1 * i128::from(m), 30) + rs128(((1i128 << 30) - b1) * g, 30);
    mm.clamp(-i128::from(M_MAX), i128::from(M_MAX)) as i64
}

/// The new second moment of one element: `min(rs(β2·v, 30) + rs((2^30 − β2)·rs(g², 16), 30),
/// V_MAX)` with `g` clamped to `±G_MAX`.
pub fn second_moment(beta2: i64, v: i64, g: i64) -> i64 {
    let (b2, g) = (i128::from(beta2), i128::from(clamp(g, G_MAX)));
    let vv = rs128(b2 * i128::from(v), 30) + rs128(((1i128 << 30) - b2) * rs128(g * g, 16), 30);
    vv.min(i128::from(V_MAX)) as i64
}

/// The new master value of one element from its new moments:
/// `clamp(w − rdiv_signed(lr_t · m, (isqrt(v · 2^16) + eps_t) · 2^8), ±W_MAX)`.
pub fn descend((lr_t, eps_t): (i64, i64), w: i32, m: i64, v: i64) -> i32 {
    // sqrt(v) in Q32 (v is Q48): 2^8 more bits of the root than isqrt(v) would keep.
    let denom = (isqrt128((v as u128) << 16) as i128 + i128::from(eps_t)) << 8;
    let num = i128::from(lr_t) * i128::from(m);
    let step = (2 * num + denom).div_euclid(2 * denom);
    let nw = i128::from(w) - step;
    nw.clamp(
        -i128::from(super::lora::W_MAX),
        i128::from(super::lora::W_MAX),
    ) as i32
}

fn rs128(v: i128, s: u32) -> i128 {
    (v + (1i128 << (s - 1))) >> s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_by_squaring_follow_the_real_power() {
        let b = (0.999 * f64::from(1 << 30)).round() as i64;
        assert_eq!((pow30(b, 0), pow30(b, 1)), (1 << 30, b));
        for n in [2u64, 7, 100, 1000, 65_535, 1 << 20] {
            let real = (b as f64 / f64::from(1 << 30)).powf(n as f64) * f64::from(1 << 30);
            let got = pow30(b, n) as f64;
            assert!(
                (got - real).abs() <= 1e-6 * f64::from(1 << 30),
                "{n}: {got} vs {real}"
            );
        }
    }

    #[test]
    fn the_schedule_warms_up_then_decays_to_its_end() {
        let c = AdamConfig::new(1e-3, 1e-4, (0.9, 0.999), 1e-7, 10, 110).expect("config");
        assert_eq!(c.rate(0), rdiv(c.lr, 10));
        assert_eq!(c.rate(9), c.lr);
        assert_eq!(c.rate(109), c.lr_end);
        assert!(c.rate(60) < c.lr && c.rate(60) > c.lr_end);
    }

    #[test]
    fn a_first_step_moves_each_weight_by_about_the_rate_against_its_gradient() {
        // Adam's first step is lr · g / (|g| + ε): about lr in size, against the gradient.
        let c =
            AdamConfig::new(1e-3, 1e-3, (0.9, 0.999), 1e-8_f64.max(6e-8), 0, 1).expect("config");
        let mut w = vec![0i32, 1 << 24, -(1 << 24)];
        let (mut m, mut v) = (vec![0i64; 3], vec![0i64; 3]);
        let g = vec![1i64 << 30, -(1 << 20), 0];
        update(&c, c.scalars(0), &mut w, &mut m, &mut v, &g);
        let lr24 = (1e-3 * f64::from(1 << 24)) as i32;
        // lr · g / (|g| + ε): a gradient of 2^-2 and one of 2^-12 both move by lr, within 0.1%.
        assert!((w[0] + lr24).abs() <= lr24 / 1000, "{}", w[0]);
        assert!((w[1] - (1 << 24) - lr24).abs() <= lr24 / 1000, "{}", w[1]);
        assert_eq!(w[2], -(1 << 24));
    }

    #[test]
    fn bad_hyperparameters_are_refused_with_what_to_change() {
        for (lr, b1, eps, warm, steps) in [
            (0.0, 0.9, 1e-6, 0, 10),
            (2.0, 0.9, 1e-6, 0, 10),
            (1e-3, 1.0, 1e-6, 0, 10),
            (1e-3, 0.9, 1e-11, 0, 10),
            (1e-3, 0.9, 1e-6, 11, 10),
        ] {
            assert!(AdamConfig::new(lr, 0.0, (b1, 0.999), eps, warm, steps).is_err());
        }
    }
}
