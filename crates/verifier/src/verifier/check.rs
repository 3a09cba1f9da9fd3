//! Checking a job: starting on it (its files fetched, its steps sampled in secret), then each
//! round the step it demanded once published, and the next sampled steps, until one does not
//! reproduce (challenged) or all do.

use alloy::primitives::B256;
use pedals_chain::{JobStatus, chain_time};
use pedals_core::cid_from_bytes;
use pedals_ml::JobSpec;
use pedals_p2p::TraceClaim;
use tracing::{info, warn};

use super::{JobCheck, Replayed, Tracked, Verifier};
use crate::VerifierError;
use crate::availability::DemandState;
use crate::sampling::pick_steps;
use crate::work::{Disputed, NOT_DISPUTABLE, Work};

impl Verifier {
    /// What it needs to check job `id`, with its sampled steps; `None` when the job is not one
    /// to check (not submitted or held by a dispute or demand, its own, past its window, not a
    /// disputable training job).
    pub(super) async fn start(&self, id: u64) -> Result<Option<Box<JobCheck>>, VerifierError> {
        let job_id = pedals_core::JobId(id);
        let job = self.market.job(job_id).await?;
        let status =
            JobStatus::try_from(job.status).map_err(|e| VerifierError::Job(e.to_string()))?;
        let now = chain_time(self.market.provider()).await?;
        if !matches!(
            status,
            JobStatus::Submitted | JobStatus::Demanded | JobStatus::Disputed
        )
            || job.worker == self.market.sender()
            // A dispute freezes the window: it moves on by the dispute's length if the
            // challenger loses, so a disputed job is checked whatever its old end.
            || (status != JobStatus::Disputed && now >= job.windowEnd.to::<u64>())
        {
            if status.is_terminal() {
                self.jobs.lock().await.insert(id, Tracked::Over);
            }
            return Ok(None);
        }
        let submitted = self
            .market
            .submitted_result(job_id)
            .await?
            .ok_or_else(|| VerifierError::Job("no result event".into()))?;
        let spec_cid = JobSpec::cid_for_hash(&job.specHash);
        let (spec_bytes, _) = self.net.fetch_blob(spec_cid).await?;
        // Batch inference, of an MLP or a language model, cannot be disputed; nor can a
        // fine-tuning job posted before its game existed (as optimistic inference), whose
        // files are then not fetched at all.
        let legacy = pedals_lm::FinetuneSpec::is_finetune(&spec_bytes)
            && !pedals_core::Verification::Optimistic.is(job.verification);
        let work = if legacy {
            None
        } else {
            Work::fetch(&self.net, &spec_bytes).await?
        };
        let Some(work) = work else {
            info!(target: "pedals::validator", job = id, "{NOT_DISPUTABLE}; skipped");
            self.jobs.lock().await.insert(id, Tracked::Over);
            return Ok(None);
        };
        // A validator that could not hold a challenged step's op trace could not play the game
        // it would start, and would lose its bond by the clock.
        if let Some(bytes) = work.op_trace_bytes()?
            && bytes > self.config.max_trace_bytes
        {
            warn!(target: "pedals::validator", job = id, trace_bytes = bytes, max = self.config.max_trace_bytes, "a challenged step's op trace would not fit this validator's memory limit (--max-trace-gib); skipped");
            self.jobs.lock().await.insert(id, Tracked::Over);
            return Ok(None);
        }
        let template = work.template(&self.net).await?;
        let steps = submitted.steps.saturating_to::<u64>();
        let claim = TraceClaim {
            root: submitted.traceRoot,
            steps,
        };
        // The worker's node: the providers of its account's key, then of its result.
        let mut providers = self
            .net
            .find_providers(pedals_p2p::account_key(job.worker))
            .await
            .unwrap_or_default();
        if let Ok(cid) = cid_from_bytes(&submitted.resultCid) {
            for peer in self.net.find_providers(cid).await.unwrap_or_default() {
                if !providers.contains(&peer) {
                    providers.push(peer);
                }
            }
        }
        // Secret: drawn from the OS only now, after the result is on-chain.
        let sampled = pick_steps(&mut rand::rngs::OsRng, steps, self.config.samples_per_job);
        // Which steps stays secret, even from the log; how many does not.
        info!(target: "pedals::validator", job = id, worker = %job.worker, steps, sampled = sampled.len(), "checking the job: re-executing its sampled steps");
        // After a restart, a demand this validator made is still its to follow (and to claim).
        let demanded = if status == JobStatus::Demanded {
            let demand = self.market.demand(job_id).await?;
            (demand.demander == self.market.sender()).then_some(u64::from(demand.step))
        } else {
            None
        };
        Ok(Some(Box::new(JobCheck {
            audit_root: (work.audits()
                && job.auditRoot != B256::ZERO
                && !self.audits().open.contains_key(&id))
            .then_some(job.auditRoot),
            work,
            template,
            claim,
            worker: job.worker,
            providers,
            sampled: sampled.len(),
            pending: sampled.into_iter().collect(),
            demanded,
            to_challenge: None,
        })))
    }

    /// Goes on checking job `id`; returns where it is now and whether it challenged.
    pub(super) async fn advance(&self, id: u64, check: Box<JobCheck>) -> (Option<Tracked>, bool) {
        match self.check(id, check).await {
            Ok(Ok(tracked)) => (Some(tracked), false),
            Ok(Err(ctx)) => (Some(Tracked::Disputing(ctx)), true),
            Err((check, e)) => {
                if self.log_gate.admit(format!("job {id}"), &e.to_string()) {
                    warn!(target: "pedals::validator", job = id, error = %e, "could not check the job; trying again next round");
                }
                (Some(Tracked::Checking(check)), false)
            }
        }
    }

