//! A language model's batch job (`lm-generate`) run by the worker against a real anvil: a
//! worker restarted mid-job goes on from the chunks it had stored (and commits to them); the
//! market refuses the spec as a training job, and a worker never claims it posted for another
//! number of steps.

use alloy::primitives::{Bytes, U256, aliases::U40};
use pedals_chain::JobRequest;
use pedals_core::{TraceCommitment, cid_of};
use pedals_lm::CanonicalSpec as _;
use pedals_lm::{Checkpoint, GenParams, LmJobSpec, Sampling, quantize};
use pedals_store::JobPhase;

use crate::worker::{PAYMENT, Setup, declined, fast, now, setup, tick_until};

const PROMPTS: &[u8] =
    b"{\"prompt\": \"The\"}\n{\"prompt\": \"A fool\"}\n{\"prompt_ids\": [5, 9]}\n\
{\"prompt\": \"Time is\"}\n{\"prompt\": \"You\"}\n";

struct LmJob {
    spec: LmJobSpec,
    model: Vec<u8>,
}

/// The tiny Llama fixture's stored bytes at 8 bits.
pub(crate) fn tiny_llama() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/lm/tests/fixtures/llama-tiny");
    quantize(&Checkpoint::load_hf(&dir).expect("fixture"), 8)
        .expect("quantized")
        .to_bytes()
        .expect("bytes")
}

/// Five prompts, one per chunk, sampled, for the tiny Llama fixture.
fn lm_job() -> LmJob {
    let model = tiny_llama();
    let params = GenParams {
        max_tokens: 8,
        sampling: Sampling::new(0.9, 0, 0.95, 3).expect("valid"),
        stop: vec![],
    };
    let spec = LmJobSpec::new(&cid_of(&model), &cid_of(PROMPTS), 5, 1, &params).expect("spec");
    LmJob { spec, model }
}

/// Hands the files to the worker and posts the job (as `verification`, for `steps`).
async fn post(s: &Setup, job: &LmJob, verification: pedals_core::Verification, steps: u32) -> u64 {
    try_post(s, job, verification, steps).await.expect("post")
}

async fn try_post(
    s: &Setup,
    job: &LmJob,
    verification: pedals_core::Verification,
    steps: u32,
) -> Result<u64, pedals_chain::ChainError> {
    let spec = (job.spec.to_canonical_bytes(), job.spec.spec_hash());
    post_files(s, spec, &job.model, PROMPTS, verification, steps).await
}

/// Hands a language-model job's files to the worker's store and posts the job.
pub(crate) async fn post_files(
    s: &Setup,
    (spec, spec_hash): (Vec<u8>, alloy::primitives::B256),
    model: &[u8],
    data: &[u8],
    verification: pedals_core::Verification,
    steps: u32,
) -> Result<u64, pedals_chain::ChainError> {
    let store = s.w().store();
    store.put_blob(&spec).expect("spec");
    store.put_blob(model).expect("model");
    store.put_blob(data).expect("data");
    let now = now(&s.devnet).await;
    let request = JobRequest {
        specHash: spec_hash,
        modelCid: Bytes::from(cid_of(model).to_bytes()),
        datasetCid: Bytes::from(cid_of(data).to_bytes()),
        steps,
        verification: verification.to_u8(),
        claimDeadline: U40::from(now + 600),
        deliveryDeadline: U40::from(now + 3600),
        challengeWindow: crate::worker::WINDOW,
    };
    let (id, _) = s.requester.post_job(request, U256::from(PAYMENT)).await?;
    Ok(id.get())
}

#[tokio::test]
async fn a_worker_restarted_mid_generation_goes_on_from_its_stored_chunks() {
    let mut s = setup().await;
    let job = lm_job();
    let id = post(&s, &job, pedals_core::Verification::OptimisticInference, 5).await;
    tick_until(&s, id, |p| *p == JobPhase::Claimed).await;

    // What a worker killed after chunk 2 leaves behind: the model as checkpoint 0, chunks 1
    // and 2, the record at Training{2}. Chunk 1 is marked (a line of its own) so that the
    // commitment shows whether it was kept or computed again.
    let inputs = job
        .spec
        .load(&job.model, PROMPTS, u64::MAX)
        .expect("inputs");
    let chunks: Vec<Vec<u8>> = (0..5)
        .map(|i| inputs.run_chunk(&job.spec, i).expect("chunk"))
        .collect();
    let kept = chunks[0].clone();
    let marked = [kept.strip_suffix(b"\n").expect("a line"), b" \n"].concat();
    let store = s.w().store().clone();
    store.put_checkpoint(id, 0, &job.model).expect("model");
    store.put_checkpoint(id, 1, &marked).expect("chunk 1");
    store.put_checkpoint(id, 2, &chunks[1]).expect("chunk 2");
    store
        .advance(id, JobPhase::Training { steps_done: 2 })
        .expect("training");
    drop(store);
    s.restart(fast()).await;

    tick_until(&s, id, |p| *p == JobPhase::Submitted).await;
    let mut leaves = vec![inputs.model_bytes_hash];
    leaves.push(alloy::primitives::keccak256(&marked));
    leaves.extend(chunks[1..].iter().map(alloy::primitives::keccak256));
    let on_chain = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(
        on_chain.traceRoot,
        TraceCommitment::new(leaves).expect("trace").root(),
        "the stored chunks were kept and the others computed"
    );
    // The result is every chunk in order, as stored.
    let record = s.w().store().job(id).expect("read").expect("record");
    let result =
        pedals_core::parse_cid(record.result_cid.as_deref().expect("result")).expect("cid");
    let bytes = s.w().store().blob(&result).expect("read").expect("stored");
    assert_eq!(bytes, [marked.as_slice(), &chunks[1..].concat()].concat());
}

#[tokio::test]
async fn a_spec_posted_as_training_is_refused_and_for_other_steps_is_not_claimed() {
    let s = setup().await;
    let job = lm_job();
    // As a training job it cannot even be posted: the market takes only training specs the
    // dispute game admitted, and no language-model spec is one.
    let err = try_post(&s, &job, pedals_core::Verification::Optimistic, 5)
        .await
        .expect_err("refused on-chain");
    assert!(format!("{err:?}").contains("SpecNotAdmitted"), "{err:?}");
    // Paid for four chunks of five.
    let id = post(&s, &job, pedals_core::Verification::OptimisticInference, 4).await;
    let reason = declined(&s, id).await;
    assert!(
        reason.contains("runs 5 steps but the job pays for 4"),
        "{reason}"
    );
}
