//! Whole games: a worker that falsified a step loses and is slashed; a challenger that is wrong
//! loses its bond; a worker that stops answering loses by its clock. Every balance is checked
//! to the wei, and the gas of every move is printed (docs/protocol.md quotes it).

use alloy::primitives::U256;
use pedals_chain::{JobStatus, Market, Phase};
use pedals_dispute::game::{StepContext, Turn, challenge, defend};

use crate::{Job, Run, World, honest_state, job, post_and_run, salt};

/// Opens a challenge of `step` as the validator; returns the bond it posted.
pub(crate) async fn open(
    w: &World,
    id: pedals_core::JobId,
    step: u64,
    claimed: alloy::primitives::B256,
) -> U256 {
    let bond = w
        .validator
        .parameters()
        .await
        .expect("params")
        .challengeBond;
    let bond = U256::from(bond);
    let stake = w
        .validator
        .parameters()
        .await
        .expect("params")
        .minValidatorStake;
    w.validator.stake(U256::from(stake)).await.expect("stake");
    let s = salt();
    let commit = w
        .validator
        .commit_challenge(id, step, claimed, s)
        .await
        .expect("commit");
    w.mine().await;
    let opened = w
        .validator
        .challenge(id, step, claimed, s, bond)
        .await
        .expect("challenge");
    eprintln!(
        "commitChallenge {} gas, challenge {} gas",
        commit.gas_used, opened.gas_used
    );
    bond
}

/// The worker's side of `step`: its trace from the state before the step, claiming what its
/// (possibly lying) trainer produced.
pub(crate) fn worker_side(job: &Job, run: &Run, step: u64) -> StepContext {
    let before = honest_state(job, step);
    let claimed = run
        .trainer
        .replay_step(&job.dataset, &before, step)
        .expect("replay");
    let trace = run
        .trainer
        .claimed_op_trace(&job.dataset, &before, step, &claimed)
        .expect("trace");
    StepContext::new(job.spec.clone(), job.dataset.clone(), step, before, trace).expect("ctx")
}

/// The validator's side: the honest op trace of `step` (or, for a validator that is wrong, the
/// trace of a lying trainer).
pub(crate) fn validator_side(job: &Job, step: u64, lie: bool) -> StepContext {
    let before = honest_state(job, step);
    let trainer = pedals_ml::Trainer::new(pedals_ml::exact::CpuOps::new(1), job.spec.train.clone())
        .expect("trainer")
        .falsifying(lie.then_some(step));
    let claimed = trainer
        .replay_step(&job.dataset, &before, step)
        .expect("replay");
    let trace = trainer
        .claimed_op_trace(&job.dataset, &before, step, &claimed)
        .expect("trace");
    StepContext::new(job.spec.clone(), job.dataset.clone(), step, before, trace).expect("ctx")
}

/// Plays both sides until the game is decided; returns every move with its gas.
pub(crate) async fn play(
    w: &World,
    id: pedals_core::JobId,
    worker: &StepContext,
    run: &Run,
    validator: &StepContext,
) -> Vec<(&'static str, u64)> {
    play_via(w, id, worker, run, validator, None).await
}

/// [`play`], the worker's moves relayed through the contract `via` when set
/// ([`crate::relay::relayed_defend`]).
pub(crate) async fn play_via(
    w: &World,
    id: pedals_core::JobId,
    worker: &StepContext,
    run: &Run,
    validator: &StepContext,
    via: Option<alloy::primitives::Address>,
) -> Vec<(&'static str, u64)> {
    let mut moves = Vec::new();
    for _ in 0..12 {
        let turn = match via {
            Some(forwarder) => crate::relay::relayed_defend(w, id, worker, run, forwarder).await,
            None => defend(&w.worker, id, worker, &run.trace)
                .await
                .expect("defend"),
        };
        match turn {
            Turn::Moved(name, tx) => moves.push((name, tx.gas_used)),
            Turn::NoGame => break,
            Turn::Waiting => {}
        }
        match challenge(&w.validator, id, validator)
            .await
            .expect("challenge")
        {
            Turn::Moved(name, tx) => moves.push((name, tx.gas_used)),
            Turn::NoGame => break,
            Turn::Waiting => {}
        }
    }
    assert_eq!(
        w.worker.game_of(id).await.expect("game").phase,
        Phase::None,
        "the game ended: {moves:?}"
    );
    moves
}

async fn status(m: &Market, id: pedals_core::JobId) -> JobStatus {
    JobStatus::try_from(m.job(id).await.expect("job").status).expect("status")
}

