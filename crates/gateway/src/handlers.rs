//! The endpoints: checking the caller and the request, generating, answering as OpenAI does.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use pedals_infer::{Hop, InferError, RemoteGeneration};
use pedals_lm::{Finish, GenParams, LmError, Sampling};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::{
    Gateway,
    openai::{ChatRequest, Common, CompletionRequest, Prompt, Usage, error_body},
    stream,
};

/// An error answered in OpenAI's shape.
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    message: String,
}

impl ApiError {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            message: message.into(),
        }
    }

    pub(crate) fn body(&self) -> Value {
        error_body(&self.message, self.kind, self.code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<InferError> for ApiError {
    fn from(e: InferError) -> Self {
        let (status, kind, code) = match &e {
            InferError::Lm(LmError::TooLong { .. }) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
            InferError::Lm(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", None),
            InferError::NoRoute { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("no_servers"),
            ),
            InferError::Exhausted { reasons, .. } if reasons.contains("(Unpaid)") => (
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_quota",
                Some("insufficient_deposit"),
            ),
            _ => (StatusCode::BAD_GATEWAY, "server_error", None),
        };
        Self {
            status,
            kind,
            code,
            message: e.to_string(),
        }
    }
}

fn authorize(gw: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    if gw.keys.is_empty() {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(key) if gw.keys.contains(key.trim()) => Ok(()),
        _ => Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "invalid_request_error",
            code: Some("invalid_api_key"),
            message: "missing or unknown API key: send `Authorization: Bearer <key>` with a key \
                      the gateway's operator gave you"
                .into(),
        }),
    }
}

pub(crate) async fn models(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&gw, &headers) {
        return e.into_response();
    }
    axum::Json(json!({
        "object": "list",
        "data": [{"id": gw.name, "object": "model", "created": gw.created, "owned_by": "pedals",
                  "cid": gw.model.cid.to_string()}],
    }))
    .into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        kind: "invalid_request_error",
        code: Some("unknown_url"),
        message: "no such endpoint: the gateway serves /v1/models, /v1/completions and \
                  /v1/chat/completions"
            .into(),
    }
}

/// A request checked and ready to generate.
pub(crate) struct Job {
    pub(crate) prompt: Vec<u32>,
    pub(crate) params: GenParams,
    pub(crate) include_usage: bool,
}

fn parse<T: for<'de> serde::Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("the request body: {e}")))
}

impl Gateway {
    fn job(&self, common: &Common, prompt: Vec<u32>, chat: bool) -> Result<Job, ApiError> {
        if common.model != self.name && common.model != self.model.cid.to_string() {
            return Err(ApiError {
                status: StatusCode::NOT_FOUND,
                kind: "invalid_request_error",
                code: Some("model_not_found"),
                message: format!(
                    "the model {:?} is not served here; GET /v1/models lists {:?}",
                    common.model, self.name
                ),
            });
        }
        if common.n.unwrap_or(1) != 1 {
            return Err(ApiError::bad("n must be 1: one completion per request"));
        }
        if prompt.is_empty() {
            return Err(ApiError::bad(
                "the prompt is empty; give at least one token",
            ));
        }
        let temperature = common.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::bad(format!(
                "temperature {temperature} is outside 0..=2"
            )));
        }
        let context = self.model.head.config.context;
        let room = context.saturating_sub(prompt.len());
        let asked = common.max_completion_tokens.or(common.max_tokens);
        let max_tokens = asked.unwrap_or(if chat { room } else { 16.min(room) });
        let stop = common.stop.clone().map(|s| s.list()).unwrap_or_default();
        if stop.len() > 4 || stop.iter().any(String::is_empty) {
            return Err(ApiError::bad("stop: at most 4 sequences, none empty"));
        }
        let sampling = Sampling::new(
            temperature,
            0,
            common.top_p.unwrap_or(1.0),
            common.seed.unwrap_or(0),
        )
        .map_err(|e| ApiError::bad(e.to_string()))?;
        let params = GenParams {
            max_tokens,
            sampling,
            stop,
        };
        let tok = self.model.tokenizer.as_deref();
        self.model
            .head
            .check_generation(&prompt, &params, tok)
            .map_err(|e| ApiError::from(InferError::Lm(e)))?;
        Ok(Job {
            prompt,
            params,
            include_usage: common
                .stream_options
                .as_ref()
                .is_some_and(|o| o.include_usage),
        })
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, ApiError> {
        let tok = self.model.tokenizer.as_deref().ok_or_else(|| {
            ApiError::bad("this model has no tokenizer: give the prompt as token ids")
        })?;
        tok.encode(text).map_err(|e| ApiError::bad(e.to_string()))
    }
}

