//! What a node serves to its peers: blobs from its store, and the checkpoints of the jobs it
//! trained with their openings against the trace root it posted.
//!
//! The worker stores a checkpoint every `checkpoint_every` steps, so the state after any other
//! step is recomputed from the nearest earlier checkpoint (at most `checkpoint_every - 1`
//! steps) and checked against the stored trace before it is sent.

use std::sync::Arc;

use pedals_core::{Cid, TraceCommitment, parse_cid};
use pedals_ml::{Dataset, JobSpec, MlpState, Trainer, exact::CpuOps};
use pedals_p2p::{CheckpointOpening, ContentSource};
use pedals_store::Store;

/// A [`ContentSource`] over a node's store.
#[derive(Debug, Clone)]
pub struct StoreSource {
    store: Arc<Store>,
    threads: usize,
    /// Debug builds only: replay as a worker that falsified this step (see
    /// `Trainer::falsifying`), so a lying test worker's answers stay consistent.
    #[cfg(debug_assertions)]
    falsify: Vec<u64>,
    /// Debug builds only: serve no checkpoint at all.
    #[cfg(debug_assertions)]
    withhold: bool,
    /// Debug builds only: answer a request for step `i` with the opening of step `i + 1`.
    #[cfg(debug_assertions)]
    wrong_openings: bool,
}

impl StoreSource {
    /// Serves from `store`, replaying steps on `threads` threads when a checkpoint is not
    /// stored.
    pub fn new(store: Arc<Store>, threads: usize) -> Self {
        Self {
            store,
            threads,
            #[cfg(debug_assertions)]
            falsify: Vec::new(),
            #[cfg(debug_assertions)]
            withhold: false,
            #[cfg(debug_assertions)]
            wrong_openings: false,
        }
    }

    /// Debug builds only: serves no checkpoint (a worker that withholds its data).
    #[cfg(debug_assertions)]
    pub fn withholding(mut self) -> Self {
        self.withhold = true;
        self
    }

    /// Debug builds only: answers for step `i` with the opening of step `i + 1`.
    #[cfg(debug_assertions)]
    pub fn serving_wrong_openings(mut self) -> Self {
        self.wrong_openings = true;
        self
    }

    /// Debug builds only: replays as a worker that falsified `steps` would.
    #[cfg(debug_assertions)]
    pub fn falsifying(mut self, steps: impl IntoIterator<Item = u64>) -> Self {
        self.falsify = steps.into_iter().collect();
        self
    }

    /// The trainer this source replays with.
    pub(crate) fn trainer(&self, spec: &JobSpec) -> Result<Trainer<CpuOps>, pedals_ml::MlError> {
        let trainer = Trainer::new(CpuOps::new(self.threads), spec.train.clone())?;
        #[cfg(debug_assertions)]
        let trainer = trainer.falsifying(self.falsify.iter().copied());
        Ok(trainer)
    }

    fn blob_of(&self, cid: Option<&str>, what: &str) -> Result<Vec<u8>, String> {
        let cid = cid.ok_or_else(|| format!("the job record has no {what} CID"))?;
        let cid = parse_cid(cid).map_err(|e| e.to_string())?;
        self.store
            .blob(&cid)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the {what} {cid} is not in the store"))
    }

