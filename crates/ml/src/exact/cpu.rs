//! [`ExactOps`] with this crate's own CPU kernels for the three matrix products of a step.
//!
//! Every matrix operand of exact mode fits `i16` (activations and signals are clamped to
//! ±1024, forward weights to ±2048), and every accumulator fits `i32` by the bounds of
//! `docs/exact-ops.md`. So the kernels convert operands to `i16`, lay both sides out so that
//! each output element is a dot product of two contiguous slices (which the compiler turns
//! into `pmaddwd`-style i16×i16→i32 multiply-adds), and split the output rows across
//! threads. Integer sums are associative and never overflow here, so any blocking, vector
//! width or thread split gives the bits of [`Reference`]. The element-wise ops are the
//! reference's own.

use std::num::NonZeroUsize;

use super::{
    ops::{ExactOps, Mat, Reference},
    spec::*,
};

/// Exact-mode operations on the CPU with blocked, multi-threaded i16 dot-product kernels.
#[derive(Debug, Clone, Copy)]
pub struct CpuOps {
    threads: usize,
}

impl Default for CpuOps {
    fn default() -> Self {
        Self::new(
            std::thread::available_parallelism()
                .map(NonZeroUsize::get)
                .unwrap_or(1),
        )
    }
}

impl CpuOps {
    /// Kernels that use up to `threads` threads (at least one).
    pub fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
        }
    }
}

fn to_i16(data: &[i32]) -> Vec<i16> {
    data.iter()
        .map(|&v| i16::try_from(v).expect("exact-mode operand outside i16"))
        .collect()
}

/// `rows × cols` row-major → `cols × rows` row-major, as i16.
fn transpose_i16(m: &Mat) -> Vec<i16> {
    let mut out = vec![0i16; m.rows * m.cols];
    for r in 0..m.rows {
        for c in 0..m.cols {
            out[c * m.rows + r] = m.data[r * m.cols + c] as i16;
        }
    }
    out
}

#[inline]
fn dot(a: &[i16], b: &[i16]) -> i32 {
    // Bounded by the exact-mode limits, so wrapping never happens; `wrapping_add` keeps the
    // loop free of overflow checks so it vectorizes.
    a.iter().zip(b).fold(0i32, |acc, (&x, &y)| {
        acc.wrapping_add(i32::from(x) * i32::from(y))
    })
}

/// `out[i][j] = f(i, j, a_row(i) · b_row(j))` for `a` (`m × k`) and `b` (`n × k`), both
/// row-major i16, rows of the output split across threads.
fn gemm_nt(
    threads: usize,
    a: &[i16],
    b: &[i16],
    m: usize,
    n: usize,
    k: usize,
    f: impl Fn(usize, usize, i32) -> i32 + Sync,
) -> Vec<i32> {
    let mut out = vec![0i32; m * n];
    if m == 0 || n == 0 {
        return out;
    }
    let rows_per = m.div_ceil(threads.min(m));
    // Block the columns so a slab of `b` stays in cache while a row of `a` sweeps it.
    const COL_BLOCK: usize = 64;
    std::thread::scope(|s| {
        for (chunk_index, chunk) in out.chunks_mut(rows_per * n).enumerate() {
            let f = &f;
            s.spawn(move || {
                let first = chunk_index * rows_per;
                let rows = chunk.len() / n;
                for j0 in (0..n).step_by(COL_BLOCK) {
                    let j1 = (j0 + COL_BLOCK).min(n);
                    for r in 0..rows {
                        let i = first + r;
                        let ar = &a[i * k..(i + 1) * k];
                        for j in j0..j1 {
                            chunk[r * n + j] = f(i, j, dot(ar, &b[j * k..(j + 1) * k]));
                        }
                    }
                }
            });
        }
    });
    out
}

fn rs32(v: i32, s: u32) -> i32 {
    round_shift(i64::from(v), s) as i32
}

fn clamp32(v: i32, max: i32) -> i32 {
    v.clamp(-max, max)
}

impl ExactOps for CpuOps {
    type T = Mat;

    fn load(&self, m: &Mat) -> Mat {
        m.clone()
    }

    fn read(&self, t: &Mat) -> Mat {
        t.clone()
    }

    fn quantize_weights(&self, w: &Mat) -> Mat {
        Reference.quantize_weights(w)
    }

    fn linear(&self, a: &Mat, wq: &Mat, b: &Mat) -> Mat {
        assert_eq!(a.cols, wq.rows, "linear: inner dimensions differ");
        let shift = WQ_FRAC_BITS + ACT_FRAC_BITS - MASTER_FRAC_BITS;
        let bias: Vec<i32> = b.data.iter().map(|&v| v << shift).collect();
        let data = gemm_nt(
            self.threads,
            &to_i16(&a.data),
            &transpose_i16(wq),
            a.rows,
            wq.cols,
            a.cols,
            |_, j, acc| clamp32(rs32(acc + bias[j], WQ_FRAC_BITS), ACT_MAX),
        );
        Mat::new(a.rows, wq.cols, data)
    }

    fn relu(&self, a: &Mat) -> Mat {
        Reference.relu(a)
    }

    fn softmax_xent_grad(&self, z: &Mat, labels: &[u32]) -> Mat {
        Reference.softmax_xent_grad(z, labels)
    }

    fn weight_grad(&self, a: &Mat, d: &Mat, log2_batch: u32) -> Mat {
        assert_eq!(a.rows, d.rows, "weight_grad: batch sizes differ");
        let shift = ACT_FRAC_BITS + GRAD_FRAC_BITS - MASTER_FRAC_BITS + log2_batch;
        let data = gemm_nt(
            self.threads,
            &transpose_i16(a),
            &transpose_i16(d),
            a.cols,
            d.cols,
            a.rows,
            |_, _, acc| rs32(acc, shift),
        );
        Mat::new(a.cols, d.cols, data)
    }

    fn bias_grad(&self, d: &Mat, log2_batch: u32) -> Mat {
        Reference.bias_grad(d, log2_batch)
    }

    fn input_grad(&self, d: &Mat, wq: &Mat) -> Mat {
        assert_eq!(d.cols, wq.cols, "input_grad: output widths differ");
        let data = gemm_nt(
            self.threads,
            &to_i16(&d.data),
            &to_i16(&wq.data),
            d.rows,
            wq.rows,
            d.cols,
            |_, _, acc| clamp32(rs32(acc, WQ_FRAC_BITS), GRAD_MAX),
        );
        Mat::new(d.rows, wq.rows, data)
    }

    fn relu_backward(&self, d: &Mat, a: &Mat) -> Mat {
        Reference.relu_backward(d, a)
    }

    fn momentum(&self, v: &Mat, g: &Mat, momentum_q12: i32) -> Mat {
        Reference.momentum(v, g, momentum_q12)
    }

    fn descend(&self, p: &Mat, v: &Mat, lr_q12: i32, max: i32) -> Mat {
        Reference.descend(p, v, lr_q12, max)
    }
}
