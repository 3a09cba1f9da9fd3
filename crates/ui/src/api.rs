//! The node's API under `/api/` (JSON; amounts in wei as decimal strings) and the embedded
//! page at `/`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::primitives::U256;
use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use pedals_chain::Market;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tracing::warn;

use crate::{
    assets::Assets,
    index::{Index, earnings, earnings_over_time, market_over_time},
};

/// How stale the index may be when a page asks (the page polls every 2 s).
const FRESH: Duration = Duration::from_millis(500);

/// What the handlers share.
pub struct App {
    pub(crate) market: Market,
    pub(crate) index: Mutex<(Index, Option<Instant>)>,
    /// The requester's node, when the page may post.
    pub(crate) node: Option<crate::node::NodeState>,
    /// The daemon serving the page, if it is one.
    pub(crate) operator: Option<crate::me::Operator>,
    /// The block explorer's base address, if the chain has one.
    pub(crate) explorer: Option<String>,
}

/// An error answer as a value, for handlers' helpers to return.
pub struct Refusal(pub StatusCode, pub String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

/// An error answer: `{"error": {"message": …}}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message}}))).into_response()
}

impl App {
    /// The index, read up to the head unless it was a moment ago.
    async fn fresh(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, (Index, Option<Instant>)>, Response> {
        let mut guard = self.index.lock().await;
        if guard.1.is_none_or(|at| at.elapsed() >= FRESH) {
            if let Err(e) = guard.0.refresh(&self.market).await {
                warn!(target: "pedals::ui", error = %e, "cannot read the chain");
                return Err(error(
                    StatusCode::BAD_GATEWAY,
                    &format!("the node cannot read the chain: {e}"),
                ));
            }
            guard.1 = Some(Instant::now());
        }
        Ok(guard)
    }
}

/// `GET /api/market`: totals, every job, every provider with its stake and earnings.
pub async fn market(State(app): State<Arc<App>>) -> Response {
    let guard = match app.fresh().await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let index = &guard.0;
    let (open, running, settled) = index.counts();
    let (volume, fees) = index.totals();
    let mut providers = Vec::new();
    for who in index.providers() {
        let Ok(a) = app.market.stake_of(*who).await else {
            continue;
        };
        let (jobs, earned) = earnings(index, *who);
        providers.push(json!({
            "address": who,
            "stakedWei": U256::from(a.staked).to_string(),
            "lockedWei": U256::from(a.locked).to_string(),
            "unbondingWei": U256::from(a.unbonding).to_string(),
            "jobs": jobs,
            "earnedWei": earned.to_string(),
        }));
    }
    let jobs: Vec<Value> = index.jobs().map(|j| json!(j)).collect();
    let over_time: Vec<Value> = market_over_time(index)
        .into_iter()
        .map(|(block, v, f)| json!({"block": block, "volumeWei": v.to_string(), "feesWei": f.to_string()}))
        .collect();
    Json(json!({
        "chainId": app.market.deployment().chain_id,
        "explorer": app.explorer,
        "block": index.head,
        "totals": {
            "jobs": jobs.len(),
            "open": open,
            "running": running,
            "settled": settled,
            "volumeWei": volume.to_string(),
            "feesWei": fees.to_string(),
        },
        "jobs": jobs,
        "providers": providers,
        "disputes": index.disputes(),
        "overTime": over_time,
    }))
    .into_response()
}

/// `GET /api/jobs/{id}`: one job, its transactions, and the chain's time (for the challenge
/// window's countdown).
pub async fn job(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "a job id is a whole number");
    };
    let guard = match app.fresh().await {
        Ok(g) => g,
        Err(r) => return r,
    };
    match guard.0.job(id) {
        Some((job, events)) => {
            // Only the reports of the job's worker on-chain count.
            let progress = match (&app.node, job.worker) {
                (Some(node), Some(worker)) => node.progress(id, worker),
                _ => Vec::new(),
            };
            Json(json!({
                "now": guard.0.head_time,
                "explorer": app.explorer,
                "job": job,
                "events": events,
                "progress": progress,
                "result": crate::result::kept(&app, id),
            }))
            .into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            &format!("no job {id} on this market (yet)"),
        ),
    }
}

