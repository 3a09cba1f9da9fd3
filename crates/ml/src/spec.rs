//! The job spec: what a requester asks for, in canonical bytes whose sha2-256 digest is the
//! job's on-chain `specHash`, so the spec is also a content-addressed blob (its CIDv1 is
//! `cid_from_digest(specHash)`).

use alloy_primitives::B256;
use pedals_core::{Cid, cid_from_digest, cid_of, parse_cid};
use serde::{Deserialize, Serialize};

use crate::{MlError, TrainConfig};

/// Version of the spec format.
pub const SPEC_VERSION: u32 = 1;

/// A job: training (the exact-mode job, the dataset and the initial model by CID) or, with
/// [`JobSpec::inference`] set, batch inference (the model given by CID run over the dataset in
/// chunks; see [`crate::inference`]).
///
/// The canonical bytes are the compact JSON of this struct (fields in declaration order, no
/// whitespace, integers only), so every implementation that serializes the same values gets
/// the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// [`SPEC_VERSION`].
    pub version: u32,
    /// Model, optimizer, seed, steps, checkpoint interval.
    pub train: TrainConfig,
    /// CIDv1 (string form) of the dataset's canonical bytes.
    pub dataset: String,
    /// CIDv1 (string form) of the initial model state's canonical bytes (for inference, the
    /// model that is run).
    pub model: String,
    /// Present for a batch-inference job: `train.model` is the architecture, `train.steps` the
    /// number of chunks, and the optimizer fields are unused. Absent (and not serialized) for
    /// training, so training specs keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<InferenceSpec>,
}

/// How a batch-inference job splits its dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferenceSpec {
    /// Samples per chunk (the last may be shorter), at most [`crate::exact::MAX_BATCH`]; one
    /// chunk is one step of the trace.
    pub chunk: u64,
}

impl JobSpec {
    /// A spec; checks the configuration and both CIDs.
    pub fn new(train: TrainConfig, dataset: &Cid, model: &Cid) -> Result<Self, MlError> {
        let spec = Self {
            version: SPEC_VERSION,
            train,
            dataset: dataset.to_string(),
            model: model.to_string(),
            inference: None,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// A batch-inference spec: `model` (architecture `config`) run over the `samples` of
    /// `dataset` in chunks of `chunk`.
    pub fn inference(
        config: crate::MlpConfig,
        samples: usize,
        chunk: u64,
        dataset: &Cid,
        model: &Cid,
    ) -> Result<Self, MlError> {
        let spec = Self {
            version: SPEC_VERSION,
            train: TrainConfig {
                model: config,
                seed: 0,
                steps: crate::inference::chunk_count(samples as u64, chunk.max(1)),
                checkpoint_every: 1,
            },
            dataset: dataset.to_string(),
            model: model.to_string(),
            inference: Some(InferenceSpec { chunk }),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the version, the training configuration and the CIDs.
    pub fn validate(&self) -> Result<(), MlError> {
        if self.version != SPEC_VERSION {
            return Err(MlError::Config(format!(
                "job spec version {} is not {SPEC_VERSION}: upgrade Pedals to run this job",
                self.version
            )));
        }
        self.train.model.validate()?;
        if self.train.steps == 0 || self.train.checkpoint_every == 0 {
            return Err(MlError::Config(
                "a job needs at least one step and a checkpoint interval of at least 1".into(),
            ));
        }
        if let Some(inference) = &self.inference
            && !(1..=crate::exact::MAX_BATCH as u64).contains(&inference.chunk)
        {
            return Err(MlError::Config(format!(
                "an inference chunk of {} samples: it must be 1 to {}",
                inference.chunk,
                crate::exact::MAX_BATCH
            )));
        }
        self.dataset_cid()?;
        self.model_cid()?;
        Ok(())
    }

    /// The dataset's CID.
    pub fn dataset_cid(&self) -> Result<Cid, MlError> {
        parse_cid(&self.dataset).map_err(|e| MlError::Config(format!("dataset CID: {e}")))
    }

    /// The initial model's CID.
    pub fn model_cid(&self) -> Result<Cid, MlError> {
        parse_cid(&self.model).map_err(|e| MlError::Config(format!("model CID: {e}")))
    }

    /// The canonical bytes.
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a job spec serializes")
    }

    /// Reads canonical bytes: refuses anything that does not re-encode to the same bytes.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, MlError> {
        let spec: Self = serde_json::from_slice(bytes)
            .map_err(|e| MlError::Config(format!("the job spec is not valid JSON: {e}")))?;
        if spec.to_canonical_bytes() != bytes {
            return Err(MlError::Config(
                "the job spec is not in canonical form (compact JSON, fields in order)".into(),
            ));
        }
        spec.validate()?;
        Ok(spec)
    }

    /// The on-chain `specHash`: the sha2-256 digest of the canonical bytes.
    pub fn spec_hash(&self) -> B256 {
        let cid = self.cid();
        B256::from_slice(cid.hash().digest())
    }

    /// The spec's CIDv1 (raw, sha2-256).
    pub fn cid(&self) -> Cid {
        cid_of(&self.to_canonical_bytes())
    }

    /// The CID of the spec whose `specHash` is `hash`.
    pub fn cid_for_hash(hash: &B256) -> Cid {
        cid_from_digest(hash)
    }
}
