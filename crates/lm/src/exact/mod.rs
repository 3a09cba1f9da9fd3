//! Exact-mode arithmetic for transformers (docs/exact-ops.md, "Transformers").

pub mod arith;
pub(crate) mod fixed;
pub mod ops;
mod tables;
