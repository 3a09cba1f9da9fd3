//! The web app (docs/web-app.md): `pedals ui` serves the page built from `ui/` and the node's
//! local API that it reads, on loopback, behind a secret token.
//!
//! - [`auth`]: the token, `Host` and `Origin` checks, and the headers every answer carries.
//! - [`index`]: the market folded from the contracts' events.
//! - [`disputes`]: a dispute's moves, from the games' events.
//! - [`api`]: the JSON API and the embedded page.

pub mod api;
mod assets;
pub mod auth;
pub mod disputes;
pub mod index;
pub mod me;
pub mod node;
pub mod post;
pub mod result;

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware::from_fn_with_state,
    routing::{any, get, post},
};
use pedals_chain::Market;
use tokio::sync::Mutex;

pub use auth::Guard;
pub use me::{Operator, Role};
pub use node::Node;

/// What the page may do beyond reading the market.
#[derive(Default)]
pub struct Options {
    /// A requester's node: the page posts jobs through it.
    pub node: Option<Node>,
    /// A provider's or validator's daemon: the page shows it and controls it.
    pub operator: Option<Operator>,
    /// The block explorer the page links transactions and accounts to (its base address);
    /// without it, the one [`explorer_for`] knows for the chain, if any.
    pub explorer: Option<String>,
}

/// The public block explorer of a chain that has a well-known one.
pub fn explorer_for(chain_id: u64) -> Option<&'static str> {
    Some(match chain_id {
        1 => "https://etherscan.io",
        11_155_111 => "https://sepolia.etherscan.io",
        8453 => "https://basescan.org",
        84_532 => "https://sepolia.basescan.org",
        10 => "https://optimistic.etherscan.io",
        11_155_420 => "https://sepolia-optimism.etherscan.io",
        42_161 => "https://arbiscan.io",
        421_614 => "https://sepolia.arbiscan.io",
        _ => return None,
    })
}

/// What can go wrong serving the page.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The address is not loopback.
    #[error("{0} is not a loopback address: the node's API listens on 127.0.0.1 or ::1 only")]
    NotLoopback(SocketAddr),
    /// Listening failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The chain did not answer.
    #[error("the chain's RPC endpoint failed: {0}")]
    Rpc(String),
}

impl UiError {
    pub(crate) fn rpc(e: impl std::fmt::Display) -> Self {
        Self::Rpc(e.to_string())
    }
}

/// The router of the page and the API for `market`, guarded by `guard`, with what `options`
/// allow.
pub fn router(market: Market, guard: Guard, options: Options) -> Router {
    let node = options.node.map(|n| node::NodeState::start(n, &market));
    // Only a web address goes into the page's links (never `javascript:` or the like).
    let explorer = options
        .explorer
        .filter(|e| e.starts_with("https://") || e.starts_with("http://"))
        .map(|e| e.trim_end_matches('/').to_owned())
        .or_else(|| explorer_for(market.deployment().chain_id).map(str::to_owned));
    let app = Arc::new(api::App {
        explorer,
        market,
        index: Mutex::new(Default::default()),
        node,
        operator: options.operator,
    });
    Router::new()
        .route("/api/market", get(api::market))
        .route("/api/me", get(me::me))
        .route("/api/me/pause", post(me::pause))
        .route("/api/me/resume", post(me::resume))
        .route("/api/wallet", get(node::wallet))
        .route("/api/wallet/unlock", post(node::unlock))
        .route("/api/wallet/lock", post(node::lock))
        .route(
            "/api/uploads",
            post(post::upload).layer(DefaultBodyLimit::max(post::MAX_UPLOAD)),
        )
        .route("/api/jobs", post(post::post))
        .route("/api/jobs/plan", post(post::plan))
        .route("/api/jobs/calls", post(post::calls))
        .route("/api/jobs/{id}/result", post(result::fetch))
        .route("/api/tx/{hash}", get(post::tx))
        .route("/api/jobs/{id}", get(api::job))
        .route("/api/providers/{address}", get(api::provider))
        .route("/api/validators/{address}", get(api::validator))
        .route("/api/disputes/{job}", get(api::dispute))
        .route("/api/{*rest}", any(api::not_found))
        .fallback(get(api::page))
        .with_state(app)
        .layer(from_fn_with_state(Arc::new(guard), auth::guard))
}

/// Serves the page for `market` (with what `options` allow) on `addr` (loopback only) until `shutdown` resolves; returns
/// the bound address, the token, and the serving task.
pub async fn serve(
    market: Market,
    options: Options,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<
    (
        SocketAddr,
        String,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ),
    UiError,
> {
    if !addr.ip().is_loopback() {
        return Err(UiError::NotLoopback(addr));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| UiError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| UiError::Listen { addr, source })?;
    let guard = Guard::new(bound);
    let token = guard.token().to_owned();
    let app = router(market, guard, options);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, token, task))
}
