//! The step trace `[h_0 .. h_N]` of a job and its Merkle commitment.
//!
//! `h_0` is the hash of the initial state and `h_i` the hash after step `i`, so a trace of
//! `N` steps has `N + 1` leaves. The job result on-chain is `(N, traceRoot, h_N, resultCid)`.

use alloy_primitives::B256;

use crate::{CoreError, MerkleProof, MerkleTree};

/// The state hashes of a run and the Merkle tree over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceCommitment {
    hashes: Vec<B256>,
    tree: MerkleTree,
}

impl TraceCommitment {
    /// Commits to `hashes = [h_0 .. h_N]`. Fails only when `hashes` is empty.
    pub fn new(hashes: Vec<B256>) -> Result<Self, CoreError> {
        let tree = MerkleTree::new(&hashes)?;
        Ok(Self { hashes, tree })
    }

    /// Number of steps `N` (one less than the number of hashes).
    pub fn steps(&self) -> u64 {
        self.hashes.len() as u64 - 1
    }

    /// The trace root, as posted on-chain.
    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// All state hashes, `h_0` first.
    pub fn hashes(&self) -> &[B256] {
        &self.hashes
    }

    /// `h_i`, if `i <= steps`.
    pub fn hash(&self, i: u64) -> Option<B256> {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.hashes.get(i).copied())
    }

    /// `h_N`, the hash of the final state, as posted on-chain.
    pub fn final_hash(&self) -> B256 {
        self.hashes[self.hashes.len() - 1]
    }

    /// The inclusion proof of `h_i` against [`Self::root`].
    pub fn proof(&self, i: u64) -> Result<MerkleProof, CoreError> {
        let out_of_range = || CoreError::LeafIndexOutOfRange {
            index: i,
            leaf_count: self.hashes.len() as u64,
        };
        let index = usize::try_from(i).map_err(|_| out_of_range())?;
        self.tree.proof(index)
    }
}

/// Checks the openings of `h_step` and `h_(step+1)` against the trace root of a job of `steps`
/// steps: what a validator does before re-executing step `step` (which turns `h_step` into
/// `h_(step+1)`).
///
/// Both proofs must be for a tree of `steps + 1` leaves (so a worker cannot pick another tree
/// shape), at indices `step` and `step + 1`, and both must lead to `root`.
pub fn verify_transition(
    root: &B256,
    steps: u64,
    step: u64,
    h_step: &B256,
    proof_step: &MerkleProof,
    h_next: &B256,
    proof_next: &MerkleProof,
) -> Result<(), CoreError> {
    if step >= steps {
        return Err(CoreError::StepOutOfRange { step, steps });
    }
    // steps < u64::MAX here, so steps + 1 does not overflow.
    let leaf_count = steps + 1;
    check_opening(root, leaf_count, step, h_step, proof_step)?;
    check_opening(root, leaf_count, step + 1, h_next, proof_next)
}

fn check_opening(
    root: &B256,
    leaf_count: u64,
    index: u64,
    hash: &B256,
    proof: &MerkleProof,
) -> Result<(), CoreError> {
    let reason = if proof.leaf_count != leaf_count {
        format!(
            "the proof is for a tree of {} leaves, but a trace of {} steps has {leaf_count}",
            proof.leaf_count,
            leaf_count - 1
        )
    } else if proof.index != index {
        format!("the proof is for leaf {}, not {index}", proof.index)
    } else if !proof.verify(root, hash) {
        "the hash and its siblings do not lead to the root".to_owned()
    } else {
        return Ok(());
    };
    Err(CoreError::TraceProof { index, reason })
}

#[cfg(test)]
mod tests {
    use alloy_primitives::keccak256;

    use super::*;

    fn trace(steps: u64) -> TraceCommitment {
        TraceCommitment::new((0..=steps).map(|i| keccak256(i.to_be_bytes())).collect())
            .expect("trace")
    }

    #[test]
    fn every_transition_verifies() {
        for steps in 1..=9 {
            let t = trace(steps);
            assert_eq!(t.steps(), steps);
            assert_eq!(t.final_hash(), t.hashes()[steps as usize]);
            for i in 0..steps {
                let (hi, hn) = (t.hash(i).expect("h_i"), t.hash(i + 1).expect("h_i+1"));
                let (pi, pn) = (t.proof(i).expect("proof"), t.proof(i + 1).expect("proof"));
                verify_transition(&t.root(), steps, i, &hi, &pi, &hn, &pn).expect("verifies");
            }
        }
    }

    #[test]
    fn zero_steps_has_no_transition() {
        let t = trace(0);
        assert_eq!(t.steps(), 0);
        let p = t.proof(0).expect("proof");
        let h = t.final_hash();
        assert_eq!(
            verify_transition(&t.root(), 0, 0, &h, &p, &h, &p),
            Err(CoreError::StepOutOfRange { step: 0, steps: 0 })
        );
    }

    #[test]
    fn wrong_openings_are_rejected() {
        let t = trace(6);
        let root = t.root();
        let h = |i| t.hash(i).expect("hash");
        let p = |i| t.proof(i).expect("proof");
        let reject = |r: Result<(), CoreError>, index: u64| match r {
            Err(CoreError::TraceProof { index: got, .. }) => assert_eq!(got, index),
            other => panic!("expected a TraceProof error, got {other:?}"),
        };
        // Swapped hashes.
        reject(
            verify_transition(&root, 6, 2, &h(3), &p(2), &h(2), &p(3)),
            2,
        );
        // Non-consecutive: h_4 with its own proof in place of h_3.
        reject(
            verify_transition(&root, 6, 2, &h(2), &p(2), &h(4), &p(4)),
            3,
        );
        // Steps claimed differ from the tree the proofs were made for.
        reject(
            verify_transition(&root, 7, 2, &h(2), &p(2), &h(3), &p(3)),
            2,
        );
        // Wrong root.
        reject(
            verify_transition(&h(0), 6, 2, &h(2), &p(2), &h(3), &p(3)),
            2,
        );
        assert_eq!(
            verify_transition(&root, 6, 6, &h(6), &p(6), &h(6), &p(6)),
            Err(CoreError::StepOutOfRange { step: 6, steps: 6 })
        );
        assert!(t.proof(7).is_err());
        assert_eq!(t.hash(7), None);
    }

    #[test]
    fn empty_trace_is_an_error() {
        assert_eq!(TraceCommitment::new(Vec::new()), Err(CoreError::EmptyTree));
    }
}
