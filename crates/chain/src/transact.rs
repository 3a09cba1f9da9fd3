//! Where a [`Market`]'s transactions go: straight to the endpoint (a command run by hand), or,
//! for a daemon, through a crash-safe [`TxSender`] that writes each one to the node's store
//! before broadcasting it. Every transaction a role sends is keyed by its job and
//! [`Action`], so a daemon killed at any point and started again drives what it had signed
//! instead of signing a second one.

use std::sync::Arc;

use alloy::{
    contract::SolCallBuilder, primitives::U256, providers::DynProvider, sol_types::SolCall,
};
use pedals_store::{Action, Store};

use crate::{ChainError, Market, SendPolicy, TxOutcome, TxSender, market::send};

impl Market {
    /// This client with every transaction of its role (stakes, claims, submissions,
    /// challenges, reveals, demands, game moves, audits, rewards) sent through `sender`,
    /// which must sign for the same account.
    pub fn with_sender(mut self, sender: Arc<TxSender>) -> Self {
        debug_assert_eq!(sender.address(), self.sender(), "one account");
        self.journal = Some(sender);
        self
    }

    /// This client with its transactions written ahead to `store` (see [`Market::with_sender`]);
    /// the chain id is the deployment's, which [`Market::connect`] checked.
    pub fn journaled(self, store: Arc<Store>, policy: SendPolicy) -> Self {
        let sender = TxSender::for_chain(
            self.provider().clone(),
            self.wallet.clone(),
            self.sender(),
            self.deployment().chain_id,
            store,
            policy,
        );
        self.with_sender(Arc::new(sender))
    }

    /// Drives every transaction signed before the last stop to its end (a daemon calls this
    /// when it starts); returns how many there were. Without a sender there are none.
    pub async fn resume_sends(&self) -> Result<usize, ChainError> {
        let Some(sender) = &self.journal else {
            return Ok(0);
        };
        let resumed = sender.resume().await?;
        for (intent, result) in &resumed {
            if let Err(e) = result {
                tracing::warn!(target: "pedals::chain", job = intent.job_id, action = %intent.action, error = %e, "a resumed transaction did not succeed");
            }
        }
        Ok(resumed.len())
    }

    /// Sends `call` as `action` on `job` (job 0: the account's own), through the sender when
    /// there is one.
    pub(crate) async fn transact<C: SolCall>(
        &self,
        job: U256,
        action: Action,
        call: SolCallBuilder<&DynProvider, C>,
    ) -> Result<TxOutcome, ChainError> {
        match &self.journal {
            None if action == Action::DisputeMove => {
                // A move charges the time since the last one to the mover's clock: estimated in
                // the last move's block that write is free, mined a second later it costs up
                // to 5,000 gas more, which a bare estimate does not cover.
                let estimate = call
                    .estimate_gas()
                    .await
                    .map_err(ChainError::from_contract)?;
                send(call.gas(estimate + estimate / 5 + 20_000)).await
            }
            None => send(call).await,
            Some(sender) => {
                let job = u64::try_from(job).map_err(|_| ChainError::JobIdTooLarge(job))?;
                sender
                    .send(job, action, call.into_transaction_request())
                    .await
            }
        }
    }
}
