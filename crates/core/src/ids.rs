//! Protocol identifiers shared by every crate: the on-chain enums by name, so that no code
//! compares a raw `u8`.

/// How a job's result is verified (`IJobMarket.Verification`, by its ABI value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verification {
    /// Training, checked by sampling, challenges and the dispute game.
    Optimistic,
    /// A zk proof verified on-chain at submission.
    Zk,
    /// Batch inference, checked by sampling chunks and data-availability demands.
    OptimisticInference,
}

impl Verification {
    /// The value the contracts use.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Optimistic => 0,
            Self::Zk => 1,
            Self::OptimisticInference => 2,
        }
    }

    /// The kind a contract value names, if any.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Optimistic),
            1 => Some(Self::Zk),
            2 => Some(Self::OptimisticInference),
            _ => None,
        }
    }

    /// Whether `v` (a job's `verification` as read from the chain) is this kind.
    pub fn is(self, v: u8) -> bool {
        self.to_u8() == v
    }
}

impl From<Verification> for u8 {
    fn from(v: Verification) -> Self {
        v.to_u8()
    }
}

/// A job's number on the market (`uint256` on chain, numbered from 1; 0 is no job, and the
/// account-wide records of a node's store). Nodes keep it as a `u64`: the market would need
/// 2^64 jobs to pass that, and a larger id read from the chain is refused, not truncated.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl JobId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id as the contracts take it.
    pub fn to_u256(self) -> alloy_primitives::U256 {
        alloy_primitives::U256::from(self.0)
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for JobId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

impl From<u64> for JobId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}

impl From<JobId> for u64 {
    fn from(id: JobId) -> Self {
        id.0
    }
}

impl From<JobId> for alloy_primitives::U256 {
    fn from(id: JobId) -> Self {
        id.to_u256()
    }
}

impl TryFrom<alloy_primitives::U256> for JobId {
    type Error = crate::CoreError;
    fn try_from(id: alloy_primitives::U256) -> Result<Self, Self::Error> {
        u64::try_from(id)
            .map(Self)
            .map_err(|_| crate::CoreError::JobIdTooLarge(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_id_round_trips_through_u256_and_a_larger_one_is_refused() {
        for n in [0u64, 1, 7, u64::MAX] {
            let id = JobId(n);
            assert_eq!(JobId::try_from(id.to_u256()).ok(), Some(id));
            assert_eq!(id.to_string().parse::<JobId>().ok(), Some(id));
        }
        let beyond = alloy_primitives::U256::from(u64::MAX) + alloy_primitives::U256::from(1u8);
        assert!(JobId::try_from(beyond).is_err());
    }

    #[test]
    fn every_kind_round_trips_and_nothing_else_decodes() {
        for kind in [
            Verification::Optimistic,
            Verification::Zk,
            Verification::OptimisticInference,
        ] {
            assert_eq!(Verification::from_u8(kind.to_u8()), Some(kind));
            assert!(kind.is(u8::from(kind)));
        }
        assert_eq!(Verification::from_u8(3), None);
    }
}
