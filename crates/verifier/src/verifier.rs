//! The validator daemon: follows submitted results, checks `k` secretly chosen steps of each by
//! re-execution, challenges the first step that does not reproduce, and plays the game to the
//! end (or wins by the clock when the worker stops answering). A sampled step whose checkpoint
//! the worker does not serve is never counted as checked: the validator demands its state
//! on-chain (docs/protocol.md §7), checks what is published, and claims the worker's
//! collateral when nothing is. It watches each job until it settles.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy::primitives::{Address, B256, U256};
use pedals_chain::{JobStatus, Market, Phase};
use pedals_core::ModelState;
use pedals_p2p::{Client, PeerId, TraceClaim};
use tracing::{info, warn};

use crate::game::Turn;
use crate::work::{Disputed, Work};
use crate::{VerifierError, VerifierStats};

mod check;
mod replay;

/// How a validator works.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Steps re-executed per job (`k`): a worker that falsified a fraction `f` of its steps
    /// escapes with probability about `(1 - f)^k`.
    pub samples_per_job: usize,
    /// Threads for re-execution.
    pub threads: usize,
    /// Where the validator keeps what it must not forget across a restart (its findings,
    /// their salts, the state of each step it disputes, and in `sends/` every transaction it
    /// signs before it is broadcast); nothing outlives the validator when `None` (its
    /// transactions are then kept in a temporary folder).
    pub state_dir: Option<std::path::PathBuf>,
    /// The most memory a challenged fine-tuning step's op trace may take here, in bytes: a
    /// job whose trace would not fit is not checked, since this validator could not play
    /// the game it would start (default: half of this machine's memory).
    pub max_trace_bytes: u64,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            samples_per_job: 8,
            threads: 1,
            state_dir: None,
            max_trace_bytes: pedals_lm::default_trace_budget(),
        }
    }
}

/// What the validator needs to re-execute the steps of one job.
pub(crate) struct JobCheck {
    /// The job's spec and files.
    pub(crate) work: Work,
    /// The initial state: the names and shapes every state of the job has.
    pub(crate) template: ModelState,
    pub(crate) claim: TraceClaim,
    pub(crate) worker: Address,
    /// Peers that serve the worker's result.
    pub(crate) providers: Vec<PeerId>,
    /// Sampled steps not checked yet, in order.
    pub(crate) pending: VecDeque<u64>,
    /// How many steps were sampled (for the log: which of them it is on).
    pub(crate) sampled: usize,
    /// The step whose state this validator demanded on-chain, while the demand is open.
    pub(crate) demanded: Option<u64>,
    /// A step found not to reproduce, with this validator's state hash after it, kept until
    /// the challenge is open (the job may be held by someone else's demand or dispute, or the
    /// challenge's transactions may fail: the finding is not lost).
    to_challenge: Option<(Disputed, B256)>,
    /// The worker's audit root while this validator has yet to audit a step of the job (none
    /// for an unaudited job, or once audited).
    pub(crate) audit_root: Option<B256>,
}

/// Where the validator is with a job.
pub(crate) enum Tracked {
    /// Checking its sampled steps.
    Checking(Box<JobCheck>),
    /// It challenged this step and is playing the game.
    Disputing(Disputed),
    /// Every sampled step reproduced; watching the job until it settles.
    Checked,
    /// Settled, or not a job it checks.
    Over,
}

/// How one re-executed step went.
enum Replayed {
    /// With the step's audit leaf when the job was still to audit.
    Reproduced(Option<B256>),
    Mismatch(Disputed, B256),
}

