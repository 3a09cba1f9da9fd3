//! Errors of the verifier.

/// What can go wrong while checking a job or playing a game.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// A chain call failed or was reverted.
    #[error(transparent)]
    Chain(#[from] pedals_chain::ChainError),
    /// Re-execution or the op trace failed.
    #[error(transparent)]
    Ml(#[from] pedals_ml::MlError),
    /// A fine-tuning job's files, a state of it or its step failed.
    #[error(transparent)]
    Lm(#[from] pedals_lm::LmError),
    /// The job's dataset does not decode.
    #[error(transparent)]
    Data(#[from] pedals_ml::DataError),
    /// A commitment could not be built or checked.
    #[error(transparent)]
    Core(#[from] pedals_core::CoreError),
    /// Fetching a checkpoint or a blob from the network failed.
    #[error(transparent)]
    Net(#[from] pedals_p2p::P2pError),
    /// A dispute move could not be prepared or made.
    #[error(transparent)]
    Dispute(#[from] pedals_dispute::DisputeError),
    /// The store of its signed transactions failed.
    #[error(transparent)]
    Store(#[from] pedals_store::StoreError),
    /// Its state folder cannot be made.
    #[error("cannot make the validator's state folder: {0}")]
    StateDir(#[source] std::io::Error),
    /// The job cannot be disputed as it is (its spec, its data or the game's state).
    #[error("{0}")]
    Job(String),
}

impl VerifierError {
    /// Whether the error is in the job's own files as posted (a spec, model or dataset that does
    /// not load): fetched again they are the same bytes, so trying again cannot help.
    pub(crate) fn in_the_files(&self) -> bool {
        matches!(
            self,
            Self::Lm(_) | Self::Data(_) | Self::Ml(_) | Self::Core(_)
        )
    }
}
