//! Pedals on-chain side: typed bindings for the contracts, the deployment file, a client for
//! the job market and stake manager, and a local devnet (anvil plus the project's own deploy
//! script).
//!
//! ```text
//!  contracts/src ──forge build──► contracts/out ──scripts/abi.sh sync──► crates/chain/abi
//!                                                                        │ sol!
//!  Devnet::start ─► anvil ─► forge script Deploy ─► Deployment ─► Market (alloy provider)
//! ```
//!
//! Every contract revert is decoded into the bindings' error enums ([`ChainError::JobMarket`],
//! [`ChainError::StakeManager`]), never matched as a string.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pedals_chain::ChainError> {
//! use pedals_chain::{Devnet, DevnetConfig};
//! let devnet = Devnet::start(DevnetConfig::default()).await?;
//! println!("JobMarket at {}", devnet.deployment().job_market);
//! # Ok(()) }
//! ```

mod audit;
mod availability;
mod bindings;
mod check;
mod deployment;
mod devnet;
mod error;
mod follower;
mod game;
mod health;
pub mod human;
mod lm_game;
mod market;
mod payments;
mod revert;
mod rewards;
mod scan;
mod sender;
mod span_game;
mod status;
mod toolchain;
mod transact;

pub use audit::{AuditPoolState, AuditStatus, audit_commitment};
pub use availability::{
    PublishedState, entry_words, open_state_input, publish_blob_input, publish_rows_input,
};
pub use bindings::{
    AuditPool, DataAvailability, DisputeGame, GameBase, GameRouter, IDataAvailability, IJobMarket,
    IStakeManager, JobMarket, SpanPayments, StakeManager, lm, span,
};
pub use check::{Check, DEVNET_CHAIN_ID, DeploymentReport, SpanDisputeTerms, check_deployment};
pub use deployment::Deployment;
pub use devnet::{DeployRoles, Deployer, Devnet, DevnetConfig, SentTx, deploy, deploy_as};
pub use error::ChainError;
pub use follower::{Batch, ChainEvent, EventFollower, EventMeta, genesis_hash, same_chain};
pub use game::{GameKind, GameView, Phase, ROW_CHUNK_LOG};
pub use health::{Health, LogGate};
pub use lm_game::LmCommit;
pub use market::{
    JobRequest, Market, RPC_RETRIES, RPC_TIMEOUT, TxOutcome, chain_time, rpc_provider,
};
pub use payments::{SpanAccount, Voucher, voucher_domain};
pub use rewards::RewardPool;
pub use scan::{SCAN_RANGE, Submissions};
pub use sender::{SendPolicy, TxSender};
pub use span_game::{SpanReceipt, SpanSettlement, model_key, receipt_domain};
pub use status::JobStatus;
pub use toolchain::Toolchain;
