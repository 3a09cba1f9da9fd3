//! Split-model inference (docs/split-inference.md): a model's transformer blocks served in
//! spans by several machines, in exact mode, so that a chain of them computes what one
//! process computes, bit for bit.
//!
//! ```text
//!  client (gateway)                    span servers (pedals provider serve)
//!  embed tokens ──activations──► [blocks 0..a) ──► [blocks a..b) ──► … ──► last span
//!  sample ◄── final norm + head ◄────────────────────────────────────────── output
//! ```
//!
//! - [`SpanServer`]: one span, a key/value cache per session within a memory budget, and the
//!   announcement it gossips.
//! - [`Directory`] and [`Chain`]: who serves what, the chain with the least expected time per
//!   token, and failover that replays a session's prefix on a replacement server.
//! - [`RemoteModel`]: generation through a chain, token for token what one process generates.

mod balance;
mod chain;
mod check;
mod error;
mod pay;
mod receipt;
mod remote;
mod route;
mod serve;
mod server;
pub mod wire;

pub use balance::{SpanLoader, better_span, coverage, least_served, rebalance};
pub use chain::{ANSWER_TIMEOUT, Chain, Session};
pub use check::{Checked, SpotCheck};
pub use error::InferError;
pub use pay::{Tab, VoucherBook, VoucherSigner, WireVoucher, chain_outputs};
pub use receipt::{Disputer, Evidence, ReceiptSigner, ReceiptVerifier, StakeCheck, WireReceipt};
pub use remote::{RemoteGeneration, RemoteModel, follow};
pub use route::{Directory, FAIL_COOLDOWN, Hop, ServerInfo};
pub use serve::{SETTLE_IDLE, serve};
pub use server::SpanServer;
