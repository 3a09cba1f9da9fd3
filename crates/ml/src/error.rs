//! The error type of pedals-ml.

use crate::DataError;

/// Everything that can go wrong in the ML engine, with a message that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// A model or training configuration is outside what exact mode can compute without
    /// overflow, or is inconsistent.
    #[error("invalid exact-mode configuration: {0}")]
    Config(String),
    /// The dataset does not fit the model.
    #[error("the dataset does not fit the model: {0}")]
    DatasetMismatch(String),
    /// A checkpoint is not a state of this model.
    #[error("the checkpoint is not a state of this model: {0}; was it made for another job?")]
    Checkpoint(String),
    /// A dataset failed to load or validate.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A commitment could not be computed.
    #[error(transparent)]
    Core(#[from] pedals_core::CoreError),
    /// A compute backend (a GPU) is not available on this machine.
    #[error(transparent)]
    Backend(#[from] crate::exact::BackendError),
}
