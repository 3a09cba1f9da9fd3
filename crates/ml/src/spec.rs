//! The job spec: what a requester asks for, in canonical bytes whose sha2-256 digest is the
//! job's on-chain `specHash`, so the spec is also a content-addressed blob (its CIDv1 is
//! `cid_from_digest(specHash)`).

use alloy_primitives::B256;
use pedals_core::{Cid, cid_from_digest, cid_of, parse_cid};
use serde::{Deserialize, Serialize};

use crate::{Dataset, MlError, MlpState, TrainConfig};

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
    /// The requester's commitments a dispute opens on-chain: present for a training job
    /// (and required), absent for batch inference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute: Option<DisputeCommitments>,
    /// Present for a batch-inference job: `train.model` is the architecture, `train.steps` the
    /// number of chunks, and the optimizer fields are unused. Absent (and not serialized) for
    /// training, so training specs keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<InferenceSpec>,
}

/// What the dispute referee needs from the requester, committed in the spec (and so by the
/// on-chain `specHash`): the dataset's sample count and row root, from which a contract can
/// open any sample of any mini-batch, and the hash of the initial state `h_0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeCommitments {
    /// Samples in the dataset.
    pub samples: u64,
    /// [`Dataset::row_root`] of the dataset.
    pub data_root: B256,
    /// State hash of the initial model, `h_0` of every honest trace.
    pub init_hash: B256,
}

/// How a batch-inference job splits its dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferenceSpec {
    /// Samples per chunk (the last may be shorter), at most [`crate::exact::MAX_BATCH`]; one
    /// chunk is one step of the trace.
    pub chunk: u64,
}

impl JobSpec {
    /// A training spec for `dataset` and the initial model whose canonical bytes are
    /// `model`: names both by CID and commits to the dataset's rows and the model's state
    /// hash. Checks the configuration, and that the model and the data fit it.
    pub fn new(train: TrainConfig, dataset: &Dataset, model: &[u8]) -> Result<Self, MlError> {
        train.model.check_dataset(dataset)?;
        let init = MlpState::from_bytes(&train.model, model)?;
        let spec = Self {
            version: SPEC_VERSION,
            train,
            dataset: dataset.cid()?.to_string(),
            model: cid_of(model).to_string(),
            dispute: Some(DisputeCommitments {
                samples: dataset.len() as u64,
                data_root: dataset.row_root()?,
                init_hash: init.state_hash()?,
            }),
            inference: None,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks that `dataset` and the initial `model` are the ones this spec commits to,
    /// beyond their CIDs: the sample count, the row root and the initial state hash. A
    /// worker runs this before it claims; a requester before it posts.
    pub fn check_commitments(&self, dataset: &Dataset, model: &MlpState) -> Result<(), MlError> {
        let Some(d) = &self.dispute else {
            return Ok(());
        };
        let bad = |what: &str| {
            Err(MlError::Config(format!(
                "the spec's {what} does not match its files: the requester built the spec from \
                 other files; do not run this job"
            )))
        };
        if d.samples != dataset.len() as u64 {
            return bad("sample count");
        }
        if d.data_root != dataset.row_root()? {
            return bad("dataset row root");
        }
        if d.init_hash != model.state_hash()? {
            return bad("initial state hash");
        }
        Ok(())
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
            dispute: None,
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
        match (&self.inference, &self.dispute) {
            (None, None) => {
                return Err(MlError::Config(
                    "a training spec must carry its dispute commitments (samples, data_root, \
                     init_hash): build it with JobSpec::new"
                        .into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(MlError::Config(
                    "a batch-inference spec carries no dispute commitments".into(),
                ));
            }
            _ => {}
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
