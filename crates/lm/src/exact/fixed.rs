//! High-precision fixed-point arithmetic (`i128` at 2^−96) for the one table of the transformer
//! ops that depends on the model: the rotary embedding's cosines and sines. Each entry is
//! defined as the exact mathematical value rounded half to even (docs/exact-ops.md); this
//! module computes it with an error far below 2^−70 and refuses the model (an error, never a
//! panic) if a value falls so close to a rounding tie that the error could matter, which no
//! real configuration reaches.
//! No floating point is involved, so every machine builds the same table.

/// Fraction bits.
const F: u32 = 96;
const ONE: i128 = 1 << F;
const LOW: u128 = u64::MAX as u128;

/// `a · b` at 2^−96, truncated toward zero. Needs `|a · b| < 2^127 · 2^−96`, far more than
/// the angles and factors here reach (below 2^20).
fn mul(a: i128, b: i128) -> i128 {
    let (x, y) = (a.unsigned_abs(), b.unsigned_abs());
    let (x1, x0, y1, y0) = (x >> 64, x & LOW, y >> 64, y & LOW);
    let (p00, p01, p10, p11) = (x0 * y0, x0 * y1, x1 * y0, x1 * y1);
    let mid = (p00 >> 64) + (p01 & LOW) + (p10 & LOW);
    let high = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    let mag = ((high << (128 - F)) | ((mid & LOW) >> (F - 64))) as i128;
    if (a < 0) != (b < 0) { -mag } else { mag }
}

/// `num / den` at 2^−96 for `0 ≤ num`, `0 < den < 2^62`, by long division.
fn ratio(num: u128, den: u128) -> i128 {
    let q = num / den;
    let mut r = num % den;
    let mut frac = 0u128;
    for _ in 0..(F / 32) {
        r <<= 32;
        frac = (frac << 32) | (r / den);
        r %= den;
    }
    ((q << F) | frac) as i128
}

/// `atanh(1/n)`-style series `Σ x^(2k+1)/(2k+1)` (`alternate`: with alternating signs, i.e.
/// `atan`), for `x = 1/n`.
fn inverse_series(n: u128, alternate: bool) -> i128 {
    let n2 = (n * n) as i128;
    let mut power = ratio(1, n);
    let (mut total, mut k) = (0i128, 0i128);
    while power != 0 {
        let term = power / (2 * k + 1);
        total += if alternate && k % 2 == 1 { -term } else { term };
        power /= n2;
        k += 1;
    }
    total
}

fn pi() -> i128 {
    16 * inverse_series(5, true) - 4 * inverse_series(239, true)
}

fn ln2() -> i128 {
    2 * inverse_series(3, false)
}

/// `ln(v)` of a positive finite `f64`, from its exact binary value `m · 2^k`.
fn ln(v: f64) -> i128 {
    assert!(v.is_finite() && v > 0.0, "ln of {v}");
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let (mut m, mut k) = if exp == 0 {
        (bits & ((1 << 52) - 1), -1074i64)
    } else {
        ((bits & ((1 << 52) - 1)) | (1 << 52), exp - 1075)
    };
    while m & 1 == 0 {
        m >>= 1;
        k += 1;
    }
    // v = m · 2^k with m odd; write m = 2^j · y, y in [1, 2): ln y = 2 atanh((y−1)/(y+1)).
    let j = 63 - m.leading_zeros() as i64;
    let (num, den) = (u128::from(m) - (1u128 << j), u128::from(m) + (1u128 << j));
    let z = ratio(num, den);
    let z2 = mul(z, z);
    let (mut power, mut total, mut n) = (z, 0i128, 0i128);
    while power != 0 {
        total += power / (2 * n + 1);
        power = mul(power, z2);
        n += 1;
    }
    2 * total + i128::from(j + k) * ln2()
}

/// `e^(−x)` for `x ≥ 0`.
fn exp_neg(x: i128) -> i128 {
    assert!(x >= 0);
    let l2 = ln2();
    let k = x / l2;
    let r = x - k * l2;
    let (mut term, mut total, mut n) = (ONE, 0i128, 1i128);
    while term != 0 {
        total += term;
        term = -mul(term, r) / n;
        n += 1;
    }
    if k >= 127 { 0 } else { total >> k }
}

