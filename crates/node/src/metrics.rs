//! The worker's Prometheus metrics and its health endpoint, served over HTTP (bound to
//! loopback by default): `GET /metrics` in the Prometheus text format, `GET /health` with
//! 200 while rounds succeed, 503 with the reason once the last good round is older than the
//! limit or at once on a chain the node no longer recognises ([`pedals_chain::Health`]).

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use pedals_chain::Health;
use pedals_p2p::NetStatsSnapshot;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// The label of the per-phase gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// The job phase, e.g. `training`.
    pub phase: String,
}

/// What the worker reports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Jobs by phase.
    pub jobs: Family<PhaseLabel, Gauge>,
    /// Training steps computed.
    pub steps_trained: Counter,
    /// Blocks between the chain head and the follower's cursor.
    pub chain_lag_blocks: Gauge,
    /// Transactions signed or sent and not yet settled.
    pub open_transactions: Gauge,
    /// Steps per second of the last training run.
    pub training_steps_per_second: Gauge<f64, AtomicU64>,
    /// Rounds that failed (RPC errors and the like).
    pub failed_rounds: Counter,
    /// Peers connected.
    pub peers: Gauge,
    /// Bytes of blobs and checkpoints served to peers.
    pub bytes_served: Counter,
    /// Blobs served to peers.
    pub blobs_served: Counter,
    /// Checkpoints served to peers.
    pub checkpoints_served: Counter,
    /// Blobs and checkpoints received that failed verification.
    pub bad_content: Counter,
    last_network: Mutex<NetStatsSnapshot>,
    /// Whether rounds succeed, and why not.
    pub health: Health,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pedals");
        let jobs = Family::<PhaseLabel, Gauge>::default();
        registry.register("jobs", "Jobs by the worker's phase", jobs.clone());
        let steps_trained = Counter::default();
        registry.register(
            "steps_trained",
            "Training steps computed",
            steps_trained.clone(),
        );
        let chain_lag_blocks = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "chain_lag_blocks",
            "Blocks between the chain head and the event follower's cursor",
            chain_lag_blocks.clone(),
        );
        let open_transactions = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "open_transactions",
            "Transactions signed or sent and not yet settled",
            open_transactions.clone(),
        );
        let training_steps_per_second = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "training_steps_per_second",
            "Steps per second of the last training run",
            training_steps_per_second.clone(),
        );
        let failed_rounds = Counter::default();
        registry.register("failed_rounds", "Rounds that failed", failed_rounds.clone());
        let peers = Gauge::<i64, AtomicI64>::default();
        registry.register("p2p_peers", "Peers connected", peers.clone());
        let bytes_served = Counter::default();
        registry.register(
            "p2p_served_bytes",
            "Bytes of blobs and checkpoints served to peers",
            bytes_served.clone(),
        );
        let blobs_served = Counter::default();
        registry.register(
            "p2p_blobs_served",
            "Blobs served to peers",
            blobs_served.clone(),
        );
        let checkpoints_served = Counter::default();
        registry.register(
            "p2p_checkpoints_served",
            "Checkpoints served to peers",
            checkpoints_served.clone(),
        );
        let bad_content = Counter::default();
        registry.register(
            "p2p_bad_content",
            "Blobs and checkpoints received that failed verification and were dropped",
            bad_content.clone(),
        );
        Self {
            registry,
            jobs,
            steps_trained,
            chain_lag_blocks,
            open_transactions,
            training_steps_per_second,
            failed_rounds,
            peers,
            bytes_served,
            blobs_served,
            checkpoints_served,
            bad_content,
            last_network: Mutex::new(NetStatsSnapshot::default()),
            health: Health::default(),
        }
    }
}

impl Metrics {
    /// Brings the network figures up to `now` (the counters grow by the difference from the
    /// last snapshot).
    pub fn record_network(&self, now: NetStatsSnapshot) {
        let mut last = self
            .last_network
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.peers.set(now.peers as i64);
        self.bytes_served
            .inc_by(now.bytes_served.saturating_sub(last.bytes_served));
        self.blobs_served
            .inc_by(now.blobs_served.saturating_sub(last.blobs_served));
        self.checkpoints_served.inc_by(
            now.checkpoints_served
                .saturating_sub(last.checkpoints_served),
        );
        self.bad_content
            .inc_by(now.bad_content.saturating_sub(last.bad_content));
        *last = now;
    }

    /// Marks a round as done.
    pub fn round_ok(&self) {
        self.health.round_ok();
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// Healthy while the last good round is at most `limit` old and the chain is the one the
    /// node knows.
    pub fn healthy(&self, limit: Duration) -> bool {
        self.health.report(limit).is_ok()
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    limit: Duration,
}

async fn metrics_page(State(s): State<Shared>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn health_page(State(s): State<Shared>) -> impl IntoResponse {
    let (code, body) = s.metrics.health.http(s.limit);
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        body,
    )
}

/// Serves `/metrics` and `/health` on `addr` until `shutdown` resolves; returns the bound
/// address (useful with port 0) and the server's task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    unhealthy_after: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/health", get(health_page))
        .with_state(Shared {
            metrics,
            limit: unhealthy_after,
        });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, task))
}
