//! Generation: prefill the prompt through the cache, then one token at a time until the
//! token budget, an end-of-sequence token or a stop sequence.

use serde::{Deserialize, Serialize};

use crate::error::LmError;
use crate::forward::KvCache;
use crate::sample::{Sampling, sample};
use crate::tokenizer::Tokenizer;
use crate::weights::ExactModel;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenParams {
    /// New tokens at most.
    pub max_tokens: usize,
    /// How each token is chosen.
    pub sampling: Sampling,
    /// Stop before the first of these strings appears in the text (needs a tokenizer).
    pub stop: Vec<String>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// `max_tokens` reached.
    Length,
    /// The model's end-of-sequence token.
    Eos,
    /// A stop sequence.
    Stop,
}

/// A completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generation {
    /// The new tokens (a stop sequence's tokens removed).
    pub tokens: Vec<u32>,
    /// Their text, with a tokenizer.
    pub text: Option<String>,
    /// Why it ended.
    pub finish: Finish,
}

impl ExactModel {
    /// The model's end-of-sequence ids, from its `config.json`.
    pub fn eos_ids(&self) -> Vec<u32> {
        let v: serde_json::Value = serde_json::from_str(&self.hf_config).unwrap_or_default();
        match v.get("eos_token_id") {
            Some(serde_json::Value::Number(n)) => {
                n.as_u64().map(|n| vec![n as u32]).unwrap_or_default()
            }
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|n| n.as_u64().map(|n| n as u32))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Checks a generation request against the model before anything runs: a prompt of at
    /// least one token of its vocabulary, stop sequences only with a tokenizer, and the
    /// prompt and `max_tokens` within the context.
    pub fn check_generation(
        &self,
        prompt: &[u32],
        p: &GenParams,
        tok: Option<&Tokenizer>,
    ) -> Result<(), LmError> {
        if prompt.is_empty() {
            return Err(LmError::Sampling(
                "the prompt is empty; give at least one token".into(),
            ));
        }
        if !p.stop.is_empty() && tok.is_none() {
            return Err(LmError::Tokenizer(
                "stop sequences need the model's tokenizer".into(),
            ));
        }
        self.check_tokens(prompt, 0)?;
        if prompt.len() + p.max_tokens > self.config.context {
            return Err(LmError::TooLong {
                tokens: prompt.len() + p.max_tokens,
                context: self.config.context,
            });
        }
        Ok(())
    }

    /// Generates after `prompt`.
    pub fn generate(
        &self,
        prompt: &[u32],
        p: &GenParams,
        tok: Option<&Tokenizer>,
    ) -> Result<Generation, LmError> {
        self.check_generation(prompt, p, tok)?;
        let mut cache = KvCache::new(&self.config);
        generate_with(
            prompt,
            p,
            tok,
            &self.eos_ids(),
            |tokens| self.forward(tokens, &mut cache, false),
            |_| true,
        )
    }
}

/// The generation loop, whoever computes the logits: `step` is given the prompt, then each
/// new token, and returns the Q12 logits after the last one it was given (a local cache, or a
/// chain of span servers); `on_token` sees the tokens kept so far after each new one and
/// returns `false` to stop (the caller went away). The request must have passed
/// [`ExactModel::check_generation`]. The same prompt, parameters and logits give the same
/// tokens wherever the logits were computed.
pub fn generate_with<E: From<LmError>>(
    prompt: &[u32],
    p: &GenParams,
    tok: Option<&Tokenizer>,
    eos: &[u32],
    mut step: impl FnMut(&[u32]) -> Result<Vec<i32>, E>,
    mut on_token: impl FnMut(&[u32]) -> bool,
) -> Result<Generation, E> {
    let mut logits = step(prompt)?;
    let mut tokens = Vec::new();
    let mut finish = Finish::Length;
    while tokens.len() < p.max_tokens {
        let next = sample(&logits, &p.sampling, (prompt.len() + tokens.len()) as u64);
        if eos.contains(&next) {
            finish = Finish::Eos;
            break;
        }
        tokens.push(next);
        if let Some(tok) = tok
            && !p.stop.is_empty()
        {
            let text = tok.decode(&tokens)?;
            if let Some(cut) = p.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                while tokens.len() > 1 && tok.decode(&tokens)?.len() > cut {
                    tokens.pop();
                }
                if tok.decode(&tokens)?.len() > cut {
                    tokens.clear();
                }
                finish = Finish::Stop;
                break;
            }
        }
        if !on_token(&tokens) {
            break;
        }
        if tokens.len() < p.max_tokens {
            logits = step(&[next])?;
        }
    }
    let text = tok.map(|t| t.decode(&tokens)).transpose()?;
    Ok(Generation {
        tokens,
        text,
        finish,
    })
}
