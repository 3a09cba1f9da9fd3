//! Whole fine-tuning games on anvil (docs/protocol.md §9), between Rust players: the job's spec
//! admitted by `LmDisputeGame` through the market's router, a LoRA step of the tiny Llama
//! traced op by op by both sides, and every move played by `pedals_dispute::lm`. A worker that
//! changed one element of one op is slashed; a validator that is wrong loses its bond.

use std::sync::Arc;

use alloy::primitives::{B256, U256, aliases::U40};
use pedals_chain::{GameKind, JobRequest, JobStatus, Market, Phase, chain_time};
use pedals_core::{JobId, TraceCommitment};
use pedals_dispute::game::Turn;
use pedals_dispute::lm::{LmStepContext, challenge_lm, defend_lm, lm_spec_args};
use pedals_lm::dispute::OpTrace;
use pedals_lm::spec::CanonicalSpec;
use pedals_lm::{FinetuneInputs, FinetuneSpec};

use crate::World;
use crate::game::open;

/// The disputed step.
const STEP: u64 = 1;

struct FtJob {
    spec: FinetuneSpec,
    job: Arc<FinetuneInputs>,
    /// The honest states `0 ..= STEP`.
    states: Vec<pedals_lm::JobState>,
}

fn fixtures() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lm/tests/fixtures")
}

/// Four LoRA steps of batch 2 on the tiny Llama, over the held-out examples.
fn ft_job() -> FtJob {
    ft_job_of(&llama_tiny())
}

/// [`ft_job`]'s terms on the model `ckpt` (the tiny Llama, widened or not).
fn ft_job_of(ckpt: &pedals_lm::Checkpoint) -> FtJob {
    job_from(
        ckpt,
        8,
        "finetune/heldout.jsonl",
        serde_json::json!({
            "rank": 2, "alpha": 2, "targets": ["q_proj", "v_proj"], "lr": 3e-3, "lr_end": 3e-4,
            "betas": [0.9, 0.999], "eps": 1e-6, "warmup": 1, "steps": 4, "batch": 2, "seed": 3
        }),
    )
}

/// The tiny Llama quantized to `bits`, fine-tuned on the fixture `data` with `terms`.
fn job_of(bits: u8, data: &str, terms: serde_json::Value) -> FtJob {
    job_from(&llama_tiny(), bits, data, terms)
}

fn llama_tiny() -> pedals_lm::Checkpoint {
    pedals_lm::Checkpoint::load_hf(&fixtures().join("llama-tiny")).expect("fixture")
}

/// `ckpt` with a vocabulary of `vocab` tokens: each new embedding row is an old one halved
/// and turned (the tokenizer's ids stay below the old size; the logits and the loss signal
/// span the new one).
fn widened(mut ckpt: pedals_lm::Checkpoint, vocab: usize) -> pedals_lm::Checkpoint {
    let old = ckpt.config.vocab;
    for name in ["embed", "head"] {
        let Some(t) = ckpt.tensors.get_mut(name) else {
            continue;
        };
        let d = t.shape[1];
        for v in old..vocab {
            let src = (v * 7) % old;
            let row: Vec<f32> = (0..d)
                .map(|i| 0.5 * t.data[src * d + (i + v) % d])
                .collect();
            t.data.extend(row);
        }
        t.shape[0] = vocab;
    }
    ckpt.config.vocab = vocab;
    let mut hf: serde_json::Value = serde_json::from_str(&ckpt.hf_config).expect("config.json");
    hf["vocab_size"] = vocab.into();
    ckpt.hf_config = hf.to_string();
    ckpt
}

/// The tiny Llama `ckpt` quantized to `bits`, fine-tuned on the fixture `data` with `terms`.
fn job_from(ckpt: &pedals_lm::Checkpoint, bits: u8, data: &str, terms: serde_json::Value) -> FtJob {
    job_by(ckpt, bits, data, terms, pedals_lm::Method::Lora)
}

/// [`job_from`] by `method`.
fn job_by(
    ckpt: &pedals_lm::Checkpoint,
    bits: u8,
    data: &str,
    terms: serde_json::Value,
    method: pedals_lm::Method,
) -> FtJob {
    let bytes = pedals_lm::quantize(ckpt, bits)
        .expect("model")
        .to_bytes()
        .expect("bytes");
    let dataset = std::fs::read(fixtures().join(data)).expect("data");
    let terms: pedals_lm::train::Terms = serde_json::from_value(terms).expect("terms");
    let spec = FinetuneSpec::with_method(&bytes, &dataset, &terms, method).expect("spec");
    let job = Arc::new(spec.load(&bytes, &dataset).expect("inputs"));
    let mut states = vec![job.initial().expect("initial")];
    for _ in 0..STEP {
        let mut next = states.last().expect("state").clone();
        job.step(&mut next);
        states.push(next);
    }
    FtJob { spec, job, states }
}

