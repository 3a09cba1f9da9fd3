//! Exact-mode arithmetic for transformers (docs/exact-ops.md, "Transformers").

pub mod arith;
pub mod device;
mod fixed;
pub mod kernel;
pub mod ops;
pub(crate) mod tables;

pub use fixed::rotary_table;
