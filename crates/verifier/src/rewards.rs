//! The validator's side of conviction rewards (docs/economics.md): a challenge it commits to is
//! remembered until it is revealed; if someone else convicts the worker first (a puppet of the
//! worker's, say), the remembered commitment joins the conviction's reward pool; every pool it
//! is a claimant of is collected once its claim period ends.

use std::collections::{BTreeSet, HashMap};

use alloy::primitives::{B256, U256};
use pedals_chain::{ChainError, JobStatus, chain_time};
use pedals_core::JobId;
use tracing::{info, warn};

use crate::{Verifier, VerifierError, work::Disputed};

/// A challenge this validator committed to and has not revealed (also kept in the journal).
pub(crate) type Committed = crate::journal::Finding;

/// What the validator remembers about rewards.
#[derive(Debug, Default)]
pub(crate) struct Rewards {
    /// Unrevealed commitments, by job.
    pub(crate) committed: HashMap<u64, Committed>,
    /// Jobs whose reward pool this validator is a claimant of, not collected yet.
    pub(crate) pools: BTreeSet<u64>,
    /// Whether `pools` was rebuilt from the chain (after a start, or a restart that forgot it).
    pub(crate) restored: bool,
}

impl Verifier {
    /// Commits to challenging the step of `ctx` in job `id` with `claimed`, unless it already
    /// has: a commitment made before a conviction earns a share of its reward even when
    /// another challenger's reveal came first. The finding, its salt and the state before the
    /// step are written to the journal before the commitment is sent, so a restart neither
    /// loses the salt nor the means to play the game. Returns the commitment.
    pub(crate) async fn commit_once(
        &self,
        id: u64,
        ctx: &Disputed,
        claimed: B256,
    ) -> Result<Committed, VerifierError> {
        let step = ctx.step();
        let known = self
            .rewards()
            .committed
            .get(&id)
            .copied()
            .filter(|c| c.step == step && c.claimed == claimed);
        if let Some(c) = known.filter(|c| c.sent) {
            return Ok(c);
        }
        // A commitment recorded but perhaps never mined (a crash in between) is sent again
        // with the same salt: the market keeps the block of its first sight.
        let mut c = known.unwrap_or(Committed {
            step,
            claimed,
            salt: B256::from(rand::random::<[u8; 32]>()),
            sent: false,
            revealed: false,
        });
        self.journal().record(id, &c, Some(&ctx.state_bytes()?))?;
        self.market()
            .commit_challenge(pedals_core::JobId(id), step, claimed, c.salt)
            .await?;
        c.sent = true;
        self.journal().record(id, &c, None)?;
        self.rewards().committed.insert(id, c);
        info!(target: "pedals::validator", job = id, step, "challenge committed");
        Ok(c)
    }

    /// Commits (once) and reveals a challenge of the step of `ctx` claiming `mine`, with the
    /// bond the market asks now.
    pub(crate) async fn open_challenge(
        &self,
        job_id: JobId,
        ctx: &Disputed,
        mine: B256,
    ) -> Result<(), VerifierError> {
        let id = job_id.get();
        let bond = self.market().challenge_bond_of(job_id).await?;
        let mut c = self.commit_once(id, ctx, mine).await?;
        // The reveal must land in a later block than the commitment: the commitment's block is
        // sealed once its receipt is in, so the reveal sent now cannot join it.
        self.market()
            .challenge(job_id, ctx.step(), mine, c.salt, bond)
            .await?;
        c.revealed = true;
        self.journal().record(id, &c, None)?;
        self.rewards().committed.remove(&id);
        info!(target: "pedals::validator", job = %job_id, step = ctx.step(), "challenge opened");
        Ok(())
    }

    /// Records that this validator is a claimant of job `id`'s reward pool.
    pub(crate) fn await_reward(&self, id: u64) {
        let mut r = self.rewards();
        r.committed.remove(&id);
        r.pools.insert(id);
        // Which pools it claims is read back from the chain after a restart.
        self.journal().forget(id);
    }

    /// Joins the pool of every convicted job it holds a commitment for, and collects every
    /// pool whose claim period is over. A call the market refuses is dropped with a warning;
    /// any other failure is retried next round.
    pub(crate) async fn settle_rewards(&self) -> Result<(), VerifierError> {
        let market = self.market();
        if !self.rewards().restored {
            // The pools this account claims survive a restart on-chain, not in memory.
            for job_id in market.reward_pools().await? {
                if market.claims_reward(job_id, market.sender()).await? {
                    self.rewards().pools.insert(job_id.get());
                }
            }
            self.rewards().restored = true;
        }
        let now = chain_time(market.provider()).await?;
        let committed: Vec<(u64, Committed)> = self
            .rewards()
            .committed
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        for (id, c) in committed {
            let job_id = pedals_core::JobId(id);
            let status =
                JobStatus::try_from(market.job(job_id).await?.status).unwrap_or(JobStatus::None);
            if !status.is_terminal() {
                continue;
            }
            let pool = market.reward_pool(job_id).await?;
            if status != JobStatus::Resolved || pool.claim_end == 0 || now > pool.claim_end {
                self.rewards().committed.remove(&id);
                self.journal().forget(id);
                continue;
            }
            match market.claim_reward(job_id, c.step, c.claimed, c.salt).await {
                Ok(tx) => {
                    info!(target: "pedals::validator", job = id, tx = %tx.hash, "another challenger convicted the worker first: joined the reward pool");
                    self.await_reward(id);
                }
                Err(e @ ChainError::JobMarket(_)) => {
                    warn!(target: "pedals::validator", job = id, error = %e, "the market refused the reward claim");
                    self.rewards().committed.remove(&id);
                    self.journal().forget(id);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let pools: Vec<u64> = self.rewards().pools.iter().copied().collect();
        for id in pools {
            let pool = market.reward_pool(pedals_core::JobId(id)).await?;
            if now <= pool.claim_end {
                continue;
            }
            // The market pays an equal part of what remains, as computed here.
            let share = pool.remaining / U256::from(pool.claimants.max(1));
            match market.collect_reward(pedals_core::JobId(id)).await {
                Ok(_) => {
                    self.stats().wei_earned.inc_by(share.saturating_to());
                    info!(target: "pedals::validator", job = id, share = %share, "reward collected");
                }
                Err(e @ ChainError::JobMarket(_)) => {
                    warn!(target: "pedals::validator", job = id, error = %e, "the market refused the collection");
                }
                Err(e) => return Err(e.into()),
            }
            self.rewards().pools.remove(&id);
        }
        Ok(())
    }
}
