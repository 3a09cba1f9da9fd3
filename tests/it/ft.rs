//! A fine-tuning job (`lm-finetune`) run by the worker against a real anvil: a worker
//! restarted mid-job goes on from the state it had stored (and commits to it); the market
//! refuses the spec as a training job until the fine-tuning game admitted it (ft_dispute.rs
//! plays its disputes).

use pedals_core::{TraceCommitment, checkpoint_hash};
use pedals_lm::CanonicalSpec as _;
use pedals_lm::FinetuneSpec;
use pedals_store::JobPhase;

use crate::worker::{Setup, declined, fast, provider, setup, tick_until, worker_configured};

pub(crate) const DATA: &[u8] = b"{\"text\": \"The license applies to any program.\"}\n\
{\"prompt\": \"Everyone is\", \"completion\": \" permitted to copy it.\"}\n\
{\"text\": \"You may convey verbatim copies.\"}\n";

pub(crate) struct FtJob {
    pub(crate) spec: FinetuneSpec,
    pub(crate) model: Vec<u8>,
}

/// Four steps of two examples on the tiny Llama fixture.
pub(crate) fn ft_job() -> FtJob {
    let model = crate::lm::tiny_llama();
    let terms = serde_json::from_value(serde_json::json!({
        "rank": 2, "alpha": 2, "targets": ["v_proj", "down_proj"], "lr": 1e-2, "lr_end": 1e-3,
        "betas": [0.9, 0.999], "eps": 1e-6, "warmup": 1, "steps": 4, "batch": 2, "seed": 3
    }))
    .expect("terms");
    let spec = FinetuneSpec::new(&model, DATA, &terms).expect("spec");
    assert_eq!(spec.count, 3);
    FtJob { spec, model }
}

async fn post(
    s: &Setup,
    job: &FtJob,
    verification: pedals_core::Verification,
) -> Result<u64, pedals_chain::ChainError> {
    let spec = (job.spec.to_canonical_bytes(), job.spec.spec_hash());
    crate::lm::post_files(s, spec, &job.model, DATA, verification, 4).await
}

#[tokio::test]
async fn a_worker_restarted_mid_finetune_goes_on_from_its_stored_state() {
    let mut s = setup().await;
    let job = ft_job();
    // The market refuses the spec as a training job until the fine-tuning game admitted it.
    let err = post(&s, &job, pedals_core::Verification::Optimistic)
        .await
        .expect_err("refused on-chain");
    assert!(format!("{err:?}").contains("SpecNotAdmitted"), "{err:?}");
    let inputs = job.spec.load(&job.model, DATA).expect("inputs");
    let args = pedals_dispute::lm::lm_spec_args(&job.spec, &inputs).expect("args");
    s.requester
        .admit_finetune_spec(args, job.spec.steps)
        .await
        .expect("the fine-tuning game admits the spec");
    let id = post(&s, &job, pedals_core::Verification::Optimistic)
        .await
        .expect("posted");
    tick_until(&s, id, |p| *p == JobPhase::Claimed).await;

    // What a worker killed after step 2 leaves behind: states 0, 1 and 2, the record at
    // Training{2}. State 2 is marked (one adapter value moved) so that the commitment shows
    // whether it was kept or computed again.
    let mut states = vec![inputs.initial().expect("initial")];
    for _ in 0..2 {
        let mut next = states.last().expect("a state").clone();
        inputs.step(&mut next);
        states.push(next);
    }
    let pedals_lm::JobState::Lora(marked) = &mut states[2] else {
        panic!("a LoRA job's state")
    };
    let first = marked
        .adapters
        .iter_mut()
        .flatten()
        .flatten()
        .next()
        .expect("adapter");
    first.b[0] += 1 << 16;
    let store = s.w().store().clone();
    for (i, st) in states.iter().enumerate() {
        store
            .put_checkpoint(id, i as u64, &inputs.state_bytes(st).expect("bytes"))
            .expect("checkpoint");
    }
    store
        .advance(id, JobPhase::Training { steps_done: 2 })
        .expect("training");
    drop(store);
    s.restart(crate::worker::fast()).await;

    tick_until(&s, id, |p| *p == JobPhase::Submitted).await;
    let mut go_on = states[2].clone();
    for _ in 2..4 {
        let mut next = go_on.clone();
        inputs.step(&mut next);
        states.push(next.clone());
        go_on = next;
    }
    let leaves: Vec<_> = states
        .iter()
        .map(|st| checkpoint_hash(&inputs.state_bytes(st).expect("bytes")))
        .collect();
    let on_chain = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(
        on_chain.traceRoot,
        TraceCommitment::new(leaves).expect("trace").root(),
        "the stored states were kept and the others computed from them"
    );
    let record = s.w().store().job(id).expect("read").expect("record");
    let result =
        pedals_core::parse_cid(record.result_cid.as_deref().expect("result")).expect("cid");
    assert_eq!(
        s.w().store().blob(&result).expect("read").expect("stored"),
        inputs.state_bytes(&go_on).expect("bytes"),
        "the result is the final state"
    );
}

#[tokio::test]
async fn a_finetune_job_posted_as_inference_before_the_game_existed_is_still_run() {
    let s = setup().await;
    let job = ft_job();
    let id = post(&s, &job, pedals_core::Verification::OptimisticInference)
        .await
        .expect("posted");
    tick_until(&s, id, |p| *p == JobPhase::Submitted).await;
}

/// A worker whose memory would not hold a challenged step's op trace declines the job before
/// it claims: it could not answer a game over the step, and would lose its collateral.
#[tokio::test]
async fn a_worker_declines_a_finetune_job_whose_op_trace_it_could_not_hold() {
    let mut s = setup().await;
    let job = ft_job();
    let inputs = job.spec.load(&job.model, DATA).expect("inputs");
    let bytes = inputs.op_trace_bytes().expect("bytes");
    assert!(bytes > 0, "the tiny Llama's step has a trace");
    s.worker = None;
    let config = pedals_node::WorkerConfig {
        threads: 2,
        send: fast(),
        max_trace_bytes: bytes - 1,
        ..pedals_node::WorkerConfig::default()
    };
    let dir = s._dir.path().to_path_buf();
    let rpc = provider(&s.devnet);
    s.worker = Some(worker_configured(&s.devnet, rpc, 1, &dir, config).await);
    let args = pedals_dispute::lm::lm_spec_args(&job.spec, &inputs).expect("args");
    s.requester
        .admit_finetune_spec(args, job.spec.steps)
        .await
        .expect("admitted");
    let id = post(&s, &job, pedals_core::Verification::Optimistic)
        .await
        .expect("posted");
    let reason = declined(&s, id).await;
    assert!(
        reason.contains("op trace") && reason.contains("--max-trace-gib"),
        "{reason}"
    );
}
