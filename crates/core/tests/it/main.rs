//! Integration and property tests of pedals-core: Merkle proofs (including tampered ones),
//! step traces, state encoding round trips, CIDs, and the shared test vectors.

mod cid;
mod merkle;
mod publish;
mod state;
mod trace;
mod vectors;

use proptest::test_runner::{Config, RngSeed};

/// Property-test settings: a fixed seed so every run checks the same cases, and no
/// regression files written into the source tree.
pub(crate) fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x7065_6461_6c73),
        failure_persistence: None,
        ..Config::default()
    }
}
