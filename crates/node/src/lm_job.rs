//! The worker's side of language-model batch jobs (`lm-generate`, [`pedals_lm::job`]): the
//! spec names a stored model and a prompts file, which travel as the job's model and dataset;
//! the chunks of prompts are the steps. The phases are a training job's (fetch, check,
//! estimate, claim, run with checkpoints, submit, settle); what differs is how the inputs are
//! checked and what a step computes.
//!
//! Every chunk's completions are stored as the checkpoint after that step as soon as they are
//! done, so a worker restarted mid-job goes on from the first chunk it had not stored.

use super::*;
#[allow(clippy::wildcard_imports)]
use pedals_lm::CanonicalSpec as _;

use pedals_lm::{LmJobInputs, LmJobSpec};

/// A language-model job's model bytes and data bytes.
pub(crate) type ModelAndData = (Vec<u8>, Vec<u8>);

/// A job's inputs, loaded and checked, of either kind that runs step by step.
pub(crate) enum Inputs {
    /// An MLP or CNN training or batch-inference job.
    Mlp(Box<(JobSpec, Dataset, MlpState)>),
    /// A language-model batch job.
    Lm(Box<(LmJobSpec, LmJobInputs)>),
    /// A fine-tuning job.
    Ft(crate::ft_job::FtJob),
}

/// Whether `bytes` are a language-model job's spec.
pub(crate) fn is_lm(bytes: &[u8]) -> bool {
    LmJobSpec::is_lm(bytes)
}

