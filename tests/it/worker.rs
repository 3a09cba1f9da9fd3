//! A requester posts a paid training job; the worker claims it, trains it with the exact-mode
//! engine, submits, waits out the challenge window, finalizes and withdraws, with every wei
//! accounted for. And a job whose data is damaged is never claimed.

use std::{sync::Arc, time::Duration};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, Bytes, U256, aliases::U40},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
};
use pedals_chain::{Devnet, DevnetConfig, JobRequest, JobStatus, Market, SendPolicy};
use pedals_core::cid_of;
use pedals_ml::{
    Dataset, JobSpec, MlpConfig, MlpState, TraceSoFar, TrainConfig, Trainer, exact::Reference,
};
use pedals_node::{Worker, WorkerConfig};
use pedals_store::{Action, JobPhase, Store};

pub(crate) const PAYMENT: u128 = 100_000_000_000_000_000; // 0.1 ETH
pub(crate) const STEPS: u64 = 20;
pub(crate) const WINDOW: u32 = 10;

pub(crate) struct Job {
    pub(crate) spec: JobSpec,
    pub(crate) dataset: Vec<u8>,
    pub(crate) model: Vec<u8>,
}

pub(crate) fn job() -> Job {
    let train = TrainConfig {
        model: MlpConfig {
            layers: vec![16, 12, 4],
            batch: 8,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 7,
        steps: STEPS,
        checkpoint_every: 5,
    };
    let data = Dataset::synthetic(3, 256, 16, 4).expect("data");
    let dataset = data.to_canonical_bytes().expect("bytes");
    let model = MlpState::init(&train.model, train.seed)
        .expect("init")
        .to_bytes()
        .expect("bytes");
    let spec = JobSpec::new(train, &data, &model).expect("spec");
    Job {
        spec,
        dataset,
        model,
    }
}

pub(crate) fn provider(devnet: &Devnet) -> DynProvider {
    ProviderBuilder::new()
        .connect_http(devnet.endpoint())
        .erased()
}

pub(crate) async fn now(devnet: &Devnet) -> u64 {
    provider(devnet)
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .expect("rpc")
        .expect("block")
        .header
        .timestamp
}

pub(crate) struct Setup {
    pub(crate) devnet: Devnet,
    pub(crate) requester: Market,
    pub(crate) worker: Option<Worker>,
    pub(crate) _dir: tempfile::TempDir,
}

impl Setup {
    pub(crate) fn w(&self) -> &Worker {
        self.worker.as_ref().expect("a running worker")
    }

    /// Stops the worker (its store closes) and starts a new one on the same data directory.
    pub(crate) async fn restart(&mut self, send: SendPolicy) {
        self.worker = None;
        self.worker = Some(worker_on(&self.devnet, self._dir.path(), send).await);
    }
}

pub(crate) async fn worker_on(devnet: &Devnet, dir: &std::path::Path, send: SendPolicy) -> Worker {
    worker_as(devnet, 1, dir, send).await
}

pub(crate) async fn worker_as(
    devnet: &Devnet,
    account: usize,
    dir: &std::path::Path,
    send: SendPolicy,
) -> Worker {
    worker_via(devnet, provider(devnet), account, dir, send).await
}

/// A worker for dev `account` that reaches the chain through `rpc`.
pub(crate) async fn worker_via(
    devnet: &Devnet,
    rpc: DynProvider,
    account: usize,
    dir: &std::path::Path,
    send: SendPolicy,
) -> Worker {
    let config = WorkerConfig {
        threads: 2,
        send,
        ..WorkerConfig::default()
    };
    worker_configured(devnet, rpc, account, dir, config).await
}

/// A worker for dev `account` with `config`, reaching the chain through `rpc`.
pub(crate) async fn worker_configured(
    devnet: &Devnet,
    rpc: DynProvider,
    account: usize,
    dir: &std::path::Path,
    config: WorkerConfig,
) -> Worker {
    let store = Arc::new(Store::open(dir).expect("store"));
    let (signer, deployment) = (devnet.signer(account), devnet.deployment().clone());
    Worker::new(rpc, signer.expect("account"), store, deployment, config)
        .await
        .expect("worker")
}

/// Serves `worker`'s metrics and health on a free loopback port (a 60 s health limit) for as
/// long as the test runs; returns the address.
pub(crate) async fn metrics_server(worker: &Worker) -> std::net::SocketAddr {
    pedals_node::serve_metrics(
        "127.0.0.1:0".parse().expect("addr"),
        worker.metrics(),
        Duration::from_secs(60),
        std::future::pending(),
    )
    .await
    .expect("metrics server")
    .0
}

/// `GET http://addr/path`: the status and the body.
pub(crate) async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let response = alloy::transports::http::reqwest::get(format!("http://{addr}{path}"))
        .await
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

pub(crate) fn fast() -> SendPolicy {
    SendPolicy {
        receipt_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
        ..SendPolicy::default()
    }
}

pub(crate) async fn setup() -> Setup {
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet starts: run `make setup` first if the toolchain is missing");
    let requester = Market::connect(
        devnet.endpoint(),
        devnet.signer(2).expect("account"),
        devnet.deployment().clone(),
    )
    .await
    .expect("requester");
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_on(&devnet, dir.path(), fast()).await;
    let stake = requester
        .stake_to_claim(U256::from(PAYMENT))
        .await
        .expect("params");
    worker.ensure_stake(stake).await.expect("stake");
    Setup {
        devnet,
        requester,
        worker: Some(worker),
        _dir: dir,
    }
}

/// Adds the requester's files to the worker's store, for the tests that are not about the
/// network (network.rs has the worker fetch them from the requester's node).
pub(crate) fn hand_over(worker: &Worker, job: &Job) {
    let store = worker.store();
    store
        .put_blob(&job.spec.to_canonical_bytes())
        .expect("spec");
    store.put_blob(&job.dataset).expect("dataset");
    store.put_blob(&job.model).expect("model");
}

pub(crate) async fn post(s: &Setup, job: &Job) -> u64 {
    let now = now(&s.devnet).await;
    let request = JobRequest {
        specHash: job.spec.spec_hash(),
        modelCid: Bytes::from(cid_of(&job.model).to_bytes()),
        datasetCid: Bytes::from(cid_of(&job.dataset).to_bytes()),
        steps: STEPS as u32,
        verification: pedals_core::Verification::Optimistic.to_u8(),
        claimDeadline: U40::from(now + 600),
        deliveryDeadline: U40::from(now + 3600),
        challengeWindow: WINDOW,
    };
    s.requester
        .admit_spec(
            pedals_verifier::game::spec_args(&job.spec).expect("a disputable spec"),
            job.spec.train.steps,
        )
        .await
        .expect("the game admits the spec");
    let (id, _) = s
        .requester
        .post_job(request, U256::from(PAYMENT))
        .await
        .expect("post");
    id.get()
}

pub(crate) async fn tick_until(s: &Setup, id: u64, want: impl Fn(&JobPhase) -> bool) -> JobPhase {
    for _ in 0..30 {
        s.w().tick().await.expect("tick");
        let phase = s.w().store().job(id).expect("read").expect("record").phase;
        if want(&phase) {
            return phase;
        }
    }
    panic!("job {id} did not get there");
}

/// Ticks until the worker gives job `id` up; checks that it signed no claim and returns why
/// it gave up.
pub(crate) async fn declined(s: &Setup, id: u64) -> String {
    let phase = tick_until(s, id, |p| matches!(p, JobPhase::Abandoned { .. })).await;
    let JobPhase::Abandoned { reason } = phase else {
        unreachable!()
    };
    assert!(
        s.w()
            .store()
            .intent(id, Action::Claim)
            .expect("read")
            .is_none(),
        "no claim was signed ({reason})"
    );
    reason
}

/// Wei paid for gas by the mined transaction among `hashes`.
pub(crate) async fn gas_of(s: &Setup, hashes: &[alloy::primitives::B256]) -> U256 {
    for hash in hashes {
        let receipt = provider(&s.devnet)
            .get_transaction_receipt(*hash)
            .await
            .expect("rpc");
        if let Some(r) = receipt {
            return U256::from(r.gas_used) * U256::from(r.effective_gas_price);
        }
    }
    panic!("none of {hashes:?} is mined");
}

/// Wei the worker paid for its `action` transaction for job `id`.
async fn gas_paid(s: &Setup, id: u64, action: Action) -> U256 {
    let intent = s
        .w()
        .store()
        .intent(id, action)
        .expect("read")
        .expect("sent");
    gas_of(s, &intent.hashes).await
}

pub(crate) async fn balance(s: &Setup, account: Address) -> U256 {
    provider(&s.devnet)
        .get_balance(account)
        .await
        .expect("balance")
}

#[tokio::test]
async fn a_posted_job_is_trained_submitted_finalized_and_paid_to_the_wei() {
    let s = setup().await;
    let job = job();
    hand_over(s.w(), &job);
    let id = post(&s, &job).await;
    let before = balance(&s, s.w().address()).await;
    let addr = metrics_server(s.w()).await;
    let get = |path: &'static str| http_get(addr, path);
    assert_eq!(
        get("/health").await.0,
        503,
        "unhealthy before the first round"
    );

    let phase = tick_until(&s, id, |p| *p == JobPhase::Submitted).await;
    assert_eq!(phase, JobPhase::Submitted);
    let on_chain = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(
        JobStatus::try_from(on_chain.status),
        Ok(JobStatus::Submitted)
    );
    assert_eq!(on_chain.worker, s.w().address());

    // The committed trace is what an independent re-execution (the reference) computes.
    let init = MlpState::from_bytes(&job.spec.train.model, &job.model).expect("model");
    let data = Dataset::from_canonical_bytes(&job.dataset).expect("data");
    let replay = Trainer::new(Reference, job.spec.train.clone())
        .expect("trainer")
        .train(&data, &init)
        .expect("train");
    assert_eq!(on_chain.traceRoot, replay.trace().expect("trace").root());
    let store = s.w().store();
    assert_eq!(
        store.checkpoint_steps(id).expect("steps"),
        vec![0, 5, 10, 15, 20]
    );
    let result = store
        .checkpoint(id, STEPS)
        .expect("read")
        .expect("final state");
    assert_eq!(
        pedals_core::state_hash_of_bytes(&result).expect("state"),
        *replay.hashes.last().expect("h_N")
    );
    let trained = MlpState::from_bytes(&job.spec.train.model, &result).expect("model");
    let accuracy = Trainer::new(Reference, job.spec.train.clone())
        .expect("trainer")
        .accuracy(&trained, &data)
        .expect("accuracy");
    let untrained = Trainer::new(Reference, job.spec.train.clone())
        .expect("trainer")
        .accuracy(&init, &data)
        .expect("accuracy");
    assert!(
        accuracy > untrained,
        "training helped: {untrained} → {accuracy}"
    );

    // Nothing happens before the window ends; then finalize and withdraw.
    s.w().tick().await.expect("tick");
    assert_eq!(
        store.job(id).expect("read").expect("record").phase,
        JobPhase::Submitted
    );
    let chain = provider(&s.devnet);
    chain
        .anvil_increase_time(u64::from(WINDOW) + 1)
        .await
        .expect("time");
    chain.evm_mine(None).await.expect("mine");
    tick_until(&s, id, |p| *p == JobPhase::Finalized).await;

    let fee_bps = U256::from(on_chain.feeBps);
    let payout = U256::from(PAYMENT) - U256::from(PAYMENT) * fee_bps / U256::from(10_000);
    let mut gas = U256::ZERO;
    for action in [
        Action::Claim,
        Action::Submit,
        Action::Finalize,
        Action::Withdraw,
    ] {
        gas += gas_paid(&s, id, action).await;
    }
    let after = balance(&s, s.w().address()).await;
    assert_eq!(after, before + payout - gas, "payout {payout}, gas {gas}");
    let settled = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(
        JobStatus::try_from(settled.status),
        Ok(JobStatus::Finalized)
    );
    assert!(store.open_intents().expect("open").is_empty());
}

#[tokio::test]
async fn a_job_whose_dataset_is_damaged_is_not_claimed_and_the_log_says_why() {
    let s = setup().await;
    let job = job();
    hand_over(s.w(), &job);
    let id = post(&s, &job).await;
    // The dataset file is damaged on disk after it was stored.
    let cid = cid_of(&job.dataset);
    let dir = s._dir.path().join("blobs").join(cid.to_string());
    let mut bytes = job.dataset.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&dir, bytes).expect("damage");

    let reason = declined(&s, id).await;
    assert!(reason.contains("damaged"), "{reason}");
    let on_chain = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(JobStatus::try_from(on_chain.status), Ok(JobStatus::Posted));
}

