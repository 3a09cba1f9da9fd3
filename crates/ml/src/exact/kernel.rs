//! The integer matrix-product kernel behind [`super::CpuOps`]: `i16 × i16 → i32`, blocked in
//! 4 × 4 output tiles, with the instruction set picked at run time.
//!
//! Both operands are packed as rows of `i16` that run along the summed dimension, zero-padded
//! to a multiple of 32 (zeros add nothing to a sum) and to a multiple of 4 rows. A tile keeps
//! 16 accumulators in registers and walks the summed dimension once: on AVX-512 VNNI one
//! `vpdpwssd` does 32 multiply-adds into 16 `i32` lanes; on AVX2 `vpmaddwd` plus `vpaddd` does
//! 16; the portable path is plain Rust that the compiler vectorizes for the baseline target.
//! Every path computes the same integer sums, and integer addition is associative, so the
//! results are bit-identical whatever the path, tiling or thread split.
//!
//! One of the two modules of the workspace allowed `unsafe` (with `pedals-lm`'s kernel; see
//! docs/decisions/0005-unsafe-for-simd-kernels.md): calling a `#[target_feature]` function and
//! loading a vector from a 32- or 16-element array. Each use states why it is sound.
#![allow(unsafe_code)]

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, OnceLock},
};

use rayon::prelude::*;

/// Elements of the summed dimension per packed chunk (one AVX-512 register of `i16`).
const CHUNK: usize = 32;
/// Output rows per tile.
const MR: usize = 4;
/// Output columns per tile.
const NR: usize = 4;
/// By default, below this many multiply-adds a product runs on the calling thread. On the 2-core machine
/// of docs/BENCHMARKS.md, splitting the 6.4 M-multiply-add products of MLP 784-128-10 at
/// batch 64 over two threads made the step slower (the pool's threads wake, and then spin
/// beside the element-wise ops that follow), so only products several times larger split.
pub(crate) const PARALLEL_MIN_MACS: usize = 1 << 24;

/// An instruction set the kernel can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust, vectorized by the compiler for the build's baseline target.
    Portable,
    /// x86-64 AVX2 (`vpmaddwd`).
    Avx2,
    /// x86-64 AVX-512 with VNNI (`vpdpwssd`).
    Avx512Vnni,
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512Vnni => "avx512-vnni",
        })
    }
}

impl Isa {
    /// Whether this CPU can run `self`.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Vnni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest instruction set this CPU supports.
    pub fn detect() -> Self {
        [Self::Avx512Vnni, Self::Avx2]
            .into_iter()
            .find(|isa| isa.is_supported())
            .unwrap_or(Self::Portable)
    }

    /// Every instruction set this CPU supports, slowest first.
    pub fn supported() -> Vec<Self> {
        [Self::Portable, Self::Avx2, Self::Avx512Vnni]
            .into_iter()
            .filter(|isa| isa.is_supported())
            .collect()
    }
}

/// An operand packed for the kernel: `rows` rows of `depth` values, stored as `padded_rows`
/// rows of `stride` `i16` (both padded with zeros).
pub(crate) struct Packed {
    rows: usize,
    stride: usize,
    data: Vec<i16>,
}

impl Packed {
    /// Packs `rows × depth` values, `get(row, index)`.
    #[cfg(test)]
    fn new(rows: usize, depth: usize, get: impl Fn(usize, usize) -> i32) -> Self {
        let data: Vec<i32> = (0..rows)
            .flat_map(|r| (0..depth).map(move |x| (r, x)))
            .map(|(r, x)| get(r, x))
            .collect();
        Self::rows_of(&data, rows, depth)
    }

    fn zeroed(rows: usize, depth: usize) -> Self {
        let stride = depth.div_ceil(CHUNK).max(1) * CHUNK;
        let padded_rows = rows.div_ceil(MR.max(NR)) * MR.max(NR);
        Self {
            rows,
            stride,
            data: vec![0i16; padded_rows * stride],
        }
    }

    /// The rows of the row-major `rows × cols` matrix `m`. Panics if a value does not fit
    /// `i16`: the exact-mode bounds guarantee that every matrix operand does.
    pub(crate) fn rows_of(m: &[i32], rows: usize, cols: usize) -> Self {
        check_i16(m);
        let mut p = Self::zeroed(rows, cols);
        for (dst, src) in p
            .data
            .chunks_exact_mut(p.stride)
            .zip(m.chunks_exact(cols.max(1)))
        {
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = v as i16;
            }
        }
        p
    }

    /// The columns of the row-major `rows × cols` matrix `m`, each packed as a row.
    pub(crate) fn columns_of(m: &[i32], rows: usize, cols: usize) -> Self {
        check_i16(m);
        let mut p = Self::zeroed(cols, rows);
        for (r, src) in m.chunks_exact(cols.max(1)).enumerate() {
            for (c, &v) in src.iter().enumerate() {
                p.data[c * p.stride + r] = v as i16;
            }
        }
        p
    }

    fn tile(&self, first_row: usize) -> &[i16] {
        &self.data[first_row * self.stride..(first_row + MR.max(NR)) * self.stride]
    }
}

