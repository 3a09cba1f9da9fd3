//! State encoding: round trips, canonical form, and decoding of arbitrary bytes.

use std::collections::BTreeMap;

use pedals_core::{ModelState, StateTensor};
use proptest::prelude::*;

use crate::config;

/// A shape of rank 0 to 3 with small dimensions, and data to fill it.
fn body() -> impl Strategy<Value = (Vec<u32>, Vec<i32>)> {
    prop::collection::vec(0u32..6, 0..=3).prop_flat_map(|shape| {
        let len = shape.iter().product::<u32>() as usize;
        (Just(shape), prop::collection::vec(any::<i32>(), len))
    })
}

pub(crate) fn state() -> impl Strategy<Value = ModelState> {
    let name = prop_oneof![4 => "[a-z0-9_.]{0,12}", 1 => "\\PC{0,6}"];
    prop::collection::btree_map(name, body(), 0..6).prop_map(|tensors: BTreeMap<_, _>| {
        let tensors = tensors
            .into_iter()
            .map(|(name, (shape, data))| StateTensor::new(name, shape, data).expect("tensor"))
            .collect();
        ModelState::new(tensors).expect("state")
    })
}

/// Decodes `bytes`, and when that succeeds checks that they were canonical.
fn decode_checked(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(state) = ModelState::from_canonical_bytes(bytes) {
        prop_assert_eq!(
            state.to_canonical_bytes().expect("re-encode"),
            bytes.to_vec()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn encoding_round_trips(s in state()) {
        let bytes = s.to_canonical_bytes().expect("encode");
        prop_assert_eq!(ModelState::from_canonical_bytes(&bytes).expect("decode"), s.clone());
        // Tensor order in memory does not matter, to the bytes or to the hash.
        let mut reversed = s.clone();
        reversed.tensors.reverse();
        prop_assert_eq!(reversed.to_canonical_bytes().expect("encode"), bytes.clone());
        prop_assert_eq!(reversed.state_hash().expect("hash"), s.state_hash().expect("hash"));
        // The hash is the hash of what the bytes decode to: it commits to the same state.
        let decoded = ModelState::from_canonical_bytes(&bytes).expect("decode");
        prop_assert_eq!(decoded.state_hash().expect("hash"), s.state_hash().expect("hash"));
    }

    #[test]
    fn a_changed_byte_is_rejected_or_still_canonical(
        s in state(),
        at in any::<prop::sample::Index>(),
        x in 1u8..,
    ) {
        let mut bytes = s.to_canonical_bytes().expect("encode");
        let at = at.index(bytes.len());
        bytes[at] ^= x;
        decode_checked(&bytes)?;
        // Another state that still decodes has another state hash.
        if let Ok(other) = ModelState::from_canonical_bytes(&bytes) {
            prop_assert_ne!(other.state_hash().expect("hash"), s.state_hash().expect("hash"));
        }
    }

    #[test]
    fn random_bytes_never_panic(
        tail in prop::collection::vec(any::<u8>(), 0..256),
        header in any::<bool>(),
    ) {
        let mut bytes = if header { b"PDLS\x01\x00".to_vec() } else { Vec::new() };
        bytes.extend(tail);
        decode_checked(&bytes)?;
    }
}

proptest! {
    // Each case decodes every prefix of an encoding: fewer cases keep it quick.
    #![proptest_config(config(48))]

    #[test]
    fn every_strict_prefix_is_rejected(s in state()) {
        let bytes = s.to_canonical_bytes().expect("encode");
        for end in 0..bytes.len() {
            prop_assert!(ModelState::from_canonical_bytes(&bytes[..end]).is_err(), "prefix {}", end);
        }
    }
}