/// The validator.
pub struct Verifier {
    market: Market,
    net: Client,
    config: VerifierConfig,
    stats: Arc<VerifierStats>,
    jobs: tokio::sync::Mutex<HashMap<u64, Tracked>>,
    /// The peer each worker account announced its signed progress from.
    peers: Arc<std::sync::Mutex<HashMap<Address, PeerId>>>,
    /// Unrevealed commitments and reward pools to collect.
    rewards: std::sync::Mutex<crate::rewards::Rewards>,
    /// Audits committed and not yet paid.
    audits: std::sync::Mutex<crate::audit::Audits>,
    /// The genesis hash of the chain of its first round.
    genesis: std::sync::OnceLock<B256>,
    /// A job that fails the same way every round is logged once a minute.
    log_gate: pedals_chain::LogGate,
    /// Its findings, kept across restarts.
    journal: crate::journal::Journal,
    /// Findings of the journal not taken up yet (after a start).
    unresumed: std::sync::Mutex<Vec<(u64, crate::journal::Finding)>>,
    /// The last block its scan of the market's events read.
    scanned: std::sync::Mutex<Option<u64>>,
    /// Submitted jobs it found and has not started checking yet (a failed start is retried).
    candidates: std::sync::Mutex<std::collections::BTreeSet<u64>>,
    /// Whether the transactions signed before the last stop were driven to their end.
    sends_resumed: std::sync::atomic::AtomicBool,
    /// The folder of its signed transactions when it has no state folder (removed on drop).
    _scratch: Option<tempfile::TempDir>,
}

/// Blocks each scan reads again before the last one it read: a submission moved by a reorg
/// is found again (what is tracked already is not started twice).
const RESCAN_BLOCKS: u64 = 64;

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("account", &self.market.sender())
            .field("config", &self.config)
            .finish()
    }
}

impl Verifier {
    /// A validator signing as `market`'s account and fetching over `net`. Every transaction it
    /// sends (commitments, reveals, demands, game moves, audits, rewards) is written to the
    /// store in `sends/` of its state folder before it is broadcast, so a validator killed at
    /// any point and started again never sends one twice.
    pub fn new(market: Market, net: Client, config: VerifierConfig) -> Result<Self, VerifierError> {
        let (sends, scratch) = match &config.state_dir {
            Some(dir) => (dir.join("sends"), None),
            None => {
                let scratch = tempfile::tempdir().map_err(VerifierError::StateDir)?;
                (scratch.path().join("sends"), Some(scratch))
            }
        };
        let store = Arc::new(pedals_store::Store::open(&sends)?);
        let market = market.journaled(store, pedals_chain::SendPolicy::default());
        let journal = crate::journal::Journal::open(config.state_dir.as_deref());
        let audits = crate::audit::Audits::open(config.state_dir.as_deref());
        let findings = journal.findings();
        let mut rewards = crate::rewards::Rewards::default();
        for (id, f) in findings.iter().filter(|(_, f)| !f.revealed) {
            rewards.committed.insert(*id, *f);
        }
        Ok(Self {
            market,
            net,
            config,
            stats: Arc::new(VerifierStats::default()),
            jobs: tokio::sync::Mutex::new(HashMap::new()),
            rewards: std::sync::Mutex::new(rewards),
            audits: std::sync::Mutex::new(audits),
            peers: Arc::new(std::sync::Mutex::new(HashMap::new())),
            genesis: std::sync::OnceLock::new(),
            log_gate: pedals_chain::LogGate::default(),
            journal,
            unresumed: std::sync::Mutex::new(findings),
            scanned: std::sync::Mutex::new(None),
            candidates: std::sync::Mutex::default(),
            sends_resumed: std::sync::atomic::AtomicBool::new(false),
            _scratch: scratch,
        })
    }

