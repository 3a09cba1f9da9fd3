//! A crash-safe transaction sender: it owns the account's nonces, writes every signed
//! transaction to the node's store before broadcasting it, and drives it to a receipt through
//! RPC errors, restarts and dropped transactions.
//!
//! ```text
//! send(job, action, call)
//!   ├─ an intent for (job, action) is open?   → drive it (never sign a second one)
//!   ├─ it succeeded already?                  → return its receipt
//!   └─ estimate (a revert is decoded here, before anything is stored)
//!      → nonce = max(pending count, highest open intent + 1) → sign
//!      → store the intent (signed bytes, nonce, hash)          ← the write-ahead record
//!      → drive: broadcast → poll every hash's receipt until the timeout
//!               → no receipt: re-sign the same nonce with fees × (1 + bump), store, broadcast
//!               → the nonce was used by none of its hashes: dropped
//! ```
//!
//! A restarted node calls [`TxSender::resume`], which drives every open intent: the stored
//! bytes are re-broadcast as they are, so an action is never sent twice.

use std::{sync::Arc, time::Duration};

use alloy::{
    consensus::{TxEnvelope, TypedTransaction},
    eips::{Decodable2718, Encodable2718},
    network::{
        Ethereum, EthereumWallet, NetworkTransactionBuilder, NetworkWallet, TransactionBuilder,
    },
    primitives::{Address, B256, Bytes},
    providers::{DynProvider, Provider},
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::local::PrivateKeySigner,
};
use pedals_store::{Action, IntentState, Store, TxIntent};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use crate::{ChainError, TxOutcome};

/// How hard the sender tries.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    /// How long to wait for a receipt before re-signing with higher fees.
    pub receipt_timeout: Duration,
    /// How often to poll for receipts.
    pub poll_interval: Duration,
    /// Replacements with higher fees before giving up (the intent stays open for
    /// [`TxSender::resume`]).
    pub max_replacements: u32,
    /// Fee increase per replacement, in percent; nodes require at least 10.
    pub fee_bump_percent: u64,
    /// Attempts to broadcast before an RPC error is returned, with doubling backoff.
    pub broadcast_attempts: u32,
    /// First backoff after a failed broadcast.
    pub backoff: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            receipt_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
            max_replacements: 5,
            fee_bump_percent: 25,
            broadcast_attempts: 6,
            backoff: Duration::from_millis(250),
        }
    }
}

/// Sends transactions for one account, with write-ahead intents in a [`Store`].
#[derive(Debug)]
pub struct TxSender {
    provider: DynProvider,
    wallet: EthereumWallet,
    from: Address,
    chain_id: u64,
    store: Arc<Store>,
    policy: SendPolicy,
    /// Held while choosing a nonce, signing and storing, so that two sends never share one.
    nonce_lock: Mutex<()>,
}

/// How a broadcast went.
enum Broadcast {
    Accepted,
    /// The node says the nonce is used: settled by one of our hashes, or by another tx.
    NonceUsed,
}

impl TxSender {
    /// A sender for `signer` over `provider` (which needs no wallet of its own).
    pub async fn new(
        provider: DynProvider,
        signer: PrivateKeySigner,
        store: Arc<Store>,
        policy: SendPolicy,
    ) -> Result<Self, ChainError> {
        let chain_id = provider.get_chain_id().await?;
        let from = signer.address();
        Ok(Self::for_chain(
            provider,
            EthereumWallet::from(signer),
            from,
            chain_id,
            store,
            policy,
        ))
    }

    /// A sender for the account of `wallet` (`from`) on chain `chain_id`, without asking the
    /// endpoint for its chain id (the caller has checked it).
    pub fn for_chain(
        provider: DynProvider,
        wallet: EthereumWallet,
        from: Address,
        chain_id: u64,
        store: Arc<Store>,
        policy: SendPolicy,
    ) -> Self {
        Self {
            from,
            wallet,
            provider,
            chain_id,
            store,
            policy,
            nonce_lock: Mutex::new(()),
        }
    }

    /// The sending account.
    pub fn address(&self) -> Address {
        self.from
    }

    /// Sends `call` (its `to`, `input` and `value`) for `job` and `action` and waits for its
    /// receipt; idempotent across crashes (see the module docs). Account-wide actions use
    /// job 0.
    pub async fn send(
        &self,
        job: u64,
        action: Action,
        call: TransactionRequest,
    ) -> Result<TxOutcome, ChainError> {
        let intent = self.prepare(job, action, call).await?;
        self.drive(intent).await
    }

