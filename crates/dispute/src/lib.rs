//! Pedals dispute game players: what a disputed step is ([`game::StepContext`]: the spec, the
//! data, the state before the step and this player's op trace of it) and every move of both
//! sides on the chain's `DisputeGame` ([`game::challenge`] for the challenger, [`game::defend`]
//! for the worker). The validator and the worker both depend on this crate, so a worker
//! defends with the very code a validator attacks with, and neither links the other.
//!
//! The step program and the op traces the moves open are the engine's (`pedals_ml::dispute`);
//! the chain calls are `pedals_chain::Market`'s. docs/protocol.md §3 describes the game. The
//! fine-tuning game's players ([`lm::defend_lm`], [`lm::challenge_lm`]) play
//! `LmDisputeGame` from `pedals_lm::dispute`'s op traces (§9); split inference's
//! ([`span::defend_span`], [`span::challenge_span`]) play `SpanDisputeGame` over a span's
//! forward pass (docs/split-inference.md, "Disputes").

mod error;
pub mod game;
pub mod lm;
mod rows;
pub mod span;

pub use error::DisputeError;
