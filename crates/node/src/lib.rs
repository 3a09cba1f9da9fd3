//! The Pedals worker: finds posted training jobs, verifies their data, claims, trains with the
//! exact-mode engine, submits the commitments, and settles after the challenge window,
//! surviving crashes at any point.
//!
//! ```text
//!   chain events ──► EventFollower ──► job records (pedals-store) ──► Worker::tick
//!                                                                       │ per job, one phase at a time:
//!   Seen → Fetching (spec, dataset, model by CID, verified) → Ready (price check)
//!        → Claiming (intent stored, then sent) → Claimed → Trained (checkpoints stored)
//!        → Submitting → Submitted → (window ends) Finalizing → Finalized (credit withdrawn)
//! ```
//!
//! Every transaction goes through [`TxSender`] with its intent written together with the
//! phase change ([`Store::advance_with_intent`]), so a restarted worker re-broadcasts what it
//! had signed and never sends an action twice.
//!
//! With a network ([`Worker::with_network`]), a job's spec, dataset and model are downloaded
//! from the peers that provide them (the requester's node first of all), verified against
//! their CIDs and stored before the job can be claimed; the worker then provides them, and
//! its result, to others, and serves its checkpoints to validators through [`StoreSource`].
//! Without one, the files must already be in the store.

mod availability;
#[cfg(debug_assertions)]
mod cheat;
mod content;
pub mod gateway;
mod metrics;
mod requester;
mod zk;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolCall,
};
use pedals_chain::{
    ChainError, ChainEvent, Deployment, EventFollower, IJobMarket, JobMarket, JobStatus,
    SendPolicy, StakeManager, TxSender,
};
use pedals_core::{Cid, cid_of};
use pedals_ml::{Dataset, JobSpec, MlError, MlpState, Trainer, exact::CpuOps, inference};
use pedals_store::{Action, JobPhase, JobRecord, Store, StoreError};
use pedals_verifier::game::StepContext;
use tracing::{debug, info, warn};

pub use content::StoreSource;
pub use metrics::{Metrics, PhaseLabel, serve as serve_metrics};
pub use requester::{JobFiles, JobResult, PostTerms, Requester, ZkFiles, ZkResult};

/// What a worker accepts and how it runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The lowest payment per training step it claims for, in wei.
    pub min_wei_per_step: U256,
    /// The lowest payment per second of this worker's own estimated compute time for the
    /// job, in wei (zero: no minimum).
    pub min_wei_per_second: U256,
    /// The most jobs it holds claimed and not yet submitted; more wait, unclaimed.
    pub max_active_jobs: usize,
    /// It claims a job only if its estimated time, times this, fits before the delivery
    /// deadline.
    pub deadline_safety: f64,
    /// An IPFS HTTP gateway to fetch job files from when no peer provides them, such as
    /// `http://127.0.0.1:8080`.
    pub gateway: Option<alloy::transports::http::reqwest::Url>,
    /// The largest blob it downloads from a gateway, in bytes.
    pub max_blob_bytes: u64,
    /// How often it announces its capacity on gossip (when it has a network).
    pub announce_every: Duration,
    /// How often to announce a running job's progress on gossip.
    pub progress_every: Duration,
    /// Threads for training.
    pub threads: usize,
    /// The transaction sender's policy.
    pub send: SendPolicy,
    /// The most row bytes it puts in one transaction when it publishes a demanded state
    /// (docs/protocol.md §7): 64 KiB is about 2M gas with the event's copy, inside any block.
    pub publish_bytes_per_tx: usize,
    /// Debug builds only: train as a worker that falsifies these steps (it adds 1 to a weight
    /// after each) and defend the lies in disputes. The field does not exist in a release
    /// build, so no release binary can cheat with it; tests use it to play a dishonest worker.
    #[cfg(debug_assertions)]
    pub falsify_steps: Vec<u64>,
    /// Debug builds only: never publish a demanded state (a worker that withholds its data).
    #[cfg(debug_assertions)]
    pub withhold: bool,
    /// Debug builds only: train honestly up to this step, then make up every later state hash
    /// of the trace and post the state after this step as the result.
    #[cfg(debug_assertions)]
    pub fabricate_from: Option<u64>,
    /// Debug builds only: post a result CID that nobody provides.
    #[cfg(debug_assertions)]
    pub hide_result: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            min_wei_per_step: U256::ZERO,
            min_wei_per_second: U256::ZERO,
            max_active_jobs: 1,
            deadline_safety: 2.0,
            gateway: None,
            max_blob_bytes: 512 << 20,
            announce_every: Duration::from_secs(60),
            progress_every: Duration::from_secs(1),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            send: SendPolicy::default(),
            publish_bytes_per_tx: 64 << 10,
            #[cfg(debug_assertions)]
            falsify_steps: Vec::new(),
            #[cfg(debug_assertions)]
            withhold: false,
            #[cfg(debug_assertions)]
            fabricate_from: None,
            #[cfg(debug_assertions)]
            hide_result: false,
        }
    }
}

