//! Running a claimed job: training (or batch inference) with checkpoints and progress
//! reports, and the commitments it submits.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The loss cell's value before the first checkpoint reports one.
const NO_LOSS: u64 = u64::MAX;

impl Worker {
    /// Trains job `id`, from the latest checkpoint stored with its trace if there is one (a
    /// restart after a crash in training), else from the initial model; stores every
    /// checkpoint with its trace as it goes, and records the trace root.
    pub(crate) async fn train(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(), NodeError> {
        let (spec, dataset, init) = match self.load_job(job, record) {
            Ok(Some(Inputs::Mlp(inputs))) => *inputs,
            Ok(Some(Inputs::Lm(inputs))) => return self.generate(id, inputs).await,
            Ok(Some(Inputs::Ft(inputs))) => return self.finetune(id, inputs).await,
            Ok(None) => return self.abandon(id, "its data is no longer in the store".into()),
            Err(reason) => return self.abandon(id, reason),
        };
        if let Some(inference) = spec.inference {
            return self.infer(id, &spec, dataset, init, inference.chunk).await;
        }
        let (start, prefix, from) = match self.store.resume_point(id)? {
            Some(point) if point.steps_done > 0 => (
                MlpState::from_bytes(&spec.train.model, &point.state)?,
                TraceSoFar {
                    hashes: point.hashes,
                    audit_leaves: point.audit_leaves,
                },
                point.steps_done,
            ),
            _ => (init, TraceSoFar::default(), 0),
        };
        // A checkpoint stored without its audit leaves (by a build that did not audit) is
        // resumed without auditing: the job goes unaudited rather than trained again.
        let audit = from == 0 || prefix.audit_leaves.len() as u64 == from;
        self.store
            .advance(id, JobPhase::Training { steps_done: from })?;
        if from > 0 {
            info!(target: "pedals::node", job = id, from, "resuming training from a checkpoint");
        }
        let threads = self.config.threads;
        #[cfg(debug_assertions)]
        let falsify = self.config.falsify_steps.clone();
        let store = self.store.clone();
        let started = std::time::Instant::now();
        let done = Arc::new(AtomicU64::new(from));
        let counter = done.clone();
        let loss = Arc::new(AtomicU64::new(NO_LOSS));
        let loss_cell = loss.clone();
        let training = tokio::task::spawn_blocking(move || {
            let persist =
                |done: u64, bytes: &[u8], so_far: &TraceSoFar| -> Result<(), StoreError> {
                    store.put_resumable_checkpoint(
                        id,
                        done,
                        bytes,
                        &so_far.hashes,
                        &so_far.audit_leaves,
                    )?;
                    store.advance(id, JobPhase::Training { steps_done: done })?;
                    Ok(())
                };
            let mut trainer = Trainer::new(CpuOps::new(threads), spec.train.clone())?
                .reporting(counter)
                .reporting_loss(loss_cell);
            if audit {
                trainer = trainer.auditing();
            }
            #[cfg(debug_assertions)]
            let trainer = trainer.falsifying(falsify);
            trainer.train_from(&dataset, &start, prefix, |done, bytes, so_far| {
                persist(done, bytes, so_far).map_err(|e| MlError::Checkpoint(e.to_string()))
            })
        });
        let outcome = self
            .reporting_progress(id, u64::from(job.steps), (&done, Some(&loss)), training)
            .await??;
        let steps = outcome.hashes.len() as u64 - 1;
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.steps_trained.inc_by(steps - from);
        if seconds > 0.0 {
            self.metrics
                .training_steps_per_second
                .set((steps - from) as f64 / seconds);
        }
        #[cfg(debug_assertions)]
        if let Some(from) = self.config.fabricate_from {
            let (root, result) =
                cheat::fabricate(&self.store_source(), &self.store, id, from, outcome.hashes)?;
            return self.finish_run(id, root, result).await;
        }
        let root = outcome.trace()?.root();
        let result = cid_of(&outcome.final_state.to_bytes()?);
        self.finish_run(id, root, result).await?;
        info!(target: "pedals::node", job = id, steps, from, trace_root = %root, seconds = started.elapsed().as_secs_f64(), "trained");
        Ok(())
    }

    /// Waits for a training or inference run while announcing, every `progress_every`, the
    /// steps it has done (read from `done`), and once more at the end, so that anyone watching
    /// the job sees it move; each advance also counts as a good round for `/health`.
    /// Announcing is best effort: without peers nothing is sent.
    pub(crate) async fn reporting_progress<T>(
        &self,
        id: u64,
        steps: u64,
        (done, loss): (&AtomicU64, Option<&AtomicU64>),
        run: tokio::task::JoinHandle<T>,
    ) -> Result<T, tokio::task::JoinError> {
        let loss = || {
            loss.map(|l| l.load(Ordering::Relaxed))
                .filter(|&l| l != NO_LOSS)
        };
        tokio::pin!(run);
        let mut every = tokio::time::interval(self.config.progress_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = None;
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                _ = every.tick() => {
                    let now = done.load(Ordering::Relaxed);
                    if last != Some(now) {
                        // A run whose steps advance is a live worker, though its round has
                        // not finished: /health stays green through a long job.
                        self.metrics.round_ok();
                        self.announce_progress(id, (now, steps), loss()).await;
                        last = Some(now);
                    }
                }
            }
        };
        if outcome.is_ok() && last != Some(steps) {
            self.announce_progress(id, (steps, steps), loss()).await;
        }
        outcome
    }

