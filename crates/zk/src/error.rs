//! The errors of pedals-zk.

/// What can go wrong building, proving or checking a zk statement.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The model cannot be proven in zk mode; the message says why.
    #[error("the model is not supported in zk mode: {0}")]
    Unsupported(String),
    /// A value lies outside the range exact mode allows; the message names it.
    #[error("out of range: {0}")]
    Range(String),
    /// The inputs do not fit the model or the keys' shape.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// The constraint system could not be built or proven.
    #[error("proof system: {0}")]
    Synthesis(#[from] ark_relations::gr1cs::SynthesisError),
    /// Keys or a proof did not (de)serialize.
    #[error("serialization: {0}")]
    Serialization(#[from] ark_serialize::SerializationError),
}
