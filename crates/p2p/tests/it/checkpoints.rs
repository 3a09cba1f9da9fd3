use std::sync::Arc;

use alloy_primitives::keccak256;
use pedals_core::{B256, TraceCommitment};
use pedals_p2p::{CheckpointOpening, MemorySource, P2pError, TraceClaim};

use crate::{bytes, node, tcp_addr, wait_for_peers, within};

const JOB: u64 = 7;
const STEPS: u64 = 10;

/// Ten "states" and the trace over their hashes, as a worker would commit.
fn run() -> (Vec<Vec<u8>>, TraceCommitment) {
    let states: Vec<Vec<u8>> = (0..=STEPS).map(|i| bytes(4096, 100 + i)).collect();
    let trace = TraceCommitment::new(states.iter().map(keccak256).collect()).expect("trace");
    (states, trace)
}

fn opening(states: &[Vec<u8>], trace: &TraceCommitment, step: u64) -> CheckpointOpening {
    CheckpointOpening {
        state: states[step as usize].clone(),
        proof: trace.proof(step).expect("proof"),
        next: (step < STEPS).then(|| {
            (
                trace.hash(step + 1).expect("hash"),
                trace.proof(step + 1).expect("proof"),
            )
        }),
        audit: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_verified_against_the_trace_root() {
    let (states, trace) = run();
    let source = Arc::new(MemorySource::default());
    for step in [0, 3, STEPS] {
        source.insert_checkpoint(JOB, step, opening(&states, &trace, step));
    }
    // Forgeries: state 5 with the proof of another leaf; state 6 with bytes changed; state 7
    // with a next hash the worker never committed; state 8 without the next opening.
    let mut wrong_leaf = opening(&states, &trace, 5);
    wrong_leaf.proof = trace.proof(4).expect("proof");
    source.insert_checkpoint(JOB, 5, wrong_leaf);
    let mut tampered = opening(&states, &trace, 6);
    tampered.state[100] ^= 1;
    source.insert_checkpoint(JOB, 6, tampered);
    let mut forged_next = opening(&states, &trace, 7);
    forged_next.next.as_mut().expect("next").0 = B256::repeat_byte(0xee);
    source.insert_checkpoint(JOB, 7, forged_next);
    let mut no_next = opening(&states, &trace, 8);
    no_next.next = None;
    source.insert_checkpoint(JOB, 8, no_next);

    let worker = node(source, &[]).await;
    let validator = node(
        Arc::new(MemorySource::default()),
        &[tcp_addr(&worker.client).await],
    )
    .await;
    wait_for_peers(&validator.client, 1).await;
    let peer = worker.client.peer_id();
    let claim = TraceClaim {
        root: trace.root(),
        steps: STEPS,
    };

    for step in [0, 3] {
        let got = within(
            30,
            validator.client.fetch_checkpoint(peer, JOB, step, claim),
        )
        .await
        .expect("an honest checkpoint verifies");
        assert_eq!(got.state, states[step as usize]);
        assert_eq!(got.hash, trace.hash(step).expect("hash"));
        assert_eq!(got.next_hash, trace.hash(step + 1));
    }
    let last = within(
        30,
        validator.client.fetch_checkpoint(peer, JOB, STEPS, claim),
    )
    .await
    .expect("the final state verifies");
    assert_eq!((last.hash, last.next_hash), (trace.final_hash(), None));

    for step in [5, 6, 7, 8] {
        let err = within(
            30,
            validator.client.fetch_checkpoint(peer, JOB, step, claim),
        )
        .await
        .expect_err("a forged opening is refused");
        assert!(
            matches!(err, P2pError::BadCheckpoint { step: s, .. } if s == step),
            "step {step}: {err}"
        );
    }
    assert_eq!(validator.client.stats().snapshot().bad_content, 4);

    // An honest opening checked against another job's root does not verify either.
    let other = TraceClaim {
        root: B256::repeat_byte(1),
        steps: STEPS,
    };
    let err = within(30, validator.client.fetch_checkpoint(peer, JOB, 3, other))
        .await
        .expect_err("wrong root");
    assert!(matches!(err, P2pError::BadCheckpoint { .. }), "{err}");

    let err = within(30, validator.client.fetch_checkpoint(peer, JOB, 2, claim))
        .await
        .expect_err("not served");
    assert!(matches!(err, P2pError::NotFound { .. }), "{err}");
    assert_eq!(worker.client.stats().snapshot().checkpoints_served, 8);
}
