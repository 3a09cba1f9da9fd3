//! The validator's counters, served in the Prometheus text format, and its health.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the validator has done, for its metrics.
#[derive(Debug, Default)]
pub struct VerifierStats {
    /// Jobs whose sampled steps were all checked.
    pub jobs_checked: AtomicU64,
    /// Steps re-executed.
    pub steps_checked: AtomicU64,
    /// Steps whose recomputed state differed from the worker's.
    pub mismatches: AtomicU64,
    /// Sampled steps whose checkpoint no worker served over the network.
    pub unavailable: AtomicU64,
    /// Data-availability demands it made.
    pub demands: AtomicU64,
    /// Demands the worker left unmet, whose collateral this validator claimed.
    pub demands_unmet: AtomicU64,
    /// Games won.
    pub disputes_won: AtomicU64,
    /// Games lost.
    pub disputes_lost: AtomicU64,
    /// Wei credited to this validator by won games and unmet demands (bond back plus reward),
    /// and paid to it by audit pools.
    pub wei_earned: AtomicU64,
    /// Audits it committed to (a step re-executed and its audit leaf committed).
    pub audits_committed: AtomicU64,
    /// Audits whose share of the pool it collected.
    pub audits_paid: AtomicU64,
    /// Whether its rounds succeed, and why not (`/health`).
    pub health: pedals_chain::Health,
}

impl VerifierStats {
    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, v) in [
            (
                "pedals_validator_jobs_checked_total",
                "Jobs whose sampled steps were checked.",
                &self.jobs_checked,
            ),
            (
                "pedals_validator_steps_checked_total",
                "Steps re-executed.",
                &self.steps_checked,
            ),
            (
                "pedals_validator_mismatches_total",
                "Re-executed steps that did not reproduce.",
                &self.mismatches,
            ),
            (
                "pedals_validator_unavailable_total",
                "Sampled checkpoints no worker served over the network.",
                &self.unavailable,
            ),
            (
                "pedals_validator_demands_total",
                "Data-availability demands made.",
                &self.demands,
            ),
            (
                "pedals_validator_demands_unmet_total",
                "Demands the worker left unmet (its collateral claimed).",
                &self.demands_unmet,
            ),
            (
                "pedals_validator_disputes_won_total",
                "Dispute games won.",
                &self.disputes_won,
            ),
            (
                "pedals_validator_disputes_lost_total",
                "Dispute games lost.",
                &self.disputes_lost,
            ),
            (
                "pedals_validator_wei_earned_total",
                "Wei credited by won games and unmet demands, and paid by audit pools.",
                &self.wei_earned,
            ),
            (
                "pedals_validator_audits_committed_total",
                "Audits committed: a step re-executed and its audit leaf committed.",
                &self.audits_committed,
            ),
            (
                "pedals_validator_audits_paid_total",
                "Audits whose share of the job's audit pool was collected.",
                &self.audits_paid,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// Serves the counters at `/metrics` and the validator's health at `/health` (`200 ok`, or
/// `503 unhealthy: <the reason>` once no round has succeeded for `unhealthy_after`, or at once
/// on a chain it no longer recognises) on `addr` until `shutdown` resolves; returns the bound
/// address and the server's task.
pub async fn serve_metrics(
    addr: std::net::SocketAddr,
    stats: Arc<VerifierStats>,
    unhealthy_after: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    use axum::{Router, http::StatusCode, routing::get};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let health = stats.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let stats = stats.clone();
                async move { stats.render() }
            }),
        )
        .route(
            "/health",
            get(move || {
                let (code, body) = health.health.http(unhealthy_after);
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                async move { (code, body) }
            }),
        );
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, task))
}
