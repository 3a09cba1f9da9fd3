//! The worker's side of fine-tuning jobs (`lm-finetune`, [`pedals_lm::finetune_job`]): the
//! spec names a stored model and a JSONL dataset, which travel as the job's model and dataset;
//! each optimizer step is a step of the trace, and the state after it (the adapters, or a full
//! fine-tune's every weight, with their Adam moments, canonical bytes) is its checkpoint, stored
//! as soon as it is computed, so a worker restarted mid-job goes on from the last one. The initial state is checkpoint 0.
//!
//! Such a job is posted as an optimistic training job whose spec the fine-tuning game admitted
//! (docs/protocol.md §9): a challenged step is defended from the stored state before it, with
//! the op trace `pedals_lm::dispute` computes. Its leaves are states, so a demanded step is
//! published row by row, like a training job's.

#[allow(clippy::wildcard_imports)]
use super::*;
use pedals_lm::CanonicalSpec as _;
use pedals_lm::{FinetuneInputs, FinetuneSpec};

/// A fine-tuning job's spec and inputs.
pub(crate) type FtJob = Box<(FinetuneSpec, FinetuneInputs)>;

impl Worker {
    /// A fine-tuning job's inputs, once its spec is known to be one: `Ok(None)` while a file
    /// is missing from the store.
    pub(crate) fn load_ft(
        &self,
        job: &IJobMarket::Job,
        record: &JobRecord,
        bytes: &[u8],
    ) -> Result<Option<FtJob>, String> {
        let spec = FinetuneSpec::from_canonical_bytes(bytes).map_err(|e| e.to_string())?;
        let cids = (
            spec.model_cid().map_err(|e| e.to_string())?,
            spec.dataset_cid().map_err(|e| e.to_string())?,
        );
        let Some((model, dataset)) = self.lm_files(
            job,
            record,
            // Optimistic since the fine-tuning game exists; a job posted before it, as
            // OptimisticInference, is still run (it cannot be challenged).
            (
                "a fine-tuning job",
                &[
                    pedals_core::Verification::Optimistic,
                    pedals_core::Verification::OptimisticInference,
                ],
            ),
            spec.steps,
            cids,
        )?
        else {
            return Ok(None);
        };
        let inputs = spec.load(&model, &dataset).map_err(|e| e.to_string())?;
        Ok(Some(Box::new((spec, inputs))))
    }

    /// Why this worker cannot take a fine-tuning job, if it cannot: the op trace of a
    /// challenged step (every op's output, held while it answers the game) would not fit in
    /// `max_trace_bytes`, and a worker that cannot answer loses its collateral by the clock.
    pub(crate) fn ft_memory_reason(&self, job: &FtJob) -> Result<Option<String>, NodeError> {
        let bytes = job
            .1
            .op_trace_bytes()
            .map_err(|e| NodeError::Job(e.to_string()))?;
        let max = self.config.max_trace_bytes;
        let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
        Ok((bytes > max).then(|| {
            format!(
                "a challenged step's op trace would take {:.2} GiB here, over this worker's \
                 limit of {:.2} GiB (--max-trace-gib)",
                gib(bytes),
                gib(max)
            )
        }))
    }

    /// Drops the op traces kept for job `id`'s games: its dispute is over, and a trace of a
    /// large model's step takes gigabytes.
    pub(crate) fn forget_games(&self, id: u64) {
        let keep = |&(job, _): &(u64, u64)| job != id;
        (self.games.lock().unwrap_or_else(|e| e.into_inner())).retain(|k, _| keep(k));
        (self.ft_games.lock().unwrap_or_else(|e| e.into_inner())).retain(|k, _| keep(k));
    }

    /// The op traces this worker keeps for the games it is playing (each a step re-executed op
    /// by op; it drops them when the game is over).
    pub fn held_op_traces(&self) -> usize {
        let games = self
            .games
            .lock()
            .map_or_else(|e| e.into_inner().len(), |g| g.len());
        let ft = (self.ft_games.lock()).map_or_else(|e| e.into_inner().len(), |g| g.len());
        games + ft
    }

    /// Seconds this worker needs for a fine-tuning job: its first step timed, times the steps
    /// (every step takes a batch of the same size, so the first is a fair sample; it also
    /// pays for warm-up).
    pub(crate) async fn estimate_ft(&self, job: FtJob) -> Result<f64, NodeError> {
        tokio::task::spawn_blocking(move || {
            let (spec, inputs) = *job;
            let mut state = inputs
                .initial()
                .map_err(|e| NodeError::Job(e.to_string()))?;
            let started = std::time::Instant::now();
            inputs.step(&mut state);
            Ok(started.elapsed().as_secs_f64() * spec.steps as f64)
        })
        .await?
    }

