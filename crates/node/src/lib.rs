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
mod defence;
mod fetch;
mod ft_job;
mod ft_requester;
pub mod gateway;
pub mod jobfile;
mod kind;
mod lm_job;
mod lm_requester;
mod metrics;
mod offer;
mod requester;
mod run;
mod settle;
mod wallet_post;
mod zk;
mod zk_job;

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
use pedals_core::{Cid, Verification, cid_of};
use pedals_dispute::game::StepContext;
use pedals_ml::{
    Dataset, JobSpec, MlError, MlpState, TraceSoFar, Trainer, exact::CpuOps, inference,
};
use pedals_store::{Action, JobPhase, JobRecord, Store, StoreError};
use tracing::{debug, info, warn};

use lm_job::Inputs;

pub use content::StoreSource;
pub use ft_requester::{FtJobFiles, FtJobResult, StepCheck};
pub use lm_requester::{LmJobFiles, LmJobResult};
pub use metrics::{Metrics, PhaseLabel, Status};
pub use pedals_daemon::serve as serve_metrics;
pub use requester::{JobFiles, JobResult, PostTerms, Requester, ZkFiles, ZkResult};
pub use wallet_post::{PostedJob, WalletCall};

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
    /// The most memory a challenged fine-tuning step's op trace may take here, in bytes: it
    /// declines a job whose trace would not fit, since it could not answer a game over it
    /// (default: half of this machine's memory).
    pub max_trace_bytes: u64,
    /// How often it announces its capacity on gossip (when it has a network).
    pub announce_every: Duration,
    /// How often to announce a running job's progress on gossip.
    pub progress_every: Duration,
    /// Threads for training.
    pub threads: usize,
    /// Where a language model's matrix products run: `cpu` (the SIMD kernel), `flex` or `gpu`
    /// (wgpu over Vulkan); every one gives the same bits (`pedals_lm::exact::device`).
    pub lm_device: String,
    /// The transaction sender's policy.
    pub send: SendPolicy,
    /// Blocks per log query (the event follower, a game's reads): at most what the RPC
    /// provider serves in one `eth_getLogs`.
    pub log_range: u64,
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
            max_trace_bytes: pedals_lm::default_trace_budget(),
            announce_every: Duration::from_secs(60),
            progress_every: Duration::from_secs(1),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            lm_device: "cpu".into(),
            send: SendPolicy::default(),
            log_range: pedals_chain::SCAN_RANGE,
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
    /// A language model could not be loaded or run.
    #[error("language model: {0}")]
    Lm(#[from] pedals_lm::LmError),
    /// A job cannot be posted or its result used; the message says why.
    #[error("{0}")]
    Job(String),
    /// A commitment could not be built (a trace, a CID).
    #[error(transparent)]
    Core(#[from] pedals_core::CoreError),
    /// A dispute move of the worker's defence could not be prepared or made.
    #[error("defending job {job}: {source}")]
    Defence {
        /// The disputed job.
        job: u64,
        /// Why (boxed: a move's error carries a decoded revert).
        #[source]
        source: Box<pedals_dispute::DisputeError>,
    },
    /// A job is disputed but this node has no trace of it to defend with (its store was
    /// lost or is another node's).
    #[error(
        "job {0} is disputed but this node has no trace of it; its store is not the one it worked with"
    )]
    NoTrace(u64),
    /// A file of the node's own could not be read or written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The account cannot pay for what it is asked to send.
    #[error(
        "the account {account} holds {balance} wei but the job escrows {escrow} wei{}: fund it \
         or lower the payment",
        gas_note(.gas)
    )]
    Underfunded {
        /// The paying account.
        account: alloy::primitives::Address,
        /// What it holds.
        balance: U256,
        /// The payment it would escrow.
        escrow: U256,
        /// The most its transactions can cost.
        gas: U256,
    },
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

/// ` and its transactions need up to N wei of gas`, when they do.
fn gas_note(gas: &U256) -> String {
    if gas.is_zero() {
        String::new()
    } else {
        format!(" and its transactions need up to {gas} wei of gas")
    }
}