#[tokio::test]
async fn a_worker_that_falsified_a_step_loses_the_game_and_its_collateral() {
    let w = World::start().await;
    let job = job();
    let step = 3;
    let (id, run) = post_and_run(&w, &job, Some(step)).await;
    let worker_side = worker_side(&job, &run, step);
    let validator_side = validator_side(&job, step, false);
    assert_ne!(
        worker_side.trace.leaves.last(),
        validator_side.trace.leaves.last(),
        "the worker's h_(i+1) is not the honest one"
    );
    let collateral = U256::from(w.worker.job(id).await.expect("job").collateral);
    let staked_before = w
        .worker
        .stake_of(w.worker.sender())
        .await
        .expect("stake")
        .staked;
    let payment = U256::from(w.worker.job(id).await.expect("job").payment);
    let honest_next = *validator_side.trace.leaves.last().expect("leaves");
    let bond = open(&w, id, step, honest_next).await;

    let moves = play(&w, id, &worker_side, &run, &validator_side).await;
    eprintln!("falsified worker vs honest validator: {moves:?}");
    let names: Vec<&str> = moves.iter().map(|m| m.0).collect();
    assert_eq!(
        names,
        [
            "commitOpTrace",
            "disputeOp",
            "revealRowHashes",
            "pickRow",
            "revealRow",
            "disputeElement"
        ]
    );
    assert_eq!(status(&w.worker, id).await, JobStatus::Resolved);
    assert_eq!(
        w.worker.games_decided(id).await.expect("events"),
        [(true, false)]
    );
    let reward = collateral * U256::from(w.worker.job(id).await.expect("job").challengerRewardBps)
        / U256::from(10_000u64);
    let credit = || async {
        w.validator
            .credit_of(w.validator.sender())
            .await
            .expect("credit")
    };
    assert_eq!(
        credit().await,
        bond,
        "the validator gets its bond back at once"
    );
    // The reward is pooled for every challenger that committed before the conviction; the
    // validator is the only one, and collects it all after the claim period.
    let pool = w.validator.reward_pool(id).await.expect("pool");
    assert_eq!((pool.remaining, pool.claimants), (reward, 1));
    let now = pedals_chain::chain_time(w.validator.provider())
        .await
        .expect("time");
    w.warp(pool.claim_end - now + 1).await;
    w.validator.collect_reward(id).await.expect("collect");
    assert_eq!(credit().await, bond + reward, "then the whole reward");
    assert_eq!(
        w.requester
            .credit_of(w.requester.sender())
            .await
            .expect("credit"),
        payment + collateral - reward,
        "the requester is refunded and gets the rest of the collateral"
    );
    assert_eq!(
        w.worker.credit_of(w.worker.sender()).await.expect("credit"),
        U256::ZERO
    );
    let staked_after = w
        .worker
        .stake_of(w.worker.sender())
        .await
        .expect("stake")
        .staked;
    assert_eq!(
        U256::from(staked_before - staked_after),
        collateral,
        "slashed"
    );
    // The money really moves: the validator withdraws it.
    let before = w
        .validator
        .balance(w.validator.sender())
        .await
        .expect("balance");
    let tx = w.validator.withdraw().await.expect("withdraw");
    let after = w
        .validator
        .balance(w.validator.sender())
        .await
        .expect("balance");
    assert_eq!(after + tx.fee(), before + bond + reward);
}

#[tokio::test]
async fn a_validator_that_challenges_an_honest_worker_loses_its_bond_and_the_job_finalizes() {
    let w = World::start().await;
    let job = job();
    let step = 5;
    let (id, run) = post_and_run(&w, &job, None).await;
    let worker_side = worker_side(&job, &run, step);
    // A validator whose own computation is wrong at this step.
    let wrong = validator_side(&job, step, true);
    let bond = open(&w, id, step, *wrong.trace.leaves.last().expect("leaves")).await;
    let moves = play(&w, id, &worker_side, &run, &wrong).await;
    eprintln!("honest worker vs wrong validator: {moves:?}");
    assert_eq!(moves.len(), 6, "{moves:?}");
    assert_eq!(
        status(&w.worker, id).await,
        JobStatus::Submitted,
        "the job goes on"
    );
    assert_eq!(
        w.worker.games_decided(id).await.expect("events"),
        [(false, false)]
    );
    assert_eq!(
        w.worker.credit_of(w.worker.sender()).await.expect("credit"),
        bond,
        "the worker gets the bond"
    );
    assert_eq!(
        w.validator
            .credit_of(w.validator.sender())
            .await
            .expect("credit"),
        U256::ZERO
    );
    let window_end = w.worker.job(id).await.expect("job").windowEnd;
    let now = pedals_chain::chain_time(w.worker.provider())
        .await
        .expect("time");
    w.warp(window_end.to::<u64>().saturating_sub(now) + 1).await;
    w.worker.finalize(id).await.expect("finalize");
    assert_eq!(status(&w.worker, id).await, JobStatus::Finalized);
}

#[tokio::test]
async fn a_worker_that_stops_answering_loses_by_its_clock() {
    let w = World::start().await;
    let job = job();
    let step = 1;
    let (id, run) = post_and_run(&w, &job, Some(step)).await;
    let worker_side = worker_side(&job, &run, step);
    let validator_side = validator_side(&job, step, false);
    open(
        &w,
        id,
        step,
        *validator_side.trace.leaves.last().expect("leaves"),
    )
    .await;
    // The worker commits, the validator names an op, then the worker goes silent.
    defend(&w.worker, id, &worker_side, &run.trace)
        .await
        .expect("commit");
    challenge(&w.validator, id, &validator_side)
        .await
        .expect("name op");
    let view = w.validator.game_of(id).await.expect("game");
    assert!(view.worker_to_move);
    assert!(
        w.validator.timeout_game(id).await.is_err(),
        "the clock still runs"
    );
    w.warp(view.remaining + 1).await;
    w.validator.timeout_game(id).await.expect("timeout");
    assert_eq!(status(&w.worker, id).await, JobStatus::Resolved);
    assert_eq!(
        w.worker.games_decided(id).await.expect("events"),
        [(true, true)]
    );
}