fn check_i16(m: &[i32]) {
    let fits = m
        .iter()
        .fold(true, |ok, &v| ok & (i32::from(v as i16) == v));
    assert!(fits, "exact-mode operand outside i16");
}

/// A rayon pool of `threads` threads, built once per thread count.
fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    pools
        .entry(threads)
        .or_insert_with(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("pedals-cpu-{i}"))
                    .build()
                    .expect("the CPU kernel's thread pool starts"),
            )
        })
        .clone()
}

/// `out[i][j] = f(i, j, Σ_x a[i][x]·b[j][x])` for every row `i` of `a` and row `j` of `b`,
/// with up to `threads` threads for products of at least `split_macs` multiply-adds.
pub(crate) fn product(
    isa: Isa,
    threads: usize,
    split_macs: usize,
    a: &Packed,
    b: &Packed,
    f: impl Fn(usize, usize, i32) -> i32 + Sync,
) -> Vec<i32> {
    assert_eq!(a.stride, b.stride, "operands packed with different depths");
    assert!(isa.is_supported(), "{isa} is not supported by this CPU");
    let (m, n) = (a.rows, b.rows);
    let mut out = vec![0i32; m * n];
    if m == 0 || n == 0 {
        return out;
    }
    let row_tiles = m.div_ceil(MR);
    let threads = if m * n * a.stride < split_macs {
        1
    } else {
        threads.clamp(1, row_tiles)
    };
    let rows_per_thread = row_tiles.div_ceil(threads) * MR;
    let run = |first: usize, chunk: &mut [i32]| {
        let rows = chunk.len() / n;
        let mut tile = [[0i32; NR]; MR];
        for i0 in (0..rows).step_by(MR) {
            let at = a.tile(first + i0);
            for j0 in (0..n).step_by(NR) {
                dot_tile(isa, at, b.tile(j0), a.stride, &mut tile);
                for (r, tile_row) in tile.iter().enumerate().take(rows - i0) {
                    let i = first + i0 + r;
                    for (c, &acc) in tile_row.iter().enumerate().take(n - j0) {
                        chunk[(i0 + r) * n + j0 + c] = f(i, j0 + c, acc);
                    }
                }
            }
        }
    };
    if threads == 1 {
        run(0, &mut out);
    } else {
        pool(threads).install(|| {
            out.par_chunks_mut(rows_per_thread * n)
                .enumerate()
                .for_each(|(index, chunk)| run(index * rows_per_thread, chunk));
        });
    }
    out
}