#[tokio::test]
async fn a_worker_that_dies_in_training_or_right_after_sending_its_submit_finishes_with_one_submit()
{
    let mut s = setup().await;
    let job = job();
    hand_over(s.w(), &job);
    let id = post(&s, &job).await;
    let account = s.w().address();
    tick_until(&s, id, |p| *p == JobPhase::Claimed).await;
    let nonce_after_claim = provider(&s.devnet)
        .get_transaction_count(account)
        .await
        .expect("nonce");

    // Killed during training: the record says training had started, nothing was stored.
    s.w()
        .store()
        .advance(id, JobPhase::Training { steps_done: 0 })
        .expect("training");
    // The next run sends the submit but mining is paused, so no receipt comes before it dies.
    let stalled = SendPolicy {
        receipt_timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(50),
        max_replacements: 0,
        ..SendPolicy::default()
    };
    s.restart(stalled).await;
    let chain = provider(&s.devnet);
    chain
        .anvil_set_auto_mine(false)
        .await
        .expect("automine off");
    for _ in 0..3 {
        s.w().tick().await.expect("tick");
    }
    let store = s.w().store();
    assert_eq!(
        store.job(id).expect("read").expect("record").phase,
        JobPhase::Submitting
    );
    let submit = store
        .intent(id, Action::Submit)
        .expect("read")
        .expect("signed");
    assert_eq!(submit.hashes.len(), 1);

    // Killed again; on restart the chain mines what was sent.
    s.restart(fast()).await;
    chain.anvil_set_auto_mine(true).await.expect("automine on");
    chain.evm_mine(None).await.expect("mine");
    s.w().resume().await.expect("resume");
    tick_until(&s, id, |p| *p == JobPhase::Submitted).await;
    let submit_after = s
        .w()
        .store()
        .intent(id, Action::Submit)
        .expect("read")
        .expect("intent");
    assert_eq!(
        submit_after.hashes, submit.hashes,
        "the same transaction, never re-signed"
    );
    assert_eq!(
        chain.get_transaction_count(account).await.expect("nonce"),
        nonce_after_claim + 1,
        "exactly one submit transaction"
    );
    let on_chain = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(
        JobStatus::try_from(on_chain.status),
        Ok(JobStatus::Submitted)
    );
}

