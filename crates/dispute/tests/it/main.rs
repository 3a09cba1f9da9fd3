//! Integration tests of pedals-dispute: whole dispute games on a real anvil with the contracts
//! deployed by the project's own script, between a worker and a validator that really trained
//! and re-executed the job, each played with this crate's moves.

mod game;
mod gas;
mod lm;
mod relay;
mod span;
mod timeline;

use std::sync::Arc;

use alloy::primitives::{B256, U256, aliases::U40};
use alloy::providers::ext::AnvilApi;
use pedals_chain::{Devnet, DevnetConfig, JobRequest, Market, chain_time};
use pedals_core::{TraceCommitment, cid_of};
use pedals_ml::exact::CpuOps;
use pedals_ml::{Dataset, JobSpec, MlpConfig, MlpState, TrainConfig, Trainer};

/// Challenge window of the test jobs.
pub(crate) const WINDOW: u32 = 3600;

/// Anvil's accounts: 1 requester, 2 worker, 3 validator.
pub(crate) struct World {
    /// Kept so anvil runs as long as the world.
    _devnet: Devnet,
    pub requester: Market,
    pub worker: Market,
    pub validator: Market,
}

impl World {
    pub(crate) async fn start() -> Self {
        let devnet = Devnet::start(DevnetConfig::default())
            .await
            .expect("devnet");
        let connect = |i: usize| {
            Market::connect(
                devnet.endpoint(),
                devnet.signer(i).expect("signer"),
                devnet.deployment().clone(),
            )
        };
        let requester = connect(1).await.expect("requester");
        let worker = connect(2).await.expect("worker");
        let validator = connect(3).await.expect("validator");
        Self {
            _devnet: devnet,
            requester,
            worker,
            validator,
        }
    }

    /// Anvil's account `i`'s key.
    pub(crate) fn signer(&self, i: usize) -> alloy::signers::local::PrivateKeySigner {
        self._devnet.signer(i).expect("signer")
    }

    /// Moves the chain's clock forward and mines a block.
    pub(crate) async fn warp(&self, seconds: u64) {
        let p = self.requester.provider();
        p.anvil_increase_time(seconds).await.expect("warp");
        p.evm_mine(None).await.expect("mine");
    }

    pub(crate) async fn mine(&self) {
        self.requester
            .provider()
            .evm_mine(None)
            .await
            .expect("mine");
    }
}

/// A small training job and its files.
pub(crate) struct Job {
    pub spec: JobSpec,
    pub dataset: Arc<Dataset>,
    pub init: MlpState,
}

pub(crate) fn job() -> Job {
    job_of(vec![16, 12, 4], 8, 256)
}

/// A job training `layers` with `batch` samples a step on `samples` synthetic samples.
pub(crate) fn job_of(layers: Vec<usize>, batch: usize, samples: usize) -> Job {
    let (features, classes) = (layers[0], *layers.last().expect("layers") as u32);
    let train = TrainConfig {
        model: MlpConfig {
            layers,
            batch,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 21,
        steps: 8,
        checkpoint_every: 2,
    };
    let dataset = Dataset::synthetic(3, samples, features, classes).expect("data");
    let init = MlpState::init(&train.model, train.seed).expect("init");
    let spec = JobSpec::new(train, &dataset, &init.to_bytes().expect("bytes")).expect("spec");
    Job {
        spec,
        dataset: Arc::new(dataset),
        init,
    }
}

/// What the worker ran: its trace, and the states it can answer a dispute from.
pub(crate) struct Run {
    pub trace: TraceCommitment,
    pub trainer: Trainer<CpuOps>,
}

/// Posts `job`, has the worker stake, claim, train (lying after step `falsify`, if set) and
/// submit; returns the job id and the worker's run.
pub(crate) async fn post_and_run(
    w: &World,
    job: &Job,
    falsify: Option<u64>,
) -> (pedals_core::JobId, Run) {
    let now = chain_time(w.requester.provider()).await.expect("time");
    let request = JobRequest {
        specHash: job.spec.spec_hash(),
        modelCid: cid_of(&job.init.to_bytes().expect("bytes"))
            .to_bytes()
            .into(),
        datasetCid: job.dataset.cid().expect("cid").to_bytes().into(),
        steps: job.spec.train.steps as u32,
        verification: pedals_core::Verification::Optimistic.to_u8(),
        claimDeadline: U40::from(now + 3600),
        deliveryDeadline: U40::from(now + 86_400),
        challengeWindow: WINDOW,
    };
    let payment = U256::from(10u64).pow(U256::from(17)); // 0.1 ETH
    w.requester
        .admit_spec(
            pedals_dispute::game::spec_args(&job.spec).expect("a disputable spec"),
            job.spec.train.steps,
        )
        .await
        .expect("the game admits the spec");
    let (id, _) = w.requester.post_job(request, payment).await.expect("post");
    let stake = w
        .worker
        .stake_to_claim(payment)
        .await
        .expect("stake needed");
    w.worker
        .stake(stake + U256::from(10u64).pow(U256::from(17)))
        .await
        .expect("stake");
    w.worker.claim_job(id).await.expect("claim");
    let trainer = Trainer::new(CpuOps::new(1), job.spec.train.clone())
        .expect("trainer")
        .falsifying(falsify);
    let out = trainer.train(&job.dataset, &job.init).expect("train");
    let trace = TraceCommitment::new(out.hashes.clone()).expect("trace");
    let result = out.final_state.to_bytes().expect("bytes");
    w.worker
        .submit_result(
            id,
            job.spec.train.steps,
            trace.root(),
            B256::ZERO,
            trace.final_hash(),
            trace.proof(job.spec.train.steps).expect("proof").siblings,
            cid_of(&result).to_bytes().into(),
        )
        .await
        .expect("submit");
    (id, Run { trace, trainer })
}

/// The state before `step` of an honest run (re-executed from the initial state).
pub(crate) fn honest_state(job: &Job, step: u64) -> MlpState {
    let trainer = Trainer::new(CpuOps::new(1), job.spec.train.clone()).expect("trainer");
    let mut state = job.init.clone();
    for s in 0..step {
        state = trainer
            .replay_step(&job.dataset, &state, s)
            .expect("replay");
    }
    state
}

/// A fresh random salt.
pub(crate) fn salt() -> B256 {
    B256::from(rand::random::<[u8; 32]>())
}