    /// Runs a fine-tuning job from its last stored state: every state stored as the
    /// checkpoint after its step, the trace with the last, and the final state as the result.
    pub(crate) async fn finetune(&self, id: u64, job: FtJob) -> Result<(), NodeError> {
        let steps = job.0.steps;
        let run = self.start_run(id, steps, "fine-tuning")?;
        let from = run.from;
        let store = self.store.clone();
        #[cfg(debug_assertions)]
        let falsify = self.config.falsify_steps.clone();
        let counter = run.done.clone();
        let running = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
            let (_, inputs) = *job;
            let job_err = |e: pedals_lm::LmError| NodeError::Job(e.to_string());
            let stored = |s: u64| -> Result<Vec<u8>, NodeError> {
                store.checkpoint(id, s)?.ok_or_else(|| {
                    NodeError::Job(format!("checkpoint {s} of job {id} left the store"))
                })
            };
            if store.checkpoint(id, 0)?.is_none() {
                let initial = inputs.initial().map_err(job_err)?;
                let bytes = inputs.state_bytes(&initial).map_err(job_err)?;
                store.put_checkpoint(id, 0, &bytes)?;
            }
            let mut hashes = Vec::with_capacity(steps as usize + 1);
            for s in 0..=from {
                hashes.push(pedals_core::checkpoint_hash(&stored(s)?));
            }
            let mut state = inputs.state_from(&stored(from)?).map_err(job_err)?;
            let mut last = Vec::new();
            for step in from + 1..=steps {
                inputs.step(&mut state);
                #[cfg(debug_assertions)]
                if falsify.contains(&(step - 1)) {
                    crate::cheat::falsify_state(&mut state);
                }
                let bytes = inputs.state_bytes(&state).map_err(job_err)?;
                hashes.push(pedals_core::checkpoint_hash(&bytes));
                if step < steps {
                    store.put_checkpoint(id, step, &bytes)?;
                    store.advance(id, JobPhase::Training { steps_done: step })?;
                }
                last = bytes;
                counter.store(step, Ordering::Relaxed);
            }
            if from == steps {
                last = stored(steps)?;
            }
            let result = store.put_resumable_checkpoint(id, steps, &last, &hashes, &[])?;
            let root = pedals_core::TraceCommitment::new(hashes)
                .map_err(|e| NodeError::Job(e.to_string()))?
                .root();
            Ok((root, result))
        });
        self.end_run(id, steps, run, running, "fine-tuning").await
    }

    /// The spec bytes of job `job` if it is a fine-tuning job (`None` for any other kind).
    pub(crate) fn ft_job_of(&self, job: &IJobMarket::Job) -> Result<Option<Vec<u8>>, NodeError> {
        let spec_cid = JobSpec::cid_for_hash(&job.specHash);
        Ok(self
            .store
            .blob(&spec_cid)?
            .filter(|b| FinetuneSpec::is_finetune(b)))
    }

    /// This worker's op trace of fine-tuning step `step` of job `id`, from its stored state
    /// before the step (built once per dispute). The step's state hash must be the one it
    /// posted; a debug build's lying worker builds the trace of its lie instead.
    pub(crate) async fn ft_dispute_context(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
        spec_bytes: &[u8],
        step: u64,
        trace: &pedals_core::TraceCommitment,
    ) -> Result<Arc<pedals_dispute::lm::LmStepContext>, NodeError> {
        let games = || self.ft_games.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ctx) = games().get(&(id, step)) {
            return Ok(ctx.clone());
        }
        let (spec, inputs) = *self
            .load_ft(job, record, spec_bytes)
            .map_err(NodeError::Job)?
            .ok_or_else(|| NodeError::Job(format!("the inputs of job {id} are gone")))?;
        let job_err = |e: String| NodeError::Job(e);
        let stored = |s: u64| -> Result<Vec<u8>, NodeError> {
            self.store.checkpoint(id, s)?.ok_or_else(|| {
                NodeError::Job(format!(
                    "the state after step {s} of job {id} is not stored"
                ))
            })
        };
        let before = inputs
            .state_from(&stored(step)?)
            .map_err(|e| job_err(e.to_string()))?;
        let inputs = Arc::new(inputs);
        // The whole step re-executed op by op: off the async threads.
        let shared = inputs.clone();
        let mut ctx = tokio::task::spawn_blocking(move || {
            pedals_dispute::lm::LmStepContext::new(spec, shared, &before)
        })
        .await?
        .map_err(|e| job_err(e.to_string()))?;
        let posted = trace.hash(step + 1);
        if ctx.trace.leaves.last() != posted.as_ref() {
            #[cfg(debug_assertions)]
            {
                let claimed = inputs
                    .state_from(&stored(step + 1)?)
                    .map_err(|e| job_err(e.to_string()))?;
                crate::cheat::lie_in_trace(&mut ctx, &claimed).map_err(job_err)?;
            }
            if ctx.trace.leaves.last() != posted.as_ref() {
                return Err(job_err(format!(
                    "the replayed state after step {} of job {id} is not the one this node posted",
                    step + 1
                )));
            }
        }
        let ctx = Arc::new(ctx);
        games().insert((id, step), ctx.clone());
        Ok(ctx)
    }
}
