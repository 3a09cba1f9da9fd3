//! The validator's counters and its health, served by the status server every daemon shares
//! ([`pedals_daemon::serve`]): `pedals_validator_*_total` in the OpenMetrics text format.

use prometheus_client::{metrics::counter::Counter, registry::Registry};

pub use pedals_daemon::serve as serve_metrics;

/// What the validator has done, for its metrics.
#[derive(Debug)]
pub struct VerifierStats {
    registry: Registry,
    /// Jobs whose sampled steps were all checked.
    pub jobs_checked: Counter,
    /// Steps re-executed.
    pub steps_checked: Counter,
    /// Steps whose recomputed state differed from the worker's.
    pub mismatches: Counter,
    /// Sampled steps whose checkpoint no worker served over the network.
    pub unavailable: Counter,
    /// Data-availability demands it made.
    pub demands: Counter,
    /// Demands the worker left unmet, whose collateral this validator claimed.
    pub demands_unmet: Counter,
    /// Games won.
    pub disputes_won: Counter,
    /// Games lost.
    pub disputes_lost: Counter,
    /// Wei credited to this validator by won games and unmet demands (bond back plus reward),
    /// and paid to it by audit pools.
    pub wei_earned: Counter,
    /// Audits it committed to (a step re-executed and its audit leaf committed).
    pub audits_committed: Counter,
    /// Audits whose share of the pool it collected.
    pub audits_paid: Counter,
    /// Whether its rounds succeed, and why not (`/health`).
    pub health: pedals_chain::Health,
}

impl Default for VerifierStats {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pedals_validator");
        let jobs_checked = Counter::default();
        registry.register(
            "jobs_checked",
            "Jobs whose sampled steps were checked",
            jobs_checked.clone(),
        );
        let steps_checked = Counter::default();
        registry.register("steps_checked", "Steps re-executed", steps_checked.clone());
        let mismatches = Counter::default();
        registry.register(
            "mismatches",
            "Re-executed steps that did not reproduce",
            mismatches.clone(),
        );
        let unavailable = Counter::default();
        registry.register(
            "unavailable",
            "Sampled checkpoints no worker served over the network",
            unavailable.clone(),
        );
        let demands = Counter::default();
        registry.register("demands", "Data-availability demands made", demands.clone());
        let demands_unmet = Counter::default();
        registry.register(
            "demands_unmet",
            "Demands the worker left unmet (its collateral claimed)",
            demands_unmet.clone(),
        );
        let disputes_won = Counter::default();
        registry.register("disputes_won", "Dispute games won", disputes_won.clone());
        let disputes_lost = Counter::default();
        registry.register("disputes_lost", "Dispute games lost", disputes_lost.clone());
        let wei_earned = Counter::default();
        registry.register(
            "wei_earned",
            "Wei credited by won games and unmet demands, and paid by audit pools",
            wei_earned.clone(),
        );
        let audits_committed = Counter::default();
        registry.register(
            "audits_committed",
            "Audits committed: a step re-executed and its audit leaf committed",
            audits_committed.clone(),
        );
        let audits_paid = Counter::default();
        registry.register(
            "audits_paid",
            "Audits whose share of the job's audit pool was collected",
            audits_paid.clone(),
        );
        Self {
            registry,
            jobs_checked,
            steps_checked,
            mismatches,
            unavailable,
            demands,
            demands_unmet,
            disputes_won,
            disputes_lost,
            wei_earned,
            audits_committed,
            audits_paid,
            health: pedals_chain::Health::default(),
        }
    }
}

impl pedals_daemon::Status for VerifierStats {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn health(&self) -> &pedals_chain::Health {
        &self.health
    }
}
