//! Exact mode: fixed-point arithmetic whose results are the same bits on every machine.

mod burn_ops;
mod conv;
mod cpu;
mod exp_lut;
mod kernel;
mod ops;
mod spec;

pub use burn_ops::BackendError;
pub use burn_ops::BurnOps;
pub use conv::ConvConfig;
pub use cpu::CpuOps;
pub use kernel::Isa;
pub use ops::{ExactOps, Mat, Reference};
pub use spec::*;

/// The exponential table, `round(2^15 · e^(−k/256))` for `k = 0..=2048`.
pub fn exp_table() -> &'static [i32] {
    &exp_lut::EXP_LUT
}
