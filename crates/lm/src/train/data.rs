//! Fine-tuning datasets: JSONL, one example per line, tokenized by the model's own tokenizer
//! (no special tokens added), so the tokens are a function of the file and the model alone.
//!
//! - `{"text": "..."}`: every token after the first is scored;
//! - `{"prompt": "...", "completion": "..."}`: the tokens of the prompt then of the completion,
//!   only the completion's tokens are scored.

use serde::Deserialize;

use super::Example;
use crate::error::LmError;
use crate::tokenizer::Tokenizer;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    text: Option<String>,
    prompt: Option<String>,
    completion: Option<String>,
}

/// Parses and tokenizes a JSONL dataset. Every failure names the line and what to change:
/// a line that is not JSON or has neither form, an example of fewer than 2 tokens, or more
/// tokens than `context`.
pub fn parse_jsonl(text: &str, tok: &Tokenizer, context: usize) -> Result<Vec<Example>, LmError> {
    let bad = |n: usize, m: String| LmError::Dataset(format!("line {n}: {m}"));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(line).map_err(|e| {
            bad(
                n,
                format!("not a JSON object of \"text\" or \"prompt\" and \"completion\" ({e})"),
            )
        })?;
        let (tokens, prompt) = match (l.text, l.prompt, l.completion) {
            (Some(t), None, None) => (tok.encode(&t)?, 0),
            (None, Some(p), Some(c)) => {
                let p = tok.encode(&p)?;
                let n_p = p.len();
                let mut t = p;
                t.extend(tok.encode(&c)?);
                if t.len() == n_p {
                    return Err(bad(n, "the completion is empty: nothing to learn".into()));
                }
                (t, n_p)
            }
            _ => {
                return Err(bad(
                    n,
                    "give either \"text\", or both \"prompt\" and \"completion\"".into(),
                ));
            }
        };
        if tokens.len() < 2 {
            return Err(bad(
                n,
                format!("{} token(s); an example needs at least 2", tokens.len()),
            ));
        }
        if tokens.len() > context {
            return Err(bad(
                n,
                format!(
                    "{} tokens, more than the model's context of {context}; split the example",
                    tokens.len()
                ),
            ));
        }
        out.push(Example { tokens, prompt });
    }
    if out.is_empty() {
        return Err(LmError::Dataset("the file has no examples".into()));
    }
    Ok(out)
}
