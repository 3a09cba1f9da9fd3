//! Job states as a Rust enum (the JSON ABI carries enums as plain `uint8`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of a job on-chain, in the order of `IJobMarket.JobStatus`; convert the `uint8` of
/// a binding's `Job.status` with `JobStatus::try_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// No such job.
    None,
    /// Escrowed, waiting for a provider.
    Posted,
    /// A provider claimed it and is working.
    Claimed,
    /// The result is in; the challenge window is open.
    Submitted,
    /// A validator challenged the result.
    Disputed,
    /// The worker was paid.
    Finalized,
    /// The requester cancelled before any claim.
    Cancelled,
    /// The worker missed the delivery deadline.
    Expired,
    /// A dispute found the worker wrong (or it did not publish a demanded state); the
    /// requester was refunded.
    Resolved,
    /// Someone demanded that a state of the trace be published on-chain.
    Demanded,
}

impl JobStatus {
    const ALL: [Self; 10] = [
        Self::None,
        Self::Posted,
        Self::Claimed,
        Self::Submitted,
        Self::Disputed,
        Self::Finalized,
        Self::Cancelled,
        Self::Expired,
        Self::Resolved,
        Self::Demanded,
    ];

    /// Whether the job has settled for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Finalized | Self::Cancelled | Self::Expired | Self::Resolved
        )
    }
}

impl TryFrom<u8> for JobStatus {
    type Error = u8;

    fn try_from(value: u8) -> Result<Self, u8> {
        Self::ALL.get(usize::from(value)).copied().ok_or(value)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::None => "none",
            Self::Posted => "posted",
            Self::Claimed => "claimed",
            Self::Submitted => "submitted",
            Self::Disputed => "disputed",
            Self::Finalized => "finalized",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Resolved => "resolved",
            Self::Demanded => "demanded",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_discriminant_and_rejects_the_rest() {
        for (i, s) in JobStatus::ALL.iter().enumerate() {
            assert_eq!(JobStatus::try_from(i as u8), Ok(*s));
        }
        assert_eq!(JobStatus::try_from(10), Err(10));
        assert!(JobStatus::Finalized.is_terminal());
        assert!(!JobStatus::Disputed.is_terminal());
        assert_eq!(JobStatus::Submitted.to_string(), "submitted");
    }
}
