//! The error type of the chain crate.

use std::path::PathBuf;

use alloy::{
    primitives::{Address, B256, U256},
    providers::PendingTransactionError,
    transports::{RpcError, TransportErrorKind},
};

use crate::{AuditPool, DataAvailability, DisputeGame, JobMarket, SpanPayments, StakeManager};

/// Everything that can go wrong talking to the chain, with a message that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The job market rejected the call with one of its custom errors.
    #[error("JobMarket rejected the call: {}", crate::revert::job_market(.0))]
    JobMarket(JobMarket::JobMarketErrors),
    /// On-chain data (an event, a transaction's calldata) did not decode as expected.
    #[error("unexpected on-chain data: {0}")]
    Decode(String),
    /// The dispute game rejected the call (a move, a spec's admission) with one of its custom
    /// errors. Boxed: its largest error carries a string and three words.
    #[error("DisputeGame rejected the call: {}", crate::revert::dispute_game(.0))]
    DisputeGame(Box<DisputeGame::DisputeGameErrors>),
    /// The data-availability contract refused a publication with one of its custom errors.
    #[error("DataAvailability rejected the publication: {}", crate::revert::data_availability(.0))]
    DataAvailability(DataAvailability::DataAvailabilityErrors),
    /// The audit pool refused the call with one of its custom errors.
    #[error("AuditPool rejected the call: {0:?}")]
    AuditPool(AuditPool::AuditPoolErrors),
    /// Split inference's payments contract refused the call with one of its custom errors
    /// (a voucher not signed for the caller, nothing left to redeem, a locked withdrawal).
    #[error("SpanPayments rejected the call: {0:?}")]
    SpanPayments(SpanPayments::SpanPaymentsErrors),
    /// Split inference's dispute game refused the call with one of its own errors (a wrong
    /// bond, a receipt already disputed or convicted, a server with nothing at stake); the
    /// moves it shares with the other games report as [`Self::DisputeGame`].
    #[error("SpanDisputeGame rejected the call: {0:?}")]
    SpanDispute(Box<crate::span::SpanDisputeGame::SpanDisputeGameErrors>),
    /// The stake manager rejected the call with one of its custom errors.
    #[error("StakeManager rejected the call: {}", crate::revert::stake_manager(.0))]
    StakeManager(StakeManager::StakeManagerErrors),
    /// A contract call failed without a custom error of ours (out of gas, a panic, a node error).
    #[error("contract call failed: {0}")]
    Contract(#[source] alloy::contract::Error),
    /// A job id too large for the node's records (the market numbers jobs from 1 upwards).
    #[error("job id {0} is larger than any job this node can record")]
    JobIdTooLarge(U256),
    /// A mined transaction reverted.
    #[error("transaction {0} reverted on chain; replay it with `cast run {0}` to see why")]
    TxReverted(B256),
    /// Waiting for a receipt failed.
    #[error("waiting for the transaction receipt failed: {0}")]
    Receipt(#[from] PendingTransactionError),
    /// The RPC endpoint failed.
    #[error("the RPC endpoint failed: {0}; check that the node is running and --rpc-url is right")]
    Rpc(#[from] RpcError<TransportErrorKind>),
    /// The RPC endpoint is on another chain than the deployment.
    #[error(
        "the RPC endpoint is on chain {actual} but the deployment file is for chain {expected}; \
         point the RPC URL at the network the contracts were deployed to"
    )]
    ChainIdMismatch {
        /// Chain id in the deployment file.
        expected: u64,
        /// Chain id the endpoint reported.
        actual: u64,
    },
    /// The RPC endpoint did not answer (in time, or at all).
    #[error(
        "the RPC endpoint {endpoint} did not answer: {reason}; check that the node is running \
         and --rpc-url is right"
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// What happened.
        reason: String,
    },
    /// The deployment file names an address with no contract code on the endpoint's chain.
    #[error(
        "the deployment file names {address} as the {contract}, but chain {chain_id} has no \
         contract there (the chain was reset or redeployed?); deploy again (`pedals devnet up` \
         or `pedals deploy`) and use the deployment file it writes"
    )]
    NoContract {
        /// Which contract.
        contract: &'static str,
        /// The address the file names.
        address: Address,
        /// The endpoint's chain.
        chain_id: u64,
    },
    /// The chain behind the endpoint is not the chain the node's records are of: its genesis
    /// block changed (a reset devnet, an endpoint pointed elsewhere), or it is shorter than the
    /// last block the node processed by more than a reorganization could explain.
    #[error(
        "the chain at the RPC endpoint is not the one this node's records are of ({detail}): \
         the node acts on it no more; point it back at its chain, or start it with a new data \
         folder to work on this one"
    )]
    ChainReplaced {
        /// What differs.
        detail: String,
    },
    /// A transaction's receipt lacked the event that the call must emit.
    #[error(
        "transaction {0} emitted no {1} event; is the deployment file pointing at the right contract?"
    )]
    MissingEvent(B256, &'static str),
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The deployment file is not valid JSON of the expected shape.
    #[error("deployment file {path} is invalid ({source}); redeploy to rewrite it")]
    DeploymentFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The contracts folder is missing.
    #[error(
        "no Foundry project at {0}; set PEDALS_CONTRACTS_DIR to the repository's contracts/ folder"
    )]
    ContractsDirMissing(PathBuf),
    /// A Foundry binary is missing.
    #[error("{tool} not found at {path}; run `make setup` to install the pinned Foundry toolchain")]
    ToolMissing {
        /// `forge`, `anvil` or `cast`.
        tool: String,
        /// Where it was expected.
        path: PathBuf,
    },
    /// anvil did not start.
    #[error("anvil did not start: {0}; is the port free?")]
    Anvil(#[from] alloy::node_bindings::NodeError),
    /// The deploy script failed.
    #[error("the deploy script exited with {status}:\n{output}")]
    DeployScript {
        /// Exit status of `forge script`.
        status: std::process::ExitStatus,
        /// What it printed.
        output: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The endpoint does not have a block it just reported.
    #[error("the RPC endpoint has no block {0}; it may be syncing or behind a load balancer")]
    MissingBlock(u64),
    /// The node's store failed.
    #[error(transparent)]
    Store(#[from] pedals_store::StoreError),
    /// A transaction could not be signed or re-signed.
    #[error("signing failed: {0}; check the keystore")]
    Sign(String),
    /// The intent's nonce was used by a transaction that is none of its versions.
    #[error(
        "job {job}: the {action} transaction (nonce {nonce}) was dropped: another transaction \
         from this account used its nonce; check the account's history before sending again"
    )]
    TxDropped {
        /// The job (0 for account-wide actions).
        job: u64,
        /// The action.
        action: String,
        /// The nonce.
        nonce: u64,
    },
    /// No version of the transaction was mined after every replacement.
    #[error(
        "job {job}: the {action} transaction (nonce {nonce}) is not mined after {attempts} \
         attempts; it stays stored and is resumed on the next start (check the RPC endpoint and \
         the account's balance for fees)"
    )]
    TxStuck {
        /// The job.
        job: u64,
        /// The action.
        action: String,
        /// The nonce.
        nonce: u64,
        /// Versions broadcast.
        attempts: u32,
    },
}