/// The honest side of `STEP`.
fn honest(j: &FtJob) -> LmStepContext {
    LmStepContext::new(j.spec.clone(), j.job.clone(), &j.states[STEP as usize]).expect("ctx")
}

/// A side whose trace changed element `(rows/2, cols/3)` of op `name` by 5 (every later op
/// computed from the change).
fn lying(j: &FtJob, name: &str) -> LmStepContext {
    let mut ctx = honest(j);
    let leaf = ctx.inputs.program.leaf_named(name).expect("the op");
    let op = &ctx.inputs.program.ops[leaf - 1];
    let (r, c) = (op.rows / 2, op.cols / 3);
    let mut outputs = ctx.trace.tensors[..leaf].to_vec();
    outputs[leaf - 1][r * op.cols + c] += 5;
    ctx.trace = OpTrace::run_from(&ctx.inputs, outputs).expect("lie");
    ctx
}

/// Posts the job as an optimistic training job (the fine-tuning game admits its spec first),
/// has the worker claim it and submit the step trace whose `h_(STEP+1)` is `worker`'s.
async fn post_and_submit(w: &World, j: &FtJob, worker: &LmStepContext) -> (JobId, TraceCommitment) {
    let args = lm_spec_args(&j.spec, &j.job).expect("args");
    let (hash, _) = w
        .requester
        .admit_finetune_spec(args, j.spec.steps)
        .await
        .expect("the fine-tuning game admits the spec");
    assert_eq!(
        hash,
        j.spec.spec_hash(),
        "the contract's spec hash is the engine's"
    );
    let now = chain_time(w.requester.provider()).await.expect("time");
    let request = JobRequest {
        specHash: hash,
        modelCid: j.spec.model_cid().expect("cid").to_bytes().into(),
        datasetCid: j.spec.dataset_cid().expect("cid").to_bytes().into(),
        steps: j.spec.steps as u32,
        verification: pedals_core::Verification::Optimistic.to_u8(),
        claimDeadline: U40::from(now + 3600),
        deliveryDeadline: U40::from(now + 86_400),
        challengeWindow: crate::WINDOW,
    };
    let payment = U256::from(10u64).pow(U256::from(17));
    let (id, _) = w.requester.post_job(request, payment).await.expect("post");
    let stake = w.worker.stake_to_claim(payment).await.expect("stake");
    w.worker
        .stake(stake + U256::from(10u64).pow(U256::from(17)))
        .await
        .expect("stake");
    w.worker.claim_job(id).await.expect("claim");
    // h_0 .. h_STEP as trained, then the worker's h_(STEP+1); the later states are its own
    // business (a dispute of step STEP reads only h_STEP and h_(STEP+1)).
    let mut hashes: Vec<B256> = j
        .states
        .iter()
        .map(|s| j.job.state_hash(s).expect("h"))
        .collect();
    hashes.push(*worker.trace.leaves.last().expect("h_i+1"));
    while hashes.len() <= j.spec.steps as usize {
        hashes.push(alloy::primitives::keccak256(hashes.len().to_le_bytes()));
    }
    let trace = TraceCommitment::new(hashes).expect("trace");
    let steps = j.spec.steps;
    w.worker
        .submit_result(
            id,
            steps,
            trace.root(),
            B256::ZERO,
            trace.final_hash(),
            trace.proof(steps).expect("proof").siblings,
            j.spec.model_cid().expect("cid").to_bytes().into(),
        )
        .await
        .expect("submit");
    (id, trace)
}