/// `GET /api/disputes/{job}`: the disputes of a job and every move, in chain order.
pub async fn dispute(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "a job id is a whole number");
    };
    let guard = match app.fresh().await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Some((job, events)) = guard.0.job(id) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no job {id} on this market (yet)"),
        );
    };
    let disputes: Vec<_> = guard
        .0
        .disputes()
        .iter()
        .filter(|d| d.job == id)
        .cloned()
        .collect();
    if disputes.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            &format!("job {id} was never disputed"),
        );
    }
    let (job, events) = (job.clone(), events.to_vec());
    drop(guard);
    match crate::disputes::timeline(&app.market, id, &events).await {
        Ok(moves) => Json(
            json!({"job": job, "disputes": disputes, "moves": moves, "explorer": app.explorer}),
        )
        .into_response(),
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            &format!("the node cannot read the chain: {e}"),
        ),
    }
}

/// An account's stake, or the answer that says the chain did not answer.
async fn stake_of(
    app: &App,
    who: alloy::primitives::Address,
) -> Result<pedals_chain::IStakeManager::Account, Response> {
    app.market.stake_of(who).await.map_err(|e| {
        error(
            StatusCode::BAD_GATEWAY,
            &format!("the node cannot read the chain: {e}"),
        )
    })
}

/// `GET /api/providers/{address}`: a provider's stake, its jobs, and its earnings over time.
pub async fn provider(State(app): State<Arc<App>>, Path(who): Path<String>) -> Response {
    let Ok(who) = who.parse::<alloy::primitives::Address>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "a provider is named by its address: 0x and 40 hex digits",
        );
    };
    let stake = match stake_of(&app, who).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let guard = match app.fresh().await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let index = &guard.0;
    let jobs: Vec<Value> = index
        .jobs()
        .filter(|j| j.worker == Some(who))
        .map(|j| json!(j))
        .collect();
    let (_, earned) = earnings(index, who);
    let series: Vec<Value> = earnings_over_time(index, who)
        .into_iter()
        .map(|(block, job, total)| json!({"block": block, "job": job, "totalWei": total.to_string()}))
        .collect();
    Json(json!({
        "address": who,
        "stakedWei": U256::from(stake.staked).to_string(),
        "lockedWei": U256::from(stake.locked).to_string(),
        "unbondingWei": U256::from(stake.unbonding).to_string(),
        "earnedWei": earned.to_string(),
        "jobs": jobs,
        "earnings": series,
    }))
    .into_response()
}

/// `GET /api/validators/{address}`: a validator's stake and the challenges it opened, with
/// how each ended.
pub async fn validator(State(app): State<Arc<App>>, Path(who): Path<String>) -> Response {
    let Ok(who) = who.parse::<alloy::primitives::Address>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "a validator is named by its address: 0x and 40 hex digits",
        );
    };
    let stake = match stake_of(&app, who).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let guard = match app.fresh().await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let challenges: Vec<_> = guard
        .0
        .disputes()
        .iter()
        .filter(|d| d.challenger == who)
        .cloned()
        .collect();
    Json(json!({
        "address": who,
        "stakedWei": U256::from(stake.staked).to_string(),
        "lockedWei": U256::from(stake.locked).to_string(),
        "challenges": challenges,
    }))
    .into_response()
}

/// Any other `/api/` path.
pub async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such API: see docs/web-app.md for the node's API (/api/market, /api/jobs/N, \
         /api/disputes/N, /api/providers/ADDRESS, /api/wallet, /api/uploads, /api/jobs/plan …)",
    )
}

/// The embedded page: `/` is `index.html`, and the built assets by path.
pub async fn page(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    match Assets::get(path) {
        Some(file) => {
            let mime = match path.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("svg") => "image/svg+xml",
                Some("png") => "image/png",
                Some("json") => "application/json",
                _ => "application/octet-stream",
            };
            ([(header::CONTENT_TYPE, mime)], file.data).into_response()
        }
        None if path == "index.html" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "The web app was not built into this binary: run scripts/ui.sh, then build pedals \
             again. The API under /api/ works without it.",
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
