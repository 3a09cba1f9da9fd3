//! The 8-bit-weight dot product behind [`super::ops::linear`], `Σ m_k · q_k` over `i16`
//! mantissas and `i8` weights (sign-extended in registers, so the weights are read at one byte
//! each), with the instruction set picked at run time: AVX-512 VNNI (`vpdpwssd`, 32
//! multiply-adds per instruction), AVX2 (`vpmaddwd`, 16) or plain Rust in 32 lanes that the
//! compiler vectorizes for the baseline target.
//!
//! Every path sums blocks of 256 products in `i32` (each product is below 2^22, so a block is
//! below 2^30) and adds the blocks in `i64`: the exact integer sum, so every path gives the same
//! bits (a test checks each instruction set this CPU has against the plain loop).
//!
//! `unsafe` is allowed here as in `pedals-ml`'s kernel module
//! (docs/decisions/0005-unsafe-for-simd-kernels.md): calling a `#[target_feature]` function
//! after checking the CPU, and loading a vector from a 32- or 16-element array.
#![allow(unsafe_code)]

/// Products summed in `i32` before widening.
const BLOCK: usize = 256;

/// The instruction sets, as `pedals-ml`'s kernel detects them (the same three).
pub use pedals_ml::exact::Isa;

fn best() -> Isa {
    static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *BEST.get_or_init(Isa::detect)
}

/// `Σ m·q` with 8-bit weights (`|q| ≤ 127`, `|m| ≤ 32767`) on the fastest instruction set.
pub fn dot_w8(m: &[i16], q: &[i8]) -> i64 {
    dot_w8_on(best(), m, q)
}

/// [`dot_w8`] on a chosen instruction set, which must be supported.
pub fn dot_w8_on(isa: Isa, m: &[i16], q: &[i8]) -> i64 {
    assert!(isa.is_supported(), "{isa:?} is not supported by this CPU");
    assert_eq!(m.len(), q.len());
    m.chunks(BLOCK)
        .zip(q.chunks(BLOCK))
        .map(|(a, b)| {
            let (a32, a_rest) = a.as_chunks::<32>();
            let (b32, b_rest) = b.as_chunks::<32>();
            let head: i32 = match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `is_supported` checked above that the CPU has AVX-512 F, BW and VNNI.
                Isa::Avx512Vnni => unsafe { x86::avx512_vnni(a32, b32) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `is_supported` checked above that the CPU has AVX2.
                Isa::Avx2 => unsafe { x86::avx2(a32, b32) },
                _ => portable(a32, b32),
            };
            let tail: i32 = a_rest
                .iter()
                .zip(b_rest)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum();
            i64::from(head + tail)
        })
        .sum()
}

/// `Σ m·q` with 16-bit weights (`|q| ≤ 32767`, `|m| ≤ 32767`, so a pair of products is below
/// 2^31 and one multiply-add fits an `i32` lane) on the fastest instruction set, summed in `i64`.
pub fn dot_w16(m: &[i16], q: &[i16]) -> i64 {
    dot_w16_on(best(), m, q)
}

/// [`dot_w16`] on a chosen instruction set, which must be supported.
pub fn dot_w16_on(isa: Isa, m: &[i16], q: &[i16]) -> i64 {
    assert!(isa.is_supported(), "{isa:?} is not supported by this CPU");
    assert_eq!(m.len(), q.len());
    let (a32, a_rest) = m.as_chunks::<32>();
    let (b32, b_rest) = q.as_chunks::<32>();
    let head = match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `is_supported` checked above that the CPU has AVX-512 F, BW and VNNI.
        Isa::Avx512Vnni => unsafe { x86::avx512_w16(a32, b32) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `is_supported` checked above that the CPU has AVX2.
        Isa::Avx2 => unsafe { x86::avx2_w16(a32, b32) },
        _ => a32
            .iter()
            .flatten()
            .zip(b32.iter().flatten())
            .map(|(&x, &y)| i64::from(i32::from(x) * i32::from(y)))
            .sum(),
    };
    head + a_rest
        .iter()
        .zip(b_rest)
        .map(|(&x, &y)| i64::from(i32::from(x) * i32::from(y)))
        .sum::<i64>()
}

