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
    /// `JobMarket.commitChallenge` or `challenge` (a validator's).
    Challenge,
    /// A move in a dispute game.
    DisputeMove,
    /// `JobMarket.openState`, `publishRows` or `publishBlob`: one part of a state published
    /// for a data-availability demand. A demand takes several; each one's intent is retired
    /// once mined ([`crate::Store::retire_intent`]), and the next is built from the on-chain
    /// cursor, so a retired part is never sent again.
    Publish,
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
        }
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
