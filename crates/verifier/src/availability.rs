//! The validator's data-availability demands (docs/protocol.md §7): following a demand it
//! made until the worker meets it (then the published state is what it re-executes from) or
//! the deadline passes (then it claims the worker's collateral).

use alloy::primitives::B256;
use pedals_chain::{JobStatus, chain_time};
use pedals_core::state_from_runs;
use tracing::{info, warn};

use crate::VerifierError;
use crate::verifier::{JobCheck, Verifier};
use crate::work::Before;

/// Where a demand this validator made stands.
pub(crate) enum DemandState {
    /// Open, before its deadline (or someone else's demand holds the job).
    Open,
    /// The worker let it pass: this validator claimed the collateral.
    Claimed,
    /// Met: the state before the step and the worker's hash of the state after it.
    Met(Before, B256),
    /// Met, but what was published is no state of the job's model (other tensors or shapes):
    /// the worker's `h_step` is not a state the step before could have produced.
    NotAState,
    /// Neither open nor met (its transaction did not land): demand again.
    Gone,
}

impl Verifier {
    /// Follows this validator's demand of `h_step`, the state before step `step` of job `id`.
    pub(crate) async fn follow_demand(
        &self,
        id: u64,
        check: &JobCheck,
        step: u64,
        status: JobStatus,
    ) -> Result<DemandState, VerifierError> {
        let job_id = pedals_core::JobId(id);
        let market = self.market();
        if status == JobStatus::Demanded {
            let demand = market.demand(job_id).await?;
            if demand.demander != market.sender() || u64::from(demand.step) != step {
                return Ok(DemandState::Open);
            }
            let now = chain_time(market.provider()).await?;
            if now <= demand.deadline.to::<u64>() {
                return Ok(DemandState::Open);
            }
            let before = market.credit_of(market.sender()).await?;
            if let Err(e) = market.claim_unavailable(job_id).await {
                // It may have landed all the same (a receipt that came too late): the chain says.
                let job = market.job(job_id).await?;
                if JobStatus::try_from(job.status) != Ok(JobStatus::Resolved) {
                    return Err(e.into());
                }
            }
            let earned = market
                .credit_of(market.sender())
                .await?
                .saturating_sub(before);
            let stats = self.stats();
            stats.demands_unmet.inc();
            stats.wei_earned.inc_by(earned.saturating_to());
            warn!(target: "pedals::validator", job = id, step, earned = %earned, "the worker did not publish the demanded state: its collateral is seized");
            self.await_reward(id);
            return Ok(DemandState::Claimed);
        }
        let Some(published) = market.published_state(job_id, step).await? else {
            return Ok(DemandState::Gone);
        };
        if !published.complete {
            return Ok(DemandState::Gone);
        }
        // The contract proved the rows against h_step; they rebuild a state of this model
        // only if h_step is one.
        let rebuilt = state_from_runs(
            &check.template,
            published
                .runs
                .iter()
                .map(|(t, first, rows)| (*t, *first, rows.as_slice())),
        )
        .ok()
        .filter(|state| state.state_hash().ok() == Some(published.state_hash))
        .and_then(|state| state.to_canonical_bytes().ok())
        .and_then(|bytes| check.work.open(step, &bytes));
        let Some(before) = rebuilt else {
            warn!(target: "pedals::validator", job = id, step, "the published state is no state of the job's model: checking the step before it");
            return Ok(DemandState::NotAState);
        };
        info!(target: "pedals::validator", job = id, step, "the demanded state was published; re-executing from it");
        Ok(DemandState::Met(before, published.next_hash))
    }
}
