//! `stream: true`: the completion as server-sent events, one chunk per piece of text as it is
//! generated, then the finish reason, the usage when asked, and `[DONE]`. Text that could be
//! the start of a stop sequence (or half of a character) is held back until it is not.

use std::{convert::Infallible, sync::Arc};

use axum::response::{
    IntoResponse, Response,
    sse::{Event, Sse},
};
use pedals_infer::Hop;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::{
    Gateway,
    handlers::{ApiError, Job, extension, finish_reason, usage},
};

/// A fresh request id.
pub(crate) fn request_id() -> String {
    format!("pedals-{:016x}", rand::random::<u64>())
}

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How much of `text` can be sent: all of it but a tail that may still become a stop
/// sequence, or an unfinished character.
fn safe_len(text: &str, stop: &[String]) -> usize {
    let mut end = text.len();
    if text.ends_with('\u{FFFD}') {
        end -= '\u{FFFD}'.len_utf8();
    }
    for s in stop {
        for k in (1..s.len()).rev() {
            if s.is_char_boundary(k) && text[..end].ends_with(&s[..k]) {
                end = end.min(text[..end].len() - k);
                break;
            }
        }
    }
    end
}

pub(crate) fn respond(gw: Arc<Gateway>, job: Job, chat: bool) -> Response {
    let (tx, rx) = mpsc::channel::<Value>(64);
    let (id, created) = (request_id(), now());
    let (object, name) = (
        if chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        },
        gw.name.clone(),
    );
    let chunk = {
        let (id, name) = (id.clone(), name.clone());
        move |text: Option<&str>, finish: Option<&str>, first: bool| -> Value {
            let choice = if chat {
                let mut delta = json!({});
                if first {
                    delta["role"] = "assistant".into();
                }
                if let Some(t) = text {
                    delta["content"] = t.into();
                }
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
            } else {
                json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish})
            };
            json!({"id": id, "object": object, "created": created, "model": name, "choices": [choice]})
        }
    };
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let tok = gw.model.tokenizer.clone();
        let stop = job.params.stop.clone();
        let mut sent = 0usize;
        let mut first = true;
        if chat {
            let _ = tx.blocking_send(chunk(Some(""), None, true));
            first = false;
        }
        let mut told: Vec<Hop> = Vec::new();
        let result = gw
            .model
            .generate(&rt, &job.prompt, &job.params, |tokens, chain| {
                let Some(tok) = &tok else {
                    return !tx.is_closed();
                };
                let Ok(text) = tok.decode(tokens) else {
                    return !tx.is_closed();
                };
                // Up to a token boundary: when a stop sequence starts inside a token, the
                // completion drops that whole token, so no part of it may have been sent.
                let mut end = safe_len(&text, &stop);
                if end < text.len() {
                    end = (0..tokens.len())
                        .rev()
                        .filter_map(|j| tok.decode(&tokens[..j]).ok())
                        .map(|t| t.len())
                        .find(|&len| len <= end)
                        .unwrap_or(0);
                }
                if end > sent && text.is_char_boundary(sent) && text.is_char_boundary(end) {
                    let mut c = chunk(Some(&text[sent..end]), None, first);
                    if told != chain {
                        c["pedals"] = extension(chain, None);
                        told = chain.to_vec();
                    }
                    if tx.blocking_send(c).is_err() {
                        return false;
                    }
                    first = false;
                    sent = end;
                }
                true
            });
        match result {
            Ok(r) => {
                let text = r.generation.text.clone().unwrap_or_default();
                let rest = text.get(sent..).unwrap_or_default();
                let mut last = chunk(Some(rest), Some(finish_reason(r.generation.finish)), first);
                last["pedals"] = extension(&r.chain, Some(&r));
                let _ = tx.blocking_send(last);
                if job.include_usage {
                    let mut last = chunk(None, None, false);
                    last["choices"] = json!([]);
                    last["usage"] = json!(usage(r.prompt_tokens, r.generation.tokens.len()));
                    let _ = tx.blocking_send(last);
                }
                info!(target: "pedals::gateway", %id, completion = r.generation.tokens.len(), failovers = r.failovers.len(), "streamed");
            }
            Err(e) => {
                warn!(target: "pedals::gateway", %id, error = %e, "streamed generation failed");
                let _ = tx.blocking_send(ApiError::from(e).body());
            }
        }
    });
    // Each value as `data: <json>`, then `data: [DONE]`.
    let events = futures::stream::unfold((rx, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        match rx.recv().await {
            Some(v) => Some((
                Ok::<_, Infallible>(Event::default().data(v.to_string())),
                (rx, false),
            )),
            None => Some((Ok(Event::default().data("[DONE]")), (rx, true))),
        }
    });
    Sse::new(events).into_response()
}