/// One 4 × 4 tile of dot products over rows of `stride` values.
fn dot_tile(isa: Isa, a: &[i16], b: &[i16], stride: usize, out: &mut [[i32; NR]; MR]) {
    assert!(a.len() >= MR * stride && b.len() >= NR * stride && stride.is_multiple_of(CHUNK));
    match isa {
        Isa::Portable => portable_tile(a, b, stride, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `product` asserted `isa.is_supported()`, i.e. that this CPU has AVX2.
        Isa::Avx2 => unsafe { x86::avx2_tile(a, b, stride, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `product` asserted that this CPU has AVX-512 F, BW and VNNI.
        Isa::Avx512Vnni => unsafe { x86::avx512_vnni_tile(a, b, stride, out) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("only the portable kernel exists off x86-64"),
    }
}

fn portable_tile(a: &[i16], b: &[i16], stride: usize, out: &mut [[i32; NR]; MR]) {
    for (r, out_row) in out.iter_mut().enumerate() {
        let ar = &a[r * stride..(r + 1) * stride];
        for (c, slot) in out_row.iter_mut().enumerate() {
            let bc = &b[c * stride..(c + 1) * stride];
            // Bounded by the exact-mode limits, so it never wraps; `wrapping_add` keeps the
            // loop free of overflow checks so that it vectorizes.
            *slot = ar.iter().zip(bc).fold(0i32, |acc, (&x, &y)| {
                acc.wrapping_add(i32::from(x) * i32::from(y))
            });
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{CHUNK, MR, NR};

    /// The 32 values at `s[at..at + 32]` as one AVX-512 register.
    #[target_feature(enable = "avx512f")]
    fn load512(s: &[i16], at: usize) -> __m512i {
        let chunk: &[i16; 32] = s[at..at + 32].try_into().expect("32 values");
        // SAFETY: `chunk` is a valid, readable 64-byte array; the load is unaligned.
        unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) }
    }

    /// The 16 values at `s[at..at + 16]` as one AVX2 register.
    #[target_feature(enable = "avx2")]
    fn load256(s: &[i16], at: usize) -> __m256i {
        let chunk: &[i16; 16] = s[at..at + 16].try_into().expect("16 values");
        // SAFETY: `chunk` is a valid, readable 32-byte array; the load is unaligned.
        unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn avx512_vnni_tile(a: &[i16], b: &[i16], stride: usize, out: &mut [[i32; NR]; MR]) {
        let mut acc = [[_mm512_setzero_si512(); NR]; MR];
        for at in (0..stride).step_by(CHUNK) {
            let av: [__m512i; MR] = std::array::from_fn(|r| load512(a, r * stride + at));
            let bv: [__m512i; NR] = std::array::from_fn(|c| load512(b, c * stride + at));
            for r in 0..MR {
                for c in 0..NR {
                    acc[r][c] = _mm512_dpwssd_epi32(acc[r][c], av[r], bv[c]);
                }
            }
        }
        for r in 0..MR {
            for c in 0..NR {
                out[r][c] = _mm512_reduce_add_epi32(acc[r][c]);
            }
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn avx2_tile(a: &[i16], b: &[i16], stride: usize, out: &mut [[i32; NR]; MR]) {
        let mut acc = [[_mm256_setzero_si256(); NR]; MR];
        for at in (0..stride).step_by(16) {
            let av: [__m256i; MR] = std::array::from_fn(|r| load256(a, r * stride + at));
            let bv: [__m256i; NR] = std::array::from_fn(|c| load256(b, c * stride + at));
            for r in 0..MR {
                for c in 0..NR {
                    acc[r][c] = _mm256_add_epi32(acc[r][c], _mm256_madd_epi16(av[r], bv[c]));
                }
            }
        }
        for r in 0..MR {
            for c in 0..NR {
                let v = acc[r][c];
                let half = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
                let pairs = _mm_add_epi32(half, _mm_unpackhi_epi64(half, half));
                let one = _mm_add_epi32(pairs, _mm_shuffle_epi32(pairs, 0b01));
                out[r][c] = _mm_cvtsi128_si32(one);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[Vec<i32>], b: &[Vec<i32>]) -> Vec<i32> {
        a.iter()
            .flat_map(|ar| {
                b.iter()
                    .map(move |br| ar.iter().zip(br).map(|(x, y)| x * y).sum())
            })
            .collect()
    }

    #[test]
    fn every_isa_and_thread_count_matches_the_naive_product_on_ragged_shapes() {
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 16) as i32 % 2049 - 1024
        };
        for (m, n, k) in [
            (1, 1, 1),
            (5, 3, 33),
            (9, 17, 100),
            (64, 10, 784),
            (130, 70, 1020),
            (260, 66, 1000),
        ] {
            let a: Vec<Vec<i32>> = (0..m).map(|_| (0..k).map(|_| next()).collect()).collect();
            let b: Vec<Vec<i32>> = (0..n).map(|_| (0..k).map(|_| next()).collect()).collect();
            let expected = naive(&a, &b);
            let pa = Packed::new(m, k, |r, x| a[r][x]);
            let pb = Packed::new(n, k, |r, x| b[r][x]);
            // The last shape is over PARALLEL_MIN_MACS, so 2 and 3 threads really split it.
            for isa in Isa::supported() {
                for threads in [1, 2, 3] {
                    let got = product(isa, threads, PARALLEL_MIN_MACS, &pa, &pb, |_, _, acc| acc);
                    assert_eq!(got, expected, "{isa}, {threads} threads, {m}×{n}×{k}");
                }
            }
        }
    }

    #[test]
    fn packing_columns_equals_packing_the_transpose() {
        let (rows, cols) = (37, 5);
        let m: Vec<i32> = (0..rows * cols).map(|v| v as i32 * 7 - 300).collect();
        let transposed: Vec<i32> = (0..cols)
            .flat_map(|c| (0..rows).map(move |r| (r, c)))
            .map(|(r, c)| m[r * cols + c])
            .collect();
        let by_columns = Packed::columns_of(&m, rows, cols);
        let by_rows = Packed::rows_of(&transposed, cols, rows);
        assert_eq!(by_columns.data, by_rows.data);
        assert_eq!((by_columns.rows, by_columns.stride), (5, 64));
    }

    #[test]
    #[should_panic(expected = "outside i16")]
    fn an_operand_outside_i16_is_refused() {
        let _ = Packed::rows_of(&[1, 40_000], 1, 2);
    }

    #[test]
    fn the_callback_sees_each_output_position_once() {
        let pa = Packed::new(6, 3, |r, _| r as i32);
        let pb = Packed::new(5, 3, |r, _| r as i32);
        let got = product(Isa::detect(), 2, 0, &pa, &pb, |i, j, acc| {
            assert_eq!(acc, 3 * (i * j) as i32);
            (i * 10 + j) as i32
        });
        let expected: Vec<i32> = (0..6)
            .flat_map(|i| (0..5).map(move |j| i * 10 + j))
            .collect();
        assert_eq!(got, expected);
    }
}
