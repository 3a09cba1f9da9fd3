//! A daemon's own page: `pedals provider run --ui` and `pedals validator run --ui` serve the
//! web app with `/api/me`, what the daemon says about itself (its account, its policy, its
//! counters), and a provider's pause and resume.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use alloy::primitives::Address;
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tracing::info;

use crate::api::{App, Refusal};

/// Which daemon serves the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `pedals provider run`.
    Provider,
    /// `pedals validator run`.
    Validator,
}

/// Counters a daemon reads at each request (its metrics since it started), as JSON.
pub type Stats = Arc<dyn Fn() -> Value + Send + Sync>;

/// What a daemon shows about itself and lets its page do.
pub struct Operator {
    /// Which daemon.
    pub role: Role,
    /// Its account.
    pub address: Address,
    /// Its settings, shown as they are (price, capacity, threads…).
    pub policy: Value,
    /// Its counters.
    pub stats: Stats,
    /// A provider's pause switch (see `pedals_node::Worker::pause_switch`).
    pub paused: Option<Arc<AtomicBool>>,
}

fn operator(app: &App) -> Result<&Operator, Refusal> {
    app.operator.as_ref().ok_or_else(|| {
        Refusal(
            StatusCode::NOT_FOUND,
            "this node is not a provider's or a validator's daemon: start `pedals provider run \
             --ui` or `pedals validator run --ui` to see and control it here"
                .into(),
        )
    })
}

/// `GET /api/me`: `role`, `address`, `policy`, `stats`, and `paused` for a provider.
pub async fn me(State(app): State<Arc<App>>) -> Result<Response, Refusal> {
    let op = operator(&app)?;
    Ok(Json(json!({
        "role": match op.role {
            Role::Provider => "provider",
            Role::Validator => "validator",
        },
        "address": op.address,
        "policy": op.policy,
        "stats": (op.stats)(),
        "paused": op.paused.as_ref().map(|p| p.load(Ordering::Relaxed)),
    }))
    .into_response())
}

async fn set_paused(app: &App, paused: bool) -> Result<Response, Refusal> {
    let op = operator(app)?;
    let Some(switch) = &op.paused else {
        return Err(Refusal(
            StatusCode::CONFLICT,
            "only a provider's daemon can be paused".into(),
        ));
    };
    switch.store(paused, Ordering::Relaxed);
    info!(target: "pedals::ui", paused, "claiming new jobs {} from the page", if paused { "paused" } else { "resumed" });
    Ok(Json(json!({"paused": paused})).into_response())
}

/// `POST /api/me/pause`: the provider claims no new job (those it holds go on).
pub async fn pause(State(app): State<Arc<App>>) -> Result<Response, Refusal> {
    set_paused(&app, true).await
}

/// `POST /api/me/resume`: the provider claims jobs again.
pub async fn resume(State(app): State<Arc<App>>) -> Result<Response, Refusal> {
    set_paused(&app, false).await
}