    /// The state of `job` after `step` steps: stored, or replayed from the nearest earlier
    /// checkpoint (or the initial model).
    pub(crate) fn state_after(&self, job: u64, step: u64) -> Result<Vec<u8>, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        if let Some(state) = self.store.checkpoint(job, step).map_err(|e| err(&e))? {
            return Ok(state);
        }
        let record = self
            .store
            .job(job)
            .map_err(|e| err(&e))?
            .ok_or("no record of the job")?;
        let spec =
            JobSpec::from_canonical_bytes(&self.blob_of(record.spec_cid.as_deref(), "spec")?)
                .map_err(|e| err(&e))?;
        let dataset =
            Dataset::from_canonical_bytes(&self.blob_of(record.dataset_cid.as_deref(), "dataset")?)
                .map_err(|e| err(&e))?;
        let from = self
            .store
            .checkpoint_steps(job)
            .map_err(|e| err(&e))?
            .into_iter()
            .rev()
            .find(|&s| s <= step);
        let (from, bytes) = match from {
            Some(s) => (
                s,
                self.store
                    .checkpoint(job, s)
                    .map_err(|e| err(&e))?
                    .ok_or("a listed checkpoint is missing")?,
            ),
            None => (0, self.blob_of(record.model_cid.as_deref(), "model")?),
        };
        let trainer = self.trainer(&spec).map_err(|e| err(&e))?;
        let mut state = MlpState::from_bytes(&spec.train.model, &bytes).map_err(|e| err(&e))?;
        for s in from..step {
            state = trainer
                .replay_step(&dataset, &state, s)
                .map_err(|e| err(&e))?;
        }
        state.to_bytes().map_err(|e| err(&e))
    }
}

impl ContentSource for StoreSource {
    fn blob(&self, cid: &Cid) -> Result<Option<Vec<u8>>, String> {
        self.store.blob(cid).map_err(|e| e.to_string())
    }

    /// Read straight from the blob's file: a chunk of a large blob costs its own bytes, not
    /// the whole blob's.
    fn blob_range(
        &self,
        cid: &Cid,
        offset: u64,
        len: u32,
    ) -> Result<Option<pedals_p2p::BlobRange>, String> {
        let range = self.store.blob_range(cid, offset, len);
        Ok(range
            .map_err(|e| e.to_string())?
            .map(|(size, bytes)| pedals_p2p::BlobRange { size, bytes }))
    }

    fn checkpoint(&self, job: u64, step: u64) -> Result<Option<CheckpointOpening>, String> {
        #[cfg(debug_assertions)]
        if self.withhold {
            return Ok(None);
        }
        #[cfg(debug_assertions)]
        let step = if self.wrong_openings { step + 1 } else { step };
        let Some(record) = self.store.job(job).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        // Only a finished run has a trace root to open against.
        let Some(root) = record.trace_root else {
            return Ok(None);
        };
        let Some((_, hashes)) = self.store.latest_trace(job).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let trace = TraceCommitment::new(hashes).map_err(|e| e.to_string())?;
        if trace.root() != root {
            return Err(format!(
                "the stored trace of job {job} does not lead to its recorded root"
            ));
        }
        if step > trace.steps() {
            return Ok(None);
        }
        let state = self.state_after(job, step)?;
        if Some(pedals_core::checkpoint_hash(&state)) != trace.hash(step) {
            return Err(format!(
                "the recomputed state after step {step} of job {job} does not match the trace"
            ));
        }
        let next = if step < trace.steps() {
            let hash = trace.hash(step + 1).ok_or("trace too short")?;
            Some((hash, trace.proof(step + 1).map_err(|e| e.to_string())?))
        } else {
            None
        };
        Ok(Some(CheckpointOpening {
            state,
            proof: trace.proof(step).map_err(|e| e.to_string())?,
            next,
            audit: self.audit_path(job, trace.steps(), step)?,
        }))
    }
}

impl StoreSource {
    /// The path of step `step`'s audit leaf in job `job`'s audit tree, if the run kept its
    /// audit leaves (none for the last state, which no step starts from).
    fn audit_path(
        &self,
        job: u64,
        steps: u64,
        step: u64,
    ) -> Result<Option<pedals_core::MerkleProof>, String> {
        let Some(roots) = self
            .store
            .audit_leaves(job, steps)
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        if step >= steps || roots.is_empty() {
            return Ok(None);
        }
        let tree = pedals_core::MerkleTree::new(&roots).map_err(|e| e.to_string())?;
        let index = usize::try_from(step).map_err(|e| e.to_string())?;
        tree.proof(index).map(Some).map_err(|e| e.to_string())
    }
}
