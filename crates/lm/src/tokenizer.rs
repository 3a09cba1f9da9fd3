//! The model's tokenizer (`tokenizer.json`, through the `tokenizers` crate).

use crate::error::LmError;

/// A loaded tokenizer.
pub struct Tokenizer(tokenizers::Tokenizer);

impl Tokenizer {
    /// From `tokenizer.json`'s bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LmError> {
        tokenizers::Tokenizer::from_bytes(bytes)
            .map(Self)
            .map_err(|e| {
                LmError::Tokenizer(format!(
                    "tokenizer.json does not load ({e}); export it with `tokenizer.save(...)`"
                ))
            })
    }

    /// The ids of a text (no special tokens added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LmError> {
        self.0
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| LmError::Tokenizer(e.to_string()))
    }

    /// The longest token's string, in bytes: a bound on the bytes any one token decodes to.
    pub fn max_token_bytes(&self) -> usize {
        self.0
            .get_vocab(true)
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(0)
    }

    /// The text of ids.
    pub fn decode(&self, ids: &[u32]) -> Result<String, LmError> {
        self.0
            .decode(ids, false)
            .map_err(|e| LmError::Tokenizer(e.to_string()))
    }
}
