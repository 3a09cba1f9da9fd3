//! The worker defends its fine-tuning steps by itself (docs/protocol.md §9): a fine-tuning job
//! posted as an optimistic training job (its spec admitted by the fine-tuning game), trained
//! by the worker, and one step challenged by a validator that plays `pedals_dispute::lm`. A
//! worker that lied about the step (the debug-only `falsify_steps`) answers every move from
//! its checkpoints, through a restart mid-game, with the op trace of its lie, and is slashed;
//! an honest worker wins against a validator whose own trace is wrong.

use std::sync::Arc;

use alloy::primitives::{Bytes, U256, aliases::U40};
use pedals_chain::{GameKind, JobRequest, JobStatus, Market, Phase};
use pedals_core::cid_of;
use pedals_dispute::game::Turn;
use pedals_dispute::lm::{LmStepContext, challenge_lm, lm_spec_args};
use pedals_lm::CanonicalSpec as _;
use pedals_lm::dispute::OpTrace;
use pedals_store::JobPhase;

use crate::dispute::{market, open_challenge, worker};
use crate::ft::{DATA, FtJob, ft_job};
use crate::worker::{PAYMENT, now};

/// The disputed step.
const STEP: u64 = 1;

/// The honest context of `STEP`, or (`lie`) one whose trace changed an element of the first
/// projection's output.
fn side(job: &FtJob, lie: bool) -> LmStepContext {
    let inputs = Arc::new(job.spec.load(&job.model, DATA).expect("inputs"));
    let mut state = inputs.initial().expect("initial");
    for _ in 0..STEP {
        inputs.step(&mut state);
    }
    let mut ctx = LmStepContext::new(job.spec.clone(), inputs, &state).expect("ctx");
    if lie {
        let leaf = ctx
            .inputs
            .program
            .leaf_named("e0.b0.v_proj.y0")
            .expect("op");
        let mut outputs = ctx.trace.tensors[..leaf].to_vec();
        outputs[leaf - 1][0] += 3;
        ctx.trace = OpTrace::run_from(&ctx.inputs, outputs).expect("lie");
    }
    ctx
}

/// Runs the job through a worker lying at `falsify`, challenges `STEP` with `challenger`'s
/// `h_(STEP+1)` and plays until the game ends; returns the validator and the job's id with the
/// challenger's moves.
async fn run(
    falsify: Option<u64>,
    challenger: &LmStepContext,
) -> (
    pedals_chain::Devnet,
    Market,
    pedals_core::JobId,
    Vec<&'static str>,
) {
    let devnet = pedals_chain::Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let requester = market(&devnet, 2).await;
    let validator = market(&devnet, 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = worker(&devnet, dir.path(), falsify).await;
    let job = ft_job();
    let id = submitted_ft(&devnet, &requester, &w, &job).await;

    let claimed = *challenger.trace.leaves.last().expect("h");
    open_challenge(&validator, id, STEP, claimed).await;
    let lm = validator.playing(GameKind::Lm);
    let mut moves = Vec::new();
    let mut held = 0;
    for round in 0..10 {
        if round == 2 {
            // The worker restarts mid-game and picks the game up from its store.
            drop(w);
            w = worker(&devnet, dir.path(), falsify).await;
        }
        w.tick().await.expect("tick");
        held = held.max(w.held_op_traces());
        let turn = challenge_lm(&validator, id, challenger)
            .await
            .expect("challenger");
        if let Turn::Moved(name, _) = turn {
            moves.push(name);
        }
        if lm.game_of(id).await.expect("game").phase == Phase::None {
            break;
        }
    }
    w.tick().await.expect("tick");
    assert_eq!(
        held, 1,
        "the worker kept the step's op trace while it played"
    );
    assert_eq!(
        w.held_op_traces(),
        0,
        "and dropped it once the game was over"
    );
    (devnet, validator, id, moves)
}

/// Has the fine-tuning game admit `job`'s spec, hands its files to `w`, posts it as
/// `requester` as an optimistic training job and runs `w` until it has submitted its result;
/// returns the job's id.
pub(crate) async fn submitted_ft(
    devnet: &pedals_chain::Devnet,
    requester: &Market,
    w: &pedals_node::Worker,
    job: &FtJob,
) -> pedals_core::JobId {
    let store = w.store();
    for blob in [job.spec.to_canonical_bytes().as_slice(), &job.model, DATA] {
        store.put_blob(blob).expect("blob");
    }
    let inputs = job.spec.load(&job.model, DATA).expect("inputs");
    let args = lm_spec_args(&job.spec, &inputs).expect("args");
    let (hash, _) = requester
        .admit_finetune_spec(args, job.spec.steps)
        .await
        .expect("admitted");
    let t = now(devnet).await;
    let request = JobRequest {
        specHash: hash,
        modelCid: Bytes::from(cid_of(&job.model).to_bytes()),
        datasetCid: Bytes::from(cid_of(DATA).to_bytes()),
        steps: job.spec.steps as u32,
        verification: pedals_core::Verification::Optimistic.to_u8(),
        claimDeadline: U40::from(t + 600),
        deliveryDeadline: U40::from(t + 3600),
        challengeWindow: crate::dispute::WINDOW,
    };
    let stake = requester
        .stake_to_claim(U256::from(PAYMENT))
        .await
        .expect("stake");
    w.ensure_stake(stake).await.expect("stake");
    let (id, _) = requester
        .post_job(request, U256::from(PAYMENT))
        .await
        .expect("an admitted fine-tuning spec posts as a training job");
    for _ in 0..30 {
        w.tick().await.expect("worker round");
        let record = w.store().job(id.get()).expect("read").expect("record");
        if record.phase == JobPhase::Submitted {
            break;
        }
    }
    id
}

async fn status(m: &Market, id: pedals_core::JobId) -> JobStatus {
    JobStatus::try_from(m.job(id).await.expect("job").status).expect("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finetune_worker_that_lied_defends_its_lie_by_itself_and_is_slashed() {
    let job = ft_job();
    let honest = side(&job, false);
    let (_devnet, validator, id, moves) = run(Some(STEP), &honest).await;
    assert_eq!(
        moves,
        ["pickChunk", "disputeOp", "pickRow", "disputeElement"]
    );
    assert_eq!(status(&validator, id).await, JobStatus::Resolved);
    let lm = validator.playing(GameKind::Lm);
    assert_eq!(lm.games_decided(id).await.expect("events"), [(true, false)]);
    let params = validator.parameters().await.expect("params");
    assert_eq!(
        validator
            .credit_of(validator.sender())
            .await
            .expect("credit"),
        U256::from(params.challengeBond),
        "the bond back at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_finetune_worker_defends_by_itself_and_wins_the_bond() {
    let job = ft_job();
    let wrong = side(&job, true);
    let (_devnet, validator, id, moves) = run(None, &wrong).await;
    assert_eq!(
        moves,
        ["pickChunk", "disputeOp", "pickRow", "disputeElement"]
    );
    assert_eq!(
        status(&validator, id).await,
        JobStatus::Submitted,
        "the job goes on"
    );
    let lm = validator.playing(GameKind::Lm);
    assert_eq!(
        lm.games_decided(id).await.expect("events"),
        [(false, false)]
    );
    assert_eq!(
        validator
            .credit_of(validator.sender())
            .await
            .expect("credit"),
        U256::ZERO,
        "the bond went to the worker"
    );
}