/// The plain chat template: one `role: content` line per message, then `assistant:`.
pub(crate) fn chat_prompt(req: &ChatRequest) -> String {
    let mut s = String::new();
    for m in &req.messages {
        let content = m.content.as_ref().map(|c| c.text()).unwrap_or_default();
        s.push_str(&format!("{}: {}\n", m.role, content));
    }
    s.push_str("assistant:");
    s
}

pub(crate) fn finish_reason(f: Finish) -> &'static str {
    match f {
        Finish::Length => "length",
        Finish::Eos | Finish::Stop => "stop",
    }
}

/// What the gateway adds to OpenAI's answer under `pedals`: the chain of servers that ran
/// the request (peer and blocks), and once it is done the servers replaced on the way with
/// why, and how many answers the spot check re-executed.
pub(crate) fn extension(chain: &[Hop], done: Option<&RemoteGeneration>) -> Value {
    let chain: Vec<Value> = chain
        .iter()
        .map(|h| json!({"peer": h.peer.to_string(), "blocks": [h.blocks.start, h.blocks.end]}))
        .collect();
    let mut v = json!({ "chain": chain });
    if let Some(g) = done {
        v["failovers"] = g
            .failovers
            .iter()
            .map(|(peer, why)| json!({"peer": peer, "reason": why}))
            .collect();
        v["checked"] = g.checks.into();
    }
    v
}

pub(crate) fn usage(prompt: usize, completion: usize) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
    }
}

pub(crate) async fn completions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        authorize(&gw, &headers)?;
        let req: CompletionRequest = parse(&body)?;
        let prompt = match &req.prompt {
            Prompt::Tokens(ids) => ids.clone(),
            Prompt::Text(text) => gw.encode(text)?,
            Prompt::Texts(texts) if texts.len() == 1 => gw.encode(&texts[0])?,
            Prompt::Texts(_) => return Err(ApiError::bad("one prompt per request")),
        };
        let job = gw.job(&req.common, prompt, false)?;
        if req.common.stream {
            return Ok(stream::respond(gw.clone(), job, false));
        }
        let (g, id, created) = generate(&gw, job).await?;
        Ok(axum::Json(json!({
            "id": id, "object": "text_completion", "created": created, "model": gw.name,
            "choices": [{"index": 0, "text": g.generation.text.clone().unwrap_or_default(),
                         "tokens": g.generation.tokens,
                         "logprobs": null, "finish_reason": finish_reason(g.generation.finish)}],
            "usage": usage(g.prompt_tokens, g.generation.tokens.len()),
            "pedals": extension(&g.chain, Some(&g)),
        }))
        .into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn chat(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        authorize(&gw, &headers)?;
        let req: ChatRequest = parse(&body)?;
        if req.messages.is_empty() {
            return Err(ApiError::bad("messages is empty"));
        }
        let prompt = gw.encode(&chat_prompt(&req))?;
        let job = gw.job(&req.common, prompt, true)?;
        if req.common.stream {
            return Ok(stream::respond(gw.clone(), job, true));
        }
        let (g, id, created) = generate(&gw, job).await?;
        Ok(axum::Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": gw.name,
            "choices": [{"index": 0,
                         "message": {"role": "assistant",
                                     "content": g.generation.text.clone().unwrap_or_default()},
                         "logprobs": null, "finish_reason": finish_reason(g.generation.finish)}],
            "usage": usage(g.prompt_tokens, g.generation.tokens.len()),
            "pedals": extension(&g.chain, Some(&g)),
        }))
        .into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn generate(
    gw: &Arc<Gateway>,
    job: Job,
) -> Result<(pedals_infer::RemoteGeneration, String, u64), ApiError> {
    let (id, created) = (stream::request_id(), stream::now());
    let rt = tokio::runtime::Handle::current();
    let g = gw.clone();
    let done = tokio::task::spawn_blocking(move || {
        g.model.generate(&rt, &job.prompt, &job.params, |_, _| true)
    })
    .await
    .map_err(|e| ApiError::from(InferError::Protocol(format!("generation panicked: {e}"))))?;
    match done {
        Ok(r) => {
            info!(target: "pedals::gateway", %id, prompt = r.prompt_tokens, completion = r.generation.tokens.len(), failovers = r.failovers.len(), "completed");
            Ok((r, id, created))
        }
        Err(e) => {
            warn!(target: "pedals::gateway", %id, error = %e, "generation failed");
            Err(e.into())
        }
    }
}
