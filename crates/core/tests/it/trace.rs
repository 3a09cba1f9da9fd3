//! Step traces: every transition of a random trace verifies, and openings that do not belong
//! together are rejected.

use pedals_core::{B256, CoreError, TraceCommitment, verify_transition};
use proptest::prelude::*;

use crate::config;

fn trace() -> impl Strategy<Value = TraceCommitment> {
    prop::collection::vec(any::<[u8; 32]>().prop_map(B256::from), 2..=130)
        .prop_map(|h| TraceCommitment::new(h).expect("trace"))
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn transitions_verify_and_mixups_fail(t in trace(), pick in any::<prop::sample::Index>()) {
        let steps = t.steps();
        let root = t.root();
        let i = pick.index(steps as usize) as u64;
        let h = |k: u64| t.hash(k).expect("hash");
        let p = |k: u64| t.proof(k).expect("proof");
        prop_assert_eq!(verify_transition(&root, steps, i, &h(i), &p(i), &h(i + 1), &p(i + 1)), Ok(()));

        // Both hashes swapped (they differ, being random).
        let swapped = verify_transition(&root, steps, i, &h(i + 1), &p(i), &h(i), &p(i + 1));
        prop_assert!(
            matches!(swapped, Err(CoreError::TraceProof { .. })),
            "swapped hashes: {:?}",
            swapped
        );
        // One more step claimed than the trace has.
        let longer = verify_transition(&root, steps + 1, i, &h(i), &p(i), &h(i + 1), &p(i + 1));
        prop_assert!(matches!(longer, Err(CoreError::TraceProof { .. })), "{:?}", longer);
        // A transition past the end.
        prop_assert_eq!(
            verify_transition(&root, steps, steps, &h(steps), &p(steps), &h(steps), &p(steps)),
            Err(CoreError::StepOutOfRange { step: steps, steps })
        );
        // The next opening taken from another index.
        if i + 2 <= steps {
            let skip = verify_transition(&root, steps, i, &h(i), &p(i), &h(i + 2), &p(i + 2));
            prop_assert!(matches!(skip, Err(CoreError::TraceProof { .. })), "{:?}", skip);
        }
    }
}

#[test]
fn the_final_hash_is_the_last_leaf() {
    let hashes: Vec<B256> = (0u8..10).map(|i| B256::repeat_byte(i + 1)).collect();
    let t = TraceCommitment::new(hashes.clone()).expect("trace");
    assert_eq!(t.steps(), 9);
    assert_eq!(t.final_hash(), hashes[9]);
    assert_eq!(t.root(), pedals_core::merkle_root(&hashes).expect("root"));
    assert!(t.proof(9).expect("proof").verify(&t.root(), &hashes[9]));
}
