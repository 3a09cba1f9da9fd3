//! After a restart, the validator goes on from its journal: a game it opened is played on
//! from the state it kept (the worker need not serve it again), a challenge it committed to
//! but did not reveal is revealed while the job can still be challenged, and what is settled
//! is forgotten.

use alloy::primitives::B256;
use pedals_chain::JobStatus;
use pedals_ml::JobSpec;
use tracing::{info, warn};

use crate::work::{Disputed, NOT_DISPUTABLE, Work};
use crate::{Verifier, VerifierError, journal::Finding, verifier::Tracked};

impl Verifier {
    /// Takes up every finding of the journal not taken up yet; returns the jobs it now
    /// tracks, with how. A finding it cannot take up this round (the network does not
    /// answer) is tried again next round.
    pub(crate) async fn resume_findings(&self) -> Vec<(u64, Tracked)> {
        let pending: Vec<(u64, Finding)> = std::mem::take(&mut *self.unresumed());
        let mut tracked = Vec::new();
        for (id, finding) in pending {
            match self.resume_finding(id, finding).await {
                Ok(Some(t)) => tracked.push((id, t)),
                Ok(None) => {}
                Err(e) => {
                    warn!(target: "pedals::validator", job = id, error = %e, "cannot take up the journal's finding yet; trying again next round");
                    self.unresumed().push((id, finding));
                }
            }
        }
        tracked
    }

    async fn resume_finding(
        &self,
        id: u64,
        finding: Finding,
    ) -> Result<Option<Tracked>, VerifierError> {
        let job_id = pedals_core::JobId(id);
        let market = self.market();
        let job = market.job(job_id).await?;
        let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
        let challenge = market.challenge_of(job_id).await?;
        let mine = status == JobStatus::Disputed
            && challenge.challenger == market.sender()
            && u64::from(challenge.step) == finding.step;
        if mine {
            // Its game, even when the journal does not say so: a stop between the reveal's
            // receipt and the journal's write leaves `revealed` unset.
            if !finding.revealed {
                let revealed = Finding {
                    revealed: true,
                    sent: true,
                    ..finding
                };
                self.journal().record(id, &revealed, None)?;
                self.rewards().committed.remove(&id);
            }
            let ctx = self.rebuild(&job.specHash, id, finding.step).await?;
            info!(target: "pedals::validator", job = id, step = finding.step, "playing on the game opened before the restart");
            return Ok(Some(Tracked::Disputing(ctx)));
        }
        if finding.revealed {
            // The game was decided while this validator was away.
            self.journal().forget(id);
            return Ok(None);
        }
        if status == JobStatus::Submitted
            && chain_now_before(self, job.windowEnd.to::<u64>()).await?
        {
            let ctx = self.rebuild(&job.specHash, id, finding.step).await?;
            info!(target: "pedals::validator", job = id, step = finding.step, "revealing the challenge committed before the restart");
            self.open_challenge(job_id, &ctx, finding.claimed).await?;
            return Ok(Some(Tracked::Disputing(ctx)));
        }
        // Settled, past its window, or held by another's dispute or demand: the commitment
        // waits in `settle_rewards`'s care (a conviction's reward pool may still want it; it
        // is forgotten once settled), and the job is checked again as any other.
        Ok(None)
    }

    /// The disputed `step` of job `id`, from the state the journal kept before it.
    async fn rebuild(
        &self,
        spec_hash: &B256,
        id: u64,
        step: u64,
    ) -> Result<Disputed, VerifierError> {
        // The spec's CID is the same for every kind of job: its hash is the sha2-256 digest.
        let (spec_bytes, _) = self
            .net()
            .fetch_blob(JobSpec::cid_for_hash(spec_hash))
            .await?;
        let work = Work::fetch(self.net(), &spec_bytes)
            .await?
            .ok_or_else(|| VerifierError::Job(format!("job {id} is {NOT_DISPUTABLE}")))?;
        let bytes = self.journal().state(id).ok_or_else(|| {
            VerifierError::Job(format!("the journal keeps no state for job {id}"))
        })?;
        let before = work.open(step, &bytes).ok_or_else(|| {
            VerifierError::Job(format!(
                "the journal's state for job {id} is no state of its model before step {step}"
            ))
        })?;
        let threads = self.threads();
        // The op trace is a re-execution: on the blocking pool, like every other.
        tokio::task::spawn_blocking(move || work.disputed(threads, step, before))
            .await
            .map_err(|e| VerifierError::Job(format!("the re-execution stopped: {e}")))?
    }
}

/// Whether the chain's clock is still before `deadline`.
async fn chain_now_before(v: &Verifier, deadline: u64) -> Result<bool, VerifierError> {
    Ok(pedals_chain::chain_time(v.market().provider()).await? < deadline)
}
