//! Data availability on a real anvil with the real validator daemon (docs/protocol.md §7):
//! a worker that withholds its data, makes up its trace, serves wrong openings or hides its
//! result loses its collateral, the requester is refunded and the validator is paid; an
//! honest worker that serves nothing over the network, or restarts in the middle of a
//! publication, meets every demand and keeps its payment, and whoever demanded loses the bond.

use std::sync::Arc;

use pedals_node::Status;

use alloy::primitives::{Address, U256};
use alloy::providers::ext::AnvilApi;
use pedals_chain::{Devnet, DevnetConfig, JobStatus, Market};
use pedals_core::{ModelState, state_from_runs};
use pedals_node::{StoreSource, Worker, WorkerConfig};
use pedals_p2p::{MemorySource, Network};
use pedals_store::{JobPhase, Store};
use pedals_verifier::{Verifier, VerifierConfig};

use crate::dispute::{market, post};
use crate::network::net;
use crate::worker::{Job, PAYMENT, STEPS, fast, hand_over, job, provider};

/// The window of the jobs `post` makes (an hour).
const WINDOW: u32 = 3600;
const REQUESTER: usize = 2;
const VALIDATOR: usize = 3;

/// A market with a requester serving the job's files, a worker and the validator daemon.
struct Scene {
    devnet: Devnet,
    requester: Market,
    worker: Option<Worker>,
    store: Option<Arc<Store>>,
    dir: tempfile::TempDir,
    config: WorkerConfig,
    validator: Verifier,
    job: Job,
    id: pedals_core::JobId,
    _nets: Vec<Network>,
}

/// Sets the scene: `config` is the worker's, `serve` what its node serves (`None`: the worker
/// has no network node at all), `samples` the validator's `k`. The job is posted.
async fn scene(
    config: WorkerConfig,
    serve: Option<fn(StoreSource) -> StoreSource>,
    samples: usize,
) -> Scene {
    // `PEDALS_TEST_LOG=info` shows what the worker and the validator do.
    if let Ok(filter) = std::env::var("PEDALS_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet");
    let requester = market(&devnet, REQUESTER).await;
    let job = job();
    let files = Arc::new(MemorySource::default());
    for bytes in [
        job.spec.to_canonical_bytes(),
        job.dataset.clone(),
        job.model.clone(),
    ] {
        files.insert_blob(bytes);
    }
    let requester_net = crate::network::requester_net(files, &job).await;
    let hub = requester_net.client.listen_addrs().await.expect("addrs");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let mut nets = vec![requester_net];
    let mut worker = Worker::new(
        provider(&devnet),
        devnet.signer(1).expect("account"),
        store.clone(),
        devnet.deployment().clone(),
        config.clone(),
    )
    .await
    .expect("worker");
    if let Some(serve) = serve {
        let worker_net = net(
            Arc::new(serve(StoreSource::new(store.clone(), 2))),
            hub.clone(),
        )
        .await;
        worker = worker.with_network(worker_net.client.clone());
        nets.push(worker_net);
    }
    worker
        .ensure_stake(
            requester
                .stake_to_claim(U256::from(PAYMENT))
                .await
                .expect("stake"),
        )
        .await
        .expect("stake");
    hand_over(&worker, &job);
    let mut validator_net = net(Arc::new(MemorySource::default()), hub).await;
    let validator = Verifier::new(
        market(&devnet, VALIDATOR).await,
        validator_net.client.clone(),
        VerifierConfig {
            samples_per_job: samples,
            threads: 1,
            ..VerifierConfig::default()
        },
    )
    .expect("validator");
    let events = std::mem::replace(&mut validator_net.events, tokio::sync::mpsc::channel(1).1);
    validator.watch_announcements(events);
    nets.push(validator_net);
    let params = requester.parameters().await.expect("params");
    validator
        .ensure_stake(U256::from(params.minValidatorStake))
        .await
        .expect("stake");
    let id = post(&devnet, &requester, &job).await;
    Scene {
        devnet,
        requester,
        worker: Some(worker),
        store: Some(store),
        dir,
        config,
        validator,
        job,
        id,
        _nets: nets,
    }
}

impl Scene {
    fn w(&self) -> &Worker {
        self.worker.as_ref().expect("worker")
    }

    async fn status(&self) -> JobStatus {
        JobStatus::try_from(self.requester.job(self.id).await.expect("job").status).expect("status")
    }

    /// Moves the chain's clock on by `seconds` and mines a block.
    async fn warp(&self, seconds: u64) {
        let p = provider(&self.devnet);
        p.anvil_increase_time(seconds).await.expect("warp");
        p.anvil_mine(Some(1), None).await.expect("mine");
    }