    /// Publishes one signed progress announcement for job `id`.
    pub(crate) async fn announce_progress(
        &self,
        id: u64,
        (steps_done, steps): (u64, u64),
        loss_micro: Option<u64>,
    ) {
        let Some(net) = &self.net else {
            return;
        };
        let chain_id = self.deployment.chain_id;
        let market = self.deployment.job_market;
        let announced_at = pedals_p2p::unix_now();
        let message = pedals_p2p::ProgressAnnouncement::message(
            chain_id,
            market,
            id,
            (steps_done, steps),
            announced_at,
            loss_micro,
        );
        let signature = match self.signer.sign_message_sync(message.as_slice()) {
            Ok(signature) => signature,
            Err(e) => {
                warn!(target: "pedals::node", job = id, error = %e, "cannot sign a progress announcement");
                return;
            }
        };
        let announcement = pedals_p2p::Announcement::Progress(pedals_p2p::ProgressAnnouncement {
            chain_id,
            market,
            job_id: id,
            worker: self.address(),
            steps_done,
            steps,
            announced_at,
            loss_micro,
            signature,
        });
        if let Err(e) = net.publish(&announcement).await {
            debug!(target: "pedals::node", job = id, error = %e, "progress not announced");
        }
    }

    /// Records a finished run (its trace root and result), marks the job trained, and
    /// provides the result on the network.
    pub(crate) async fn finish_run(
        &self,
        id: u64,
        root: B256,
        result: Cid,
    ) -> Result<(), NodeError> {
        self.store.update_job(id, |r| {
            r.trace_root = Some(root);
            r.result_cid = Some(result.to_string());
        })?;
        self.store.advance(id, JobPhase::Trained)?;
        if let Some(net) = &self.net {
            net.provide(result).await?;
            // Validators find this node by the worker's account, whoever provides the result.
            net.provide(pedals_p2p::account_key(self.address())).await?;
        }
        Ok(())
    }

