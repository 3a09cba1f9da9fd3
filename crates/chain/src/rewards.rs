//! Spec admission, the bond a challenge needs now, and the reward pools of convictions
//! (docs/economics.md).

use alloy::primitives::{Address, B256, U256};
use pedals_core::JobId;

use pedals_store::Action;

use crate::{ChainError, DisputeGame, Market, TxOutcome, market::send};

/// A conviction's reward pool, as the market keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewardPool {
    /// Wei not yet collected.
    pub remaining: U256,
    /// Claimants that have not collected yet.
    pub claimants: u32,
    /// The conviction's block: commitments from it on do not qualify.
    pub convicted_block: u64,
    /// Last second at which a share may be claimed (zero: no pool).
    pub claim_end: u64,
}

impl Market {
    /// The hash the dispute game gives a training job's spec of `steps` steps, and whether it
    /// admitted it already; no transaction. The game refuses a spec it could not adjudicate,
    /// with `Inadmissible` naming the field.
    pub async fn spec_admission(
        &self,
        spec: &DisputeGame::Spec,
        steps: u64,
    ) -> Result<(B256, bool), ChainError> {
        let game = self.dispute_game();
        let steps = U256::from(steps);
        let hash = game
            .admitSpec(spec.clone(), steps)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        let admitted = game
            .admittedSteps(hash)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok((hash, admitted == steps))
    }

    /// Admits a training job's spec on the dispute game unless it was (see
    /// [`Self::spec_admission`]) and returns its hash, which the job must be posted with, and
    /// the admission's transaction when one was sent.
    pub async fn admit_spec(
        &self,
        spec: DisputeGame::Spec,
        steps: u64,
    ) -> Result<(B256, Option<TxOutcome>), ChainError> {
        let (hash, admitted) = self.spec_admission(&spec, steps).await?;
        if admitted {
            return Ok((hash, None));
        }
        Ok((hash, Some(self.send_admission(spec, steps).await?)))
    }

    /// Sends the admission of a spec (after [`Self::spec_admission`] said it is needed).
    pub async fn send_admission(
        &self,
        spec: DisputeGame::Spec,
        steps: u64,
    ) -> Result<TxOutcome, ChainError> {
        send(self.dispute_game().admitSpec(spec, U256::from(steps))).await
    }

    /// Whether `account` claims a share of `job_id`'s reward pool and has not collected it.
    pub async fn claims_reward(&self, job_id: JobId, account: Address) -> Result<bool, ChainError> {
        let job_id = job_id.to_u256();
        let state = self
            .job_market()
            .claimOf(job_id, account)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(state == U256::from(1u8))
    }

    /// The jobs whose conviction opened a reward pool, oldest first.
    pub async fn reward_pools(&self) -> Result<Vec<JobId>, ChainError> {
        let events = self
            .job_market()
            .RewardPoolOpened_filter()
            .from_block(self.deployment().deployment_block)
            .query()
            .await
            .map_err(ChainError::from_contract)?;
        // An id beyond 2^64 is no job this market numbered.
        Ok(events
            .into_iter()
            .filter_map(|(e, _)| JobId::try_from(e.jobId).ok())
            .collect())
    }

    /// The bond the next challenge or demand of `job_id` must carry: the market's base bond,
    /// doubled for each challenge its worker won and each demand it met.
    pub async fn challenge_bond_of(&self, job_id: JobId) -> Result<U256, ChainError> {
        let job_id = job_id.to_u256();
        self.job_market()
            .challengeBondOf(job_id)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The reward pool of `job_id` (all zero when no conviction opened one).
    pub async fn reward_pool(&self, job_id: JobId) -> Result<RewardPool, ChainError> {
        let job_id = job_id.to_u256();
        let p = self
            .job_market()
            .getRewardPool(job_id)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(RewardPool {
            remaining: U256::from(p.remaining),
            claimants: p.claimants,
            convicted_block: p.convictedBlock,
            claim_end: p.claimEnd.to::<u64>(),
        })
    }

    /// Joins `job_id`'s reward pool with a challenge commitment of the sender's made before
    /// the conviction (the preimage [`Self::commit_challenge`] was given).
    pub async fn claim_reward(
        &self,
        job_id: JobId,
        step: u64,
        claimed: B256,
        salt: B256,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let contract = self.job_market();
        let call = contract.claimReward(job_id, U256::from(step), claimed, salt);
        self.transact(job_id, Action::RewardClaim, call).await
    }

    /// Credits the sender's share of `job_id`'s reward pool, once its claim period is over.
    pub async fn collect_reward(&self, job_id: JobId) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let contract = self.job_market();
        let call = contract.collectReward(job_id);
        self.transact(job_id, Action::RewardCollect, call).await
    }
}