    /// Rounds of worker and validator until the job's status is `want`. A demand or a game
    /// that stalls for three rounds (a worker that does not answer) has its deadline passed
    /// on the chain's clock, as the hours of a real one would pass.
    async fn run_until(&self, want: JobStatus) {
        let mut stalled = 0;
        let mut last = None;
        for _ in 0..80 {
            self.w().tick().await.expect("worker round");
            self.validator.tick().await.expect("validator round");
            let status = self.status().await;
            if status == want {
                return;
            }
            let mark = (
                status,
                self.requester.demand(self.id).await.expect("demand"),
                self.requester
                    .publication_cursor(self.id)
                    .await
                    .expect("cursor"),
            );
            if matches!(status, JobStatus::Demanded | JobStatus::Disputed)
                && Some(&mark) == last.as_ref()
            {
                stalled += 1;
                if stalled == 3 {
                    let duration = self
                        .requester
                        .parameters()
                        .await
                        .expect("params")
                        .maxDisputeDuration;
                    self.warp(u64::from(duration) * 2 / 5 + 1).await;
                    stalled = 0;
                }
            } else {
                stalled = 0;
            }
            last = Some(mark);
        }
        panic!(
            "job {} did not become {want:?} (it is {:?})",
            self.id,
            self.status().await
        );
    }

    /// The worker process stops and a new one starts on the same data directory.
    async fn restart_worker(&mut self) {
        self.worker = None;
        self.store = None;
        let store = Arc::new(Store::open(self.dir.path()).expect("the store reopens"));
        self.store = Some(store.clone());
        self.worker = Some(
            Worker::new(
                provider(&self.devnet),
                self.devnet.signer(1).expect("account"),
                store,
                self.devnet.deployment().clone(),
                self.config.clone(),
            )
            .await
            .expect("worker"),
        );
    }

    async fn credit(&self, account: Address) -> U256 {
        self.requester.credit_of(account).await.expect("credit")
    }

    /// The worker was convicted: its whole collateral is gone, the requester has the payment
    /// and the rest of the collateral, and `winner` the bond and the reward.
    async fn assert_convicted(&self, staked_before: U256) {
        let job = self.requester.job(self.id).await.expect("job");
        assert_eq!(self.status().await, JobStatus::Resolved);
        let params = self.requester.parameters().await.expect("params");
        let collateral = U256::from(job.collateral);
        let reward = collateral * U256::from(params.challengerRewardBps) / U256::from(10_000u64);
        assert_eq!(
            self.credit(self.requester.sender()).await,
            U256::from(PAYMENT) + collateral - reward,
            "the requester is refunded with the rest of the collateral"
        );
        let staked = U256::from(
            self.requester
                .stake_of(job.worker)
                .await
                .expect("stake")
                .staked,
        );
        assert_eq!(
            staked,
            staked_before - collateral,
            "the collateral is seized"
        );
        // The bond at once, the reward once the conviction's claim period is over.
        crate::dispute::past_claim_period(&self.devnet, &self.requester, self.id).await;
        self.validator.tick().await.expect("validator round");
        assert!(
            U256::from(self.validator.stats().wei_earned.get())
                >= U256::from(params.challengeBond) + reward
        );
    }

    async fn staked(&self) -> U256 {
        U256::from(
            self.requester
                .stake_of(self.w().address())
                .await
                .expect("stake")
                .staked,
        )
    }
}

