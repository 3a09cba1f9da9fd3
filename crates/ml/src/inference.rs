//! Batch inference jobs: a model given by CID run over a dataset, its outputs committed chunk
//! by chunk so that validators sample chunks exactly as they sample training steps.
//!
//! ```text
//!  h_0     = the model's state hash (docs/commitments.md §3)
//!  h_(i+1) = keccak256(output bytes of chunk i)      chunk i = samples [i·c, min((i+1)·c, n))
//!  trace root = Merkle root of [h_0 .. h_N], N = ceil(n / c) chunks
//!  result  = the output bytes of every chunk, in order (its CID is the posted result CID)
//! ```
//!
//! A chunk's output bytes are its exact logits (Q8), row by row, each `i32` little-endian.
//! Chunks do not depend on each other, so the "checkpoint" a validator fetches for chunk `i`
//! is the worker's committed output `h_(i+1)` and the model `h_0`: it recomputes the chunk and
//! compares bytes.

use alloy_primitives::{B256, keccak256};

use crate::{Dataset, MlError, MlpState, Trainer, exact::ExactOps, exact::Mat};

/// Number of chunks of `chunk` samples in `samples`.
pub fn chunk_count(samples: u64, chunk: u64) -> u64 {
    samples.div_ceil(chunk.max(1))
}

/// The exact logits of chunk `index` (`chunk` samples per chunk) as committed bytes.
pub fn run_chunk<O: ExactOps>(
    trainer: &Trainer<O>,
    data: &Dataset,
    model: &MlpState,
    chunk: u64,
    index: u64,
) -> Result<Vec<u8>, MlError> {
    trainer.config().model.check_dataset(data)?;
    let n = data.len() as u64;
    let start = index.saturating_mul(chunk);
    if chunk == 0 || start >= n {
        return Err(MlError::Config(format!(
            "chunk {index} of {chunk} samples is past the dataset's {n} samples"
        )));
    }
    let end = (start + chunk).min(n);
    let features = data.features;
    let (start, end) = (start as usize, end as usize);
    let inputs = Mat::new(
        end - start,
        features,
        data.inputs[start * features..end * features].to_vec(),
    );
    Ok(encode(&trainer.logits(model, &inputs)))
}

fn encode(logits: &Mat) -> Vec<u8> {
    logits.data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A finished batch-inference run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferenceOutcome {
    /// `h_0 .. h_N`.
    pub hashes: Vec<B256>,
    /// Each chunk's output bytes.
    pub chunks: Vec<Vec<u8>>,
}

impl InferenceOutcome {
    /// The result blob: every chunk's outputs, in order.
    pub fn result_bytes(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

/// Runs every chunk; `model_bytes` are the model's canonical bytes (for `h_0`).
pub fn run<O: ExactOps>(
    trainer: &Trainer<O>,
    data: &Dataset,
    model: &MlpState,
    model_bytes: &[u8],
    chunk: u64,
) -> Result<InferenceOutcome, MlError> {
    let count = chunk_count(data.len() as u64, chunk);
    let mut hashes = vec![pedals_core::checkpoint_hash(model_bytes)];
    let mut chunks = Vec::with_capacity(count as usize);
    for i in 0..count {
        let out = run_chunk(trainer, data, model, chunk, i)?;
        hashes.push(keccak256(&out));
        chunks.push(out);
        trainer.report(i + 1);
    }
    Ok(InferenceOutcome { hashes, chunks })
}

/// Splits a result blob back into its chunks and returns the trace `h_0 .. h_N` they commit
/// to, given the model bytes; fails when the blob's length does not fit `samples × classes`.
pub fn result_trace(
    result: &[u8],
    model_bytes: &[u8],
    samples: u64,
    classes: u64,
    chunk: u64,
) -> Result<Vec<B256>, MlError> {
    let row = classes * 4;
    if result.len() as u64 != samples * row {
        return Err(MlError::Config(format!(
            "an inference result of {} bytes, not {samples} samples × {classes} logits × 4",
            result.len()
        )));
    }
    let mut hashes = vec![pedals_core::checkpoint_hash(model_bytes)];
    hashes.extend(result.chunks((chunk * row) as usize).map(keccak256));
    Ok(hashes)
}

/// The predicted class of each sample in a result blob (the largest logit, lowest on a tie).
pub fn predictions(result: &[u8], classes: usize) -> Vec<u32> {
    result
        .chunks_exact(classes * 4)
        .map(|row| {
            let logits: Vec<i32> = row
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            crate::trainer::argmax(&logits)
        })
        .collect()
}
