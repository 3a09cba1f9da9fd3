//! Job kinds as handlers. [`Worker::advance`] drives what every job shares (the on-chain
//! status checks, settling a claim, finalizing, withdrawing, demands and disputes) and asks
//! the job's kind, a [`JobKind`], for what differs: how its inputs are fetched and checked,
//! what taking a ready job means, and where a failed submission goes back to. A new kind of
//! job is a new implementation of the trait, not a new branch in every phase.

use pedals_chain::IJobMarket;
use pedals_core::Verification;
use pedals_store::{JobPhase, JobRecord};
use tracing::debug;

use crate::{Fetched, NodeError, Worker};

/// What a kind of job does differently.
pub(crate) trait JobKind: Sync {
    /// Fetches the job's inputs into the store, verified against their CIDs; `Err` says why
    /// the job cannot be used.
    async fn fetch(
        &self,
        w: &Worker,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<Fetched, String>;

    /// Checks the fetched inputs against the job's on-chain commitments: `true` when every
    /// one is in the store and usable, `Err` when one can never be.
    fn load(&self, w: &Worker, job: &IJobMarket::Job, record: &JobRecord) -> Result<bool, String>;

    /// Takes a ready job the worker has room for.
    async fn take(
        &self,
        w: &Worker,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(), NodeError>;

    /// The phase a submission that failed goes back to.
    fn before_submit(&self) -> JobPhase;
}

/// A training job, or a batch-inference job of an MLP or a language model (its chunks are the
/// steps): claimed,
/// computed step by step with a checkpointed trace, submitted, open to challenges.
pub(crate) struct Stepped;

/// A zk inference job: no claim; the proof is made and submitted in one transaction, which
/// pays at once.
pub(crate) struct Proven;

impl JobKind for Stepped {
    async fn fetch(
        &self,
        w: &Worker,
        job: &IJobMarket::Job,
        _record: &JobRecord,
    ) -> Result<Fetched, String> {
        w.fetch_inputs(job).await
    }

    fn load(&self, w: &Worker, job: &IJobMarket::Job, record: &JobRecord) -> Result<bool, String> {
        Ok(w.load_job(job, record)?.is_some())
    }

    async fn take(
        &self,
        w: &Worker,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(), NodeError> {
        if let Some(reason) = w.decline_reason(id, job, record).await? {
            return w.abandon(id, reason);
        }
        w.claim(id).await
    }

    fn before_submit(&self) -> JobPhase {
        JobPhase::Trained
    }
}

impl JobKind for Proven {
    async fn fetch(
        &self,
        w: &Worker,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<Fetched, String> {
        w.fetch_zk(job, record).await
    }

    fn load(&self, w: &Worker, job: &IJobMarket::Job, record: &JobRecord) -> Result<bool, String> {
        Ok(w.load_zk(job, record)?.is_some())
    }

    async fn take(
        &self,
        w: &Worker,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(), NodeError> {
        w.prove_and_submit(id, job, record).await
    }

    fn before_submit(&self) -> JobPhase {
        JobPhase::Ready
    }
}

impl Worker {
    /// Advances a job one phase, with the handler of its kind.
    pub(crate) async fn advance(&self, record: JobRecord) -> Result<(), NodeError> {
        let (job, status) = self.chain_job(record.job_id).await?;
        if Verification::Zk.is(job.verification) {
            self.advance_as(&Proven, record, job, status).await
        } else {
            self.advance_as(&Stepped, record, job, status).await
        }
    }

    /// The kind-specific part of a job's first phases (Fetching, Ready): fetch and check its
    /// inputs, then take it when there is room.
    pub(crate) async fn advance_open<K: JobKind>(
        &self,
        kind: &K,
        record: &JobRecord,
        job: &IJobMarket::Job,
    ) -> Result<(), NodeError> {
        let id = record.job_id;
        match record.phase {
            JobPhase::Fetching => {
                let ready = match kind.fetch(self, job, record).await {
                    Ok(Fetched::All) => kind.load(self, job, record),
                    Ok(Fetched::Waiting(reason)) => {
                        debug!(target: "pedals::node", job = id, %reason, "waiting for the job's data");
                        Ok(false)
                    }
                    Err(reason) => Err(reason),
                };
                match ready {
                    Ok(true) => {
                        self.store.advance(id, JobPhase::Ready)?;
                    }
                    Ok(false) => {}
                    Err(reason) => {
                        self.abandon(id, format!("its data cannot be used: {reason}"))?;
                    }
                }
            }
            JobPhase::Ready => {
                // Capacity first: a waiting job is not timed again every round.
                if self.is_paused() {
                    debug!(target: "pedals::node", job = id, "paused by the operator; the job waits");
                } else if self.busy_with_others(id)? {
                    debug!(target: "pedals::node", job = id, max = self.config.max_active_jobs, "at capacity; the job waits");
                } else {
                    kind.take(self, id, job, record).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
