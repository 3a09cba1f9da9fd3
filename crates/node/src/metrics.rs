//! The worker's Prometheus metrics and its health, served by the status server every daemon
//! shares ([`pedals_daemon::serve`], bound to loopback by default).

use std::{
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64},
    },
    time::Duration,
};

use pedals_chain::Health;
pub use pedals_daemon::Status;
use pedals_p2p::NetStatsSnapshot;
use prometheus_client::{
    encoding::EncodeLabelSet,
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

    /// Healthy while the last good round is at most `limit` old and the chain is the one the
    /// node knows.
    pub fn healthy(&self, limit: Duration) -> bool {
        self.health.report(limit).is_ok()
    }
}

impl pedals_daemon::Status for Metrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn health(&self) -> &Health {
        &self.health
    }
}