/// The worker's errors.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The chain or the sender failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network failed.
    #[error(transparent)]
    Net(#[from] pedals_p2p::P2pError),
    /// Training failed.
    #[error("training failed: {0}")]
    Ml(#[from] MlError),
    /// A job cannot be posted or its result used; the message says why.
    #[error("{0}")]
    Job(String),
    /// A dataset is unusable.
    #[error(transparent)]
    Data(#[from] pedals_ml::DataError),
    /// A training task panicked or was cancelled.
    #[error("the training task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A zk proof could not be made.
    #[error("zk: {0}")]
    Zk(#[from] pedals_zk::ZkError),
}

/// A worker node for one account.
#[derive(Debug)]
pub struct Worker {
    provider: DynProvider,
    store: Arc<Store>,
    sender: TxSender,
    follower: EventFollower,
    deployment: Deployment,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
    net: Option<pedals_p2p::Client>,
    http: alloy::transports::http::reqwest::Client,
    last_announced: std::sync::Mutex<Option<std::time::Instant>>,
    /// The account's key, to sign progress announcements (transactions go through `sender`).
    signer: PrivateKeySigner,
    /// The same account, for dispute moves (they carry no value and the game's phase guard
    /// refuses a repeated one, so they need no write-ahead intent).
    market: pedals_chain::Market,
    /// The op traces of the steps this worker is defending, by (job, step).
    games: std::sync::Mutex<std::collections::HashMap<(u64, u64), Arc<StepContext>>>,
    /// Proving keys of zk circuits.
    zk: Arc<zk::Keyring>,
    /// The state being published for a data-availability demand, by job.
    publications: std::sync::Mutex<std::collections::HashMap<u64, Arc<availability::Publication>>>,
}

/// How fetching a job's inputs went.
enum Fetched {
    /// Every input is in the store, verified.
    All,
    /// Some input is not available yet (no provider, or providers unreachable).
    Waiting(String),
}

/// A phase that holds the worker's capacity: claimed and not yet submitted.
fn is_busy(phase: &JobPhase) -> bool {
    matches!(
        phase,
        JobPhase::Claiming
            | JobPhase::Claimed
            | JobPhase::Training { .. }
            | JobPhase::Trained
            | JobPhase::Submitting
    )
}

/// `IJobMarket.Verification.Zk`.
const ZK: u8 = 1;
/// The largest batch-inference chunk output (bytes) this worker takes on: if a chunk is
/// demanded, its outputs go on-chain in one `publishBlob` (nodes relay transactions up to
/// 128 KiB).
const MAX_BLOB_BYTES: u64 = 96 << 10;

/// `IJobMarket.Verification.OptimisticInference`: a batch-inference job.
pub const OPTIMISTIC_INFERENCE: u8 = 2;

fn call(to: Address, input: Vec<u8>) -> TransactionRequest {
    TransactionRequest::default().with_to(to).with_input(input)
}

impl Worker {
    /// A worker signing with `signer`, keeping its state in `store`.
    pub async fn new(
        provider: DynProvider,
        signer: PrivateKeySigner,
        store: Arc<Store>,
        deployment: Deployment,
        config: WorkerConfig,
    ) -> Result<Self, NodeError> {
        let market =
            pedals_chain::Market::over(provider.clone(), signer.clone(), deployment.clone());
        market.check_contracts().await?;
        let sender = TxSender::new(
            provider.clone(),
            signer.clone(),
            store.clone(),
            config.send.clone(),
        )
        .await?;
        let follower = EventFollower::new(provider.clone(), store.clone(), deployment.clone());
        let zk = Arc::new(zk::Keyring::new(store.clone()));
        Ok(Self {
            provider,
            store,
            sender,
            follower,
            deployment,
            config,
            metrics: Arc::new(Metrics::default()),
            net: None,
            http: alloy::transports::http::reqwest::Client::new(),
            last_announced: std::sync::Mutex::new(None),
            signer,
            market,
            games: std::sync::Mutex::new(std::collections::HashMap::new()),
            zk,
            publications: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Fetches job inputs from peers over `net` and provides what this node holds.
    pub fn with_network(mut self, net: pedals_p2p::Client) -> Self {
        self.net = Some(net);
        self
    }

    /// Announces on the network every blob this node holds for its jobs (after a restart the
    /// DHT has forgotten them).
    async fn provide_known(&self) -> Result<(), NodeError> {
        let Some(net) = &self.net else {
            return Ok(());
        };
        net.provide(pedals_p2p::account_key(self.address())).await?;
        for record in self.store.jobs()? {
            if matches!(record.phase, JobPhase::Abandoned { .. }) {
                continue;
            }
            let mut cids: Vec<Cid> = [&record.spec_cid, &record.dataset_cid, &record.model_cid]
                .into_iter()
                .flatten()
                .filter_map(|c| pedals_core::parse_cid(c).ok())
                .collect();
            if let Some(result) = &record.result_cid
                && let Ok(cid) = pedals_core::parse_cid(result)
            {
                cids.push(cid);
            }
            for cid in cids {
                if self.store.has_blob(&cid)? {
                    net.provide(cid).await?;
                }
            }
        }
        Ok(())
    }

    /// Downloads whichever of the job's spec, dataset and model the store lacks, each verified
    /// against its CID, and provides them once stored. `Err` means the job cannot be used.
    async fn fetch_inputs(&self, job: &IJobMarket::Job) -> Result<Fetched, String> {
        let spec_cid = JobSpec::cid_for_hash(&job.specHash);
        if let Some(waiting) = self.fetch(spec_cid, "spec").await? {
            return Ok(waiting);
        }
        let spec_bytes = self
            .store
            .blob(&spec_cid)
            .map_err(|e| e.to_string())?
            .ok_or("the spec vanished from the store")?;
        let spec = JobSpec::from_canonical_bytes(&spec_bytes).map_err(|e| e.to_string())?;
        for (cid, what) in [
            (spec.dataset_cid().map_err(|e| e.to_string())?, "dataset"),
            (spec.model_cid().map_err(|e| e.to_string())?, "model"),
        ] {
            if let Some(waiting) = self.fetch(cid, what).await? {
                return Ok(waiting);
            }
        }
        Ok(Fetched::All)
    }

    /// Makes sure blob `cid` is in the store: `Ok(None)` when it is, `Ok(Some(waiting))` when
    /// it cannot be had yet, `Err` when every provider sent bytes that do not match it.
    async fn fetch(&self, cid: Cid, what: &str) -> Result<Option<Fetched>, String> {
        if self.store.has_blob(&cid).map_err(|e| e.to_string())? {
            // Held already (put there by hand, or kept from an earlier job): still provide it,
            // so validators can fetch the job's inputs from this worker.
            if let Some(net) = &self.net
                && let Err(e) = net.provide(cid).await
            {
                warn!(target: "pedals::node", %cid, error = %e, "cannot announce a held blob");
            }
            return Ok(None);
        }
        let mut waiting = Vec::new();
        if let Some(net) = &self.net {
            match net.fetch_blob(cid).await {
                Ok((bytes, from)) => {
                    self.keep(cid, &bytes, &from.to_string(), what).await?;
                    return Ok(None);
                }
                Err(pedals_p2p::P2pError::AllProvidersFailed { errors, bad, .. })
                    if bad == errors.len() && self.config.gateway.is_none() =>
                {
                    return Err(format!(
                        "every provider of its {what} {cid} sent bytes that do not match the CID"
                    ));
                }
                Err(e) => waiting.push(format!("from peers: {e}")),
            }
        }
        if let Some(gateway) = &self.config.gateway {
            match gateway::fetch(&self.http, gateway, &cid, self.config.max_blob_bytes).await {
                Ok(bytes) => {
                    if let Err(e) = pedals_core::verify_cid(&cid, &bytes) {
                        return Err(format!(
                            "the gateway {gateway} sent bytes for its {what} {cid} that do not \
                             match the CID ({e})"
                        ));
                    }
                    self.keep(cid, &bytes, gateway.as_str(), what).await?;
                    return Ok(None);
                }
                Err(e) => waiting.push(e),
            }
        }
        if waiting.is_empty() {
            waiting.push("this node has no network and no gateway".into());
        }
        Ok(Some(Fetched::Waiting(format!(
            "the {what} {cid}: {}",
            waiting.join("; ")
        ))))
    }

    /// Stores a verified blob and provides it.
    async fn keep(&self, cid: Cid, bytes: &[u8], from: &str, what: &str) -> Result<(), String> {
        self.store
            .put_blob_expecting(&cid, bytes)
            .map_err(|e| e.to_string())?;
        info!(target: "pedals::node", %cid, from, bytes = bytes.len(), what, "fetched and verified");
        if let Some(net) = &self.net
            && let Err(e) = net.provide(cid).await
        {
            warn!(target: "pedals::node", %cid, error = %e, "cannot announce a fetched blob");
        }
        Ok(())
    }

    /// The worker's metrics (serve them with [`serve_metrics`]).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The worker's account.
    pub fn address(&self) -> Address {
        self.sender.address()
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Tops the account's stake up to `amount` wei (a no-op when it has that much).
    pub async fn ensure_stake(&self, amount: U256) -> Result<(), NodeError> {
        let stakes = StakeManager::new(self.deployment.stake_manager, self.provider.clone());
        let account = stakes
            .accountOf(self.address())
            .call()
            .await
            .map_err(ChainError::Contract)?;
        let have = U256::from(account.staked);
        if have >= amount {
            return Ok(());
        }
        let tx = call(
            self.deployment.stake_manager,
            StakeManager::stakeCall {}.abi_encode(),
        )
        .with_value(amount - have);
        self.sender.send(0, Action::Stake, tx).await?;
        Ok(())
    }

    /// Finishes whatever the last run left in flight: every stored, unsettled transaction.
    pub async fn resume(&self) -> Result<(), NodeError> {
        self.provide_known().await?;
        for (intent, result) in self.sender.resume().await? {
            if let Err(e) = result {
                warn!(target: "pedals::node", job = intent.job_id, action = %intent.action, error = %e, "a resumed transaction did not succeed");
            }
        }
        Ok(())
    }

    /// Runs until `shutdown` resolves: resume, then tick every `interval`.
    pub async fn run(
        &self,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), NodeError> {
        self.resume().await?;
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.tick().await {
                self.metrics.failed_rounds.inc();
                warn!(target: "pedals::node", error = %e, "tick failed; retrying");
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One round: read new chain events into job records, then move every active job as far
    /// as it can go now.
    pub async fn tick(&self) -> Result<(), NodeError> {
        let batch = self.follower.poll().await?;
        for event in &batch.events {
            self.apply(event)?;
        }
        self.follower.commit(&batch)?;
        for record in self.store.active_jobs()? {
            let id = record.job_id;
            if let Err(e) = self.advance(record).await {
                warn!(target: "pedals::node", job = id, error = %e, "job step failed; will retry");
            }
        }
        self.update_metrics().await?;
        self.announce_capacity().await?;
        self.metrics.round_ok();
        Ok(())
    }

    async fn update_metrics(&self) -> Result<(), NodeError> {
        let mut counts = std::collections::BTreeMap::<&'static str, i64>::new();
        for record in self.store.jobs()? {
            *counts.entry(record.phase.name()).or_default() += 1;
        }
        self.metrics.jobs.clear();
        for (phase, n) in counts {
            self.metrics
                .jobs
                .get_or_create(&PhaseLabel {
                    phase: phase.to_string(),
                })
                .set(n);
        }
        self.metrics
            .open_transactions
            .set(self.store.open_intents()?.len() as i64);
        if let Some(net) = &self.net {
            self.metrics.record_network(net.stats().snapshot());
        }
        if let Some(cursor) = self.store.cursor()? {
            let head = self
                .provider
                .get_block_number()
                .await
                .map_err(ChainError::from)?;
            self.metrics
                .chain_lag_blocks
                .set(head.saturating_sub(cursor.block) as i64);
        }
        Ok(())
    }

    fn apply(&self, event: &ChainEvent) -> Result<(), NodeError> {
        let ChainEvent::JobMarket(JobMarket::JobMarketEvents::JobPosted(posted), _) = event else {
            return Ok(());
        };
        let Ok(id) = u64::try_from(posted.jobId) else {
            return Ok(());
        };
        if self.store.job(id)?.is_none() {
            let mut record = JobRecord::new(id, JobPhase::Seen);
            // A zk job's spec hash is its Poseidon job commitment, not the digest of a file.
            if posted.request.verification != ZK {
                record.spec_cid = Some(JobSpec::cid_for_hash(&posted.request.specHash).to_string());
            }
            record.dataset_cid = pedals_core::cid_from_bytes(&posted.request.datasetCid)
                .ok()
                .map(|c| c.to_string());
            record.model_cid = pedals_core::cid_from_bytes(&posted.request.modelCid)
                .ok()
                .map(|c| c.to_string());
            self.store.insert_job(&record)?;
            info!(target: "pedals::node", job = id, payment = %posted.payment, "job seen");
        }
        Ok(())
    }

    async fn chain_job(&self, id: u64) -> Result<(IJobMarket::Job, JobStatus), NodeError> {
        let job = JobMarket::new(self.deployment.job_market, self.provider.clone())
            .getJob(U256::from(id))
            .call()
            .await
            .map_err(ChainError::Contract)?;
        let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
        Ok((job, status))
    }

    fn abandon(&self, id: u64, reason: String) -> Result<(), NodeError> {
        warn!(target: "pedals::node", job = id, %reason, "job abandoned");
        self.store.advance(id, JobPhase::Abandoned { reason })?;
        Ok(())
    }

    /// The spec, dataset and initial model of a job, from the store, each verified against
    /// its CID and against the job's on-chain commitments.
    fn load_inputs(
        &self,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<Option<(JobSpec, Dataset, MlpState)>, String> {
        let spec_cid = JobSpec::cid_for_hash(&job.specHash);
        let Some(spec_bytes) = self.store.blob(&spec_cid).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let spec = JobSpec::from_canonical_bytes(&spec_bytes).map_err(|e| e.to_string())?;
        if spec.train.steps != u64::from(job.steps) {
            return Err(format!(
                "the spec trains {} steps but the job pays for {}",
                spec.train.steps, job.steps
            ));
        }
        // The market lets only a batch-inference job meet a data demand with a blob, so the
        // posted kind must be the spec's (docs/protocol.md §7).
        let inference = spec.inference.is_some();
        if job.verification != ZK && inference != (job.verification == OPTIMISTIC_INFERENCE) {
            return Err(format!(
                "the spec is a {} job but it was posted as {}",
                if inference {
                    "batch-inference"
                } else {
                    "training"
                },
                if inference {
                    "a training job"
                } else {
                    "a batch-inference job"
                }
            ));
        }
        // A demanded chunk's outputs go on-chain in one transaction: refuse chunks too large.
        if let Some(inf) = &spec.inference {
            let width = spec.train.model.layers.last().copied().unwrap_or(0);
            let bytes = inf.chunk.saturating_mul(width as u64).saturating_mul(4);
            if bytes > MAX_BLOB_BYTES {
                return Err(format!(
                    "its chunks' outputs are {bytes} bytes, more than the {MAX_BLOB_BYTES} that \
                     one transaction can publish if a chunk is demanded; ask for smaller chunks"
                ));
            }
        }
        let dataset_cid = spec.dataset_cid().map_err(|e| e.to_string())?;
        let model_cid = spec.model_cid().map_err(|e| e.to_string())?;
        if record.dataset_cid.as_deref() != Some(dataset_cid.to_string().as_str())
            || record.model_cid.as_deref() != Some(model_cid.to_string().as_str())
        {
            return Err("the posted dataset or model CID differs from the spec's".into());
        }
        let (Some(data), Some(model)) = (
            self.store.blob(&dataset_cid).map_err(|e| e.to_string())?,
            self.store.blob(&model_cid).map_err(|e| e.to_string())?,
        ) else {
            return Ok(None);
        };
        let dataset = Dataset::from_canonical_bytes(&data).map_err(|e| e.to_string())?;
        spec.train
            .model
            .check_dataset(&dataset)
            .map_err(|e| e.to_string())?;
        if let Some(inference) = &spec.inference {
            let chunks = inference::chunk_count(dataset.len() as u64, inference.chunk);
            if chunks != spec.train.steps {
                return Err(format!(
                    "the spec runs {} chunks but {} samples make {chunks}",
                    spec.train.steps,
                    dataset.len()
                ));
            }
        }
        let init = MlpState::from_bytes(&spec.train.model, &model).map_err(|e| e.to_string())?;
        spec.check_commitments(&dataset, &init)
            .map_err(|e| e.to_string())?;
        Ok(Some((spec, dataset, init)))
    }

    /// Plays this worker's side of the open dispute game of job `id`, if it is its turn: the op
    /// trace of the challenged step comes from its own checkpoints (replayed as it trained).
    async fn defend(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(), NodeError> {
        let job_id = U256::from(id);
        let view = self.market.game_of(job_id).await?;
        if view.phase == pedals_chain::Phase::None || !view.worker_to_move {
            return Ok(());
        }
        let step = u64::from(
            self.market
                .job_market()
                .getChallenge(job_id)
                .call()
                .await
                .map_err(|e| NodeError::Job(format!("reading the challenge: {e}")))?
                .step,
        );
        let Some((_, hashes)) = self.store.latest_trace(id)? else {
            return Err(NodeError::Job(format!(
                "job {id} is disputed but this node has no trace of it"
            )));
        };
        let trace =
            pedals_core::TraceCommitment::new(hashes).map_err(|e| NodeError::Job(e.to_string()))?;
        let ctx = self.dispute_context(id, job, record, step, &trace)?;
        let turn = pedals_verifier::game::defend(&self.market, job_id, &ctx, &trace)
            .await
            .map_err(|e| NodeError::Job(format!("defending job {id}: {e}")))?;
        if let pedals_verifier::game::Turn::Moved(name, tx) = turn {
            info!(target: "pedals::node", job = id, step, mv = name, tx = %tx.hash, "dispute move");
        }
        Ok(())
    }

    /// What this worker serves and publishes from: its store, replayed as it trained.
    fn store_source(&self) -> StoreSource {
        let source = StoreSource::new(self.store.clone(), self.config.threads);
        #[cfg(debug_assertions)]
        let source = source.falsifying(self.config.falsify_steps.iter().copied());
        source
    }

    /// This worker's op trace of step `step` of job `id` (built once per dispute).
    fn dispute_context(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
        step: u64,
        trace: &pedals_core::TraceCommitment,
    ) -> Result<Arc<StepContext>, NodeError> {
        if let Some(ctx) = self
            .games
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(id, step))
        {
            return Ok(ctx.clone());
        }
        let (spec, dataset, _) = self
            .load_inputs(job, record)
            .map_err(NodeError::Job)?
            .ok_or_else(|| NodeError::Job(format!("the inputs of job {id} are gone")))?;
        let source = self.store_source();
        let before = MlpState::from_bytes(
            &spec.train.model,
            &source.state_after(id, step).map_err(NodeError::Job)?,
        )?;
        let trainer = source.trainer(&spec)?;
        let claimed = trainer.replay_step(&dataset, &before, step)?;
        if Some(claimed.state_hash()?) != trace.hash(step + 1) {
            return Err(NodeError::Job(format!(
                "the replayed state after step {} of job {id} is not the one this node posted",
                step + 1
            )));
        }
        let op_trace = trainer.claimed_op_trace(&dataset, &before, step, &claimed)?;
        let ctx = Arc::new(
            StepContext::new(spec, Arc::new(dataset), step, before, op_trace)
                .map_err(|e| NodeError::Job(e.to_string()))?,
        );
        self.games
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((id, step), ctx.clone());
        Ok(ctx)
    }

    async fn advance(&self, record: JobRecord) -> Result<(), NodeError> {
        let id = record.job_id;
        let (job, status) = self.chain_job(id).await?;
        let mine = job.worker == self.address();
        match record.phase {
            JobPhase::Seen => {
                self.store.advance(id, JobPhase::Fetching)?;
            }
            JobPhase::Fetching | JobPhase::Ready if status != JobStatus::Posted => {
                self.abandon(
                    id,
                    format!("the job is {status:?} on-chain, no longer open"),
                )?;
            }
            JobPhase::Fetching if job.verification == ZK => {
                match self.fetch_zk(&job, &record).await {
                    Ok(Fetched::All) => match self.load_zk(&job, &record) {
                        Ok(Some(_)) => {
                            self.store.advance(id, JobPhase::Ready)?;
                        }
                        Ok(None) => {
                            debug!(target: "pedals::node", job = id, "waiting for the job's data");
                        }
                        Err(reason) => {
                            self.abandon(id, format!("its data cannot be used: {reason}"))?;
                        }
                    },
                    Ok(Fetched::Waiting(reason)) => {
                        debug!(target: "pedals::node", job = id, %reason, "waiting for the job's data");
                    }
                    Err(reason) => {
                        self.abandon(id, format!("its data cannot be used: {reason}"))?;
                    }
                }
            }
            JobPhase::Ready if job.verification == ZK => {
                if self.busy_with_others(id)? {
                    return Ok(());
                }
                self.prove_and_submit(id, &job, &record).await?;
            }
            JobPhase::Submitting if job.verification == ZK => {
                self.settle(id, Action::Submit, JobPhase::Submitted, JobPhase::Ready)
                    .await?;
            }
            JobPhase::Fetching => match self.fetch_inputs(&job).await {
                Ok(Fetched::All) => match self.load_inputs(&job, &record) {
                    Ok(Some(_)) => {
                        self.store.advance(id, JobPhase::Ready)?;
                    }
                    Ok(None) => {
                        debug!(target: "pedals::node", job = id, "waiting for the job's data");
                    }
                    Err(reason) => {
                        self.abandon(id, format!("its data cannot be used: {reason}"))?;
                    }
                },
                Ok(Fetched::Waiting(reason)) => {
                    debug!(target: "pedals::node", job = id, %reason, "waiting for the job's data");
                }
                Err(reason) => self.abandon(id, format!("its data cannot be used: {reason}"))?,
            },
            JobPhase::Ready => {
                // Capacity first: a waiting job is not timed again every round.
                if self.busy_with_others(id)? {
                    debug!(target: "pedals::node", job = id, max = self.config.max_active_jobs, "at capacity; the job waits");
                    return Ok(());
                }
                if let Some(reason) = self.decline_reason(id, &job, &record).await? {
                    return self.abandon(id, reason);
                }
                let tx = call(
                    self.deployment.job_market,
                    JobMarket::claimJobCall {
                        jobId: U256::from(id),
                    }
                    .abi_encode(),
                );
                let intent = self.sender.sign(id, Action::Claim, tx).await?;
                self.store
                    .advance_with_intent(id, JobPhase::Claiming, &intent)?;
                self.settle_claim(id).await?;
            }
            JobPhase::Claiming => self.settle_claim(id).await?,
            JobPhase::Claimed | JobPhase::Training { .. } => {
                if !mine || status != JobStatus::Claimed {
                    return self.abandon(id, format!("the claim is gone ({status:?} on-chain)"));
                }
                self.train(id, &job, &record).await?;
            }
            JobPhase::Trained => {
                let (root, final_hash, final_proof, result) = self.result_of(id, &job, &record)?;
                let tx = call(
                    self.deployment.job_market,
                    JobMarket::submitResultCall {
                        jobId: U256::from(id),
                        steps: U256::from(job.steps),
                        traceRoot: root,
                        finalStateHash: final_hash,
                        finalProof: final_proof,
                        resultCid: Bytes::from(result.to_bytes()),
                    }
                    .abi_encode(),
                );
                let intent = self.sender.sign(id, Action::Submit, tx).await?;
                self.store
                    .advance_with_intent(id, JobPhase::Submitting, &intent)?;
                self.settle(id, Action::Submit, JobPhase::Submitted, JobPhase::Trained)
                    .await?;
            }
            JobPhase::Submitting => {
                self.settle(id, Action::Submit, JobPhase::Submitted, JobPhase::Trained)
                    .await?;
            }
            JobPhase::Submitted => match status {
                JobStatus::Disputed => {
                    self.store.advance(id, JobPhase::Disputed)?;
                }
                JobStatus::Submitted => {
                    let now = self.now().await?;
                    if now >= job.windowEnd.to::<u64>() {
                        let tx = call(
                            self.deployment.job_market,
                            JobMarket::finalizeCall {
                                jobId: U256::from(id),
                            }
                            .abi_encode(),
                        );
                        let intent = self.sender.sign(id, Action::Finalize, tx).await?;
                        self.store
                            .advance_with_intent(id, JobPhase::Finalizing, &intent)?;
                        self.finish(id).await?;
                    }
                }
                JobStatus::Demanded => self.publish_demanded(id).await?,
                JobStatus::Finalized => {
                    self.store.advance(id, JobPhase::Finalizing)?;
                    self.finish(id).await?;
                }
                other => self.abandon(id, format!("the job ended {other:?} on-chain"))?,
            },
            JobPhase::Finalizing => self.finish(id).await?,
            JobPhase::Disputed => {
                if matches!(status, JobStatus::Submitted | JobStatus::Demanded) {
                    self.store.advance(id, JobPhase::Submitted)?;
                } else if status == JobStatus::Disputed {
                    self.defend(id, &job, &record).await?;
                } else if status.is_terminal() && status != JobStatus::Finalized {
                    self.abandon(id, format!("the dispute ended {status:?}"))?;
                }
            }
            JobPhase::Finalized | JobPhase::Abandoned { .. } => {}
        }
        Ok(())
    }

    /// Publishes what this worker can take on (its backend, its last measured speed, its
    /// price, its free slots) on the capacity topic, every `announce_every`. Gossip is a hint
    /// for requesters; with no peers yet it tries again next round.
    async fn announce_capacity(&self) -> Result<(), NodeError> {
        let Some(net) = &self.net else {
            return Ok(());
        };
        let due = self
            .last_announced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none_or(|t| t.elapsed() >= self.config.announce_every);
        if !due {
            return Ok(());
        }
        let busy = self
            .store
            .active_jobs()?
            .iter()
            .filter(|r| is_busy(&r.phase))
            .count();
        let announcement = pedals_p2p::Announcement::Capacity(pedals_p2p::CapacityAnnouncement {
            chain_id: self.deployment.chain_id,
            worker: self.address(),
            backends: vec![format!("cpu-{}", pedals_ml::exact::Isa::detect())],
            steps_per_second: self.metrics.training_steps_per_second.get(),
            min_wei_per_step: self.config.min_wei_per_step,
            free_slots: u32::try_from(self.config.max_active_jobs.max(1).saturating_sub(busy))
                .unwrap_or(u32::MAX),
            announced_at: pedals_p2p::unix_now(),
        });
        match net.publish(&announcement).await {
            Ok(()) => {
                *self
                    .last_announced
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(std::time::Instant::now());
            }
            Err(e) => debug!(target: "pedals::node", error = %e, "capacity not announced yet"),
        }
        Ok(())
    }

    /// Whether other jobs hold this worker's capacity (claimed and not yet submitted).
    fn busy_with_others(&self, id: u64) -> Result<bool, NodeError> {
        let busy = self
            .store
            .active_jobs()?
            .iter()
            .filter(|r| r.job_id != id && is_busy(&r.phase))
            .count();
        Ok(busy >= self.config.max_active_jobs.max(1))
    }

    /// Why this worker should not take the job, if it should not: the price per step, the
    /// claim deadline, its own speed on this very job against the delivery deadline, and the
    /// price per second of that time.
    async fn decline_reason(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<Option<String>, NodeError> {
        let per_step = U256::from(job.payment) / U256::from(job.steps.max(1));
        if per_step < self.config.min_wei_per_step {
            return Ok(Some(format!(
                "it pays {per_step} wei per step, below this worker's minimum of {}",
                self.config.min_wei_per_step
            )));
        }
        let now = self.now().await?;
        if now > job.claimDeadline.to::<u64>() {
            return Ok(Some("its claim deadline passed".into()));
        }
        let (spec, dataset, init) = match self.load_inputs(job, record) {
            Ok(Some(inputs)) => inputs,
            Ok(None) => return Ok(Some("its data is no longer in the store".into())),
            Err(reason) => return Ok(Some(reason)),
        };
        let seconds = self.estimate_seconds(spec, dataset, init).await?;
        let left = job.deliveryDeadline.to::<u64>().saturating_sub(now);
        info!(target: "pedals::node", job = id, estimated_seconds = seconds, deadline_in = left, "estimated on this worker");
        if seconds * self.config.deadline_safety > left as f64 {
            return Ok(Some(format!(
                "it would take about {seconds:.0} s here (measured on its own model and data) \
                 and is due in {left} s"
            )));
        }
        if self.config.min_wei_per_second > U256::ZERO {
            // wei per second = payment / seconds, compared without floats on the payment.
            let millis = U256::from((seconds * 1000.0).ceil().max(1.0) as u64);
            let per_second = U256::from(job.payment) * U256::from(1000u64) / millis;
            if per_second < self.config.min_wei_per_second {
                return Ok(Some(format!(
                    "it pays about {per_second} wei per second of this worker's time, below \
                     its minimum of {}",
                    self.config.min_wei_per_second
                )));
            }
        }
        Ok(None)
    }

    /// Seconds this worker needs for the whole job, from timing a few of its steps (or its
    /// first chunk) on the job's own model and data. The first step pays for warm-up, so the
    /// estimate errs long.
    async fn estimate_seconds(
        &self,
        spec: JobSpec,
        dataset: Dataset,
        init: MlpState,
    ) -> Result<f64, NodeError> {
        let threads = self.config.threads;
        tokio::task::spawn_blocking(move || -> Result<f64, NodeError> {
            let trainer = Trainer::new(CpuOps::new(threads), spec.train.clone())?;
            let started = std::time::Instant::now();
            let (probe, total) = if let Some(inf) = spec.inference {
                inference::run_chunk(&trainer, &dataset, &init, inf.chunk, 0)?;
                (1, spec.train.steps)
            } else {
                let probe = spec.train.steps.min(3);
                let mut state = init;
                for step in 0..probe {
                    state = trainer.replay_step(&dataset, &state, step)?;
                }
                (probe, spec.train.steps)
            };
            Ok(started.elapsed().as_secs_f64() / probe.max(1) as f64 * total as f64)
        })
        .await?
    }

    /// Downloads a zk job's model and input batch (it has no spec file).
    async fn fetch_zk(&self, job: &IJobMarket::Job, record: &JobRecord) -> Result<Fetched, String> {
        zk::circuit_of(job.zkCircuit)?;
        for (cid, what) in [(&record.dataset_cid, "input"), (&record.model_cid, "model")] {
            let cid = cid
                .as_deref()
                .and_then(|c| pedals_core::parse_cid(c).ok())
                .ok_or_else(|| format!("its {what} CID is not a valid CID"))?;
            if let Some(waiting) = self.fetch(cid, what).await? {
                return Ok(waiting);
            }
        }
        Ok(Fetched::All)
    }

    /// A zk job's circuit and statement inputs, from the store, checked against its job
    /// commitment; `Ok(None)` while a file is missing.
    fn load_zk(
        &self,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<Option<(&'static pedals_zk::Circuit, pedals_zk::ZkJob)>, String> {
        let circuit = zk::circuit_of(job.zkCircuit)?;
        let blob = |cid: &Option<String>| -> Result<Option<Vec<u8>>, String> {
            let cid = cid
                .as_deref()
                .and_then(|c| pedals_core::parse_cid(c).ok())
                .ok_or("a posted CID is not valid")?;
            self.store.blob(&cid).map_err(|e| e.to_string())
        };
        let (Some(model), Some(dataset)) = (blob(&record.model_cid)?, blob(&record.dataset_cid)?)
        else {
            return Ok(None);
        };
        Ok(Some((
            circuit,
            zk::load(circuit, &model, &dataset, job.specHash)?,
        )))
    }

    /// Proves a zk job on the blocking pool, stores and provides the logits, and submits the
    /// proof (its intent stored first, like every transaction). A submission that cannot
    /// succeed (another worker's proof won, the job was cancelled, or this worker's keys do not
    /// match the registered verifier) abandons the job.
    async fn prove_and_submit(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(), NodeError> {
        let per_sample = U256::from(job.payment) / U256::from(job.steps.max(1));
        if per_sample < self.config.min_wei_per_step {
            return self.abandon(
                id,
                format!(
                    "it pays {per_sample} wei per sample, below this worker's minimum of {}",
                    self.config.min_wei_per_step
                ),
            );
        }
        if self.now().await? > job.deliveryDeadline.to::<u64>() {
            return self.abandon(id, "its delivery deadline passed".into());
        }
        let (circuit, statement) = match self.load_zk(job, record) {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return self.abandon(id, "its data is no longer in the store".into()),
            Err(reason) => return self.abandon(id, reason),
        };
        let keyring = self.zk.clone();
        let store = self.store.clone();
        let worker = self.address().into_array();
        let started = std::time::Instant::now();
        let proven = tokio::task::spawn_blocking(move || -> Result<zk::Proven, NodeError> {
            let keys = keyring.keys(circuit)?;
            zk::prove(&store, &keys, &statement, worker)
        })
        .await??;
        info!(target: "pedals::node", job = id, circuit = circuit.name, output_commitment = %proven.output_commitment, seconds = started.elapsed().as_secs_f64(), "proven");
        self.store
            .update_job(id, |r| r.result_cid = Some(proven.result.to_string()))?;
        if let Some(net) = &self.net {
            net.provide(proven.result).await?;
        }
        let tx = call(
            self.deployment.job_market,
            JobMarket::submitZkResultCall {
                jobId: U256::from(id),
                outputCommitment: proven.output_commitment,
                resultCid: zk::cid_bytes(&proven.result),
                proof: proven.proof,
            }
            .abi_encode(),
        );
        // Signing estimates the gas, so a submission bound to revert fails here, unsent.
        let intent = match self.sender.sign(id, Action::Submit, tx).await {
            Ok(intent) => intent,
            Err(e) => return self.abandon(id, format!("its proof cannot be submitted: {e}")),
        };
        self.store
            .advance_with_intent(id, JobPhase::Submitting, &intent)?;
        self.settle(id, Action::Submit, JobPhase::Submitted, JobPhase::Ready)
            .await
    }

    async fn now(&self) -> Result<u64, NodeError> {
        Ok(pedals_chain::chain_time(&self.provider).await?)
    }

    /// Drives the stored claim; a lost race abandons the job (only gas was spent).
    async fn settle_claim(&self, id: u64) -> Result<(), NodeError> {
        let Some(intent) = self.store.intent(id, Action::Claim)? else {
            return Ok(());
        };
        match self.sender.drive(intent).await {
            Ok(outcome) => {
                info!(target: "pedals::node", job = id, tx = %outcome.hash, "claimed");
                self.store.advance(id, JobPhase::Claimed)?;
            }
            Err(e) => {
                let (job, _) = self.chain_job(id).await?;
                if job.worker == self.address() {
                    self.store.advance(id, JobPhase::Claimed)?;
                } else {
                    self.abandon(id, format!("the claim failed ({e}); another worker has it"))?;
                }
            }
        }
        Ok(())
    }

    /// Drives the stored `action`; success moves to `done`, a revert back to `retry`.
    async fn settle(
        &self,
        id: u64,
        action: Action,
        done: JobPhase,
        retry: JobPhase,
    ) -> Result<(), NodeError> {
        let Some(intent) = self.store.intent(id, action)? else {
            return Ok(());
        };
        match self.sender.drive(intent).await {
            Ok(_) => {
                self.store.advance(id, done)?;
            }
            Err(e @ (ChainError::TxReverted(_) | ChainError::TxDropped { .. })) => {
                warn!(target: "pedals::node", job = id, %action, error = %e, "will sign again");
                self.store.advance(id, retry)?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Finalize (if still needed), then withdraw the credit.
    async fn finish(&self, id: u64) -> Result<(), NodeError> {
        let (_, status) = self.chain_job(id).await?;
        if status != JobStatus::Finalized {
            self.settle(
                id,
                Action::Finalize,
                JobPhase::Finalizing,
                JobPhase::Submitted,
            )
            .await?;
            let (_, status) = self.chain_job(id).await?;
            if status != JobStatus::Finalized {
                return Ok(());
            }
        }
        let credit = JobMarket::new(self.deployment.job_market, self.provider.clone())
            .creditOf(self.address())
            .call()
            .await
            .map_err(ChainError::Contract)?;
        if !credit.is_zero() || self.store.intent(id, Action::Withdraw)?.is_some() {
            let tx = call(
                self.deployment.job_market,
                JobMarket::withdrawCall {}.abi_encode(),
            );
            let outcome = self.sender.send(id, Action::Withdraw, tx).await?;
            info!(target: "pedals::node", job = id, %credit, tx = %outcome.hash, "paid and withdrawn");
        }
        self.store.advance(id, JobPhase::Finalized)?;
        Ok(())
    }

    /// Trains job `id`, from the latest checkpoint stored with its trace if there is one (a
    /// restart after a crash in training), else from the initial model; stores every
    /// checkpoint with its trace as it goes, and records the trace root.
    async fn train(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(), NodeError> {
        let (spec, dataset, init) = match self.load_inputs(job, record) {
            Ok(Some(inputs)) => inputs,
            Ok(None) => return self.abandon(id, "its data is no longer in the store".into()),
            Err(reason) => return self.abandon(id, reason),
        };
        if let Some(inference) = spec.inference {
            return self.infer(id, &spec, dataset, init, inference.chunk).await;
        }
        let (start, prefix, from) = match self.store.resume_point(id)? {
            Some(point) if point.steps_done > 0 => (
                MlpState::from_bytes(&spec.train.model, &point.state)?,
                point.hashes,
                point.steps_done,
            ),
            _ => (init, Vec::new(), 0),
        };
        self.store
            .advance(id, JobPhase::Training { steps_done: from })?;
        if from > 0 {
            info!(target: "pedals::node", job = id, from, "resuming training from a checkpoint");
        }
        let threads = self.config.threads;
        #[cfg(debug_assertions)]
        let falsify = self.config.falsify_steps.clone();
        let store = self.store.clone();
        let started = std::time::Instant::now();
        let done = Arc::new(AtomicU64::new(from));
        let counter = done.clone();
        let training = tokio::task::spawn_blocking(move || {
            let persist = |done: u64, bytes: &[u8], hashes: &[B256]| -> Result<(), StoreError> {
                store.put_resumable_checkpoint(id, done, bytes, hashes)?;
                store.advance(id, JobPhase::Training { steps_done: done })?;
                Ok(())
            };
            let trainer =
                Trainer::new(CpuOps::new(threads), spec.train.clone())?.reporting(counter);
            #[cfg(debug_assertions)]
            let trainer = trainer.falsifying(falsify);
            trainer.train_from(&dataset, &start, prefix, |done, bytes, hashes| {
                persist(done, bytes, hashes).map_err(|e| MlError::Checkpoint(e.to_string()))
            })
        });
        let outcome = self
            .reporting_progress(id, u64::from(job.steps), &done, training)
            .await??;
        let steps = outcome.hashes.len() as u64 - 1;
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.steps_trained.inc_by(steps - from);
        if seconds > 0.0 {
            self.metrics
                .training_steps_per_second
                .set((steps - from) as f64 / seconds);
        }
        #[cfg(debug_assertions)]
        if let Some(from) = self.config.fabricate_from {
            let (root, result) =
                cheat::fabricate(&self.store_source(), &self.store, id, from, outcome.hashes)?;
            return self.finish_run(id, root, result).await;
        }
        let root = outcome.trace()?.root();
        let result = cid_of(&outcome.final_state.to_bytes()?);
        self.finish_run(id, root, result).await?;
        info!(target: "pedals::node", job = id, steps, from, trace_root = %root, seconds = started.elapsed().as_secs_f64(), "trained");
        Ok(())
    }

    /// Waits for a training or inference run while announcing, every `progress_every`, the
    /// steps it has done (read from `done`), and once more at the end, so that anyone watching
    /// the job sees it move; each advance also counts as a good round for `/health`.
    /// Announcing is best effort: without peers nothing is sent.
    async fn reporting_progress<T>(
        &self,
        id: u64,
        steps: u64,
        done: &AtomicU64,
        run: tokio::task::JoinHandle<T>,
    ) -> Result<T, tokio::task::JoinError> {
        tokio::pin!(run);
        let mut every = tokio::time::interval(self.config.progress_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = None;
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                _ = every.tick() => {
                    let now = done.load(Ordering::Relaxed);
                    if last != Some(now) {
                        // A run whose steps advance is a live worker, though its round has
                        // not finished: /health stays green through a long job.
                        self.metrics.round_ok();
                        self.announce_progress(id, now, steps).await;
                        last = Some(now);
                    }
                }
            }
        };
        if outcome.is_ok() && last != Some(steps) {
            self.announce_progress(id, steps, steps).await;
        }
        outcome
    }

    /// Publishes one signed progress announcement for job `id`.
    async fn announce_progress(&self, id: u64, steps_done: u64, steps: u64) {
        let Some(net) = &self.net else {
            return;
        };
        let chain_id = self.deployment.chain_id;
        let market = self.deployment.job_market;
        let announced_at = pedals_p2p::unix_now();
        let message = pedals_p2p::ProgressAnnouncement::message(
            chain_id,
            market,
            id,
            steps_done,
            steps,
            announced_at,
        );
        let signature = match self.signer.sign_message_sync(message.as_slice()) {
            Ok(signature) => signature,
            Err(e) => {
                warn!(target: "pedals::node", job = id, error = %e, "cannot sign a progress announcement");
                return;
            }
        };
        let announcement = pedals_p2p::Announcement::Progress(pedals_p2p::ProgressAnnouncement {
            chain_id,
            market,
            job_id: id,
            worker: self.address(),
            steps_done,
            steps,
            announced_at,
            signature,
        });
        if let Err(e) = net.publish(&announcement).await {
            debug!(target: "pedals::node", job = id, error = %e, "progress not announced");
        }
    }

    /// Records a finished run (its trace root and result), marks the job trained, and
    /// provides the result on the network.
    async fn finish_run(&self, id: u64, root: B256, result: Cid) -> Result<(), NodeError> {
        self.store.update_job(id, |r| {
            r.trace_root = Some(root);
            r.result_cid = Some(result.to_string());
        })?;
        self.store.advance(id, JobPhase::Trained)?;
        if let Some(net) = &self.net {
            net.provide(result).await?;
            // Validators find this node by the worker's account, whoever provides the result.
            net.provide(pedals_p2p::account_key(self.address())).await?;
        }
        Ok(())
    }

    /// Runs a batch-inference job: every chunk's outputs stored as the checkpoint after that
    /// step (the model as checkpoint 0), the trace with the last, and the result blob.
    async fn infer(
        &self,
        id: u64,
        spec: &JobSpec,
        dataset: Dataset,
        model: MlpState,
        chunk: u64,
    ) -> Result<(), NodeError> {
        self.store
            .advance(id, JobPhase::Training { steps_done: 0 })?;
        let threads = self.config.threads;
        let store = self.store.clone();
        let train = spec.train.clone();
        let started = std::time::Instant::now();
        let done = Arc::new(AtomicU64::new(0));
        let counter = done.clone();
        let running = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
            let model_bytes = model.to_bytes()?;
            let trainer = Trainer::new(CpuOps::new(threads), train)?.reporting(counter);
            let outcome = inference::run(&trainer, &dataset, &model, &model_bytes, chunk)?;
            let result = store.put_blob(&outcome.result_bytes())?;
            store.put_checkpoint(id, 0, &model_bytes)?;
            let last = outcome.chunks.len() as u64;
            for (i, out) in outcome.chunks.iter().enumerate() {
                let step = i as u64 + 1;
                if step == last {
                    store.put_resumable_checkpoint(id, step, out, &outcome.hashes)?;
                } else {
                    store.put_checkpoint(id, step, out)?;
                }
            }
            let root = pedals_core::TraceCommitment::new(outcome.hashes)
                .map_err(|e| MlError::Checkpoint(e.to_string()))?
                .root();
            Ok((root, result))
        });
        let (root, result) = self
            .reporting_progress(id, spec.train.steps, &done, running)
            .await??;
        self.metrics.steps_trained.inc_by(spec.train.steps);
        info!(target: "pedals::node", job = id, chunks = spec.train.steps, trace_root = %root, result = %result, seconds = started.elapsed().as_secs_f64(), "inference done");
        self.finish_run(id, root, result).await
    }

    /// The commitments to submit: trace root, final state hash, its proof as the trace's last
    /// leaf, and the result's CID.
    fn result_of(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(B256, B256, Vec<B256>, Cid), NodeError> {
        let steps = u64::from(job.steps);
        let root = record.trace_root.ok_or(StoreError::Corrupt {
            what: format!("job {id}"),
            reason: "trained without a trace root".into(),
        })?;
        let bytes = self
            .store
            .checkpoint(id, steps)?
            .ok_or(StoreError::Corrupt {
                what: format!("job {id}"),
                reason: format!("no checkpoint after step {steps}"),
            })?;
        let final_hash = pedals_core::checkpoint_hash(&bytes);
        let result = match &record.result_cid {
            Some(cid) => pedals_core::parse_cid(cid).map_err(|e| StoreError::Corrupt {
                what: format!("job {id}"),
                reason: format!("its result CID: {e}"),
            })?,
            None => cid_of(&bytes),
        };
        #[cfg(debug_assertions)]
        let result = if self.config.hide_result {
            cid_of(format!("job {id}: a result nobody provides").as_bytes())
        } else {
            result
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            what: format!("job {id}"),
            reason,
        };
        let (_, hashes) = self
            .store
            .latest_trace(id)?
            .ok_or_else(|| corrupt("trained without a stored trace".into()))?;
        let trace =
            pedals_core::TraceCommitment::new(hashes).map_err(|e| corrupt(e.to_string()))?;
        if trace.root() != root || trace.final_hash() != final_hash {
            return Err(corrupt("the stored trace does not end in the result".into()).into());
        }
        let proof = trace.proof(steps).map_err(|e| corrupt(e.to_string()))?;
        Ok((root, final_hash, proof.siblings, result))
    }
}
