//! Transaction intents: what the node is about to send, written before it is sent.

use std::fmt;

use alloy_primitives::{B256, Bytes};
use serde::{Deserialize, Serialize};

/// What a transaction does. Account-wide actions (stake, unstake, withdraw) use job id 0,
/// which no on-chain job has (the market numbers jobs from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `StakeManager.stake`.
    Stake,
    /// `StakeManager.requestUnstake`.
    Unstake,
    /// `JobMarket.claimJob`.
    Claim,
    /// `JobMarket.submitResult`.
    Submit,
    /// `JobMarket.finalize`.
    Finalize,
    /// `JobMarket.withdraw` or `StakeManager.withdraw`.
    Withdraw,
    /// `JobMarket.commitChallenge`: a validator's commitment to a challenge.
    Challenge,
    /// A move in a dispute game, or its `timeout`.
    DisputeMove,
    /// `JobMarket.openState`, `publishRows` or `publishBlob`: one part of a state published
    /// for a data-availability demand. A demand takes several; each one's intent is retired
    /// once mined ([`crate::Store::retire_intent`]), and the next is built from the on-chain
    /// cursor, so a retired part is never sent again.
    Publish,
    /// `JobMarket.challenge`: the reveal that opens a committed challenge.
    Reveal,
    /// `JobMarket.demandData`: a validator's demand for a step's state.
    Demand,
    /// `JobMarket.claimUnavailable`: the collateral of a demand nobody met.
    ClaimUnavailable,
    /// `AuditPool.commitAudit`.
    AuditCommit,
    /// `AuditPool.revealAudit`.
    AuditReveal,
    /// `AuditPool.collectAudit`.
    AuditCollect,
    /// `JobMarket.claimReward`: a conviction reward's claim.
    RewardClaim,
    /// `JobMarket.collectReward`.
    RewardCollect,
    /// `JobMarket.expire`.
    Expire,
}

impl Action {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Stake => 1,
            Self::Unstake => 2,
            Self::Claim => 3,
            Self::Submit => 4,
            Self::Finalize => 5,
            Self::Withdraw => 6,
            Self::Challenge => 7,
            Self::DisputeMove => 8,
            Self::Publish => 9,
            Self::Reveal => 10,
            Self::Demand => 11,
            Self::ClaimUnavailable => 12,
            Self::AuditCommit => 13,
            Self::AuditReveal => 14,
            Self::AuditCollect => 15,
            Self::RewardClaim => 16,
            Self::RewardCollect => 17,
            Self::Expire => 18,
        }
    }

    /// Whether an account may take this action more than once for the same job (or, at job 0,
    /// for the account): its intent is retired once mined, so that the next one can be
    /// recorded, and what comes next is read from the chain. Every other action is taken at
    /// most once per job: its mined intent stays, and asking for it again returns its receipt
    /// instead of sending a second transaction.
    pub fn repeats(self) -> bool {
        matches!(
            self,
            Self::Stake | Self::Unstake | Self::DisputeMove | Self::Publish | Self::Demand
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Stake => "stake",
            Self::Unstake => "unstake",
            Self::Claim => "claim",
            Self::Submit => "submit",
            Self::Finalize => "finalize",
            Self::Withdraw => "withdraw",
            Self::Challenge => "challenge",
            Self::DisputeMove => "dispute move",
            Self::Publish => "publish",
            Self::Reveal => "reveal",
            Self::Demand => "demand",
            Self::ClaimUnavailable => "claim unavailable",
            Self::AuditCommit => "audit commit",
            Self::AuditReveal => "audit reveal",
            Self::AuditCollect => "audit collect",
            Self::RewardClaim => "reward claim",
            Self::RewardCollect => "reward collect",
            Self::Expire => "expire",
        })
    }
}

/// Where an intent's transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IntentState {
    /// Signed and stored; maybe not broadcast yet (a crash here re-broadcasts it).
    Signed,
    /// Broadcast at least once.
    Sent,
    /// Mined in `block`; `success` is the receipt's status.
    Mined {
        /// The block.
        block: u64,
        /// Whether it succeeded.
        success: bool,
    },
    /// Given up: its nonce was used by another transaction, or it can never be mined.
    Dropped,
}

impl IntentState {
    /// Still to be seen through: re-broadcast after a restart and watched for a receipt.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Signed | Self::Sent)
    }

    /// Ended without effect: a new intent for the same action may replace it.
    pub fn has_failed(&self) -> bool {
        matches!(self, Self::Dropped | Self::Mined { success: false, .. })
    }
}

impl fmt::Display for IntentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signed => f.write_str("signed"),
            Self::Sent => f.write_str("sent"),
            Self::Mined { block, success } => write!(
                f,
                "mined in block {block}, {}",
                if *success { "succeeded" } else { "reverted" }
            ),
            Self::Dropped => f.write_str("dropped"),
        }
    }
}

/// A signed transaction the node is committed to: stored before it is broadcast, so that
/// after a crash the node re-broadcasts these exact bytes instead of signing a second
/// transaction for the same action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxIntent {
    /// The job (0 for account-wide actions).
    pub job_id: u64,
    /// What it does.
    pub action: Action,
    /// The sender's nonce; every replacement keeps it.
    pub nonce: u64,
    /// The signed transaction (EIP-2718 envelope), latest replacement.
    pub raw: Bytes,
    /// The hashes of every version signed for this nonce, oldest first: any of them may be
    /// the one that gets mined.
    pub hashes: Vec<B256>,
    /// Where it is.
    #[serde(flatten)]
    pub state: IntentState,
}

impl TxIntent {
    /// A freshly signed intent.
    pub fn signed(job_id: u64, action: Action, nonce: u64, raw: Bytes, hash: B256) -> Self {
        Self {
            job_id,
            action,
            nonce,
            raw,
            hashes: vec![hash],
            state: IntentState::Signed,
        }
    }

    /// The hash of the latest version.
    pub fn latest_hash(&self) -> B256 {
        *self.hashes.last().unwrap_or(&B256::ZERO)
    }
}
