//! pedals-lm integration tests: real Hugging Face checkpoints (made by scripts/lm_fixtures.py
//! with `transformers`, committed under tests/fixtures) against their reference outputs.

mod bad_input;
mod batch;
mod device;
mod dispute;
mod dispute_full;
mod dispute_vectors;
mod finetune;
mod finetune_job;
mod fixtures;
mod full_finetune;
mod full_vectors;
mod generate;
mod grad_vectors;
mod grads;
mod job;
mod reference;
mod span;
mod span_trace;
mod span_vectors;
mod step_vectors;
mod store;
mod vectors;
mod vocab_vectors;