/// A TCP proxy in front of anvil that a test can take down (refusing connections and cutting
/// open ones) and bring back on the same port: an RPC outage.
struct Proxy {
    port: u16,
    upstream: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut proxy = Self {
            port,
            upstream,
            task: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream;
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort(); // drops the listener and, with the JoinSet, every open connection
        }
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the same port");
        self.serve(listener);
    }

    fn url(&self) -> alloy::transports::http::reqwest::Url {
        format!("http://127.0.0.1:{}", self.port)
            .parse()
            .expect("url")
    }
}

#[tokio::test]
async fn an_rpc_outage_mid_job_is_waited_out_and_the_job_completes() {
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet starts: run `make setup` first if the toolchain is missing");
    let requester = Market::connect(
        devnet.endpoint(),
        devnet.signer(2).expect("account"),
        devnet.deployment().clone(),
    )
    .await
    .expect("requester");
    let upstream = format!(
        "127.0.0.1:{}",
        devnet.endpoint().port().expect("anvil's port")
    )
    .parse()
    .expect("addr");
    let mut proxy = Proxy::start(upstream).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let through_proxy = ProviderBuilder::new().connect_http(proxy.url()).erased();
    let worker = worker_via(&devnet, through_proxy, 1, dir.path(), fast()).await;
    let stake = requester
        .stake_to_claim(U256::from(PAYMENT))
        .await
        .expect("params");
    worker.ensure_stake(stake).await.expect("stake");
    let job = job();
    hand_over(&worker, &job);
    let s = Setup {
        devnet,
        requester,
        worker: Some(worker),
        _dir: dir,
    };
    let id = post(&s, &job).await;
    tick_until(&s, id, |p| *p == JobPhase::Claimed).await;

    // The endpoint goes away: rounds fail (and say so), nothing is lost.
    proxy.down();
    for _ in 0..3 {
        assert!(s.w().tick().await.is_err(), "no endpoint, no round");
    }
    assert_eq!(
        s.w().store().job(id).expect("read").expect("record").phase,
        JobPhase::Claimed
    );
    proxy.up().await;
    tick_until(&s, id, |p| *p == JobPhase::Submitted).await;
    let chain = provider(&s.devnet);
    chain
        .anvil_increase_time(u64::from(WINDOW) + 1)
        .await
        .expect("time");
    chain.evm_mine(None).await.expect("mine");
    tick_until(&s, id, |p| *p == JobPhase::Finalized).await;
    // stake, claim, submit, finalize, withdraw: once each.
    let nonce = chain
        .get_transaction_count(s.w().address())
        .await
        .expect("nonce");
    assert_eq!(nonce, 5);
}

