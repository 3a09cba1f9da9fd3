//! The errors of pedals-lm. Each says what went wrong and, where the user can act, what to do.

use std::path::PathBuf;

/// What can go wrong loading, converting or running a language model.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// A file could not be read or written.
    #[error("cannot read or write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is malformed or outside exact mode's bounds.
    #[error("model config: {0}")]
    Config(String),
    /// The architecture, or one of its options, is not implemented.
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// A weights file is malformed or truncated.
    #[error(
        "{path}: {reason}; re-export the checkpoint with `save_pretrained(..., safe_serialization=True)`"
    )]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor is missing, has the wrong shape, or holds values exact mode cannot represent.
    #[error("tensor `{name}`: {reason}")]
    Tensor {
        /// The tensor's name in the checkpoint.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The tokenizer is missing or malformed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A stored (quantized) model is malformed.
    #[error("stored model: {0}")]
    Format(String),
    /// The prompt and the tokens to generate do not fit the model's context.
    #[error(
        "{tokens} tokens do not fit the model's context of {context}; shorten the prompt or lower max tokens"
    )]
    TooLong {
        /// Prompt plus generated tokens.
        tokens: usize,
        /// The model's context.
        context: usize,
    },
    /// A token id outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab}")]
    Token {
        /// The id.
        id: u32,
        /// The vocabulary size.
        vocab: usize,
    },
    /// Sampling parameters out of range.
    #[error("sampling: {0}")]
    Sampling(String),
    /// A fine-tuning dataset is malformed.
    #[error("dataset: {0}")]
    Dataset(String),
}

impl LmError {
    pub(crate) fn tensor(name: &str, reason: impl Into<String>) -> Self {
        Self::Tensor {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}
