//! The exact-mode operations, written once against [`ExactOps`] and implemented twice: by
//! [`Reference`] (plain Rust over `i64`, checking that no value leaves `i32`; the executable
//! specification) and by [`BurnOps`] (burn `Int` tensors, on any burn device). Tests require
//! both to agree bit for bit.

use super::{
    conv::ConvConfig,
    exp_lut::{EXP_LUT, EXP_LUT_LEN},
    spec::*,
};

/// A row-major `i32` matrix, the exchange format of every implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mat {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows × cols` values, row-major.
    pub data: Vec<i32>,
}

impl Mat {
    /// A matrix from its parts; `data.len()` must be `rows × cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<i32>) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "matrix data does not match its shape"
        );
        Self { rows, cols, data }
    }

    /// An all-zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self::new(rows, cols, vec![0; rows * cols])
    }

    fn at(&self, r: usize, c: usize) -> i64 {
        i64::from(self.data[r * self.cols + c])
    }
}

/// The operations of an exact-mode training step. `T` is the implementation's matrix type;
/// a bias or a per-class vector is a `1 × n` matrix.
pub trait ExactOps {
    /// The matrix type.
    type T: Clone;

    /// Uploads a matrix.
    fn load(&self, m: &Mat) -> Self::T;
    /// Downloads a matrix.
    fn read(&self, t: &Self::T) -> Mat;

    /// `Wq = clamp(rs(W, 4), ±WQ_MAX)`: master Q16 weights to forward Q12 weights.
    fn quantize_weights(&self, w: &Self::T) -> Self::T;
    /// `out[i][j] = clamp(rs(Σ_k a[i][k]·wq[k][j] + (b[j] << 4), 12), ±ACT_MAX)`.
    fn linear(&self, a: &Self::T, wq: &Self::T, b: &Self::T) -> Self::T;
    /// `max(a, 0)`.
    fn relu(&self, a: &Self::T) -> Self::T;
    /// The patches of `x` (`samples × conv.inputs()`) as the rows of a
    /// `(samples · positions) × patch` matrix, by [`ConvConfig::gather_indices`].
    fn im2col(&self, x: &Self::T, conv: &ConvConfig) -> Self::T;
    /// The same row-major values as a `rows × cols` matrix.
    fn reshape(&self, t: &Self::T, rows: usize, cols: usize) -> Self::T;
    /// Per row: `e_j = EXP_LUT[max(z) − z_j]`, `p_j = (e_j << 15) / Σe` (floor),
    /// `dz_j = rs(p_j − [j = y]·2^15, 5)` (Q10), and 0 where the logit is saturated
    /// (`|z_j| = ACT_MAX`), since the clamp passes no gradient there.
    fn softmax_xent_grad(&self, z: &Self::T, labels: &[u32]) -> Self::T;
    /// `g[k][j] = rs(Σ_i a[i][k]·d[i][j], 2 + log2 B)`: mean weight gradient, Q16.
    fn weight_grad(&self, a: &Self::T, d: &Self::T, log2_batch: u32) -> Self::T;
    /// `g[j] = rs((Σ_i d[i][j]) << 6, log2 B)`: mean bias gradient, Q16.
    fn bias_grad(&self, d: &Self::T, log2_batch: u32) -> Self::T;
    /// `out[i][k] = clamp(rs(Σ_j d[i][j]·wq[k][j], 12), ±GRAD_MAX)` (Q10).
    fn input_grad(&self, d: &Self::T, wq: &Self::T) -> Self::T;
    /// `d[i][k]` where `0 < a[i][k] < ACT_MAX`, else 0: the derivative of the clamped ReLU.
    fn relu_backward(&self, d: &Self::T, a: &Self::T) -> Self::T;
    /// `v' = clamp(rs(μ·v, 12) + g, ±VELOCITY_MAX)`.
    fn momentum(&self, v: &Self::T, g: &Self::T, momentum_q12: i32) -> Self::T;
    /// `p' = clamp(p − rs(lr·v, 12), ±max)`.
    fn descend(&self, p: &Self::T, v: &Self::T, lr_q12: i32, max: i32) -> Self::T;
}

/// The executable specification: plain loops over `i64` that assert every result fits `i32`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

fn fit(v: i64) -> i32 {
    i32::try_from(v).expect("exact-mode bound violated: a value left i32")
}

fn checked_dot(acc: i64) -> i64 {
    assert!(
        i32::try_from(acc).is_ok(),
        "exact-mode bound violated: an accumulator left i32"
    );
    acc
}

impl Reference {
    fn map(m: &Mat, f: impl Fn(i64) -> i64) -> Mat {
        Mat::new(
            m.rows,
            m.cols,
            m.data.iter().map(|&v| fit(f(i64::from(v)))).collect(),
        )
    }

    fn zip(a: &Mat, b: &Mat, f: impl Fn(i64, i64) -> i64) -> Mat {
        assert_eq!((a.rows, a.cols), (b.rows, b.cols), "shape mismatch");
        Mat::new(
            a.rows,
            a.cols,
            a.data
                .iter()
                .zip(&b.data)
                .map(|(&x, &y)| fit(f(i64::from(x), i64::from(y))))
                .collect(),
        )
    }
}

impl ExactOps for Reference {
    type T = Mat;

    fn load(&self, m: &Mat) -> Mat {
        m.clone()
    }

    fn read(&self, t: &Mat) -> Mat {
        t.clone()
    }

    fn quantize_weights(&self, w: &Mat) -> Mat {
        Self::map(w, |v| {
            clamp_sym(round_shift(v, MASTER_FRAC_BITS - WQ_FRAC_BITS), WQ_MAX)
        })
    }

