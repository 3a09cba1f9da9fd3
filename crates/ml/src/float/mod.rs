//! Float mode: the same MLP as exact mode, trained with burn autodiff on `f32`.
//!
//! ```text
//!   MlpConfig (widths, batch, lr_q12, momentum_q12) ── same as exact mode
//!   MlpState::init(seed) / 2^16 ──► FloatModel (f32 weights, biases, velocities on a device)
//!   Dataset ──batch_indices(seed, i)──► x_i = Q8 / 256 (f32), y_i
//!   step i: forward (x·W + b, ReLU between layers) on device.autodiff()
//!           → mean softmax cross-entropy → backward()
//!           → v = μ·v + g;  w = w − lr·v      (lr = lr_q12 / 4096, μ = momentum_q12 / 4096)
//! ```
//!
//! Float mode is the accuracy reference for exact mode and the path for jobs that accept
//! tolerance-checked verification. It is never slashable: floating-point sums depend on their
//! order, so two devices (or two thread counts) need not agree to the bit. Its
//! [`FloatState::state_hash`] is only a convenience for redundancy checks between runs on the
//! same backend; across backends compare with [`FloatState::max_abs_diff`] and a tolerance.
//!
//! The initial weights are exact mode's initial weights (same seed, same Glorot-uniform
//! limits), converted from Q16 to `f32` without rounding, so both modes start from the same
//! point and see the same mini-batches in the same order.

mod model;
mod trainer;

pub use model::{FloatMat, FloatModel, FloatState};
pub use trainer::FloatTrainer;
