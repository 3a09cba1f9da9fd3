//! Whether and when to take a job: capacity announcements, the price and deadline checks,
//! and the worker's estimate of its own time on the job.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Worker {
    /// Publishes what this worker can take on (its backend, its last measured speed, its
    /// price, its free slots) on the capacity topic, every `announce_every`. Gossip is a hint
    /// for requesters; with no peers yet it tries again next round.
    pub(crate) async fn announce_capacity(&self) -> Result<(), NodeError> {
        let Some(net) = &self.net else {
            return Ok(());
        };
        let due = self
            .last_announced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none_or(|t| t.elapsed() >= self.config.announce_every);
        if !due {
            return Ok(());
        }
        let busy = self
            .store
            .active_jobs()?
            .iter()
            .filter(|r| is_busy(&r.phase))
            .count();
        let announcement = pedals_p2p::Announcement::Capacity(pedals_p2p::CapacityAnnouncement {
            chain_id: self.deployment.chain_id,
            worker: self.address(),
            backends: vec![format!("cpu-{}", pedals_ml::exact::Isa::detect())],
            steps_per_second: self.metrics.training_steps_per_second.get(),
            min_wei_per_step: self.config.min_wei_per_step,
            free_slots: if self.is_paused() {
                0
            } else {
                u32::try_from(self.config.max_active_jobs.max(1).saturating_sub(busy))
                    .unwrap_or(u32::MAX)
            },
            announced_at: pedals_p2p::unix_now(),
        });
        match net.publish(&announcement).await {
            Ok(()) => {
                *self
                    .last_announced
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(std::time::Instant::now());
            }
            Err(e) => debug!(target: "pedals::node", error = %e, "capacity not announced yet"),
        }
        Ok(())
    }

    /// Whether other jobs hold this worker's capacity (claimed and not yet submitted).
    pub(crate) fn busy_with_others(&self, id: u64) -> Result<bool, NodeError> {
        let busy = self
            .store
            .active_jobs()?
            .iter()
            .filter(|r| r.job_id != id && is_busy(&r.phase))
            .count();
        Ok(busy >= self.config.max_active_jobs.max(1))
    }

    /// Why this worker should not take the job, if it should not: the price per step, the
    /// claim deadline, its own speed on this very job against the delivery deadline, and the
    /// price per second of that time.
    pub(crate) async fn decline_reason(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<Option<String>, NodeError> {
        let per_step = U256::from(job.payment) / U256::from(job.steps.max(1));
        if per_step < self.config.min_wei_per_step {
            return Ok(Some(format!(
                "it pays {per_step} wei per step, below this worker's minimum of {}",
                self.config.min_wei_per_step
            )));
        }
        let now = self.now().await?;
        if now > job.claimDeadline.to::<u64>() {
            return Ok(Some("its claim deadline passed".into()));
        }
        let seconds = match self.load_job(job, record) {
            Ok(Some(Inputs::Mlp(inputs))) => {
                let (spec, dataset, init) = *inputs;
                self.estimate_seconds(spec, dataset, init).await?
            }
            Ok(Some(Inputs::Lm(inputs))) => self.estimate_lm(inputs).await?,
            Ok(Some(Inputs::Ft(inputs))) => {
                if let Some(reason) = self.ft_memory_reason(&inputs)? {
                    return Ok(Some(reason));
                }
                self.estimate_ft(inputs).await?
            }
            Ok(None) => return Ok(Some("its data is no longer in the store".into())),
            Err(reason) => return Ok(Some(reason)),
        };
        let left = job.deliveryDeadline.to::<u64>().saturating_sub(now);
        info!(target: "pedals::node", job = id, estimated_seconds = seconds, deadline_in = left, "estimated on this worker");
        if seconds * self.config.deadline_safety > left as f64 {
            return Ok(Some(format!(
                "it would take about {seconds:.0} s here (measured on its own model and data) \
                 and is due in {left} s"
            )));
        }
        if self.config.min_wei_per_second > U256::ZERO {
            // wei per second = payment / seconds, compared without floats on the payment.
            let millis = U256::from((seconds * 1000.0).ceil().max(1.0) as u64);
            let per_second = U256::from(job.payment) * U256::from(1000u64) / millis;
            if per_second < self.config.min_wei_per_second {
                return Ok(Some(format!(
                    "it pays about {per_second} wei per second of this worker's time, below \
                     its minimum of {}",
                    self.config.min_wei_per_second
                )));
            }
        }
        Ok(None)
    }

    /// Seconds this worker needs for the whole job, from timing a few of its steps (or its
    /// first chunk) on the job's own model and data. The first step pays for warm-up, so the
    /// estimate errs long.
    pub(crate) async fn estimate_seconds(
        &self,
        spec: JobSpec,
        dataset: Dataset,
        init: MlpState,
    ) -> Result<f64, NodeError> {
        let threads = self.config.threads;
        tokio::task::spawn_blocking(move || -> Result<f64, NodeError> {
            let trainer = Trainer::new(CpuOps::new(threads), spec.train.clone())?;
            let started = std::time::Instant::now();
            let (probe, total) = if let Some(inf) = spec.inference {
                inference::run_chunk(&trainer, &dataset, &init, inf.chunk, 0)?;
                (1, spec.train.steps)
            } else {
                let probe = spec.train.steps.min(3);
                let mut state = init;
                for step in 0..probe {
                    state = trainer.replay_step(&dataset, &state, step)?;
                }
                (probe, spec.train.steps)
            };
            Ok(started.elapsed().as_secs_f64() / probe.max(1) as f64 * total as f64)
        })
        .await?
    }
}
