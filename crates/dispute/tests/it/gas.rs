//! Gas of a whole dispute on the demo's model (MLP 784-64-10, batch 64), at its most expensive
//! ops: a falsified element of the first layer's output (the referee's 784-long dot product),
//! and of the first layer's weight gradient (784 row hashes to reveal). The goals of
//! docs/protocol.md are asserted: the referee move under 1M gas, a whole dispute under 3M and
//! at most 6 transactions a side (the challenger's two to open the challenge included).

use pedals_ml::dispute::program;

use crate::game::{open, play, validator_side, worker_side};
use crate::{World, job_of, post_and_run};

async fn dispute_at(leaf_name: &str, row: usize, col: usize) -> Vec<(&'static str, u64)> {
    let w = World::start().await;
    let job = job_of(vec![784, 64, 10], 64, 1000);
    let step = 1;
    let (id, run) = post_and_run(&w, &job, Some(step)).await;
    let mut worker = worker_side(&job, &run, step);
    let leaf = program(&job.spec.train.model)
        .expect("program")
        .leaf_named(leaf_name)
        .expect("leaf");
    let was = worker.trace.tensor(leaf).expect("tensor").data
        [row * worker.trace.tensor(leaf).expect("t").cols + col];
    worker
        .trace
        .falsify(leaf, row, col, was.wrapping_add(3))
        .expect("falsify");
    let started = std::time::Instant::now();
    let validator = validator_side(&job, step, false);
    let traced = started.elapsed();
    open(
        &w,
        id,
        step,
        *validator.trace.leaves.last().expect("leaves"),
    )
    .await;
    let moves = play(&w, id, &worker, &run, &validator).await;
    eprintln!(
        "{leaf_name}: the validator's op trace took {:.0} ms; challenge and game {:.0} ms more",
        traced.as_secs_f64() * 1e3,
        (started.elapsed() - traced).as_secs_f64() * 1e3
    );
    assert_eq!(
        w.worker.games_decided(id).await.expect("events"),
        [(true, false)],
        "the worker lost"
    );
    moves
}

fn report(what: &str, moves: &[(&'static str, u64)]) -> u64 {
    let total: u64 = moves.iter().map(|m| m.1).sum();
    eprintln!("{what}: {moves:?}, total {total}");
    assert_eq!(moves.len(), 6, "three moves a side in the game");
    // The challenge itself (commitChallenge and challenge) adds about 250k gas.
    assert!(
        total + 250_000 < 3_000_000,
        "{what}: a whole dispute costs {total} gas plus the challenge"
    );
    total
}

#[tokio::test]
async fn a_dispute_over_the_first_layers_dot_product_stays_within_the_gas_goals() {
    let moves = dispute_at("z1", 17, 5).await;
    let referee = moves
        .iter()
        .find(|m| m.0 == "disputeElement")
        .expect("element")
        .1;
    assert!(referee < 1_000_000, "the referee move costs {referee} gas");
    report("z1 = linear(x, wq0.T, b0), K = 784", &moves);
}

#[tokio::test]
async fn a_dispute_over_the_widest_tensor_stays_within_the_gas_goals() {
    let moves = dispute_at("gw0", 700, 9).await;
    report("gw0 = weight_grad(x.T, d1.T), 784 rows", &moves);
}
