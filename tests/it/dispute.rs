//! The worker defends its results by itself: a worker that falsified a step (the debug-only
//! `falsify_step`) is challenged by a validator, answers every move of the game from its own
//! checkpoints, through a restart in the middle of the game, and loses its collateral, because
//! the referee recomputes the element it lied about. An honest worker wins the same game.

use std::sync::Arc;

use alloy::primitives::{Bytes, U256, aliases::U40};
use pedals_chain::{Devnet, JobRequest, JobStatus, Market, Phase};
use pedals_core::cid_of;
use pedals_ml::{Dataset, MlpState, Trainer, exact::CpuOps};
use pedals_node::{Worker, WorkerConfig};
use pedals_store::{JobPhase, Store};
use pedals_verifier::game::{StepContext, Turn, challenge};

use crate::worker::{Job, PAYMENT, STEPS, fast, hand_over, job, now, provider};

/// Moves the chain's clock past the claim period of job `id`'s reward pool.
pub(crate) async fn past_claim_period(devnet: &Devnet, market: &Market, id: pedals_core::JobId) {
    use alloy::providers::ext::AnvilApi;
    let end = market.reward_pool(id).await.expect("pool").claim_end;
    let p = provider(devnet);
    let t = now(devnet).await;
    p.anvil_increase_time(end.saturating_sub(t) + 1)
        .await
        .expect("warp");
    p.anvil_mine(Some(1), None).await.expect("mine");
}

pub(crate) const WINDOW: u32 = 3600;

/// Stakes `validator` and opens its challenge of `step` of job `id`, claiming `claimed` for
/// `h_(step+1)` (commit, then reveal with the bond).
pub(crate) async fn open_challenge(
    validator: &Market,
    id: pedals_core::JobId,
    step: u64,
    claimed: alloy::primitives::B256,
) {
    let params = validator.parameters().await.expect("params");
    validator
        .stake(U256::from(params.minValidatorStake))
        .await
        .expect("stake");
    let salt = alloy::primitives::B256::from([7u8; 32]);
    validator
        .commit_challenge(id, step, claimed, salt)
        .await
        .expect("commit");
    validator
        .challenge(id, step, claimed, salt, U256::from(params.challengeBond))
        .await
        .expect("challenge");
}

pub(crate) async fn worker(devnet: &Devnet, dir: &std::path::Path, falsify: Option<u64>) -> Worker {
    let config = WorkerConfig {
        threads: 2,
        send: fast(),
        falsify_steps: falsify.into_iter().collect(),
        ..WorkerConfig::default()
    };
    Worker::new(
        provider(devnet),
        devnet.signer(1).expect("account"),
        Arc::new(Store::open(dir).expect("store")),
        devnet.deployment().clone(),
        config,
    )
    .await
    .expect("worker")
}

pub(crate) async fn market(devnet: &Devnet, account: usize) -> Market {
    Market::connect(
        devnet.endpoint(),
        devnet.signer(account).expect("account"),
        devnet.deployment().clone(),
    )
    .await
    .expect("market")
}

/// Stakes `w` for a job, posts `job` as `requester` and runs the worker until it has
/// submitted its result; returns the job's id.
pub(crate) async fn submitted(
    devnet: &Devnet,
    requester: &Market,
    w: &Worker,
    job: &Job,
) -> pedals_core::JobId {
    w.ensure_stake(
        requester
            .stake_to_claim(U256::from(PAYMENT))
            .await
            .expect("stake"),
    )
    .await
    .expect("stake");
    hand_over(w, job);
    let id = post(devnet, requester, job).await;
    let job_id = id.get();
    for _ in 0..30 {
        w.tick().await.expect("worker round");
        if w.store().job(job_id).expect("read").expect("record").phase == JobPhase::Submitted {
            break;
        }
    }
    id
}

/// Posts `job` (paid, an hour's window) as `requester`.
pub(crate) async fn post(devnet: &Devnet, requester: &Market, job: &Job) -> pedals_core::JobId {
    let t = now(devnet).await;
    requester
        .admit_spec(
            pedals_verifier::game::spec_args(&job.spec).expect("a disputable spec"),
            job.spec.train.steps,
        )
        .await
        .expect("the game admits the spec");
    let (id, _) = requester
        .post_job(
            JobRequest {
                specHash: job.spec.spec_hash(),
                modelCid: Bytes::from(cid_of(&job.model).to_bytes()),
                datasetCid: Bytes::from(cid_of(&job.dataset).to_bytes()),
                steps: STEPS as u32,
                verification: pedals_core::Verification::Optimistic.to_u8(),
                claimDeadline: U40::from(t + 600),
                deliveryDeadline: U40::from(t + 3600),
                challengeWindow: WINDOW,
            },
            U256::from(PAYMENT),
        )
        .await
        .expect("post");
    id
}

