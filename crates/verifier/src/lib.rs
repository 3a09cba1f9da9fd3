//! Pedals validator: picks steps of a submitted job with its own secret randomness, re-executes
//! them with the exact engine, challenges a step whose result differs, and plays the dispute
//! game to the end. The same [`game`] module plays the worker's side, so a worker defends with
//! the very code a validator attacks with.
//!
//! ```text
//!   ResultSubmitted ──sample k steps (secret)──► fetch checkpoint i + proof ──replay──► h'_{i+1}
//!                                                                         │ ≠ h_{i+1}
//!   commitChallenge → challenge(bond) → DisputeGame: commit · op · row hashes · row · element
//! ```
//!
//! docs/protocol.md describes the game, docs/threat-model.md what it does and does not stop.

mod audit;
mod availability;
mod error;
pub mod game;
mod journal;
mod metrics;
mod resume;
mod rewards;
pub mod sampling;
mod verifier;

pub use error::VerifierError;
pub use metrics::{VerifierStats, serve_metrics};
pub use verifier::{Verifier, VerifierConfig};
