//! The request and response bodies of the OpenAI API that the gateway speaks: what the
//! official clients send and expect. Fields the gateway does not use (penalties, logit bias,
//! tools, …) are accepted and ignored, as other OpenAI-compatible servers do.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A prompt: text, one text in a list, or token ids.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// Text.
    Text(String),
    /// Token ids.
    Tokens(Vec<u32>),
    /// A list of texts (one is supported).
    Texts(Vec<String>),
}

/// Stop sequences: one or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Stop {
    /// As a list.
    pub fn list(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// The sampling and length fields both endpoints share.
#[derive(Debug, Clone, Deserialize)]
pub struct Common {
    /// The model's name (`GET /v1/models`).
    pub model: String,
    /// New tokens at most.
    pub max_tokens: Option<usize>,
    /// The chat endpoint's newer name for `max_tokens`.
    pub max_completion_tokens: Option<usize>,
    /// Temperature, 0..=2 (0 is greedy) [default 1].
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, (0, 1] [default 1].
    pub top_p: Option<f64>,
    /// The draws' seed: the same request and seed give the same tokens [default 0].
    pub seed: Option<u64>,
    /// Stop sequences (4 at most).
    pub stop: Option<Stop>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Completions per prompt (1 only).
    pub n: Option<u32>,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// The shared fields.
    #[serde(flatten)]
    pub common: Common,
}

/// A chat message's content: text, or parts of which the text ones are used.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Text.
    Text(String),
    /// Parts.
    Parts(Vec<Value>),
}

impl Content {
    /// The text, parts joined.
    pub fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        }
    }
}

/// A chat message.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, …
    pub role: String,
    /// What it says.
    pub content: Option<Content>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<Message>,
    /// The shared fields.
    #[serde(flatten)]
    pub common: Common,
}

/// Token counts of a request.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    /// In the prompt.
    pub prompt_tokens: usize,
    /// Generated.
    pub completion_tokens: usize,
    /// Both.
    pub total_tokens: usize,
}

/// An error body: `{"error": {"message", "type", "param", "code"}}`.
pub fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}