#[tokio::test]
async fn a_worker_restarted_mid_training_resumes_from_its_latest_checkpoint() {
    let mut s = setup().await;
    let job = job();
    hand_over(s.w(), &job);
    let id = post(&s, &job).await;
    tick_until(&s, id, |p| *p == JobPhase::Claimed).await;

    // What a worker killed after step 10 leaves behind: checkpoints 0 and 10 with their
    // traces, the record at Training{10}. (Made here by the reference, stopped at step 10.)
    let init = MlpState::from_bytes(&job.spec.train.model, &job.model).expect("model");
    let data = Dataset::from_canonical_bytes(&job.dataset).expect("data");
    let mut first_half = job.spec.train.clone();
    first_half.steps = 10;
    first_half.checkpoint_every = 10;
    let store = s.w().store().clone();
    Trainer::new(Reference, first_half)
        .expect("trainer")
        .auditing()
        .train_from(
            &data,
            &init,
            TraceSoFar::default(),
            |done, bytes, so_far| {
                store
                    .put_resumable_checkpoint(id, done, bytes, &so_far.hashes, &so_far.audit_leaves)
                    .expect("checkpoint");
                Ok(())
            },
        )
        .expect("first half");
    store
        .advance(id, JobPhase::Training { steps_done: 10 })
        .expect("training");
    drop(store);
    s.restart(fast()).await;

    tick_until(&s, id, |p| *p == JobPhase::Submitted).await;
    // Resumed, not restarted: a run from step 0 would have stored the checkpoint after step 5.
    let steps = s.w().store().checkpoint_steps(id).expect("steps");
    assert_eq!(steps, vec![0, 10, 15, 20]);
    let whole = Trainer::new(Reference, job.spec.train.clone())
        .expect("trainer")
        .auditing()
        .train(&data, &init)
        .expect("train");
    let on_chain = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(on_chain.traceRoot, whole.trace().expect("trace").root());
    // The audit leaves of the first ten steps came back from the store.
    assert_eq!(
        Some(on_chain.auditRoot),
        whole.audit_root().expect("audit root"),
        "the resumed run commits to the whole run's audit root"
    );
}

