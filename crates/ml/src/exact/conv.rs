//! The geometry of exact mode's convolution and its `im2col` gather.
//!
//! A convolution is a matrix product: `im2col` lays every `kernel × kernel` patch of every
//! input channel out as one row, so that the convolution is `linear(cols, wq, b)` with the
//! filters as the columns of `wq`. The gather moves values and computes nothing, so every
//! implementation shares [`ConvConfig::gather_indices`].

use serde::{Deserialize, Serialize};

/// A convolution in front of an MLP: `filters` square filters of side `kernel` with stride
/// `stride`, no padding, over inputs of `channels × height × width` (channel-major, then rows,
/// then columns), followed by ReLU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvConfig {
    /// Input channels.
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Filter side.
    pub kernel: usize,
    /// Step between patches, in both directions.
    pub stride: usize,
    /// Output channels (filters).
    pub filters: usize,
}

impl ConvConfig {
    /// Output rows: `(height − kernel) / stride + 1`.
    pub fn out_height(&self) -> usize {
        (self.height - self.kernel) / self.stride + 1
    }

    /// Output columns: `(width − kernel) / stride + 1`.
    pub fn out_width(&self) -> usize {
        (self.width - self.kernel) / self.stride + 1
    }

    /// Output positions per sample, `out_height × out_width`.
    pub fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Values per patch, `channels × kernel²`: the length of the convolution's dot products.
    pub fn patch(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// Input values per sample, `channels × height × width`.
    pub fn inputs(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Output values per sample, `positions × filters`: the width of the first dense layer.
    pub fn features(&self) -> usize {
        self.positions() * self.filters
    }

    /// Checks the geometry itself (every side positive, the kernel inside the image); the
    /// accumulator bounds are checked with the model.
    pub fn check(&self) -> Result<(), String> {
        let sides = [
            ("channels", self.channels),
            ("height", self.height),
            ("width", self.width),
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("filters", self.filters),
        ];
        if let Some((name, _)) = sides.iter().find(|(_, v)| *v == 0) {
            return Err(format!("convolution {name} must be at least 1"));
        }
        if self.kernel > self.height || self.kernel > self.width {
            return Err(format!(
                "a {k}×{k} kernel does not fit a {}×{} input",
                self.height,
                self.width,
                k = self.kernel
            ));
        }
        Ok(())
    }

    /// For `samples` inputs of `inputs()` values each, flattened sample after sample: the
    /// source index of every element of the `(samples · positions) × patch` matrix `cols`,
    /// row-major. Row `r = s · positions + oy · out_width + ox` holds the patch at output
    /// position `(oy, ox)` of sample `s`; its column `c · kernel² + ky · kernel + kx` is
    /// `x[s][c · height · width + (oy · stride + ky) · width + ox · stride + kx]`.
    pub fn gather_indices(&self, samples: usize) -> Vec<usize> {
        let (k, plane) = (self.kernel, self.height * self.width);
        let mut out = Vec::with_capacity(samples * self.positions() * self.patch());
        for s in 0..samples {
            for oy in 0..self.out_height() {
                for ox in 0..self.out_width() {
                    for c in 0..self.channels {
                        for ky in 0..k {
                            let row = (oy * self.stride + ky) * self.width + ox * self.stride;
                            let base = s * self.inputs() + c * plane + row;
                            out.extend(base..base + k);
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gather_lays_out_patches_row_by_row() {
        // One 1×3×3 sample 0..9, 2×2 kernel, stride 1: four patches.
        let conv = ConvConfig {
            channels: 1,
            height: 3,
            width: 3,
            kernel: 2,
            stride: 1,
            filters: 1,
        };
        assert_eq!((conv.positions(), conv.patch(), conv.features()), (4, 4, 4));
        assert_eq!(
            conv.gather_indices(1),
            vec![0, 1, 3, 4, 1, 2, 4, 5, 3, 4, 6, 7, 4, 5, 7, 8]
        );
        // Two channels, stride 2 on a 2×5 input: patches at columns 0 and 2; second sample
        // offset by 20.
        let conv = ConvConfig {
            channels: 2,
            height: 2,
            width: 5,
            kernel: 2,
            stride: 2,
            filters: 3,
        };
        assert_eq!((conv.out_height(), conv.out_width()), (1, 2));
        let idx = conv.gather_indices(2);
        assert_eq!(&idx[..8], &[0, 1, 5, 6, 10, 11, 15, 16]);
        assert_eq!(&idx[8..16], &[2, 3, 7, 8, 12, 13, 17, 18]);
        assert_eq!(idx[16], 20);
    }

    #[test]
    fn a_kernel_larger_than_the_image_is_rejected() {
        let conv = ConvConfig {
            channels: 1,
            height: 4,
            width: 4,
            kernel: 5,
            stride: 1,
            filters: 2,
        };
        assert!(conv.check().expect_err("rejected").contains("does not fit"));
    }
}