    /// The first half of [`TxSender::send`]: returns the open intent for `job` and `action`,
    /// or signs `call` and stores it as one, without broadcasting. A caller that wants the
    /// job's phase change in the same write uses [`Store::advance_with_intent`] with
    /// [`TxSender::sign`] instead.
    pub async fn prepare(
        &self,
        job: u64,
        action: Action,
        call: TransactionRequest,
    ) -> Result<TxIntent, ChainError> {
        let _guard = self.nonce_lock.lock().await;
        if let Some(existing) = self.store.intent(job, action)? {
            if existing.state.is_open() || !(existing.state.has_failed() || action.repeats()) {
                debug!(target: "pedals::chain", job, %action, nonce = existing.nonce, "resuming stored intent");
                return Ok(existing);
            }
            // A repeating action mined before a crash kept it from being retired: it is done,
            // and this call is the next one.
            self.store.retire_intent(job, action)?;
        }
        let intent = self.sign_locked(job, action, call).await?;
        self.store.record_intent(&intent)?;
        Ok(intent)
    }

    /// Estimates, picks the next nonce and signs `call`, without storing or broadcasting.
    /// The caller must store the intent before broadcasting it.
    pub async fn sign(
        &self,
        job: u64,
        action: Action,
        call: TransactionRequest,
    ) -> Result<TxIntent, ChainError> {
        let _guard = self.nonce_lock.lock().await;
        self.sign_locked(job, action, call).await
    }

    async fn sign_locked(
        &self,
        job: u64,
        action: Action,
        call: TransactionRequest,
    ) -> Result<TxIntent, ChainError> {
        let pending = self
            .provider
            .get_transaction_count(self.from)
            .pending()
            .await?;
        let stored = self
            .store
            .open_intents()?
            .iter()
            .map(|i| i.nonce + 1)
            .max()
            .unwrap_or(0);
        let nonce = pending.max(stored);
        let mut tx = call
            .with_from(self.from)
            .with_nonce(nonce)
            .with_chain_id(self.chain_id);
        let gas = self
            .provider
            .estimate_gas(tx.clone())
            .await
            .map_err(ChainError::from_rpc)?;
        let fees = self.provider.estimate_eip1559_fees().await?;
        // A fifth more than the estimate, and a fixed margin: a game move charges the time
        // since the last one to the mover's clock, which an estimate made in the last move's
        // block does not pay for (up to 5,000 gas more).
        tx = tx
            .with_gas_limit(gas + gas / 5 + 20_000)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let envelope = tx.build(&self.wallet).await.map_err(ChainError::sign)?;
        let raw: Bytes = envelope.encoded_2718().into();
        let hash = *envelope.tx_hash();
        info!(target: "pedals::chain", job, %action, nonce, tx = %hash, "signed");
        Ok(TxIntent::signed(job, action, nonce, raw, hash))
    }

    /// Drives every open intent to an end: what a node calls when it starts. Returns each
    /// intent with its outcome.
    pub async fn resume(
        &self,
    ) -> Result<Vec<(TxIntent, Result<TxOutcome, ChainError>)>, ChainError> {
        let open = self.store.open_intents()?;
        if !open.is_empty() {
            info!(target: "pedals::chain", count = open.len(), "resuming open transactions");
        }
        let mut out = Vec::with_capacity(open.len());
        for intent in open {
            let result = self.drive(intent.clone()).await;
            out.push((intent, result));
        }
        Ok(out)
    }

    /// Broadcasts `intent` and waits for a receipt of any of its versions, replacing it with
    /// higher fees when none comes in time.
    pub async fn drive(&self, mut intent: TxIntent) -> Result<TxOutcome, ChainError> {
        let (job, action) = (intent.job_id, intent.action);
        if let IntentState::Mined { .. } = intent.state {
            if let Some(receipt) = self.find_receipt(&intent).await? {
                return TxOutcome::from_receipt(&receipt);
            }
            // Mined once, gone now: a reorg dropped its block. Its signed bytes are still
            // valid for its nonce, so it goes out again like any open intent.
            warn!(target: "pedals::chain", job, %action, nonce = intent.nonce, "mined transaction reorged out; sending it again");
            intent = self
                .store
                .set_intent_state(job, action, IntentState::Sent)?;
        }
        for replacement in 0..=self.policy.max_replacements {
            match self.broadcast(&intent.raw).await? {
                Broadcast::Accepted => {
                    if intent.state == IntentState::Signed {
                        intent = self
                            .store
                            .set_intent_state(job, action, IntentState::Sent)?;
                    }
                }
                Broadcast::NonceUsed => {
                    if let Some(receipt) = self.find_receipt(&intent).await? {
                        return self.mined(&intent, &receipt);
                    }
                    self.store
                        .set_intent_state(job, action, IntentState::Dropped)?;
                    return Err(ChainError::TxDropped {
                        job,
                        action: action.to_string(),
                        nonce: intent.nonce,
                    });
                }
            }
            if let Some(receipt) = self.wait(&intent).await? {
                return self.mined(&intent, &receipt);
            }
            if replacement == self.policy.max_replacements {
                break;
            }
            intent = self.bump(&intent).await?;
        }
        Err(ChainError::TxStuck {
            job,
            action: action.to_string(),
            nonce: intent.nonce,
            attempts: self.policy.max_replacements + 1,
        })
    }