impl Worker {
    /// The inputs of a job, whichever kind its spec is: `Ok(None)` while a file is missing from
    /// the store, `Err` when one can never be used.
    pub(crate) fn load_job(
        &self,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<Option<Inputs>, String> {
        let spec_cid = JobSpec::cid_for_hash(&job.specHash);
        let Some(bytes) = self.store.blob(&spec_cid).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if pedals_lm::FinetuneSpec::is_finetune(&bytes) {
            return Ok(self.load_ft(job, record, &bytes)?.map(Inputs::Ft));
        }
        if !is_lm(&bytes) {
            return Ok(self
                .load_inputs(job, record)?
                .map(|inputs| Inputs::Mlp(Box::new(inputs))));
        }
        let spec = LmJobSpec::from_canonical_bytes(&bytes).map_err(|e| e.to_string())?;
        let cids = (
            spec.model_cid().map_err(|e| e.to_string())?,
            spec.prompts_cid().map_err(|e| e.to_string())?,
        );
        // Its chunks' leaves are hashes of blobs, which only an inference job may publish to
        // meet a demand (docs/protocol.md §7).
        let Some((model, prompts)) = self.lm_files(
            job,
            record,
            (
                "a language-model batch job",
                &[Verification::OptimisticInference],
            ),
            spec.steps,
            cids,
        )?
        else {
            return Ok(None);
        };
        let inputs = spec
            .load(&model, &prompts, MAX_BLOB_BYTES)
            .map_err(|e| e.to_string())?;
        Ok(Some(Inputs::Lm(Box::new((spec, inputs)))))
    }

    /// The model's and the data's bytes of a job of kind `what` whose spec names `cids`
    /// (model, data) and runs `steps` steps: refused when the job pays for another step count,
    /// was posted with a verification not in `posted_as` (a batch job has no game, so it must
    /// not be posted as a training job) or with other CIDs; `Ok(None)` while a file is missing
    /// from the store.
    pub(crate) fn lm_files(
        &self,
        job: &IJobMarket::Job,
        record: &JobRecord,
        (what, posted_as): (&str, &[Verification]),
        steps: u64,
        (model_cid, data_cid): (pedals_core::Cid, pedals_core::Cid),
    ) -> Result<Option<ModelAndData>, String> {
        if steps != u64::from(job.steps) {
            return Err(format!(
                "the spec runs {steps} steps but the job pays for {}",
                job.steps
            ));
        }
        if !posted_as.iter().any(|v| v.is(job.verification)) {
            return Err(format!(
                "the spec is {what}, which must be posted as one of {posted_as:?}, but it was \
                 posted with verification {}",
                job.verification
            ));
        }
        if record.dataset_cid.as_deref() != Some(data_cid.to_string().as_str())
            || record.model_cid.as_deref() != Some(model_cid.to_string().as_str())
        {
            return Err("the posted data or model CID differs from the spec's".into());
        }
        let (Some(model), Some(data)) = (
            self.store.blob(&model_cid).map_err(|e| e.to_string())?,
            self.store.blob(&data_cid).map_err(|e| e.to_string())?,
        ) else {
            return Ok(None);
        };
        Ok(Some((model, data)))
    }

    /// Seconds this worker needs for a language-model job, at most: its first chunk timed per
    /// token (prompt tokens and new ones), times every token the job may take (every prompt
    /// token, and `max_tokens` new ones per prompt). A first chunk of short prompts that stop
    /// early does not make a long job look short; the first chunk pays for warm-up too.
    pub(crate) async fn estimate_lm(
        &self,
        job: Box<(LmJobSpec, LmJobInputs)>,
    ) -> Result<f64, NodeError> {
        let device = self.config.lm_device.clone();
        tokio::task::spawn_blocking(move || -> Result<f64, NodeError> {
            let (spec, mut inputs) = *job;
            on_device(&mut inputs, &device)?;
            let started = std::time::Instant::now();
            let bytes = inputs.run_chunk(&spec, 0)?;
            let seconds = started.elapsed().as_secs_f64();
            let prompt_tokens = |p: &[Vec<u32>]| p.iter().map(Vec::len).sum::<usize>() as f64;
            let first = &inputs.prompts[..inputs.prompts.len().min(spec.chunk as usize)];
            let generated = pedals_lm::batch::completion_lines(&bytes)?
                .iter()
                .map(|l| l.tokens.len())
                .sum::<usize>() as f64;
            let timed = (prompt_tokens(first) + generated).max(1.0);
            let most = prompt_tokens(&inputs.prompts) + (spec.count * spec.max_tokens) as f64;
            Ok(seconds / timed * most)
        })
        .await?
    }

    /// Runs a language-model job: every chunk's completions stored as the checkpoint after
    /// that step (the model as checkpoint 0), the trace with the last, and the result blob
    /// (every chunk in order). Chunks stored before a restart are not run again.
    pub(crate) async fn generate(
        &self,
        id: u64,
        job: Box<(LmJobSpec, LmJobInputs)>,
    ) -> Result<(), NodeError> {
        let steps = job.0.steps;
        let model_cid = job.0.model_cid()?;
        let run = self.start_run(id, steps, "generation")?;
        let store = self.store.clone();
        #[cfg(debug_assertions)]
        let falsify = self.config.falsify_steps.clone();
        let counter = run.done.clone();
        let device = self.config.lm_device.clone();
        let running = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
            let (spec, mut inputs) = *job;
            on_device(&mut inputs, &device)?;
            // The model is checkpoint 0: a validator opens h_0 against it.
            if store.checkpoint(id, 0)?.is_none() {
                let model = store.blob(&model_cid)?.ok_or_else(|| {
                    NodeError::Job(format!("the model {model_cid} left the store"))
                })?;
                store.put_checkpoint(id, 0, &model)?;
            }
            let mut hashes = vec![inputs.model_bytes_hash];
            let mut chunks = Vec::with_capacity(steps as usize);
            for step in 1..=steps {
                let bytes = match store.checkpoint(id, step)? {
                    Some(bytes) => bytes,
                    None => {
                        let bytes = inputs.run_chunk(&spec, step - 1)?;
                        #[cfg(debug_assertions)]
                        let bytes = if falsify.contains(&(step - 1)) {
                            cheat::falsify_chunk(&bytes)
                        } else {
                            bytes
                        };
                        if step < steps {
                            store.put_checkpoint(id, step, &bytes)?;
                            store.advance(id, JobPhase::Training { steps_done: step })?;
                        }
                        bytes
                    }
                };
                hashes.push(alloy::primitives::keccak256(&bytes));
                chunks.push(bytes);
                counter.store(step, Ordering::Relaxed);
            }
            let result = store.put_blob(&chunks.concat())?;
            let last = chunks.last().map(Vec::as_slice).unwrap_or_default();
            store.put_resumable_checkpoint(id, steps, last, &hashes, &[])?;
            let root = pedals_core::TraceCommitment::new(hashes)
                .map_err(|e| NodeError::Job(e.to_string()))?
                .root();
            Ok((root, result))
        });
        self.end_run(id, steps, run, running, "generation").await
    }

    /// Where a language-model job's run starts: after the steps whose checkpoints are stored.
    pub(crate) fn start_run(&self, id: u64, steps: u64, what: &str) -> Result<Run, NodeError> {
        let from = (1..=steps)
            .take_while(|&s| self.store.checkpoint(id, s).ok().flatten().is_some())
            .count() as u64;
        self.store
            .advance(id, JobPhase::Training { steps_done: from })?;
        if from > 0 {
            info!(target: "pedals::node", job = id, from, "resuming {what} after the steps already stored");
        }
        Ok(Run {
            from,
            started: std::time::Instant::now(),
            done: Arc::new(AtomicU64::new(from)),
        })
    }

    /// Waits for a run started by [`Self::start_run`] (its progress announced), then records
    /// its trace root and result.
    pub(crate) async fn end_run(
        &self,
        id: u64,
        steps: u64,
        run: Run,
        task: tokio::task::JoinHandle<Result<(B256, Cid), NodeError>>,
        what: &str,
    ) -> Result<(), NodeError> {
        let (root, result) = self
            .reporting_progress(id, steps, (&run.done, None), task)
            .await??;
        self.metrics.steps_trained.inc_by(steps - run.from);
        info!(target: "pedals::node", job = id, steps, from = run.from, trace_root = %root, result = %result, seconds = run.started.elapsed().as_secs_f64(), "{what} done");
        self.finish_run(id, root, result).await
    }
}

/// A language-model job's run in progress: the steps it started after, when, and how many
/// are done (read for progress reports).
pub(crate) struct Run {
    pub(crate) from: u64,
    started: std::time::Instant,
    pub(crate) done: Arc<AtomicU64>,
}

/// Moves a job's matrix products to the worker's `lm_device` (nothing for `cpu`).
fn on_device(inputs: &mut LmJobInputs, device: &str) -> Result<(), NodeError> {
    if let Some((d, _)) = pedals_lm::exact::device::named(device)? {
        inputs.model.to_device(&d);
    }
    Ok(())
}