/// The validator's honest op trace of `step`.
pub(crate) fn honest(job: &Job, step: u64) -> StepContext {
    let data = Arc::new(Dataset::from_canonical_bytes(&job.dataset).expect("data"));
    let trainer = Trainer::new(CpuOps::new(1), job.spec.train.clone()).expect("trainer");
    let mut state = MlpState::from_bytes(&job.spec.train.model, &job.model).expect("init");
    for s in 0..step {
        state = trainer.replay_step(&data, &state, s).expect("replay");
    }
    let trace = trainer.op_trace(&data, &state, step).expect("trace");
    StepContext::new(job.spec.clone(), data, step, state, trace).expect("ctx")
}

async fn run(falsify: Option<u64>, step: u64) -> (Devnet, Market, Market, u64, Vec<&'static str>) {
    let devnet = Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let requester = market(&devnet, 2).await;
    let validator = market(&devnet, 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = worker(&devnet, dir.path(), falsify).await;
    let job = job();
    let id = submitted(&devnet, &requester, &w, &job).await;
    let job_id = id.get();
    let ctx = honest(&job, step);
    let (_, posted) = w
        .store()
        .latest_trace(job_id)
        .expect("read")
        .expect("trace");
    let mine = *ctx.trace.leaves.last().expect("leaves");
    assert_eq!(
        posted[step as usize + 1] != mine,
        falsify == Some(step),
        "only a falsified step re-executes to another h_(i+1)"
    );

    // The validator challenges step `step` with its own h_(i+1).
    open_challenge(&validator, id, step, mine).await;

    let mut moves = Vec::new();
    for round in 0..12 {
        if round == 2 {
            // The worker restarts in the middle of the game and picks it up from its store.
            drop(w);
            w = worker(&devnet, dir.path(), falsify).await;
        }
        w.tick().await.expect("tick");
        if let Turn::Moved(name, _) = challenge(&validator, id, &ctx).await.expect("challenge") {
            moves.push(name);
        }
        if validator.game_of(id).await.expect("game").phase == Phase::None {
            break;
        }
    }
    w.tick().await.expect("tick");
    drop(dir);
    (devnet, requester, validator, job_id, moves)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_falsified_a_step_defends_by_itself_loses_and_is_slashed() {
    let (devnet, requester, validator, id, moves) = run(Some(6), 6).await;
    assert_eq!(moves, ["disputeOp", "pickRow", "disputeElement"]);
    let job = requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(
        JobStatus::try_from(job.status).expect("status"),
        JobStatus::Resolved
    );
    assert_eq!(
        validator
            .games_decided(pedals_core::JobId(id))
            .await
            .expect("events"),
        [(true, false)]
    );
    let params = validator.parameters().await.expect("params");
    let collateral = U256::from(job.collateral);
    let reward = collateral * U256::from(job.challengerRewardBps) / U256::from(10_000u64);
    let credit = || async {
        validator
            .credit_of(validator.sender())
            .await
            .expect("credit")
    };
    assert_eq!(
        credit().await,
        U256::from(params.challengeBond),
        "the bond back at once"
    );
    assert_eq!(
        validator
            .reward_pool(pedals_core::JobId(id))
            .await
            .expect("pool")
            .remaining,
        reward,
        "the reward waits in its pool"
    );
    past_claim_period(&devnet, &validator, pedals_core::JobId(id)).await;
    validator
        .collect_reward(pedals_core::JobId(id))
        .await
        .expect("collect");
    assert_eq!(credit().await, U256::from(params.challengeBond) + reward);
    assert_eq!(
        requester
            .credit_of(requester.sender())
            .await
            .expect("credit"),
        U256::from(PAYMENT) + collateral - reward
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_worker_defends_by_itself_and_takes_the_bond() {
    let (_devnet, requester, validator, id, moves) = run(None, 6).await;
    // The validator's trace is the worker's: it can only dispute the state hash, and loses.
    assert_eq!(moves, ["disputeOp"]);
    let job = requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(
        JobStatus::try_from(job.status).expect("status"),
        JobStatus::Submitted
    );
    assert_eq!(
        validator
            .games_decided(pedals_core::JobId(id))
            .await
            .expect("events"),
        [(false, false)]
    );
    assert_eq!(
        validator.credit_of(job.worker).await.expect("credit"),
        U256::from(validator.parameters().await.expect("params").challengeBond)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_daemon_samples_catches_a_lying_worker_and_wins_the_game_by_itself() {
    use pedals_p2p::MemorySource;
    use pedals_verifier::{Verifier, VerifierConfig};

    let devnet = Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let requester = market(&devnet, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A worker that falsifies every step from step 4 on: any sampled step from 4 is caught.
    let (w, worker_net) =
        crate::puppet::networked_worker(&devnet, dir.path(), (4..STEPS).collect()).await;
    w.ensure_stake(
        requester
            .stake_to_claim(U256::from(PAYMENT))
            .await
            .expect("stake"),
    )
    .await
    .expect("stake");
    let job = job();
    hand_over(&w, &job);
    let id = post(&devnet, &requester, &job).await;
    let job_id = id.get();

    // The validator's node joins through the worker's.
    let validator_net = crate::network::net(
        Arc::new(MemorySource::default()),
        worker_net.client.listen_addrs().await.expect("addrs"),
    )
    .await;
    let journal = tempfile::tempdir().expect("tempdir");
    let config = || VerifierConfig {
        // 16 of 20 steps are lies: one of 12 samples is one for certain.
        samples_per_job: 12,
        threads: 1,
        state_dir: Some(journal.path().to_path_buf()),
        ..VerifierConfig::default()
    };
    let mut validator = Verifier::new(
        market(&devnet, 3).await,
        validator_net.client.clone(),
        config(),
    )
    .expect("validator");
    let params = requester.parameters().await.expect("params");
    validator
        .ensure_stake(U256::from(params.minValidatorStake))
        .await
        .expect("stake");
    // The counters of the validator that found the lie (those of its restarts play the game).
    let finder = validator.stats();
    let started = std::time::Instant::now();
    let mut challenged = Vec::new();
    let mut restarts = 0;
    for _ in 0..60 {
        w.tick().await.expect("worker round");
        challenged.extend(validator.tick().await.expect("validator round"));
        let status =
            JobStatus::try_from(requester.job(id).await.expect("job").status).expect("status");
        if status == JobStatus::Resolved {
            break;
        }
        // Killed in the middle of its game (after the reveal, then after each of its first
        // moves), the validator forgets everything but its journal, and plays on from it.
        if status == JobStatus::Disputed && restarts < 3 {
            drop(validator);
            if restarts == 0 {
                // The first stop came between the reveal's receipt and the journal's write:
                // the journal does not know the game is open. The chain does.
                forget_the_reveal(&journal.path().join("findings"));
            }
            validator = Verifier::new(
                market(&devnet, 3).await,
                validator_net.client.clone(),
                config(),
            )
            .expect("validator");
            restarts += 1;
        }
    }
    assert_eq!(restarts, 3, "restarted in the middle of its game");
    eprintln!(
        "sampling, challenge and the whole game took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(challenged, [job_id]);
    let stats = validator.stats();
    use pedals_node::Status;
    assert_eq!(stats.disputes_won.get(), 1);
    assert!(finder.mismatches.get() >= 1);
    let collateral = U256::from(requester.job(id).await.expect("job").collateral);
    let reward = collateral * U256::from(params.challengerRewardBps) / U256::from(10_000u64);
    let bond = U256::from(params.challengeBond);
    assert_eq!(U256::from(stats.wei_earned.get()), bond, "the bond at once");
    assert!(
        stats
            .render()
            .contains("pedals_validator_disputes_won_total 1")
    );
    assert!(
        std::fs::read_dir(journal.path().join("findings"))
            .expect("the journal")
            .next()
            .is_none(),
        "a decided game is forgotten"
    );
    // The reward is collected once the conviction's claim period is over, by the validator
    // even after a restart: which pools it claims is read back from the chain.
    drop(validator);
    past_claim_period(&devnet, &requester, id).await;
    let restarted = Verifier::new(
        market(&devnet, 3).await,
        validator_net.client.clone(),
        VerifierConfig::default(),
    )
    .expect("validator");
    restarted.tick().await.expect("validator round");
    assert_eq!(U256::from(restarted.stats().wei_earned.get()), reward);
    assert_eq!(
        requester.reward_pool(id).await.expect("pool").remaining,
        U256::ZERO
    );
}

/// Marks every finding of the journal in `dir` as not revealed yet (its last line), as a
/// validator stopped right after its reveal was mined leaves it.
fn forget_the_reveal(dir: &std::path::Path) {
    let mut found = 0;
    for entry in std::fs::read_dir(dir).expect("findings") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "finding") {
            let text = std::fs::read_to_string(&path).expect("finding");
            let mut lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.last(), Some(&"1"), "revealed: {text}");
            *lines.last_mut().expect("a line") = "0";
            std::fs::write(&path, lines.join("\n") + "\n").expect("write");
            found += 1;
        }
    }
    assert_eq!(found, 1, "one finding in {}", dir.display());
}