    /// Reads the node's network events until they end, remembering the peer that each worker
    /// account's progress reports come from (gossip checked their signatures), so that a
    /// worker is found by its own address even when nobody provides its result.
    pub fn watch_announcements(
        &self,
        mut events: tokio::sync::mpsc::Receiver<pedals_p2p::NetEvent>,
    ) -> tokio::task::JoinHandle<()> {
        let peers = self.peers.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let pedals_p2p::NetEvent::Announced {
                    from: Some(peer),
                    announcement,
                } = event
                else {
                    continue;
                };
                let worker = match &announcement {
                    pedals_p2p::Announcement::Progress(p) if p.signer() == Some(p.worker) => {
                        p.worker
                    }
                    _ => continue,
                };
                peers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(worker, peer);
            }
        })
    }

    /// What it remembers of its commitments and reward pools.
    pub(crate) fn rewards(&self) -> std::sync::MutexGuard<'_, crate::rewards::Rewards> {
        self.rewards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The market client it signs with.
    pub(crate) fn audits(&self) -> std::sync::MutexGuard<'_, crate::audit::Audits> {
        self.audits.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn market(&self) -> &Market {
        &self.market
    }

    /// Its network client.
    pub(crate) fn net(&self) -> &Client {
        &self.net
    }

    /// Threads for re-execution.
    pub(crate) fn threads(&self) -> usize {
        self.config.threads
    }

    /// Its journal.
    pub(crate) fn journal(&self) -> &crate::journal::Journal {
        &self.journal
    }

    /// The last block scanned, if any.
    fn scanned(&self) -> Option<u64> {
        *self.scanned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Submitted jobs not started yet.
    fn candidates(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<u64>> {
        self.candidates.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Findings of the journal not taken up yet.
    pub(crate) fn unresumed(
        &self,
    ) -> std::sync::MutexGuard<'_, Vec<(u64, crate::journal::Finding)>> {
        self.unresumed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<VerifierStats> {
        self.stats.clone()
    }

    /// The signing account.
    pub fn address(&self) -> alloy::primitives::Address {
        self.market.sender()
    }

    /// Runs a round every `poll` until `shutdown` resolves; a failed round is logged and
    /// retried on the next one.
    pub async fn run(
        &self,
        poll: std::time::Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            match self.tick().await {
                Ok(_) => self.stats.health.round_ok(),
                Err(e) => {
                    let fatal = matches!(
                        e,
                        VerifierError::Chain(pedals_chain::ChainError::ChainReplaced { .. })
                    );
                    // The same failure is logged again at most once a minute.
                    if self.stats.health.round_failed(&e, fatal) {
                        warn!(target: "pedals::validator", error = %e, "round failed; retrying");
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Ensures the account holds at least `stake` wei of stake (the market's minimum for
    /// validators), staking the difference.
    pub async fn ensure_stake(&self, stake: U256) -> Result<(), VerifierError> {
        let have = U256::from(self.market.stake_of(self.market.sender()).await?.staked);
        if have < stake {
            self.market.stake(stake - have).await?;
        }
        Ok(())
    }

    /// One round: starts checking every newly submitted job, goes on with the jobs it is
    /// checking (their demands included), and plays its open games. Returns the jobs it
    /// challenged in this round.
    ///
    /// New work is found in the market's events ([`Market::scan_submissions`]): the first
    /// round reads every submission and settlement since the deployment, one request per
    /// 2,000 blocks, and each later round the blocks since (a few back, for a reorg). A job is
    /// read one by one only while it is submitted and unsettled, never for having existed.
    pub async fn tick(&self) -> Result<Vec<u64>, VerifierError> {
        // Nothing is done on a chain other than the one the first round saw.
        let genesis = pedals_chain::genesis_hash(self.market.provider()).await?;
        pedals_chain::same_chain(*self.genesis.get_or_init(|| genesis), genesis)?;
        if !self.sends_resumed.load(Ordering::SeqCst) {
            // What was signed before the last stop goes out as it was, before anything new.
            self.market.resume_sends().await?;
            self.sends_resumed.store(true, Ordering::SeqCst);
        }
        for (id, tracked) in self.resume_findings().await {
            self.jobs.lock().await.insert(id, tracked);
        }
        let from = self
            .scanned()
            .map_or(self.market.deployment().deployment_block, |to| {
                to.saturating_sub(RESCAN_BLOCKS)
            });
        let found = self.market.scan_submissions(from).await?;
        let ids: Vec<u64> = {
            let mut jobs = self.jobs.lock().await;
            for id in &found.settled {
                if !matches!(jobs.get(id), Some(Tracked::Disputing(_))) {
                    jobs.insert(*id, Tracked::Over);
                }
            }
            let mut candidates = self.candidates();
            candidates.extend(
                found
                    .submitted
                    .iter()
                    .filter(|id| !jobs.contains_key(id) && !found.settled.contains(id)),
            );
            candidates.retain(|id| !jobs.contains_key(id));
            let mut ids: Vec<u64> = jobs
                .iter()
                .filter(|(_, t)| !matches!(t, Tracked::Over))
                .map(|(id, _)| *id)
                .chain(candidates.iter().copied())
                .collect();
            ids.sort_unstable();
            ids
        };
        *self.scanned.lock().unwrap_or_else(|e| e.into_inner()) = Some(found.to);
        let mut challenged = Vec::new();
        for id in ids {
            let tracked = self.jobs.lock().await.remove(&id);
            let (now, challenged_now) = match tracked {
                None => match self.start(id).await {
                    Ok(Some(check)) => self.advance(id, check).await,
                    // Its own, past its window, settled, or not a disputable training job:
                    // nothing to look at again.
                    Ok(None) => (Some(Tracked::Over), false),
                    Err(e) if e.in_the_files() => {
                        warn!(target: "pedals::validator", job = id, error = %e, "the job's files do not load: it cannot be checked; not looking at it again");
                        (Some(Tracked::Over), false)
                    }
                    Err(e) => {
                        if self.log_gate.admit(format!("job {id}"), &e.to_string()) {
                            warn!(target: "pedals::validator", job = id, error = %e, "could not start checking the job; trying again next round");
                        }
                        (None, false)
                    }
                },
                Some(Tracked::Checking(check)) => self.advance(id, check).await,
                Some(Tracked::Disputing(ctx)) => match self.play(id, &ctx).await {
                    Ok(over) => (
                        Some(if over {
                            Tracked::Over
                        } else {
                            Tracked::Disputing(ctx)
                        }),
                        false,
                    ),
                    Err(e) => {
                        if self.log_gate.admit(format!("job {id}"), &e.to_string()) {
                            warn!(target: "pedals::validator", job = id, error = %e, "game move failed; trying again next round");
                        }
                        (Some(Tracked::Disputing(ctx)), false)
                    }
                },
                Some(Tracked::Checked) => (Some(self.watch(id).await), false),
                Some(Tracked::Over) => (Some(Tracked::Over), false),
            };
            if challenged_now {
                challenged.push(id);
            }
            if let Some(t) = now {
                self.candidates().remove(&id);
                self.jobs.lock().await.insert(id, t);
            }
        }
        if let Err(e) = self.settle_rewards().await
            && self.log_gate.admit("rewards", &e.to_string())
        {
            warn!(target: "pedals::validator", error = %e, "settling rewards failed; trying again next round");
        }
        if let Err(e) = self.settle_audits().await
            && self.log_gate.admit("audits", &e.to_string())
        {
            warn!(target: "pedals::validator", error = %e, "settling audits failed; trying again next round");
        }
        Ok(challenged)
    }

    /// A checked job stays watched until it settles.
    async fn watch(&self, id: u64) -> Tracked {
        match self.market.job(pedals_core::JobId(id)).await {
            Ok(job) if JobStatus::try_from(job.status).is_ok_and(JobStatus::is_terminal) => {
                Tracked::Over
            }
            _ => Tracked::Checked,
        }
    }

    /// Makes this validator's move in the game of job `id`, claims a win by the clock, or
    /// records the outcome; returns whether the game is over.
    async fn play(&self, id: u64, ctx: &Disputed) -> Result<bool, VerifierError> {
        let job_id = pedals_core::JobId(id);
        // The game of the job's kind: the MLP game or the fine-tuning game.
        let game = ctx.market(&self.market);
        let credit_before = self.market.credit_of(self.market.sender()).await?;
        match ctx.challenge(&self.market, job_id).await? {
            Turn::Moved(..) => {}
            Turn::Waiting => {
                let view = game.game_of(job_id).await?;
                if view.worker_to_move && view.remaining == 0 {
                    info!(target: "pedals::validator", job = id, "the worker's clock ran out");
                    game.timeout_game(job_id).await?;
                }
            }
            Turn::NoGame => {}
        }
        if game.game_of(job_id).await?.phase != Phase::None {
            return Ok(false);
        }
        // The game is over: nothing of it is needed after a restart.
        self.journal.forget(id);
        let decided = game.games_decided(job_id).await?;
        let won = decided.last().is_some_and(|d| d.0);
        let earned = self
            .market
            .credit_of(self.market.sender())
            .await?
            .saturating_sub(credit_before);
        if won {
            // The reward is pooled with those who committed before the conviction: collected
            // once the claim period ends (`settle_rewards`).
            self.await_reward(id);
            self.stats.disputes_won.inc();
            self.stats.wei_earned.inc_by(earned.saturating_to());
        } else {
            self.stats.disputes_lost.inc();
        }
        info!(target: "pedals::validator", job = id, won, earned = %earned, "dispute decided");
        Ok(true)
    }
}