    /// Checks what it can of job `id` this round: the step it demanded, once published, then
    /// the next sampled steps. `Ok(Err(ctx))` when it challenged the step of `ctx`.
    async fn check(
        &self,
        id: u64,
        mut check: Box<JobCheck>,
    ) -> Result<Result<Tracked, Disputed>, (Box<JobCheck>, VerifierError)> {
        let job_id = pedals_core::JobId(id);
        macro_rules! tryv {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(e) => return Err((check, VerifierError::from(e))),
                }
            };
        }
        let job = tryv!(self.market.job(job_id).await);
        let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
        if status.is_terminal() {
            return Ok(Ok(Tracked::Over));
        }
        if let Some(step) = check.demanded {
            match tryv!(self.follow_demand(id, &check, step, status).await) {
                DemandState::Open => return Ok(Ok(Tracked::Checking(check))),
                DemandState::Claimed => return Ok(Ok(Tracked::Over)),
                DemandState::Met(before, next) => {
                    check.demanded = None;
                    if let Replayed::Mismatch(ctx, mine) =
                        tryv!(self.replay(&check, step, before, next).await)
                    {
                        check.to_challenge = Some((ctx, mine));
                    }
                }
                DemandState::NotAState => {
                    // h_step is committed but is no state of this model: the step that led to
                    // it is wrong (for step 0, the trace does not start from the spec's model).
                    check.demanded = None;
                    tryv!(self.blame_step_before(&mut check, step).await);
                }
                DemandState::Gone => check.pending.push_front(step),
            }
        }
        if let Some((ctx, mine)) = check.to_challenge.clone() {
            if status != JobStatus::Submitted {
                // Someone else's demand or dispute holds the job: commit now (a conviction
                // before the reveal still shares its reward with this commitment), reveal
                // when it is over.
                tryv!(self.commit_once(id, &ctx, mine).await);
                return Ok(Ok(Tracked::Checking(check)));
            }
            tryv!(self.open_challenge(job_id, &ctx, mine).await);
            return Ok(Err(ctx));
        }
        // Steps are checked while someone else's dispute or demand holds the job too (a
        // worker's puppet may open one at once to keep validators out); only what needs a
        // Submitted job, a demand or a reveal, waits for it.
        while let Some(&step) = check.pending.front() {
            let Some(opening) = self.fetch(id, &check, step).await else {
                if status != JobStatus::Submitted {
                    return Ok(Ok(Tracked::Checking(check)));
                }
                self.stats.unavailable.inc();
                let now = tryv!(chain_time(self.market.provider()).await);
                if now >= job.windowEnd.to::<u64>() {
                    warn!(target: "pedals::validator", job = id, step, "checkpoint unavailable and the window is closed; cannot demand it");
                    check.pending.pop_front();
                    continue;
                }
                warn!(target: "pedals::validator", job = id, step, "checkpoint unavailable: demanding it on-chain");
                let bond = tryv!(self.market.challenge_bond_of(job_id).await);
                tryv!(self.market.demand_data(job_id, step, bond).await);
                self.stats.demands.inc();
                check.pending.pop_front();
                check.demanded = Some(step);
                return Ok(Ok(Tracked::Checking(check)));
            };
            let Some(next) = opening.next_hash else {
                check.pending.pop_front();
                continue;
            };
            let Some(before) = check.work.open(step, &opening.state) else {
                // Served and proven, but no state of this model: the step before is wrong.
                warn!(target: "pedals::validator", job = id, step, "the served state is no state of the job's model: checking the step before it");
                check.pending.pop_front();
                tryv!(self.blame_step_before(&mut check, step).await);
                if check.to_challenge.is_some() {
                    return Ok(Ok(Tracked::Checking(check)));
                }
                continue;
            };
            let nth = check.sampled.saturating_sub(check.pending.len()) + 1;
            info!(target: "pedals::validator", job = id, nth, of = check.sampled, "re-executing a sampled step");
            let started = std::time::Instant::now();
            match tryv!(self.replay(&check, step, before, next).await) {
                Replayed::Reproduced(leaf) => {
                    check.pending.pop_front();
                    info!(target: "pedals::validator", job = id, nth, of = check.sampled, took = %pedals_chain::human::duration(started.elapsed()), "the step reproduces");
                    if let Some(leaf) = leaf {
                        let proof = opening.audit.clone();
                        tryv!(self.audit(id, &mut check, step, leaf, proof).await);
                    }
                }
                Replayed::Mismatch(ctx, mine) => {
                    check.pending.pop_front();
                    check.to_challenge = Some((ctx.clone(), mine));
                    if status != JobStatus::Submitted {
                        tryv!(self.commit_once(id, &ctx, mine).await);
                        return Ok(Ok(Tracked::Checking(check)));
                    }
                    tryv!(self.open_challenge(job_id, &ctx, mine).await);
                    return Ok(Err(ctx));
                }
            }
        }
        self.stats.jobs_checked.inc();
        info!(target: "pedals::validator", job = id, "sampled steps reproduce");
        Ok(Ok(Tracked::Checked))
    }
}
