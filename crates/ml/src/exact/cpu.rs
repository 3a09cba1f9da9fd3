//! [`ExactOps`] with this crate's own CPU kernels for the three matrix products of a step.
//!
//! Every matrix operand of exact mode fits `i16` (activations and signals are clamped to
//! ±1024, forward weights to ±2048), and every accumulator fits `i32` by the bounds of
//! `docs/exact-ops.md`. So the products run on [`super::kernel`]: operands packed as `i16`
//! rows along the summed dimension, 4 × 4 register tiles, AVX-512 VNNI, AVX2 or portable code
//! picked at run time, output rows split across threads. Integer sums are associative and
//! never overflow here, so any instruction set, tiling or thread split gives the bits of
//! [`Reference`]. The element-wise ops are the reference's formulas in `i32` (every operand and
//! intermediate fits by the same bounds); the softmax and the gathers are the reference's own.

use std::num::NonZeroUsize;

use super::{
    conv::ConvConfig,
    kernel::{Isa, PARALLEL_MIN_MACS, Packed, product},
    ops::{ExactOps, Mat, Reference},
    spec::*,
};

/// Exact-mode operations on the CPU with blocked, multi-threaded i16 dot-product kernels.
#[derive(Debug, Clone, Copy)]
pub struct CpuOps {
    threads: usize,
    isa: Isa,
    split_macs: usize,
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
    /// Kernels that use up to `threads` threads (at least one) and the fastest instruction
    /// set of this CPU.
    pub fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            isa: Isa::detect(),
            split_macs: PARALLEL_MIN_MACS,
        }
    }

    /// The same kernels, splitting every product of at least `macs` multiply-adds over the
    /// threads (default 16 M: smaller products run faster on one thread). Results never
    /// depend on it; tests set 0 so that small jobs really run split.
    pub fn with_split_threshold(self, macs: usize) -> Self {
        Self {
            split_macs: macs,
            ..self
        }
    }

    /// The same kernels on instruction set `isa`, or `None` if this CPU lacks it.
    pub fn with_isa(self, isa: Isa) -> Option<Self> {
        isa.is_supported().then_some(Self { isa, ..self })
    }

    /// The instruction set in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }
}

fn rs32(v: i32, s: u32) -> i32 {
    round_shift(i64::from(v), s) as i32
}

fn clamp32(v: i32, max: i32) -> i32 {
    v.clamp(-max, max)
}

/// `f` over two same-shaped matrices, in `i32`: the element-wise ops' operands and
/// intermediates stay below 2^31 by the bounds of docs/exact-ops.md (`μ·v` and `lr·v` are at
/// most 2^30), so this is the reference's arithmetic without widening to `i64`.
fn zip32(a: &Mat, b: &Mat, f: impl Fn(i32, i32) -> i32) -> Mat {
    assert_eq!((a.rows, a.cols), (b.rows, b.cols), "shape mismatch");
    let data = a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect();
    Mat::new(a.rows, a.cols, data)
}

fn map32(a: &Mat, f: impl Fn(i32) -> i32) -> Mat {
    Mat::new(a.rows, a.cols, a.data.iter().map(|&x| f(x)).collect())
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
        map32(w, |v| {
            clamp32(rs32(v, MASTER_FRAC_BITS - WQ_FRAC_BITS), WQ_MAX)
        })
    }

    fn linear(&self, a: &Mat, wq: &Mat, b: &Mat) -> Mat {
        assert_eq!(a.cols, wq.rows, "linear: inner dimensions differ");
        let shift = WQ_FRAC_BITS + ACT_FRAC_BITS - MASTER_FRAC_BITS;
        let bias: Vec<i32> = b.data.iter().map(|&v| v << shift).collect();
        let rows = Packed::rows_of(&a.data, a.rows, a.cols);
        let cols = Packed::columns_of(&wq.data, wq.rows, wq.cols);
        let data = product(
            self.isa,
            self.threads,
            self.split_macs,
            &rows,
            &cols,
            |_, j, acc| clamp32(rs32(acc + bias[j], WQ_FRAC_BITS), ACT_MAX),
        );
        Mat::new(a.rows, wq.cols, data)
    }

    fn relu(&self, a: &Mat) -> Mat {
        map32(a, |v| v.max(0))
    }

    fn im2col(&self, x: &Mat, conv: &ConvConfig) -> Mat {
        Reference.im2col(x, conv)
    }

    fn reshape(&self, t: &Mat, rows: usize, cols: usize) -> Mat {
        Reference.reshape(t, rows, cols)
    }

    fn softmax_xent_grad(&self, z: &Mat, labels: &[u32]) -> Mat {
        Reference.softmax_xent_grad(z, labels)
    }

    fn weight_grad(&self, a: &Mat, d: &Mat, log2_batch: u32) -> Mat {
        assert_eq!(a.rows, d.rows, "weight_grad: batch sizes differ");
        let shift = ACT_FRAC_BITS + GRAD_FRAC_BITS - MASTER_FRAC_BITS + log2_batch;
        let rows = Packed::columns_of(&a.data, a.rows, a.cols);
        let cols = Packed::columns_of(&d.data, d.rows, d.cols);
        let data = product(
            self.isa,
            self.threads,
            self.split_macs,
            &rows,
            &cols,
            |_, _, acc| rs32(acc, shift),
        );
        Mat::new(a.cols, d.cols, data)
    }

    fn bias_grad(&self, d: &Mat, log2_batch: u32) -> Mat {
        let mut sum = vec![0i32; d.cols];
        for row in d.data.chunks_exact(d.cols.max(1)) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v;
            }
        }
        let shift = MASTER_FRAC_BITS - GRAD_FRAC_BITS;
        Mat::new(
            1,
            d.cols,
            sum.into_iter()
                .map(|s| rs32(s << shift, log2_batch))
                .collect(),
        )
    }

    fn input_grad(&self, d: &Mat, wq: &Mat) -> Mat {
        assert_eq!(d.cols, wq.cols, "input_grad: output widths differ");
        let rows = Packed::rows_of(&d.data, d.rows, d.cols);
        let cols = Packed::rows_of(&wq.data, wq.rows, wq.cols);
        let data = product(
            self.isa,
            self.threads,
            self.split_macs,
            &rows,
            &cols,
            |_, _, acc| clamp32(rs32(acc, WQ_FRAC_BITS), GRAD_MAX),
        );
        Mat::new(d.rows, wq.rows, data)
    }

    fn relu_backward(&self, d: &Mat, a: &Mat) -> Mat {
        zip32(d, a, |g, x| if x > 0 && x < ACT_MAX { g } else { 0 })
    }

    fn momentum(&self, v: &Mat, g: &Mat, momentum_q12: i32) -> Mat {
        zip32(v, g, |v, g| {
            clamp32(rs32(momentum_q12 * v, HYPER_FRAC_BITS) + g, VELOCITY_MAX)
        })
    }

    fn descend(&self, p: &Mat, v: &Mat, lr_q12: i32, max: i32) -> Mat {
        zip32(p, v, |p, v| {
            clamp32(p - rs32(lr_q12 * v, HYPER_FRAC_BITS), max)
        })
    }
}