    fn linear(&self, a: &Mat, wq: &Mat, b: &Mat) -> Mat {
        assert_eq!(a.cols, wq.rows, "linear: inner dimensions differ");
        assert_eq!((b.rows, b.cols), (1, wq.cols), "linear: bias shape");
        let mut out = Mat::zeros(a.rows, wq.cols);
        for i in 0..a.rows {
            for j in 0..wq.cols {
                let mut acc = 0i64;
                for k in 0..a.cols {
                    acc = checked_dot(acc + a.at(i, k) * wq.at(k, j));
                }
                let acc = checked_dot(
                    acc + (b.at(0, j) << (WQ_FRAC_BITS + ACT_FRAC_BITS - MASTER_FRAC_BITS)),
                );
                out.data[i * wq.cols + j] = fit(clamp_sym(round_shift(acc, WQ_FRAC_BITS), ACT_MAX));
            }
        }
        out
    }

    fn relu(&self, a: &Mat) -> Mat {
        Self::map(a, |v| v.max(0))
    }

    fn im2col(&self, x: &Mat, conv: &ConvConfig) -> Mat {
        assert_eq!(x.cols, conv.inputs(), "im2col: sample width");
        let data = conv
            .gather_indices(x.rows)
            .into_iter()
            .map(|i| x.data[i])
            .collect();
        Mat::new(x.rows * conv.positions(), conv.patch(), data)
    }

    fn reshape(&self, t: &Mat, rows: usize, cols: usize) -> Mat {
        Mat::new(rows, cols, t.data.clone())
    }

    fn softmax_xent_grad(&self, z: &Mat, labels: &[u32]) -> Mat {
        assert_eq!(labels.len(), z.rows, "one label per row");
        let mut out = Mat::zeros(z.rows, z.cols);
        for (i, &label) in labels.iter().enumerate() {
            let row = &z.data[i * z.cols..(i + 1) * z.cols];
            let max = i64::from(*row.iter().max().expect("at least one class"));
            let e: Vec<i64> = row
                .iter()
                .map(|&v| {
                    let k = usize::try_from(max - i64::from(v)).expect("non-negative");
                    assert!(k < EXP_LUT_LEN, "logit spread beyond the exponential table");
                    i64::from(EXP_LUT[k])
                })
                .collect();
            let sum: i64 = e.iter().sum();
            for (j, &ej) in e.iter().enumerate() {
                let p = checked_dot(ej << PROB_FRAC_BITS) / sum;
                let target = if label as usize == j {
                    1i64 << PROB_FRAC_BITS
                } else {
                    0
                };
                let saturated = i64::from(row[j]).abs() >= i64::from(ACT_MAX);
                out.data[i * z.cols + j] = if saturated {
                    0
                } else {
                    fit(round_shift(p - target, PROB_FRAC_BITS - GRAD_FRAC_BITS))
                };
            }
        }
        out
    }

    fn weight_grad(&self, a: &Mat, d: &Mat, log2_batch: u32) -> Mat {
        assert_eq!(a.rows, d.rows, "weight_grad: batch sizes differ");
        let shift = ACT_FRAC_BITS + GRAD_FRAC_BITS - MASTER_FRAC_BITS + log2_batch;
        let mut out = Mat::zeros(a.cols, d.cols);
        for k in 0..a.cols {
            for j in 0..d.cols {
                let mut acc = 0i64;
                for i in 0..a.rows {
                    acc = checked_dot(acc + a.at(i, k) * d.at(i, j));
                }
                out.data[k * d.cols + j] = fit(round_shift(acc, shift));
            }
        }
        out
    }

    fn bias_grad(&self, d: &Mat, log2_batch: u32) -> Mat {
        let mut out = Mat::zeros(1, d.cols);
        for j in 0..d.cols {
            let sum: i64 = (0..d.rows).map(|i| d.at(i, j)).sum();
            let scaled = checked_dot(sum << (MASTER_FRAC_BITS - GRAD_FRAC_BITS));
            out.data[j] = fit(round_shift(scaled, log2_batch));
        }
        out
    }

    fn input_grad(&self, d: &Mat, wq: &Mat) -> Mat {
        assert_eq!(d.cols, wq.cols, "input_grad: output widths differ");
        let mut out = Mat::zeros(d.rows, wq.rows);
        for i in 0..d.rows {
            for k in 0..wq.rows {
                let mut acc = 0i64;
                for j in 0..d.cols {
                    acc = checked_dot(acc + d.at(i, j) * wq.at(k, j));
                }
                out.data[i * wq.rows + k] =
                    fit(clamp_sym(round_shift(acc, WQ_FRAC_BITS), GRAD_MAX));
            }
        }
        out
    }

    fn relu_backward(&self, d: &Mat, a: &Mat) -> Mat {
        Self::zip(d, a, |g, x| {
            if x > 0 && x < i64::from(ACT_MAX) {
                g
            } else {
                0
            }
        })
    }

    fn momentum(&self, v: &Mat, g: &Mat, momentum_q12: i32) -> Mat {
        let mu = i64::from(momentum_q12);
        Self::zip(v, g, |v, g| {
            clamp_sym(
                round_shift(checked_dot(mu * v), HYPER_FRAC_BITS) + g,
                VELOCITY_MAX,
            )
        })
    }

    fn descend(&self, p: &Mat, v: &Mat, lr_q12: i32, max: i32) -> Mat {
        let lr = i64::from(lr_q12);
        Self::zip(p, v, |p, v| {
            clamp_sym(p - round_shift(checked_dot(lr * v), HYPER_FRAC_BITS), max)
        })
    }
}
