//! The worker's side of a dispute: it defends its step from its own checkpoints.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Worker {
    /// Plays this worker's side of the open dispute game of job `id`, if it is its turn: the op
    /// trace of the challenged step comes from its own checkpoints (replayed as it trained).
    pub(crate) async fn defend(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(), NodeError> {
        let job_id = pedals_core::JobId(id);
        let ft = self.ft_job_of(job)?;
        let kind = if ft.is_some() {
            pedals_chain::GameKind::Lm
        } else {
            pedals_chain::GameKind::Mlp
        };
        let view = self.market.playing(kind).game_of(job_id).await?;
        if view.phase == pedals_chain::Phase::None || !view.worker_to_move {
            return Ok(());
        }
        let step = u64::from(self.market.challenge_of(job_id).await?.step);
        let Some((_, hashes)) = self.store.latest_trace(id)? else {
            return Err(NodeError::NoTrace(id));
        };
        let trace = pedals_core::TraceCommitment::new(hashes)?;
        let defence = |e: pedals_dispute::DisputeError| NodeError::Defence {
            job: id,
            source: Box::new(e),
        };
        let turn = match ft {
            Some(bytes) => {
                let ctx = self
                    .ft_dispute_context(id, job, record, &bytes, step, &trace)
                    .await?;
                pedals_dispute::lm::defend_lm(&self.market, job_id, &ctx, &trace)
                    .await
                    .map_err(defence)?
            }
            None => {
                let ctx = self.dispute_context(id, job, record, step, &trace)?;
                pedals_dispute::game::defend(&self.market, job_id, &ctx, &trace)
                    .await
                    .map_err(defence)?
            }
        };
        if let pedals_dispute::game::Turn::Moved(name, tx) = turn {
            info!(target: "pedals::node", job = id, step, mv = name, tx = %tx.hash, "dispute move");
        }
        Ok(())
    }

    /// What this worker serves and publishes from: its store, replayed as it trained.
    pub(crate) fn store_source(&self) -> StoreSource {
        let source = StoreSource::new(self.store.clone(), self.config.threads);
        #[cfg(debug_assertions)]
        let source = source.falsifying(self.config.falsify_steps.iter().copied());
        source
    }

    /// This worker's op trace of step `step` of job `id` (built once per dispute).
    pub(crate) fn dispute_context(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
        step: u64,
        trace: &pedals_core::TraceCommitment,
    ) -> Result<Arc<StepContext>, NodeError> {
        if let Some(ctx) = self
            .games
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(id, step))
        {
            return Ok(ctx.clone());
        }
        let (spec, dataset, _) = self
            .load_inputs(job, record)
            .map_err(NodeError::Job)?
            .ok_or_else(|| NodeError::Job(format!("the inputs of job {id} are gone")))?;
        let source = self.store_source();
        let before = MlpState::from_bytes(
            &spec.train.model,
            &source.state_after(id, step).map_err(NodeError::Job)?,
        )?;
        let trainer = source.trainer(&spec)?;
        let claimed = trainer.replay_step(&dataset, &before, step)?;
        if Some(claimed.state_hash()?) != trace.hash(step + 1) {
            return Err(NodeError::Job(format!(
                "the replayed state after step {} of job {id} is not the one this node posted",
                step + 1
            )));
        }
        let op_trace = trainer.claimed_op_trace(&dataset, &before, step, &claimed)?;
        let ctx = Arc::new(
            StepContext::new(spec, Arc::new(dataset), step, before, op_trace)
                .map_err(|e| NodeError::Job(e.to_string()))?,
        );
        self.games
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((id, step), ctx.clone());
        Ok(ctx)
    }
}