    async fn broadcast(&self, raw: &Bytes) -> Result<Broadcast, ChainError> {
        let mut backoff = self.policy.backoff;
        let mut attempt = 1;
        loop {
            match self.provider.send_raw_transaction(raw).await {
                Ok(_) => return Ok(Broadcast::Accepted),
                Err(e) => {
                    let message = e.to_string().to_lowercase();
                    // geth and reth: "already known"; anvil: "transaction already imported".
                    if [
                        "already known",
                        "known transaction",
                        "already imported",
                        "alreadyknown",
                    ]
                    .iter()
                    .any(|m| message.contains(m))
                    {
                        return Ok(Broadcast::Accepted);
                    }
                    if message.contains("nonce too low")
                        || message.contains("nonce has already been used")
                    {
                        return Ok(Broadcast::NonceUsed);
                    }
                    if attempt >= self.policy.broadcast_attempts {
                        return Err(ChainError::from_rpc(e));
                    }
                    warn!(target: "pedals::chain", attempt, error = %e, "broadcast failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
            }
        }
    }

    /// Polls for a receipt of any version of `intent` until the receipt timeout. Also stops
    /// when the account's mined nonce passes the intent's with none of its hashes mined.
    async fn wait(&self, intent: &TxIntent) -> Result<Option<TransactionReceipt>, ChainError> {
        let deadline = tokio::time::Instant::now() + self.policy.receipt_timeout;
        loop {
            match self.find_receipt(intent).await {
                Ok(Some(receipt)) => return Ok(Some(receipt)),
                Ok(None) => {}
                // The endpoint may be down for a while: keep polling until the deadline.
                Err(e) => warn!(target: "pedals::chain", error = %e, "receipt poll failed"),
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(self.policy.poll_interval).await;
        }
    }

    async fn find_receipt(
        &self,
        intent: &TxIntent,
    ) -> Result<Option<TransactionReceipt>, ChainError> {
        for hash in intent.hashes.iter().rev() {
            if let Some(receipt) = self.provider.get_transaction_receipt(*hash).await? {
                return Ok(Some(receipt));
            }
        }
        Ok(None)
    }

    fn mined(
        &self,
        intent: &TxIntent,
        receipt: &TransactionReceipt,
    ) -> Result<TxOutcome, ChainError> {
        let state = IntentState::Mined {
            block: receipt.block_number.unwrap_or_default(),
            success: receipt.status(),
        };
        self.store
            .set_intent_state(intent.job_id, intent.action, state)?;
        if intent.action.repeats() {
            // What comes next is read from the chain; the next one of these can be recorded.
            self.store.retire_intent(intent.job_id, intent.action)?;
        }
        info!(target: "pedals::chain", job = intent.job_id, action = %intent.action, tx = %receipt.transaction_hash, success = receipt.status(), "mined");
        TxOutcome::from_receipt(receipt)
    }

    /// Re-signs `intent` for the same nonce with both fee caps raised by the bump (and at
    /// least to the current estimate), stores it, and returns it.
    async fn bump(&self, intent: &TxIntent) -> Result<TxIntent, ChainError> {
        let envelope = TxEnvelope::decode_2718(&mut intent.raw.as_ref())
            .map_err(|e| ChainError::sign(format!("stored transaction is unreadable: {e}")))?;
        let Some(signed) = envelope.as_eip1559() else {
            return Err(ChainError::sign("only EIP-1559 transactions are re-signed"));
        };
        let mut tx = signed.tx().clone();
        let bump = |v: u128| v + v * u128::from(self.policy.fee_bump_percent) / 100 + 1;
        let estimate = self.provider.estimate_eip1559_fees().await?;
        tx.max_priority_fee_per_gas =
            bump(tx.max_priority_fee_per_gas).max(estimate.max_priority_fee_per_gas);
        tx.max_fee_per_gas = bump(tx.max_fee_per_gas)
            .max(estimate.max_fee_per_gas)
            .max(tx.max_priority_fee_per_gas);
        let envelope = NetworkWallet::<Ethereum>::sign_transaction_from(
            &self.wallet,
            self.from,
            TypedTransaction::Eip1559(tx),
        )
        .await
        .map_err(ChainError::sign)?;
        let raw: Bytes = envelope.encoded_2718().into();
        let hash: B256 = *envelope.tx_hash();
        warn!(target: "pedals::chain", job = intent.job_id, action = %intent.action, nonce = intent.nonce, tx = %hash, "no receipt in time, replaced with higher fees");
        Ok(self
            .store
            .replace_intent(intent.job_id, intent.action, raw, hash)?)
    }
}
