//! `pedals gateway`'s library: an OpenAI-compatible HTTP API (`/v1/models`,
//! `/v1/completions`, `/v1/chat/completions`, with `stream: true` as server-sent events) over a
//! model that span servers run (docs/split-inference.md, "The gateway").
//!
//! Generation goes through [`pedals_infer::RemoteModel`], so a request gives the tokens that
//! `pedals model generate` gives for the same prompt, parameters and seed.

mod handlers;
pub mod openai;
mod stream;

use std::{collections::HashSet, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    routing::{get, post},
};
use pedals_infer::RemoteModel;

/// What the gateway serves and whom.
#[derive(Debug)]
pub struct Gateway {
    /// The model.
    pub model: RemoteModel,
    /// The name clients give as `model` (the CID is accepted too).
    pub name: String,
    /// API keys accepted as `Authorization: Bearer <key>`; empty lets anyone in.
    pub keys: HashSet<String>,
    /// When it started, Unix seconds (the model's `created`).
    pub created: u64,
}

/// The API's routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/models", get(handlers::models))
        .route("/v1/completions", post(handlers::completions))
        .route("/v1/chat/completions", post(handlers::chat))
        .fallback(handlers::not_found)
        .with_state(gateway)
}

/// Serves the API on `listen` until `shutdown` resolves; returns the bound address and the
/// server's task.
pub async fn serve(
    gateway: Arc<Gateway>,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let app = router(gateway);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, task))
}
