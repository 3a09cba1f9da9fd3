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

#[cfg(test)]
mod tests {
    use super::*;

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
