//! Pedals validator: picks steps of a submitted job with its own secret randomness, re-executes
//! them with the exact engine, challenges a step whose result differs, and plays the dispute
//! game to the end with the players of `pedals-dispute`, whose defence the worker uses. Training
//! jobs (MLP, CNN) and fine-tuning jobs (LoRA or full) are checked alike; `work` holds what
//! differs.
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
mod journal;
mod metrics;
mod resume;
mod rewards;
pub mod sampling;
mod verifier;
mod work;

pub use error::VerifierError;
pub use metrics::{VerifierStats, serve_metrics};
pub use pedals_daemon::Status;
/// The dispute players, re-exported: the validator plays the challenger's side with them.
pub use pedals_dispute::game;
pub use verifier::{Verifier, VerifierConfig};
