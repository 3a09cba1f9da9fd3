//! Pedals language models: decoder-only transformers of the Llama and GPT-2 families in exact
//! mode (integer arithmetic, bit-identical everywhere, docs/exact-ops.md) and in float mode
//! (`f32`, the accuracy reference); Hugging Face checkpoint import and export; generation.

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod dispute;
pub mod error;
pub mod eval;
pub mod exact;
pub mod export;
pub mod finetune_job;
pub mod float;
pub mod format;
pub mod forward;
pub mod generate;
pub mod job;
pub mod quantize;
pub mod sample;
pub mod span;
pub mod spec;
pub mod tokenizer;
pub mod train;
pub mod weights;

pub use checkpoint::{Checkpoint, Tensor};
pub use config::{Family, LmConfig};
pub use error::LmError;
pub use finetune_job::{FinetuneInputs, FinetuneSpec, JobState, Method, default_trace_budget};
pub use forward::KvCache;
pub use generate::{Finish, GenParams, Generation, generate_with};
pub use job::{LmJobInputs, LmJobSpec};
pub use quantize::quantize;
pub use sample::Sampling;
pub use span::Activations;
pub use spec::CanonicalSpec;
pub use tokenizer::Tokenizer;
pub use weights::ExactModel;