/// A worker node for one account.
#[derive(Debug)]
pub struct Worker {
    provider: DynProvider,
    store: Arc<Store>,
    sender: Arc<TxSender>,
    follower: EventFollower,
    deployment: Deployment,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
    net: Option<pedals_p2p::Client>,
    http: alloy::transports::http::reqwest::Client,
    last_announced: std::sync::Mutex<Option<std::time::Instant>>,
    /// The account's key, to sign progress announcements (transactions go through `sender`).
    signer: PrivateKeySigner,
    /// The same account through the same sender, for dispute moves and demanded publications.
    market: pedals_chain::Market,
    /// The op traces of the steps this worker is defending, by (job, step).
    games: std::sync::Mutex<std::collections::HashMap<(u64, u64), Arc<StepContext>>>,
    /// Likewise for fine-tuning jobs.
    ft_games: std::sync::Mutex<
        std::collections::HashMap<(u64, u64), Arc<pedals_dispute::lm::LmStepContext>>,
    >,
    /// Proving keys of zk circuits.
    zk: Arc<zk::Keyring>,
    /// The state being published for a data-availability demand, by job.
    publications: std::sync::Mutex<std::collections::HashMap<u64, Arc<availability::Publication>>>,
    /// A job whose step fails the same way every round is logged once a minute.
    log_gate: pedals_chain::LogGate,
    /// While set, the worker claims no new job (it still trains, submits, defends and
    /// settles the ones it holds): the operator's pause, from its page.
    paused: Arc<std::sync::atomic::AtomicBool>,
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
const ZK: Verification = Verification::Zk;
/// The largest batch-inference chunk output (bytes) this worker takes on: if a chunk is
/// demanded, its outputs go on-chain in one `publishBlob` (nodes relay transactions up to
/// 128 KiB).
const MAX_BLOB_BYTES: u64 = 96 << 10;

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
        let sender = Arc::new(
            TxSender::new(
                provider.clone(),
                signer.clone(),
                store.clone(),
                config.send.clone(),
            )
            .await?,
        );
        let market = market
            .with_sender(sender.clone())
            .with_log_range(config.log_range);
        let mut follower = EventFollower::new(provider.clone(), store.clone(), deployment.clone());
        follower.max_range = config.log_range.max(1);
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
            ft_games: std::sync::Mutex::new(std::collections::HashMap::new()),
            zk,
            publications: std::sync::Mutex::new(std::collections::HashMap::new()),
            log_gate: pedals_chain::LogGate::default(),
            paused: Arc::default(),
        })
    }

    /// The pause switch: while it is on, the worker claims no new job; the jobs it holds
    /// go on (trained, submitted, defended, settled) and waiting jobs stay where they are.
    pub fn pause_switch(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.paused.clone()
    }

    /// Whether the operator paused claiming.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Fetches job inputs from peers over `net` and provides what this node holds.
    pub fn with_network(mut self, net: pedals_p2p::Client) -> Self {
        self.net = Some(net);
        self
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

    /// Tops the account's stake up to `amount` wei; returns the staking transaction, or
    /// `None` when the account has that much already.
    pub async fn ensure_stake(
        &self,
        amount: U256,
    ) -> Result<Option<pedals_chain::TxOutcome>, NodeError> {
        let account = self.market.stake_of(self.address()).await?;
        let have = U256::from(account.staked);
        if have >= amount {
            return Ok(None);
        }
        let tx = call(
            self.deployment.stake_manager,
            StakeManager::stakeCall {}.abi_encode(),
        )
        .with_value(amount - have);
        Ok(Some(self.sender.send(0, Action::Stake, tx).await?))
    }

    /// Finishes whatever the last run left in flight: every stored, unsettled transaction.
    /// Nothing is sent on a chain other than the one the store's records are of.
    pub async fn resume(&self) -> Result<(), NodeError> {
        self.follower.check_chain().await?;
        self.provide_known().await?;
        self.market.resume_sends().await?;
        Ok(())
    }

    /// Runs until `shutdown` resolves: resume, then tick every `interval`. A failed resume is
    /// tried again before the first tick; a failed round is counted, reported by `/health`
    /// and logged (the same failure again at most once a minute).
    pub async fn run(
        &self,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), NodeError> {
        tokio::pin!(shutdown);
        let mut resumed = false;
        loop {
            let round = if resumed {
                self.tick().await
            } else {
                self.resume().await.map(|()| resumed = true)
            };
            if let Err(e) = round {
                self.metrics.failed_rounds.inc();
                let fatal = matches!(e, NodeError::Chain(ChainError::ChainReplaced { .. }));
                if self.metrics.health.round_failed(&e, fatal) {
                    warn!(target: "pedals::node", error = %e, "round failed; retrying");
                }
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
            if let Err(e) = self.advance(record).await
                && self.log_gate.admit(format!("job {id}"), &e.to_string())
            {
                warn!(target: "pedals::node", job = id, error = %e, "job step failed; will retry (the same failure is logged again in a minute)");
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
            if !ZK.is(posted.request.verification) {
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
        let job = self.market.job(pedals_core::JobId(id)).await?;
        let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
        Ok((job, status))
    }

    fn abandon(&self, id: u64, reason: String) -> Result<(), NodeError> {
        warn!(target: "pedals::node", job = id, %reason, "job abandoned");
        self.store.advance(id, JobPhase::Abandoned { reason })?;
        Ok(())
    }

    /// Advances a job one phase: what every kind shares, with `kind` for the rest.
    async fn advance_as<K: kind::JobKind>(
        &self,
        kind: &K,
        record: JobRecord,
        job: IJobMarket::Job,
        status: JobStatus,
    ) -> Result<(), NodeError> {
        let id = record.job_id;
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
            JobPhase::Fetching | JobPhase::Ready => self.advance_open(kind, &record, &job).await?,
            JobPhase::Claiming => self.settle_claim(id).await?,
            JobPhase::Claimed | JobPhase::Training { .. } => {
                if !mine || status != JobStatus::Claimed {
                    return self.abandon(id, format!("the claim is gone ({status:?} on-chain)"));
                }
                self.train(id, &job, &record).await?;
            }
            JobPhase::Trained => {
                let (root, final_hash, final_proof, result) = self.result_of(id, &job, &record)?;
                let audit_root = self.audit_root_of(id, u64::from(job.steps))?;
                let tx = call(
                    self.deployment.job_market,
                    JobMarket::submitResultCall {
                        jobId: U256::from(id),
                        steps: U256::from(job.steps),
                        traceRoot: root,
                        auditRoot: audit_root,
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
                self.settle(
                    id,
                    Action::Submit,
                    JobPhase::Submitted,
                    kind.before_submit(),
                )
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
                    self.forget_games(id);
                    self.store.advance(id, JobPhase::Submitted)?;
                } else if status == JobStatus::Disputed {
                    self.defend(id, &job, &record).await?;
                } else if status.is_terminal() && status != JobStatus::Finalized {
                    self.forget_games(id);
                    self.abandon(id, format!("the dispute ended {status:?}"))?;
                }
            }
            JobPhase::Finalized | JobPhase::Abandoned { .. } => {}
        }
        Ok(())
    }

    async fn now(&self) -> Result<u64, NodeError> {
        Ok(pedals_chain::chain_time(&self.provider).await?)
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
        let credit = self.market.credit_of(self.address()).await?;
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
}
