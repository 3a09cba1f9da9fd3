//! The validator daemon: follows submitted results, checks `k` secretly chosen steps of each by
//! re-execution, challenges the first step that does not reproduce, and plays the game to the
//! end (or wins by the clock when the worker stops answering).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy::primitives::{B256, U256};
use pedals_chain::{JobStatus, Market, Phase, chain_time};
use pedals_core::{cid_from_bytes, parse_cid};
use pedals_ml::{Dataset, JobSpec, MlpState, Trainer, exact::CpuOps};
use pedals_p2p::{Client, TraceClaim};
use tracing::{info, warn};

use crate::VerifierError;
use crate::game::{StepContext, Turn, challenge};
use crate::sampling::pick_steps;

/// How a validator works.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Steps re-executed per job (`k`): a worker that falsified a fraction `f` of its steps
    /// escapes with probability about `(1 - f)^k`.
    pub samples_per_job: usize,
    /// Threads for re-execution.
    pub threads: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            samples_per_job: 8,
            threads: 1,
        }
    }
}

/// What the validator has done, for its metrics.
#[derive(Debug, Default)]
pub struct VerifierStats {
    /// Jobs whose sampled steps were all checked.
    pub jobs_checked: AtomicU64,
    /// Steps re-executed.
    pub steps_checked: AtomicU64,
    /// Steps whose recomputed state differed from the worker's.
    pub mismatches: AtomicU64,
    /// Steps whose checkpoint no worker served.
    pub unavailable: AtomicU64,
    /// Games won.
    pub disputes_won: AtomicU64,
    /// Games lost.
    pub disputes_lost: AtomicU64,
    /// Wei credited to this validator by won games (bond back plus reward).
    pub wei_earned: AtomicU64,
}

impl VerifierStats {
    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, v) in [
            (
                "pedals_validator_jobs_checked_total",
                "Jobs whose sampled steps were checked.",
                &self.jobs_checked,
            ),
            (
                "pedals_validator_steps_checked_total",
                "Steps re-executed.",
                &self.steps_checked,
            ),
            (
                "pedals_validator_mismatches_total",
                "Re-executed steps that did not reproduce.",
                &self.mismatches,
            ),
            (
                "pedals_validator_unavailable_total",
                "Sampled checkpoints no worker served.",
                &self.unavailable,
            ),
            (
                "pedals_validator_disputes_won_total",
                "Dispute games won.",
                &self.disputes_won,
            ),
            (
                "pedals_validator_disputes_lost_total",
                "Dispute games lost.",
                &self.disputes_lost,
            ),
            (
                "pedals_validator_wei_earned_total",
                "Wei credited by won games.",
                &self.wei_earned,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// Serves the counters at `/metrics` (and `200 ok` at `/health`) on `addr` until `shutdown`
/// resolves; returns the bound address and the server's task.
pub async fn serve_metrics(
    addr: std::net::SocketAddr,
    stats: Arc<VerifierStats>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    use axum::{Router, routing::get};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let stats = stats.clone();
                async move { stats.render() }
            }),
        )
        .route("/health", get(|| async { "ok\n" }));
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, task))
}

/// Where the validator is with a job.
#[derive(Debug, Clone)]
enum Tracked {
    /// Checked: every sampled step reproduced (or could not be fetched).
    Checked,
    /// It challenged this step and is playing the game.
    Disputing(Arc<StepContext>),
    /// Its game is over.
    Over,
}

/// The validator.
pub struct Verifier {
    market: Market,
    net: Client,
    config: VerifierConfig,
    stats: Arc<VerifierStats>,
    jobs: tokio::sync::Mutex<HashMap<u64, Tracked>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("account", &self.market.sender())
            .field("config", &self.config)
            .finish()
    }
}