impl ChainError {
    /// An RPC error, with a contract revert in its data decoded into the binding's errors.
    pub(crate) fn from_rpc(err: RpcError<TransportErrorKind>) -> Self {
        if let Some(payload) = err.as_error_resp() {
            if let Some(e) = payload.as_decoded_interface_error::<JobMarket::JobMarketErrors>() {
                return Self::JobMarket(e);
            }
            if let Some(e) =
                payload.as_decoded_interface_error::<StakeManager::StakeManagerErrors>()
            {
                return Self::StakeManager(e);
            }
            if let Some(e) =
                payload.as_decoded_interface_error::<DataAvailability::DataAvailabilityErrors>()
            {
                return Self::DataAvailability(e);
            }
            if let Some(e) = payload.as_decoded_interface_error::<DisputeGame::DisputeGameErrors>()
            {
                return Self::DisputeGame(Box::new(e));
            }
            if let Some(e) = payload.as_decoded_interface_error::<AuditPool::AuditPoolErrors>() {
                return Self::AuditPool(e);
            }
        }
        Self::Rpc(err)
    }

    pub(crate) fn sign(err: impl std::fmt::Display) -> Self {
        Self::Sign(err.to_string())
    }

    /// Decodes a contract error into the bindings' error enums where the revert data is ours.
    pub(crate) fn from_contract(err: alloy::contract::Error) -> Self {
        if let Some(e) = err.as_decoded_interface_error::<JobMarket::JobMarketErrors>() {
            return Self::JobMarket(e);
        }
        if let Some(e) = err.as_decoded_interface_error::<StakeManager::StakeManagerErrors>() {
            return Self::StakeManager(e);
        }
        if let Some(e) = err.as_decoded_interface_error::<DisputeGame::DisputeGameErrors>() {
            return Self::DisputeGame(Box::new(e));
        }
        if let Some(e) =
            err.as_decoded_interface_error::<DataAvailability::DataAvailabilityErrors>()
        {
            return Self::DataAvailability(e);
        }
        if let Some(e) = err.as_decoded_interface_error::<AuditPool::AuditPoolErrors>() {
            return Self::AuditPool(e);
        }
        if let Some(e) = err.as_decoded_interface_error::<SpanPayments::SpanPaymentsErrors>() {
            return Self::SpanPayments(e);
        }
        if let Some(e) =
            err.as_decoded_interface_error::<crate::span::SpanDisputeGame::SpanDisputeGameErrors>()
        {
            return Self::SpanDispute(Box::new(e));
        }
        Self::Contract(err)
    }
}
