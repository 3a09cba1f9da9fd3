//! What can go wrong in split-model inference.

use thiserror::Error;

/// An inference error.
#[derive(Debug, Error)]
pub enum InferError {
    /// The model itself refused (a token outside its vocabulary, too long, bad activations).
    #[error(transparent)]
    Lm(#[from] pedals_lm::LmError),
    /// The network layer failed.
    #[error(transparent)]
    Net(#[from] pedals_p2p::P2pError),
    /// A message that does not decode or breaks the protocol.
    #[error("span protocol: {0}")]
    Protocol(String),
    /// No server announced some of the model's blocks.
    #[error(
        "no server serves blocks {missing} of model {model} ({known} servers known); wait for \
         servers to announce them, or start `pedals provider serve` for them"
    )]
    NoRoute {
        /// The model's CID.
        model: String,
        /// The blocks nobody serves, as ranges (`2..4, 7..8`).
        missing: String,
        /// Servers of the model known now.
        known: usize,
    },
    /// Every server of a span failed on this request.
    #[error("every server of blocks {blocks} failed: {reasons}")]
    Exhausted {
        /// The span.
        blocks: String,
        /// What each said.
        reasons: String,
    },
    /// The caller stopped listening.
    #[error("the request was cancelled")]
    Cancelled,
}