    /// Runs a batch-inference job: every chunk's outputs stored as the checkpoint after that
    /// step (the model as checkpoint 0), the trace with the last, and the result blob.
    pub(crate) async fn infer(
        &self,
        id: u64,
        spec: &JobSpec,
        dataset: Dataset,
        model: MlpState,
        chunk: u64,
    ) -> Result<(), NodeError> {
        self.store
            .advance(id, JobPhase::Training { steps_done: 0 })?;
        let threads = self.config.threads;
        let store = self.store.clone();
        let train = spec.train.clone();
        let started = std::time::Instant::now();
        let done = Arc::new(AtomicU64::new(0));
        let counter = done.clone();
        let running = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
            let model_bytes = model.to_bytes()?;
            let trainer = Trainer::new(CpuOps::new(threads), train)?.reporting(counter);
            let outcome = inference::run(&trainer, &dataset, &model, &model_bytes, chunk)?;
            let result = store.put_blob(&outcome.result_bytes())?;
            store.put_checkpoint(id, 0, &model_bytes)?;
            let last = outcome.chunks.len() as u64;
            for (i, out) in outcome.chunks.iter().enumerate() {
                let step = i as u64 + 1;
                if step == last {
                    store.put_resumable_checkpoint(id, step, out, &outcome.hashes, &[])?;
                } else {
                    store.put_checkpoint(id, step, out)?;
                }
            }
            let root = pedals_core::TraceCommitment::new(outcome.hashes)
                .map_err(|e| MlError::Checkpoint(e.to_string()))?
                .root();
            Ok((root, result))
        });
        let (root, result) = self
            .reporting_progress(id, spec.train.steps, (&done, None), running)
            .await??;
        self.metrics.steps_trained.inc_by(spec.train.steps);
        info!(target: "pedals::node", job = id, chunks = spec.train.steps, trace_root = %root, result = %result, seconds = started.elapsed().as_secs_f64(), "inference done");
        self.finish_run(id, root, result).await
    }

    /// The commitments to submit: trace root, final state hash, its proof as the trace's last
    /// leaf, and the result's CID.
    pub(crate) fn result_of(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(B256, B256, Vec<B256>, Cid), NodeError> {
        let steps = u64::from(job.steps);
        let root = record.trace_root.ok_or(StoreError::Corrupt {
            what: format!("job {id}"),
            reason: "trained without a trace root".into(),
        })?;
        let bytes = self
            .store
            .checkpoint(id, steps)?
            .ok_or(StoreError::Corrupt {
                what: format!("job {id}"),
                reason: format!("no checkpoint after step {steps}"),
            })?;
        let final_hash = pedals_core::checkpoint_hash(&bytes);
        let result = match &record.result_cid {
            Some(cid) => pedals_core::parse_cid(cid).map_err(|e| StoreError::Corrupt {
                what: format!("job {id}"),
                reason: format!("its result CID: {e}"),
            })?,
            None => cid_of(&bytes),
        };
        #[cfg(debug_assertions)]
        let result = if self.config.hide_result {
            cid_of(format!("job {id}: a result nobody provides").as_bytes())
        } else {
            result
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            what: format!("job {id}"),
            reason,
        };
        let (_, hashes) = self
            .store
            .latest_trace(id)?
            .ok_or_else(|| corrupt("trained without a stored trace".into()))?;
        let trace =
            pedals_core::TraceCommitment::new(hashes).map_err(|e| corrupt(e.to_string()))?;
        if trace.root() != root || trace.final_hash() != final_hash {
            return Err(corrupt("the stored trace does not end in the result".into()).into());
        }
        let proof = trace.proof(steps).map_err(|e| corrupt(e.to_string()))?;
        Ok((root, final_hash, proof.siblings, result))
    }

    /// The audit root to submit: the root over the audit leaves stored with the last
    /// checkpoint, or zero when the run kept none (inference, or a run resumed from a
    /// checkpoint stored without them), which leaves the job unaudited.
    pub(crate) fn audit_root_of(&self, id: u64, steps: u64) -> Result<B256, NodeError> {
        let roots = self.store.audit_leaves(id, steps)?.unwrap_or_default();
        Ok(pedals_ml::audit_root(&roots)?.unwrap_or(B256::ZERO))
    }
}
