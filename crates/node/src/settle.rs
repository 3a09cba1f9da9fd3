//! Driving a stored transaction intent to its receipt: the claim, whose failure may mean a
//! lost race or only a slow block, and the other actions, which are signed again on a revert.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Worker {
    /// Claims job `id`: signs the claim, stores it with the move to Claiming in one write, and
    /// drives it to its receipt.
    pub(crate) async fn claim(&self, id: u64) -> Result<(), NodeError> {
        let tx = call(
            self.deployment.job_market,
            JobMarket::claimJobCall {
                jobId: U256::from(id),
            }
            .abi_encode(),
        );
        let intent = self.sender.sign(id, Action::Claim, tx).await?;
        self.store
            .advance_with_intent(id, JobPhase::Claiming, &intent)?;
        self.settle_claim(id).await
    }

    /// Drives the stored claim; a lost race abandons the job (only gas was spent).
    pub(crate) async fn settle_claim(&self, id: u64) -> Result<(), NodeError> {
        let Some(intent) = self.store.intent(id, Action::Claim)? else {
            return Ok(());
        };
        match self.sender.drive(intent).await {
            Ok(outcome) => {
                info!(target: "pedals::node", job = id, tx = %outcome.hash, "claimed");
                self.store.advance(id, JobPhase::Claimed)?;
            }
            Err(e) => {
                let (job, status) = self.chain_job(id).await?;
                if job.worker == self.address() {
                    self.store.advance(id, JobPhase::Claimed)?;
                } else if status != JobStatus::Posted {
                    self.abandon(
                        id,
                        format!("the claim failed ({e}); the job is {status:?} by another worker"),
                    )?;
                } else if matches!(e, ChainError::TxReverted(_)) {
                    // Still open, yet the contract refused this worker: another try would only
                    // burn gas the same way.
                    self.abandon(id, format!("the claim reverted ({e})"))?;
                } else if matches!(e, ChainError::TxDropped { .. }) {
                    // Still open, and the claim never made it: sign it again on the next tick.
                    warn!(target: "pedals::node", job = id, error = %e, "claim dropped; will sign again");
                    self.store.advance(id, JobPhase::Ready)?;
                } else {
                    // Not mined yet (or the RPC failed): the intent stays stored and the next
                    // tick drives it again. Abandoning here would leave a pending claim that
                    // may still be mined, locking stake on a job nobody works on.
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Drives the stored `action`; success moves to `done`, a revert back to `retry`.
    pub(crate) async fn settle(
        &self,
        id: u64,
        action: Action,
        done: JobPhase,
        retry: JobPhase,
    ) -> Result<(), NodeError> {
        let Some(intent) = self.store.intent(id, action)? else {
            return Ok(());
        };
        match self.sender.drive(intent).await {
            Ok(_) => {
                self.store.advance(id, done)?;
            }
            Err(e @ (ChainError::TxReverted(_) | ChainError::TxDropped { .. })) => {
                warn!(target: "pedals::node", job = id, %action, error = %e, "will sign again");
                self.store.advance(id, retry)?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}
