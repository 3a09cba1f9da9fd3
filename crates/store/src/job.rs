//! The worker's job record and its state machine.

use std::fmt;

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

/// Where a job stands for this node. The chain is the source of truth for money; this is the
/// node's own progress, written before each transaction it leads to.
///
/// ```text
/// Seen → Fetching → Ready → Claiming → Claimed → Training{n} → Trained → Submitting
///      → Submitted ⇄ Disputed;  Submitted → Finalizing → Finalized
/// any non-final phase → Abandoned{reason};  reorgs step back: Claimed/Training → Claiming,
/// Submitted → Submitting;  a failed transaction steps back: Claiming → Ready,
/// Submitting → Trained, Finalizing → Submitted
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum JobPhase {
    /// Announced or seen on-chain; nothing done yet.
    Seen,
    /// Fetching and verifying the dataset and model.
    Fetching,
    /// Data verified locally; ready to claim.
    Ready,
    /// The claim transaction is signed (its intent is stored) and may be in flight.
    Claiming,
    /// The claim is mined.
    Claimed,
    /// Training; `steps_done` steps are checkpointed.
    Training {
        /// Steps done and checkpointed.
        steps_done: u64,
    },
    /// Every step done; the trace root is known.
    Trained,
    /// The submit transaction is signed and may be in flight.
    Submitting,
    /// The result is on-chain; the challenge window runs.
    Submitted,
    /// A challenge is being played.
    Disputed,
    /// The finalize transaction is signed and may be in flight.
    Finalizing,
    /// Paid (or refunded): nothing left to do.
    Finalized,
    /// Given up, with the reason (lost the claim race, data did not match its CID, expired,
    /// slashed, …).
    Abandoned {
        /// Why.
        reason: String,
    },
}

impl JobPhase {
    /// A phase no transition leaves.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Finalized | Self::Abandoned { .. })
    }

    /// The phase's name without its details, e.g. `training` (a metrics label).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Seen => "seen",
            Self::Fetching => "fetching",
            Self::Ready => "ready",
            Self::Claiming => "claiming",
            Self::Claimed => "claimed",
            Self::Training { .. } => "training",
            Self::Trained => "trained",
            Self::Submitting => "submitting",
            Self::Submitted => "submitted",
            Self::Disputed => "disputed",
            Self::Finalizing => "finalizing",
            Self::Finalized => "finalized",
            Self::Abandoned { .. } => "abandoned",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Seen => 0,
            Self::Fetching => 1,
            Self::Ready => 2,
            Self::Claiming => 3,
            Self::Claimed => 4,
            Self::Training { .. } => 5,
            Self::Trained => 6,
            Self::Submitting => 7,
            Self::Submitted => 8,
            Self::Disputed => 9,
            Self::Finalizing => 10,
            Self::Finalized => 11,
            Self::Abandoned { .. } => 12,
        }
    }

    /// Whether the state machine allows `self → to`. Staying in the same phase is allowed (a
    /// repeated event changes nothing), except that training never goes back in steps.
    pub fn can_become(&self, to: &JobPhase) -> bool {
        use JobPhase::*;
        match (self, to) {
            (a, b) if a == b => true,
            (a, _) if a.is_final() => false,
            (_, Abandoned { .. }) => true,
            (Training { steps_done: a }, Training { steps_done: b }) => b >= a,
            (a, b) if a.rank() == b.rank() => true,
            (Seen, Fetching)
            | (Fetching, Ready)
            | (Ready, Claiming)
            // A zk job has no claim: its proof is submitted from Ready, and signed again
            // from Ready if the submission reverted.
            | (Ready, Submitting)
            | (Submitting, Ready)
            | (Claiming, Claimed | Ready)
            | (Claimed, Training { .. } | Claiming)
            | (Training { .. }, Trained | Claiming)
            | (Trained, Submitting)
            | (Submitting, Submitted | Trained)
            | (Submitted, Disputed | Finalizing | Submitting)
            | (Disputed, Submitted)
            | (Finalizing, Finalized | Submitted) => true,
            _ => false,
        }
    }
}

impl fmt::Display for JobPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Seen => f.write_str("seen"),
            Self::Fetching => f.write_str("fetching"),
            Self::Ready => f.write_str("ready"),
            Self::Claiming => f.write_str("claiming"),
            Self::Claimed => f.write_str("claimed"),
            Self::Training { steps_done } => write!(f, "training ({steps_done} steps done)"),
            Self::Trained => f.write_str("trained"),
            Self::Submitting => f.write_str("submitting"),
            Self::Submitted => f.write_str("submitted"),
            Self::Disputed => f.write_str("disputed"),
            Self::Finalizing => f.write_str("finalizing"),
            Self::Finalized => f.write_str("finalized"),
            Self::Abandoned { reason } => write!(f, "abandoned ({reason})"),
        }
    }
}

/// One job as this node tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The on-chain job id.
    pub job_id: u64,
    /// Where the job stands.
    #[serde(flatten)]
    pub phase: JobPhase,
    /// The job spec's CID (string form), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_cid: Option<String>,
    /// The dataset's CID (string form), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_cid: Option<String>,
    /// The initial model's CID (string form), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_cid: Option<String>,
    /// The trace root, once every step is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_root: Option<B256>,
    /// The result blob's CID (string form), once every step is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_cid: Option<String>,
}

impl JobRecord {
    /// A record in `phase` with nothing else known.
    pub fn new(job_id: u64, phase: JobPhase) -> Self {
        Self {
            job_id,
            phase,
            spec_cid: None,
            dataset_cid: None,
            model_cid: None,
            trace_root: None,
            result_cid: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JobPhase::*;

    #[test]
    fn the_happy_path_is_allowed_and_going_back_is_not() {
        let path = [
            Seen,
            Fetching,
            Ready,
            Claiming,
            Claimed,
            Training { steps_done: 0 },
            Training { steps_done: 5 },
            Trained,
            Submitting,
            Submitted,
            Finalizing,
            Finalized,
        ];
        for w in path.windows(2) {
            assert!(w[0].can_become(&w[1]), "{} → {}", w[0], w[1]);
        }
        assert!(!Training { steps_done: 5 }.can_become(&Training { steps_done: 4 }));
        assert!(!Submitted.can_become(&Claimed));
        assert!(!Seen.can_become(&Claiming), "claiming needs verified data");
        let gone = Abandoned {
            reason: "lost the claim".into(),
        };
        assert!(Claiming.can_become(&gone));
        assert!(!gone.can_become(&Seen));
        assert!(!Finalized.can_become(&gone));
        assert!(Finalized.can_become(&Finalized));
    }
}