/// `(cos x, sin x)` for `|x| ≤ π`, by their Taylor series.
fn cos_sin(x: i128) -> (i128, i128) {
    let x2 = mul(x, x);
    let (mut c, mut s) = (0i128, 0i128);
    let (mut tc, mut ts, mut n) = (ONE, x, 0i128);
    while tc != 0 || ts != 0 {
        c += tc;
        s += ts;
        tc = -mul(tc, x2) / ((2 * n + 1) * (2 * n + 2));
        ts = -mul(ts, x2) / ((2 * n + 2) * (2 * n + 3));
        n += 1;
    }
    (c, s)
}

/// `round_half_even(v · 2^bits)` of a fixed-point value; `None` within 2^−60 of a tie.
fn round_to(v: i128, bits: u32) -> Option<i32> {
    let shift = F - bits;
    let floor = v >> shift;
    let frac = v - (floor << shift);
    let half = 1i128 << (shift - 1);
    let margin = 1i128 << (F - 60);
    if (frac - half).abs() <= margin {
        return None;
    }
    let up = frac > half;
    Some((floor + i128::from(up)) as i32)
}

/// The rotary table: for positions `0..positions` and pairs `0..half`, with
/// `θ_i = base^(−i/half)`, `round_half_even(2^bits · cos(p·θ_i))` and the same of `sin`,
/// row-major `[p][i]`. Fails, naming the entry, if one lies within 2^−60 of a rounding tie.
pub fn rotary_table(
    base: f64,
    half: usize,
    positions: usize,
    bits: u32,
) -> Result<(Vec<i32>, Vec<i32>), crate::LmError> {
    let (two_pi, pi) = (2 * pi(), pi());
    let log_base = ln(base);
    let mut cos = vec![0i32; positions * half];
    let mut sin = vec![0i32; positions * half];
    for i in 0..half {
        let theta = exp_neg(log_base * i as i128 / half as i128);
        for p in 0..positions {
            let mut angle = (theta * p as i128).rem_euclid(two_pi);
            if angle > pi {
                angle -= two_pi;
            }
            let (c, s) = cos_sin(angle);
            let tie = || {
                crate::LmError::Config(format!(
                    "rotary base {base}: the table entry of position {p}, pair {i} lies within                      2^-60 of a rounding tie, which exact mode cannot round with certainty;                      change rope_theta slightly"
                ))
            };
            cos[p * half + i] = round_to(c, bits).ok_or_else(tie)?;
            sin[p * half + i] = round_to(s, bits).ok_or_else(tie)?;
        }
    }
    Ok((cos, sin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_f64(v: i128) -> f64 {
        v as f64 / ONE as f64
    }

    #[test]
    fn constants_and_functions_match_f64() {
        assert!((to_f64(pi()) - std::f64::consts::PI).abs() < 1e-15);
        assert!((to_f64(ln2()) - std::f64::consts::LN_2).abs() < 1e-15);
        for v in [1.0, 2.0, 3.0, 10_000.0, 500_000.0, 0.3] {
            assert!((to_f64(ln(v)) - f64::ln(v)).abs() < 1e-12, "ln {v}");
        }
        for x in [0.0, 0.5, 3.0, 9.21] {
            let got = to_f64(exp_neg((x * ONE as f64) as i128));
            assert!((got - (-x).exp()).abs() < 1e-15, "exp {x}");
        }
        let (c, s) = cos_sin(ratio(3, 1));
        assert!((to_f64(c) - 3f64.cos()).abs() < 1e-15 && (to_f64(s) - 3f64.sin()).abs() < 1e-15);
    }

    #[test]
    fn rotary_table_agrees_with_f64_to_one_unit() {
        let (cos, sin) = rotary_table(10_000.0, 8, 300, 16).expect("no tie");
        for p in 0..300 {
            for i in 0..8 {
                let angle = p as f64 * 10_000f64.powf(-(i as f64) / 8.0);
                let (c, s) = (cos[p * 8 + i], sin[p * 8 + i]);
                assert!(
                    (f64::from(c) - angle.cos() * 65536.0).abs() <= 0.5 + 1e-6,
                    "cos {p} {i}"
                );
                assert!(
                    (f64::from(s) - angle.sin() * 65536.0).abs() <= 0.5 + 1e-6,
                    "sin {p} {i}"
                );
            }
        }
        assert_eq!((cos[0], sin[0]), (65536, 0));
    }
}
