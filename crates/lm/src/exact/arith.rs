//! The integer primitives every exact transformer op is written in (docs/exact-ops.md,
//! "Transformers"): the rounding shift, the signed scale, the clamp, the rounded division, the
//! integer square root and the row quantizer. All work on `i64`; each caller's bound is stated
//! where it is used.

/// Largest mantissa of a row-quantized value: mantissas fit `i16` without its minimum.
pub const MANT_MAX: i64 = 32_767;

/// `rs(v, s) = (v + 2^(s−1)) >> s` for `s > 0`, `v` for `s = 0`: halves round toward +∞.
#[inline]
pub fn rs(v: i64, s: u32) -> i64 {
    if s == 0 {
        v
    } else {
        (v + (1i64 << (s - 1))) >> s
    }
}

/// `v · 2^(−t)`: [`rs`] by `t` when `t > 0`, else `v · 2^(−t)` saturated to `±2^62` (every
/// caller clamps the result to far less, so saturation never changes an output).
#[inline]
pub fn sh(v: i64, t: i32) -> i64 {
    if t > 0 {
        rs(v, t as u32)
    } else {
        let u = (-t) as u32;
        if u >= 62 || v.unsigned_abs() >= (1u64 << (62 - u)) {
            if v == 0 { 0 } else { v.signum() << 62 }
        } else {
            v << u
        }
    }
}

/// `min(max(v, −m), m)`.
#[inline]
pub fn clamp(v: i64, m: i64) -> i64 {
    v.clamp(-m, m)
}

/// `floor((2a + b) / (2b))`: `a / b` rounded half up, for `a ≥ 0`, `b > 0`.
#[inline]
pub fn rdiv(a: i64, b: i64) -> i64 {
    debug_assert!(a >= 0 && b > 0);
    ((2 * a as i128 + b as i128) / (2 * b as i128)) as i64
}

/// `a / b` rounded half toward +∞ for any sign of `a`, `b > 0`: `floor((2a + b) / (2b))`.
#[inline]
pub fn rdiv_signed(a: i64, b: i64) -> i64 {
    debug_assert!(b > 0);
    (2 * a as i128 + b as i128).div_euclid(2 * b as i128) as i64
}

/// `floor(sqrt(n))` for `n ≥ 0`, by integer Newton iteration (no floating point).
pub fn isqrt(n: u64) -> u64 {
    isqrt128(u128::from(n)) as u64
}

/// [`isqrt`] of a 128-bit integer.
pub fn isqrt128(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    // A start above the root: 2^ceil(bits/2).
    let mut x = 1u128 << (128 - n.leading_zeros()).div_ceil(2);
    loop {
        let y = (x + n / x) / 2;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// Number of bits of `|v|` (0 for 0).
#[inline]
pub fn bitlen(v: u64) -> i32 {
    (64 - v.leading_zeros()) as i32
}

/// The row quantizer: a row of `i32` values becomes `i16` mantissas `m` and one exponent `e`
/// with `x ≈ m · 2^e`. `e = bitlen(max |x|) − 15`; `m = x · 2^(−e)` exactly when `e ≤ 0`,
/// else `clamp(rs(x, e), ±MANT_MAX)`. Mantissas are pushed onto `out`.
pub fn rowquant_into(x: &[i32], out: &mut Vec<i16>) -> i32 {
    let max = x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
    let e = bitlen(u64::from(max)) - 15;
    if e <= 0 {
        let u = (-e) as u32;
        out.extend(x.iter().map(|&v| (v << u) as i16));
    } else {
        let s = e as u32;
        out.extend(
            x.iter()
                .map(|&v| clamp(rs(i64::from(v), s), MANT_MAX) as i16),
        );
    }
    e
}

/// [`rowquant_into`] into a fresh vector.
pub fn rowquant(x: &[i32]) -> (Vec<i16>, i32) {
    let mut m = Vec::with_capacity(x.len());
    let e = rowquant_into(x, &mut m);
    (m, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_match_their_definitions() {
        assert_eq!((rs(3, 1), rs(-3, 1), rs(-7, 2)), (2, -1, -2));
        assert_eq!((sh(5, 0), sh(5, -3), sh(-5, 1)), (5, 40, -2));
        assert_eq!(sh(1, -70), 1 << 62);
        assert_eq!((rdiv(5, 2), rdiv(4, 3), rdiv_signed(-5, 2)), (3, 1, -2));
        for n in (0..10_000u64).chain([u64::MAX, (1 << 62) + 12345, 99_999_999_999]) {
            let r = isqrt(n);
            assert!(
                r * r <= n && (r + 1).checked_mul(r + 1).is_none_or(|s| s > n),
                "{n}"
            );
        }
        let (m, e) = rowquant(&[1, -3, 0]);
        assert_eq!((m, e), (vec![8192, -24576, 0], -13));
        let (m, e) = rowquant(&[(1 << 29) - 1, -5]);
        assert_eq!((m, e), (vec![32767, 0], 14));
        let (m, e) = rowquant(&[0, 0]);
        assert_eq!((m, e), (vec![0, 0], -15));
    }
}