/// Plays both sides until the game is decided; returns every move with its gas.
async fn play(
    w: &World,
    id: JobId,
    worker: &LmStepContext,
    trace: &TraceCommitment,
    validator: &LmStepContext,
) -> Vec<(&'static str, u64)> {
    let mut moves = Vec::new();
    for _ in 0..8 {
        match defend_lm(&w.worker, id, worker, trace)
            .await
            .expect("defend")
        {
            Turn::Moved(name, tx) => moves.push((name, tx.gas_used)),
            Turn::NoGame => break,
            Turn::Waiting => {}
        }
        match challenge_lm(&w.validator, id, validator)
            .await
            .expect("challenge")
        {
            Turn::Moved(name, tx) => moves.push((name, tx.gas_used)),
            Turn::NoGame => break,
            Turn::Waiting => {}
        }
    }
    let lm = w.worker.playing(GameKind::Lm);
    assert_eq!(
        lm.game_of(id).await.expect("game").phase,
        Phase::None,
        "decided: {moves:?}"
    );
    moves
}

async fn status(m: &Market, id: JobId) -> JobStatus {
    JobStatus::try_from(m.job(id).await.expect("job").status).expect("status")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finetune_worker_that_changed_one_element_is_slashed_and_an_honest_one_keeps_the_bond() {
    let w = World::start().await;
    let j = ft_job();
    let truth = honest(&j);

    // A worker that changed one element of a projection's output.
    let liar = lying(&j, "e0.b0.q_proj.y0");
    assert_ne!(liar.trace.leaves.last(), truth.trace.leaves.last());
    let (id, trace) = post_and_submit(&w, &j, &liar).await;
    let collateral = U256::from(w.worker.job(id).await.expect("job").collateral);
    let staked = || async {
        w.worker
            .stake_of(w.worker.sender())
            .await
            .expect("stake")
            .staked
    };
    let before = staked().await;
    let bond = open(&w, id, STEP, *truth.trace.leaves.last().expect("h")).await;
    let moves = play(&w, id, &liar, &trace, &truth).await;
    eprintln!("lying fine-tuning worker vs honest validator: {moves:?}");
    let names: Vec<&str> = moves.iter().map(|m| m.0).collect();
    assert_eq!(
        names,
        [
            "commitOpTrace",
            "pickChunk",
            "revealChunk",
            "disputeOp",
            "revealRowHashes",
            "pickRow",
            "revealRow",
            "disputeElement"
        ]
    );
    assert_eq!(
        status(&w.worker, id).await,
        JobStatus::Resolved,
        "the worker lost"
    );
    let lm = w.worker.playing(GameKind::Lm);
    assert_eq!(lm.games_decided(id).await.expect("events"), [(true, false)]);
    assert_eq!(U256::from(before - staked().await), collateral, "slashed");
    assert_eq!(
        w.validator
            .credit_of(w.validator.sender())
            .await
            .expect("credit"),
        bond,
        "the bond back at once, the reward pooled"
    );

    // An honest worker, challenged by a validator whose own trace is wrong at the same op.
    let (id, trace) = post_and_submit(&w, &j, &truth).await;
    let wrong = lying(&j, "e0.b0.q_proj.y0");
    let credit = w.worker.credit_of(w.worker.sender()).await.expect("credit");
    let bond = open(&w, id, STEP, *wrong.trace.leaves.last().expect("h")).await;
    let moves = play(&w, id, &truth, &trace, &wrong).await;
    eprintln!("honest fine-tuning worker vs wrong validator: {moves:?}");
    assert_eq!(moves.len(), 8, "{moves:?}");
    assert_eq!(
        status(&w.worker, id).await,
        JobStatus::Submitted,
        "the job goes on"
    );
    assert_eq!(
        w.worker.credit_of(w.worker.sender()).await.expect("credit"),
        credit + bond,
        "the worker gets the bond"
    );
}

/// A full fine-tune (every weight trained, docs/protocol.md §9 "Full fine-tuning") on anvil:
/// the game builds its program with `LmFullProgramReferee`; a worker that changed one element
/// of a norm's γ gradient (an op only a full step has) is narrowed to it and slashed.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_finetune_worker_that_changed_one_element_is_slashed() {
    let w = World::start().await;
    let terms = serde_json::json!({
        "rank": 0, "alpha": 0, "targets": [], "lr": 3e-3, "lr_end": 3e-4,
        "betas": [0.9, 0.999], "eps": 1e-6, "warmup": 1, "steps": 4, "batch": 2, "seed": 3
    });
    let j = job_by(
        &llama_tiny(),
        8,
        "finetune/heldout.jsonl",
        terms,
        pedals_lm::Method::Full,
    );
    assert_eq!(j.spec.method, pedals_lm::Method::Full);
    let truth = honest(&j);
    let liar = lying(&j, "e0.b0.attn_norm.gamma.g");
    let (id, trace) = post_and_submit(&w, &j, &liar).await;
    let collateral = U256::from(w.worker.job(id).await.expect("job").collateral);
    let staked = w.worker.stake_of(w.worker.sender()).await.expect("stake");
    open(&w, id, STEP, *truth.trace.leaves.last().expect("h")).await;
    let moves = play(&w, id, &liar, &trace, &truth).await;
    eprintln!("lying full fine-tuning worker vs honest validator: {moves:?}");
    assert_eq!(
        moves.last().map(|m| m.0),
        Some("disputeElement"),
        "{moves:?}"
    );
    assert_eq!(
        status(&w.worker, id).await,
        JobStatus::Resolved,
        "the worker lost"
    );
    let after = w.worker.stake_of(w.worker.sender()).await.expect("stake");
    assert_eq!(
        U256::from(staked.staked - after.staked),
        collateral,
        "slashed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finetune_worker_whose_state_hash_is_not_its_tensors_loses_at_the_first_naming() {
    let w = World::start().await;
    let j = ft_job();
    let truth = honest(&j);
    let mut liar = honest(&j);
    *liar.trace.leaves.last_mut().expect("h") = alloy::primitives::keccak256(b"another state");
    let (id, trace) = post_and_submit(&w, &j, &liar).await;
    open(&w, id, STEP, *truth.trace.leaves.last().expect("h")).await;
    let moves = play(&w, id, &liar, &trace, &truth).await;
    let names: Vec<&str> = moves.iter().map(|m| m.0).collect();
    assert_eq!(
        names,
        ["commitOpTrace", "pickChunk", "revealChunk", "disputeOp"],
        "{moves:?}"
    );
    assert_eq!(
        status(&w.worker, id).await,
        JobStatus::Resolved,
        "the worker lost"
    );
}

/// The example job of `examples/tiny-finetune-job.toml` (16-bit llama-tiny, four projections
/// adapted at rank 8, batch 8 of the training examples): a worker that changed one element of
/// a step loses a whole game whose moves (calldata and base fee included) cost under the 5M
/// gas docs/protocol.md §9 budgets, in four moves a side.
#[tokio::test(flavor = "multi_thread")]
async fn a_whole_dispute_of_the_example_jobs_step_costs_under_five_million_gas() {
    let w = World::start().await;
    let j = job_of(
        16,
        "finetune/train.jsonl",
        serde_json::json!({
            "rank": 8, "alpha": 16, "targets": ["q_proj", "v_proj", "up_proj", "down_proj"],
            "lr": 3e-3, "lr_end": 3e-4, "betas": [0.9, 0.999], "eps": 1e-6, "warmup": 4,
            "steps": 40, "batch": 8, "seed": 1
        }),
    );
    let truth = honest(&j);
    let liar = lying(&j, "e5.b1.down_proj.y0");
    let (id, trace) = post_and_submit(&w, &j, &liar).await;
    open(&w, id, STEP, *truth.trace.leaves.last().expect("h")).await;
    let moves = play(&w, id, &liar, &trace, &truth).await;
    let total: u64 = moves.iter().map(|m| m.1).sum();
    eprintln!(
        "example job ({} op-trace leaves): {moves:?}, the game {total} gas",
        truth.trace.leaves.len()
    );
    assert_eq!(status(&w.worker, id).await, JobStatus::Resolved);
    assert_eq!(moves.len(), 8, "four moves a side: {moves:?}");
    assert!(total < 5_000_000, "{total} gas: {moves:?}");
}

/// A vocabulary over `LONG_ROW` is laid out in chunks (docs/protocol.md §9 "Long rows"): the
/// tiny Llama widened to 10 000 tokens (five chunks of 2 048, the last short) is admitted, and a
/// worker that changed one partial sum of the softmax (`xent_sum`, the dearest element over a
/// chunk) is narrowed to that element, recomputed by the contract from a 2 048-token chunk row,
/// and slashed, in a game that costs under the 5M gas docs/protocol.md §9 budgets.
#[tokio::test(flavor = "multi_thread")]
async fn a_finetune_worker_that_changed_a_partial_sum_over_a_long_vocabulary_is_slashed() {
    let w = World::start().await;
    let j = ft_job_of(&widened(llama_tiny(), 10_000));
    let truth = honest(&j);
    let zsum = truth
        .inputs
        .program
        .leaf_named("e1.zsum")
        .expect("chunked ops");
    assert_eq!(
        truth.inputs.program.ops[zsum - 1].cols,
        2 * 5,
        "five chunks"
    );
    let liar = lying(&j, "e1.zsum");
    let (id, trace) = post_and_submit(&w, &j, &liar).await;
    let collateral = U256::from(w.worker.job(id).await.expect("job").collateral);
    let before = w
        .worker
        .stake_of(w.worker.sender())
        .await
        .expect("stake")
        .staked;
    open(&w, id, STEP, *truth.trace.leaves.last().expect("h")).await;
    let moves = play(&w, id, &liar, &trace, &truth).await;
    let total: u64 = moves.iter().map(|m| m.1).sum();
    eprintln!("a 10 000-token vocabulary in chunks: {moves:?}, the game {total} gas");
    assert_eq!(moves.len(), 8, "four moves a side: {moves:?}");
    assert_eq!(
        status(&w.worker, id).await,
        JobStatus::Resolved,
        "the worker lost"
    );
    let after = w
        .worker
        .stake_of(w.worker.sender())
        .await
        .expect("stake")
        .staked;
    assert_eq!(U256::from(before - after), collateral, "slashed");
    assert!(total < 5_000_000, "{total} gas: {moves:?}");
}

/// An output of more than `2^ROW_CHUNK_LOG` rows reveals its row hashes by chunks
/// (docs/protocol.md §3): the tiny Llama widened to GPT-2's 50 257 tokens has a head transpose
/// of 49 · 25 = 1 225 chunk rows, and a worker that changed its last row (in the short second
/// chunk) reveals the chunks' nodes, then the picked chunk, then the row, and is slashed. A
/// chunk that is not the output's, another chunk than the picked one's row, and a chunk past the
/// output are refused on the way.
#[tokio::test(flavor = "multi_thread")]
async fn an_output_of_many_rows_is_opened_by_chunks_of_rows() {
    let w = World::start().await;
    let j = ft_job_of(&widened(llama_tiny(), 50_257));
    let truth = honest(&j);
    let op = &truth.inputs.program.ops[0];
    assert_eq!((op.name.as_str(), op.rows), ("head.t", 49 * 25));
    let mut liar = honest(&j);
    let mut outputs = liar.trace.tensors[..1].to_vec();
    let last = (op.rows - 1) * op.cols + 7;
    outputs[0][last] += 5;
    liar.trace = OpTrace::run_from(&liar.inputs, outputs).expect("lie");
    let (id, trace) = post_and_submit(&w, &j, &liar).await;
    open(&w, id, STEP, *truth.trace.leaves.last().expect("h")).await;
    let (worker, validator) = (
        w.worker.playing(GameKind::Lm),
        w.validator.playing(GameKind::Lm),
    );
    let mut moves = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..12 {
        let view = worker.game_of(id).await.expect("game");
        match view.phase {
            Phase::None => break,
            Phase::PickRowChunk => refused.push(validator.pick_row_chunk(id, 2).await.is_err()),
            Phase::RevealRowChunk => {
                let wrong = vec![B256::repeat_byte(1); 201];
                let proof = vec![B256::ZERO; 1];
                refused.push(worker.reveal_row_chunk(id, wrong, proof).await.is_err());
            }
            Phase::PickRow => refused.push(validator.pick_row(id, 5).await.is_err()),
            _ => {}
        }
        let turn = match view.worker_to_move {
            true => defend_lm(&w.worker, id, &liar, &trace).await,
            false => challenge_lm(&w.validator, id, &truth).await,
        };
        if let Turn::Moved(name, tx) = turn.expect("a move") {
            moves.push((name, tx.gas_used));
        }
    }
    eprintln!("head.t of 1 225 rows: {moves:?}");
    let names: Vec<&str> = moves.iter().map(|m| m.0).collect();
    assert_eq!(
        names,
        [
            "commitOpTrace",
            "pickChunk",
            "revealChunk",
            "disputeOp",
            "revealRowHashes",
            "pickRowChunk",
            "revealRowChunk",
            "pickRow",
            "revealRow",
            "disputeElement"
        ]
    );
    assert_eq!(refused, [true, true, true], "the wrong moves are refused");
    assert_eq!(
        status(&w.worker, id).await,
        JobStatus::Resolved,
        "the worker lost"
    );
    assert!(moves.iter().all(|m| m.1 < 15_000_000), "{moves:?}");
}