fn config() -> WorkerConfig {
    WorkerConfig {
        threads: 2,
        send: fast(),
        ..WorkerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_makes_up_its_trace_and_serves_nothing_loses_its_collateral() {
    // It computes nothing: every state hash after h_0 is made up and its result is the
    // initial model (h_N is that model's hash, so the requester's own check would pass).
    let s = scene(
        WorkerConfig {
            fabricate_from: Some(0),
            ..config()
        },
        Some(|src| src.withholding()),
        4,
    )
    .await;
    let staked = s.staked().await;
    s.run_until(JobStatus::Resolved).await;
    s.assert_convicted(staked).await;
    let stats = s.validator.stats();
    assert_eq!(stats.demands.get(), 1);
    // The demanded state is unpublishable (its hash is made up), unless the sample was step 0,
    // the real initial model: that one is published, its next hash does not reproduce, and the
    // game convicts the worker instead.
    assert_eq!(stats.demands_unmet.get() + stats.disputes_won.get(), 1);
    assert_eq!(
        stats.jobs_checked.get(),
        0,
        "the job was never counted as checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_trains_half_and_makes_up_the_rest_is_caught() {
    // Honest up to step 10 and serving those checkpoints; every sampled step from 10 on
    // either fails to re-execute (step 10, whose h_11 is made up) or cannot be served or
    // published.
    let s = scene(
        WorkerConfig {
            fabricate_from: Some(STEPS / 2),
            ..config()
        },
        Some(|src| src),
        STEPS as usize,
    )
    .await;
    let staked = s.staked().await;
    s.run_until(JobStatus::Resolved).await;
    s.assert_convicted(staked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_falsifies_and_serves_wrong_openings_is_caught_from_what_it_publishes() {
    // Every step is falsified and every checkpoint request is answered with the next step's
    // opening; on demand it publishes the (falsified) state, which the validator re-executes,
    // challenges and wins the game on.
    let lies: Vec<u64> = (0..STEPS).collect();
    let s = scene(
        WorkerConfig {
            falsify_steps: lies.clone(),
            ..config()
        },
        Some(|src| src.falsifying(0..STEPS).serving_wrong_openings()),
        2,
    )
    .await;
    let staked = s.staked().await;
    s.run_until(JobStatus::Resolved).await;
    s.assert_convicted(staked).await;
    let stats = s.validator.stats();
    eprintln!("{}", stats.render());
    assert_eq!(stats.demands.get(), 1);
    assert_eq!(stats.disputes_won.get(), 1);
    assert_eq!(stats.demands_unmet.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_result_is_demanded_by_the_requester_and_comes_back_on_chain() {
    // An otherwise honest worker posts a result CID nobody provides. The validator finds it
    // by its signed progress, checks it and stays silent; the requester demands the final
    // state, rebuilds the result from the chain and loses its bond to the worker.
    let s = scene(
        WorkerConfig {
            hide_result: true,
            ..config()
        },
        Some(|src| src),
        4,
    )
    .await;
    s.run_until(JobStatus::Submitted).await;
    for _ in 0..10 {
        s.w().tick().await.expect("worker round");
        s.validator.tick().await.expect("validator round");
    }
    let stats = s.validator.stats();
    assert_eq!(
        stats.jobs_checked.get(),
        1,
        "found by its address and checked"
    );
    assert_eq!(stats.demands.get(), 0);
    let bond = U256::from(
        s.requester
            .parameters()
            .await
            .expect("params")
            .challengeBond,
    );
    s.requester
        .demand_data(s.id, STEPS, bond)
        .await
        .expect("demand");
    s.run_until(JobStatus::Submitted).await;
    assert_eq!(
        s.credit(s.w().address()).await,
        bond,
        "the requester's bond paid the worker for the publication"
    );
    let published = s
        .requester
        .published_state(s.id, STEPS)
        .await
        .expect("events")
        .expect("published");
    assert!(published.complete);
    let template = ModelState::from_canonical_bytes(&s.job.model).expect("model");
    let result = state_from_runs(
        &template,
        published
            .runs
            .iter()
            .map(|(t, f, r)| (*t, *f, r.as_slice())),
    )
    .expect("the whole state is on-chain");
    let submitted = s
        .requester
        .submitted_result(s.id)
        .await
        .expect("rpc")
        .expect("result");
    assert_eq!(result.state_hash().expect("hash"), submitted.finalStateHash);
    // The window runs out; the worker is paid, with the requester's bond.
    s.warp(u64::from(WINDOW) * 2).await;
    s.run_until(JobStatus::Finalized).await;
    let job = s.requester.job(s.id).await.expect("job");
    assert_eq!(
        s.requester
            .stake_of(job.worker)
            .await
            .expect("stake")
            .locked,
        0,
        "the collateral is released, not seized"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_worker_that_serves_nothing_meets_the_demand_across_a_restart_and_is_paid() {
    // No network node at all (behind a firewall), and a small per-transaction budget so the
    // publication takes many transactions; the worker restarts after the first one.
    let mut s = scene(
        WorkerConfig {
            publish_bytes_per_tx: 256,
            ..config()
        },
        None,
        1,
    )
    .await;
    let staked = s.staked().await;
    for _ in 0..40 {
        s.w().tick().await.expect("worker round");
        s.validator.tick().await.expect("validator round");
        if s.status().await == JobStatus::Demanded {
            break;
        }
    }
    assert_eq!(
        s.status().await,
        JobStatus::Demanded,
        "the validator demanded a step"
    );
    s.w().tick().await.expect("the first part");
    let cursor = s.requester.publication_cursor(s.id).await.expect("cursor");
    assert_ne!(
        cursor.stateHash,
        alloy::primitives::B256::ZERO,
        "the state is opened"
    );
    s.restart_worker().await;
    s.run_until(JobStatus::Submitted).await;
    for _ in 0..5 {
        s.validator.tick().await.expect("validator round");
    }
    let stats = s.validator.stats();
    assert_eq!(stats.demands.get(), 1);
    assert_eq!(stats.demands_unmet.get(), 0);
    assert_eq!(stats.mismatches.get(), 0);
    assert_eq!(
        stats.jobs_checked.get(),
        1,
        "checked from the published state"
    );
    s.warp(u64::from(WINDOW) * 2).await;
    s.run_until(JobStatus::Finalized).await;
    assert_eq!(s.staked().await, staked, "never convicted");
    let record = s
        .w()
        .store()
        .job(s.id.get())
        .expect("read")
        .expect("record");
    assert!(
        matches!(record.phase, JobPhase::Finalizing | JobPhase::Finalized),
        "{:?}",
        record.phase
    );
}
