//! Pedals ML: the exact (fixed-point) engine that every job, re-execution and dispute runs on,
//! and the datasets it trains on.
//!
//! ```text
//!   Dataset ──batch_indices(seed, i)──► x_i, y_i
//!                                         │
//!   MlpState h_i ──step: quantize → linear/relu … → softmax_xent_grad → backward → update──► h_{i+1}
//!                  (ExactOps: Reference = the spec in plain Rust; BurnOps = burn Int tensors
//!                   on flex, wgpu or CUDA; both give the same bits)
//!   [h_0 .. h_N] ──pedals_core::TraceCommitment──► trace root
//! ```
//!
//! The arithmetic is specified in `docs/exact-ops.md`.

mod data;
pub mod dispute;
mod error;
pub mod exact;
pub mod float;
pub mod inference;
mod mlp;
mod spec;
mod trainer;

pub use data::{
    DATASET_MAGIC, DATASET_VERSION, DataError, Dataset, DatasetSource, INPUT_FRAC_BITS, INPUT_MAX,
    LabelColumn, LoadedDataset, MAX_CLASSES, MNIST_FILE_CIDS, MNIST_PACKAGE_DIR,
    MNIST_PACKAGE_VERSION, SourceFile, quantize_input,
};
pub use error::MlError;
pub use float::{FloatModel, FloatState, FloatTrainer};
pub use mlp::{MlpConfig, MlpState, TracedTensor};
pub use spec::{DisputeCommitments, InferenceSpec, JobSpec, SPEC_VERSION};
pub use trainer::{
    AUDITED_TENSOR, Session, TraceSoFar, TrainConfig, TrainOutcome, Trainer, audit_root,
    batch_indices, loss_micro,
};