fn portable(a: &[[i16; 32]], b: &[[i8; 32]]) -> i32 {
    let mut lanes = [0i32; 32];
    for (x, y) in a.iter().zip(b) {
        for l in 0..32 {
            lanes[l] += i32::from(x[l]) * i32::from(y[l]);
        }
    }
    lanes.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn avx512_vnni(a: &[[i16; 32]], b: &[[i8; 32]]) -> i32 {
        let mut acc = _mm512_setzero_si512();
        for (x, y) in a.iter().zip(b) {
            // SAFETY: `x` is a valid, readable 64-byte array and `y` a 32-byte one; the loads
            // are unaligned.
            let (xv, yv) = unsafe {
                (
                    _mm512_loadu_si512(x.as_ptr().cast()),
                    _mm256_loadu_si256(y.as_ptr().cast()),
                )
            };
            acc = _mm512_dpwssd_epi32(acc, xv, _mm512_cvtepi8_epi16(yv));
        }
        _mm512_reduce_add_epi32(acc)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn avx2(a: &[[i16; 32]], b: &[[i8; 32]]) -> i32 {
        let mut acc = _mm256_setzero_si256();
        for (x, y) in a.iter().zip(b) {
            for half in 0..2 {
                let (xs, ys) = (&x[16 * half..16 * half + 16], &y[16 * half..16 * half + 16]);
                // SAFETY: `xs` is 16 valid, readable `i16` (32 bytes) and `ys` 16 `i8` (16
                // bytes); the loads are unaligned.
                let (xv, yv) = unsafe {
                    (
                        _mm256_loadu_si256(xs.as_ptr().cast()),
                        _mm_loadu_si128(ys.as_ptr().cast()),
                    )
                };
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(yv)));
            }
        }
        let half = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        );
        let pairs = _mm_add_epi32(half, _mm_unpackhi_epi64(half, half));
        let one = _mm_add_epi32(pairs, _mm_shuffle_epi32(pairs, 0b01));
        _mm_cvtsi128_si32(one)
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn avx512_w16(a: &[[i16; 32]], b: &[[i16; 32]]) -> i64 {
        let mut acc = _mm512_setzero_si512();
        for (x, y) in a.iter().zip(b) {
            // SAFETY: `x` and `y` are valid, readable 64-byte arrays; the loads are unaligned.
            let (xv, yv) = unsafe {
                (
                    _mm512_loadu_si512(x.as_ptr().cast()),
                    _mm512_loadu_si512(y.as_ptr().cast()),
                )
            };
            let pairs = _mm512_madd_epi16(xv, yv);
            let low = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(pairs));
            let high = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(pairs, 1));
            acc = _mm512_add_epi64(acc, _mm512_add_epi64(low, high));
        }
        _mm512_reduce_add_epi64(acc)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn avx2_w16(a: &[[i16; 32]], b: &[[i16; 32]]) -> i64 {
        let mut acc = _mm256_setzero_si256();
        for (x, y) in a.iter().zip(b) {
            for half in 0..2 {
                let (xs, ys) = (&x[16 * half..16 * half + 16], &y[16 * half..16 * half + 16]);
                // SAFETY: `xs` and `ys` are 16 valid, readable `i16` (32 bytes); unaligned loads.
                let (xv, yv) = unsafe {
                    (
                        _mm256_loadu_si256(xs.as_ptr().cast()),
                        _mm256_loadu_si256(ys.as_ptr().cast()),
                    )
                };
                let pairs = _mm256_madd_epi16(xv, yv);
                let low = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(pairs));
                let high = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(pairs, 1));
                acc = _mm256_add_epi64(acc, _mm256_add_epi64(low, high));
            }
        }
        _mm256_extract_epi64(acc, 0)
            + _mm256_extract_epi64(acc, 1)
            + _mm256_extract_epi64(acc, 2)
            + _mm256_extract_epi64(acc, 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive16(m: &[i16], q: &[i16]) -> i64 {
        m.iter()
            .zip(q)
            .map(|(&x, &y)| i64::from(x) * i64::from(y))
            .sum()
    }

    fn naive(m: &[i16], q: &[i8]) -> i64 {
        m.iter()
            .zip(q)
            .map(|(&x, &y)| i64::from(x) * i64::from(y))
            .sum()
    }

    #[test]
    fn every_instruction_set_gives_the_exact_sum() {
        let mut x = 12345u64;
        let mut next = |max: i64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) % (2 * max as u64 + 1)) as i64 - max
        };
        let mut cases: Vec<(Vec<i16>, Vec<i8>)> =
            [0usize, 1, 31, 32, 33, 255, 256, 257, 1000, 4099]
                .iter()
                .map(|&n| {
                    (
                        (0..n).map(|_| next(32767) as i16).collect(),
                        (0..n).map(|_| next(127) as i8).collect(),
                    )
                })
                .collect();
        let full = 1 << 16;
        cases.push((vec![32767; full], vec![127; full]));
        cases.push((vec![-32767; full], vec![127; full]));
        cases.push((vec![32767; full], vec![-127; full]));
        let full = 1 << 16;
        for isa in Isa::supported() {
            for sign in [1i16, -1] {
                let (m, q) = (vec![32767 * sign; full], vec![32767i16; full]);
                assert_eq!(
                    dot_w16_on(isa, &m, &q),
                    naive16(&m, &q),
                    "{isa:?} w16 at the limit"
                );
            }
            for (m, q) in &cases {
                let wide: Vec<i16> = q.iter().map(|&v| i16::from(v) * 258).collect();
                assert_eq!(
                    dot_w16_on(isa, m, &wide),
                    naive16(m, &wide),
                    "{isa:?} w16, {} values",
                    m.len()
                );
                assert_eq!(
                    dot_w8_on(isa, m, q),
                    naive(m, q),
                    "{isa:?}, {} values",
                    m.len()
                );
            }
        }
    }
}
