//! Errors of the dispute players.

/// What can go wrong while preparing or making a move.
#[derive(Debug, thiserror::Error)]
pub enum DisputeError {
    /// A chain call failed or was reverted.
    #[error(transparent)]
    Chain(#[from] pedals_chain::ChainError),
    /// The op trace or the step program could not be built.
    #[error(transparent)]
    Ml(#[from] pedals_ml::MlError),
    /// A commitment could not be built or checked.
    #[error(transparent)]
    Core(#[from] pedals_core::CoreError),
    /// The job cannot be disputed as it is (its spec, or the game's state).
    #[error("{0}")]
    Job(String),
}
