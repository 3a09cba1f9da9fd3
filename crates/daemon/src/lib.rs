//! What the worker and the validator daemons share, so that an operator sees one kind of
//! daemon: their status server. `GET /metrics` answers in the OpenMetrics text format
//! (prometheus-client's registry), `GET /health` with `200 ok` while rounds succeed, and
//! `503 unhealthy: <the reason>` once the last good round is older than the limit, or at once
//! on a chain the daemon no longer recognises ([`Health`]).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
pub use pedals_chain::Health;
use prometheus_client::registry::Registry;

/// A daemon's figures and health, as its status server shows them.
pub trait Status: Send + Sync + 'static {
    /// Its metrics registry.
    fn registry(&self) -> &Registry;
    /// Whether its rounds succeed, and why not.
    fn health(&self) -> &Health;

    /// The metrics in the OpenMetrics text format.
    fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, self.registry())
            .expect("writing to a String cannot fail");
        out
    }
}

struct Shared<S> {
    status: Arc<S>,
    limit: Duration,
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Self {
            status: self.status.clone(),
            limit: self.limit,
        }
    }
}

async fn metrics_page<S: Status>(State(s): State<Shared<S>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.status.render(),
    )
}

async fn health_page<S: Status>(State(s): State<Shared<S>>) -> impl IntoResponse {
    let (code, body) = s.status.health().http(s.limit);
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        body,
    )
}

/// Serves `/metrics` and `/health` of `status` on `addr` until `shutdown` resolves; unhealthy
/// once no round has succeeded for `unhealthy_after`. Returns the bound address (useful with
/// port 0) and the server's task.
pub async fn serve<S: Status>(
    addr: SocketAddr,
    status: Arc<S>,
    unhealthy_after: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_page::<S>))
        .route("/health", get(health_page::<S>))
        .with_state(Shared {
            status,
            limit: unhealthy_after,
        });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, task))
}