impl Verifier {
    /// A validator signing as `market`'s account and fetching over `net`.
    pub fn new(market: Market, net: Client, config: VerifierConfig) -> Self {
        Self {
            market,
            net,
            config,
            stats: Arc::new(VerifierStats::default()),
            jobs: tokio::sync::Mutex::new(HashMap::new()),
        }
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
            if let Err(e) = self.tick().await {
                warn!(target: "pedals::validator", error = %e, "round failed; retrying");
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

    /// One round: checks every newly submitted job it has not checked, and plays its open
    /// games. Returns the jobs it challenged in this round.
    pub async fn tick(&self) -> Result<Vec<u64>, VerifierError> {
        let next: u64 = self
            .market
            .job_market()
            .nextJobId()
            .call()
            .await
            .map_err(|e| VerifierError::Job(format!("reading the job count: {e}")))?
            .saturating_to();
        let now = chain_time(self.market.provider()).await?;
        let mut challenged = Vec::new();
        for id in 1..next {
            let tracked = self.jobs.lock().await.get(&id).cloned();
            match tracked {
                Some(Tracked::Disputing(ctx)) => self.play(id, &ctx).await?,
                Some(_) => {}
                None => {
                    let job = self.market.job(U256::from(id)).await?;
                    let status = JobStatus::try_from(job.status)
                        .map_err(|e| VerifierError::Job(e.to_string()))?;
                    if status != JobStatus::Submitted
                        || job.worker == self.market.sender()
                        || now >= job.windowEnd.to::<u64>()
                    {
                        continue;
                    }
                    match self.check(id).await {
                        Ok(Some(ctx)) => {
                            self.jobs.lock().await.insert(id, Tracked::Disputing(ctx));
                            challenged.push(id);
                        }
                        Ok(None) => {
                            self.jobs.lock().await.insert(id, Tracked::Checked);
                        }
                        Err(e) => {
                            warn!(target: "pedals::validator", job = id, error = %e, "could not check the job; trying again next round")
                        }
                    }
                }
            }
        }
        Ok(challenged)
    }

    /// Checks the sampled steps of job `id`; on a mismatch, challenges it and returns the
    /// disputed step's context.
    async fn check(&self, id: u64) -> Result<Option<Arc<StepContext>>, VerifierError> {
        let job_id = U256::from(id);
        let submitted = self
            .market
            .submitted_result(job_id)
            .await?
            .ok_or_else(|| VerifierError::Job("no result event".into()))?;
        let job = self.market.job(job_id).await?;
        let spec_cid = JobSpec::cid_for_hash(&job.specHash);
        let (spec_bytes, _) = self.net.fetch_blob(spec_cid).await?;
        let spec = JobSpec::from_canonical_bytes(&spec_bytes)?;
        if spec.inference.is_some() || spec.dispute.is_none() {
            info!(target: "pedals::validator", job = id, "not a disputable training job; skipped");
            return Ok(None);
        }
        let (data_bytes, _) = self.net.fetch_blob(parse_cid(&spec.dataset)?).await?;
        let dataset = Arc::new(Dataset::from_canonical_bytes(&data_bytes)?);
        let steps = submitted.steps.saturating_to::<u64>();
        let claim = TraceClaim {
            root: submitted.traceRoot,
            steps,
        };
        let result_cid = cid_from_bytes(&submitted.resultCid)?;
        let workers = self.net.find_providers(result_cid).await?;
        // Secret: drawn from the OS only now, after the result is on-chain.
        let sampled = pick_steps(&mut rand::rngs::OsRng, steps, self.config.samples_per_job);
        let trainer = Trainer::new(CpuOps::new(self.config.threads), spec.train.clone())?;
        for step in sampled {
            let mut opening = None;
            for peer in &workers {
                match self.net.fetch_checkpoint(*peer, id, step, claim).await {
                    Ok(o) => {
                        opening = Some(o);
                        break;
                    }
                    Err(e) => {
                        warn!(target: "pedals::validator", job = id, step, %peer, error = %e, "checkpoint not served")
                    }
                }
            }
            let Some(opening) = opening else {
                self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let Some(claimed) = opening.next_hash else {
                continue;
            };
            let before = MlpState::from_bytes(&spec.train.model, &opening.state)?;
            let after = trainer.replay_step(&dataset, &before, step)?;
            let mine = after.state_hash()?;
            self.stats.steps_checked.fetch_add(1, Ordering::Relaxed);
            if mine == claimed {
                continue;
            }
            self.stats.mismatches.fetch_add(1, Ordering::Relaxed);
            warn!(target: "pedals::validator", job = id, step, worker = %claimed, recomputed = %mine, "step does not reproduce: challenging");
            let trace = trainer.op_trace(&dataset, &before, step)?;
            let ctx = Arc::new(StepContext::new(spec, dataset, step, before, trace)?);
            self.open_challenge(job_id, step, mine).await?;
            return Ok(Some(ctx));
        }
        self.stats.jobs_checked.fetch_add(1, Ordering::Relaxed);
        info!(target: "pedals::validator", job = id, "sampled steps reproduce");
        Ok(None)
    }

    async fn open_challenge(
        &self,
        job_id: U256,
        step: u64,
        mine: B256,
    ) -> Result<(), VerifierError> {
        let params = self.market.parameters().await?;
        let salt = B256::from(rand::random::<[u8; 32]>());
        self.market
            .commit_challenge(job_id, step, mine, salt)
            .await?;
        // The reveal must land in a later block than the commitment: the commitment's block is
        // sealed once its receipt is in, so the reveal sent now cannot join it.
        self.market
            .challenge(job_id, step, mine, salt, U256::from(params.challengeBond))
            .await?;
        info!(target: "pedals::validator", job = %job_id, step, "challenge opened");
        Ok(())
    }

    /// Makes this validator's move in the game of job `id`, claims a win by the clock, or
    /// records the outcome.
    async fn play(&self, id: u64, ctx: &StepContext) -> Result<(), VerifierError> {
        let job_id = U256::from(id);
        let credit_before = self.market.credit_of(self.market.sender()).await?;
        match challenge(&self.market, job_id, ctx).await? {
            Turn::Moved(..) => {}
            Turn::Waiting => {
                let view = self.market.game_of(job_id).await?;
                if view.worker_to_move && view.remaining == 0 {
                    info!(target: "pedals::validator", job = id, "the worker's clock ran out");
                    self.market.timeout_game(job_id).await?;
                }
            }
            Turn::NoGame => {}
        }
        if self.market.game_of(job_id).await?.phase == Phase::None {
            let decided = self.market.games_decided(job_id).await?;
            let won = decided.last().is_some_and(|d| d.0);
            let earned = self
                .market
                .credit_of(self.market.sender())
                .await?
                .saturating_sub(credit_before);
            if won {
                self.stats.disputes_won.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .wei_earned
                    .fetch_add(earned.saturating_to(), Ordering::Relaxed);
            } else {
                self.stats.disputes_lost.fetch_add(1, Ordering::Relaxed);
            }
            info!(target: "pedals::validator", job = id, won, earned = %earned, "dispute decided");
            self.jobs.lock().await.insert(id, Tracked::Over);
        }
        Ok(())
    }
}