#[tokio::test]
async fn a_job_this_worker_cannot_finish_in_time_is_not_claimed_and_the_log_says_why() {
    let s = setup().await;
    // Ten million steps of the small model, due a minute after posting: the worker times a
    // few steps of this very job and declines.
    let mut job = job();
    job.spec = JobSpec::new(
        TrainConfig {
            steps: 10_000_000,
            ..job.spec.train.clone()
        },
        &Dataset::from_canonical_bytes(&job.dataset).expect("data"),
        &job.model,
    )
    .expect("spec");
    hand_over(s.w(), &job);
    let now = now(&s.devnet).await;
    let request = JobRequest {
        specHash: job.spec.spec_hash(),
        modelCid: Bytes::from(cid_of(&job.model).to_bytes()),
        datasetCid: Bytes::from(cid_of(&job.dataset).to_bytes()),
        steps: 10_000_000,
        verification: pedals_core::Verification::Optimistic.to_u8(),
        claimDeadline: U40::from(now + 30),
        deliveryDeadline: U40::from(now + 60),
        challengeWindow: WINDOW,
    };
    s.requester
        .admit_spec(
            pedals_verifier::game::spec_args(&job.spec).expect("a disputable spec"),
            job.spec.train.steps,
        )
        .await
        .expect("the game admits the spec");
    let (id, _) = s
        .requester
        .post_job(request, U256::from(PAYMENT))
        .await
        .expect("post");
    let id = id.get();
    let reason = declined(&s, id).await;
    assert!(reason.contains("is due in"), "{reason}");
}
