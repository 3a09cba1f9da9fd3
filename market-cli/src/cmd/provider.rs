//! `pedals provider run`: the worker daemon in the foreground.
//!
//! Settings come from, lowest first: built-in defaults, a TOML file (`--config`), environment
//! variables (`PEDALS_*`), flags. The keystore's password comes from `--password-file`, the
//! `PEDALS_PASSWORD` variable or a prompt, and is never logged.

use std::{path::PathBuf, sync::Arc, time::Duration};

use alloy::{primitives::U256, providers::Provider, transports::http::reqwest::Url};
use clap::{Args, Subcommand};
use eyre::Context;
use pedals_chain::Deployment;
use pedals_node::{StoreSource, Worker, WorkerConfig, serve_metrics};
use pedals_store::Store;
use serde::Deserialize;
use tracing::info;

/// Provider commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ProviderCommand {
    /// Run the worker daemon in the foreground: stake if asked, then find, claim, train,
    /// submit and settle jobs until Ctrl-C or SIGTERM.
    ///
    /// Example: pedals provider run --config provider.toml --password-file ~/.pedals/pass
    Run(Box<RunArgs>),
    /// Serve a span of a language model's blocks for split-model inference: fetch the model
    /// by CID, keep its blocks, announce them, answer clients (docs/split-inference.md).
    ///
    /// Example: pedals provider serve --model bafkrei… --blocks 0..8 --bootstrap /ip4/…
    Serve(Box<super::swarm::ServeArgs>),
    #[command(flatten)]
    Stake(super::stake::StakeCommand),
}

/// Options of `pedals provider run`; each falls back to its environment variable, then to
/// the config file.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// TOML file with any of the settings below (snake_case keys).
    #[arg(long, env = "PEDALS_CONFIG")]
    config: Option<PathBuf>,
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "PEDALS_RPC_URL")]
    rpc_url: Option<Url>,
    /// Deployment file written by the deploy script (contracts/deployments/<chain>.json).
    #[arg(long, env = "PEDALS_DEPLOYMENT")]
    deployment: Option<PathBuf>,
    /// Data directory (the node's database and blobs).
    #[arg(long, env = "PEDALS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Encrypted keystore (Web3 secret storage) of the provider's account.
    #[arg(long, env = "PEDALS_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// File holding the keystore's password (else `PEDALS_PASSWORD`, else a prompt).
    #[arg(long, env = "PEDALS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// Lowest payment per training step to claim for, in wei.
    #[arg(long, env = "PEDALS_MIN_WEI_PER_STEP")]
    min_wei_per_step: Option<U256>,
    /// Lowest payment per second of this provider's estimated compute time, in wei.
    #[arg(long, env = "PEDALS_MIN_WEI_PER_SECOND")]
    min_wei_per_second: Option<U256>,
    /// Most jobs held claimed and not yet submitted at once [default: 1].
    #[arg(long, env = "PEDALS_MAX_ACTIVE_JOBS")]
    max_active_jobs: Option<usize>,
    /// Most memory, in GiB, a challenged fine-tuning step's op trace may take: a job whose
    /// trace would not fit is declined [default: half of this machine's memory].
    #[arg(long, env = "PEDALS_MAX_TRACE_GIB")]
    max_trace_gib: Option<f64>,
    /// Blocks per eth_getLogs request (events, a game's moves, the market's history): at most
    /// what the RPC provider serves in one [default: 2000].
    #[arg(long, env = "PEDALS_LOG_RANGE")]
    log_range: Option<u64>,
    /// IPFS HTTP gateway to fetch job files from when no peer provides them.
    #[arg(long, env = "PEDALS_IPFS_GATEWAY")]
    ipfs_gateway: Option<Url>,
    /// Keep at least this much stake, in wei (staking the difference at start).
    #[arg(long, env = "PEDALS_STAKE_WEI")]
    stake_wei: Option<U256>,
    /// Milliseconds between rounds.
    #[arg(long, env = "PEDALS_POLL_MS")]
    poll_ms: Option<u64>,
    /// Address of the /metrics and /health endpoints [default: 127.0.0.1:9464].
    #[arg(long, env = "PEDALS_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Where a language model's matrix products run: cpu, flex or gpu (wgpu over Vulkan)
    /// [default: cpu]. Every one gives the same bits.
    #[arg(long, env = "PEDALS_LM_DEVICE", value_parser = ["cpu", "flex", "gpu"])]
    lm_device: Option<String>,
    #[command(flatten)]
    net: super::net::NetArgs,
    /// Also serve the web app on this loopback address (port 0 picks one), with this
    /// provider's page and its pause and resume; the address with its token is printed on
    /// stdout (docs/web-app.md).
    #[arg(long, env = "PEDALS_PROVIDER_UI")]
    ui: Option<std::net::SocketAddr>,
    /// Also serve a span of this language model (a CID, or a stored model file) for split
    /// inference beside the training work, paid into this provider's account
    /// (docs/split-inference.md).
    #[arg(long, env = "PEDALS_SERVE_MODEL")]
    serve_model: Option<String>,
    /// The blocks of --serve-model to serve, `start..end`. Without it, the daemon takes the
    /// --serve-span-blocks blocks that the fewest servers cover, and moves when coverage
    /// changes.
    #[arg(long, env = "PEDALS_SERVE_BLOCKS", requires = "serve_model")]
    serve_blocks: Option<String>,
    /// How many blocks of --serve-model to serve when --serve-blocks is not given
    /// [default: all].
    #[arg(
        long,
        env = "PEDALS_SERVE_SPAN_BLOCKS",
        requires = "serve_model",
        conflicts_with = "serve_blocks"
    )]
    serve_span_blocks: Option<usize>,
    /// The price of one token through the span, in wei [default: 0, free].
    #[arg(long, env = "PEDALS_SERVE_WEI_PER_TOKEN", default_value_t = U256::ZERO)]
    serve_wei_per_token: U256,
    /// Memory for the span's key/value caches, in MiB.
    #[arg(long, env = "PEDALS_SERVE_CACHE_MIB", default_value_t = 1024)]
    serve_cache_mib: usize,
    /// Debug builds only, for the chaos tests: train and serve these steps falsified (a
    /// lying worker), comma-separated.
    #[cfg(debug_assertions)]
    #[arg(long, hide = true, value_delimiter = ',')]
    debug_falsify_steps: Vec<u64>,
}

/// The config file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    rpc_url: Option<Url>,
    deployment: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    keystore: Option<PathBuf>,
    password_file: Option<PathBuf>,
    min_wei_per_step: Option<U256>,
    min_wei_per_second: Option<U256>,
    max_active_jobs: Option<usize>,
    max_trace_gib: Option<f64>,
    log_range: Option<u64>,
    ipfs_gateway: Option<Url>,
    stake_wei: Option<U256>,
    poll_ms: Option<u64>,
    metrics_addr: Option<std::net::SocketAddr>,
    lm_device: Option<String>,
    ui: Option<std::net::SocketAddr>,
    #[serde(default)]
    listen: Vec<pedals_p2p::Multiaddr>,
    #[serde(default)]
    bootstrap: Vec<pedals_p2p::Multiaddr>,
}

/// Everything resolved.
#[derive(Debug, PartialEq)]
struct Settings {
    rpc_url: Url,
    deployment: PathBuf,
    data_dir: PathBuf,
    keystore: PathBuf,
    password_file: Option<PathBuf>,
    min_wei_per_step: U256,
    min_wei_per_second: U256,
    max_active_jobs: usize,
    max_trace_bytes: u64,
    log_range: u64,
    ipfs_gateway: Option<Url>,
    stake_wei: Option<U256>,
    poll: Duration,
    metrics_addr: std::net::SocketAddr,
    lm_device: String,
    net: pedals_p2p::NetConfig,
    ui: Option<std::net::SocketAddr>,
    serve: Option<super::swarm::SpanJob>,
    /// Steps trained and served falsified (debug builds only).
    #[cfg(debug_assertions)]
    falsify_steps: Vec<u64>,
}

impl RunArgs {
    /// Flags and environment over the file over the defaults.
    fn resolve(self) -> eyre::Result<Settings> {
        let file: FileConfig = super::config::read(self.config.as_deref())?;
        let default_data_dir = || {
            dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("pedals")
                .join("provider")
        };
        let serve = match self.serve_model {
            Some(model) => Some(super::swarm::SpanJob {
                model,
                blocks: self
                    .serve_blocks
                    .map(|b| super::swarm::parse_blocks(&b).map_err(|e| eyre::eyre!(e)))
                    .transpose()?,
                span_blocks: self.serve_span_blocks,
                wei_per_token: self.serve_wei_per_token,
                cache_bytes: self.serve_cache_mib << 20,
                announce: Duration::from_secs(10),
                reply_delay: Duration::ZERO,
                lie_after: None,
            }),
            None => None,
        };
        Ok(Settings {
            serve,
            rpc_url: self.rpc_url.or(file.rpc_url).ok_or_else(|| {
                super::config::missing("RPC endpoint", "rpc-url", "PEDALS_RPC_URL")
            })?,
            deployment: self.deployment.or(file.deployment).ok_or_else(|| {
                super::config::missing("deployment file", "deployment", "PEDALS_DEPLOYMENT")
            })?,
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(default_data_dir),
            keystore: self
                .keystore
                .or(file.keystore)
                .ok_or_else(|| super::config::missing("keystore", "keystore", "PEDALS_KEYSTORE"))?,
            password_file: self.password_file.or(file.password_file),
            min_wei_per_step: self
                .min_wei_per_step
                .or(file.min_wei_per_step)
                .unwrap_or(U256::ZERO),
            min_wei_per_second: self
                .min_wei_per_second
                .or(file.min_wei_per_second)
                .unwrap_or(U256::ZERO),
            max_active_jobs: self
                .max_active_jobs
                .or(file.max_active_jobs)
                .unwrap_or(1)
                .max(1),
            max_trace_bytes: super::config::trace_budget(
                self.max_trace_gib.or(file.max_trace_gib),
            )?,
            log_range: super::config::log_range(self.log_range.or(file.log_range))?,
            ipfs_gateway: self.ipfs_gateway.or(file.ipfs_gateway),
            stake_wei: self.stake_wei.or(file.stake_wei),
            poll: Duration::from_millis(self.poll_ms.or(file.poll_ms).unwrap_or(1000)),
            metrics_addr: self
                .metrics_addr
                .or(file.metrics_addr)
                .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 9464))),
            lm_device: self
                .lm_device
                .or(file.lm_device)
                .unwrap_or_else(|| "cpu".into()),
            net: self.net.config(&file.listen, &file.bootstrap),
            ui: self.ui.or(file.ui),
            #[cfg(debug_assertions)]
            falsify_steps: self.debug_falsify_steps,
        })
    }
}

impl ProviderCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Run(args) => run((*args).resolve()?).await,
            Self::Serve(args) => args.run().await,
            Self::Stake(cmd) => cmd.run().await,
        }
    }
}

async fn run(settings: Settings) -> eyre::Result<()> {
    let signer =
        super::secret::open_keystore(&settings.keystore, settings.password_file.as_deref())?;
    let deployment = Deployment::load(&settings.deployment)?;
    let provider = pedals_chain::rpc_provider(settings.rpc_url.clone())?;
    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err_with(|| format!("the RPC endpoint {} does not answer", settings.rpc_url))?;
    eyre::ensure!(
        chain_id == deployment.chain_id,
        "the RPC endpoint is on chain {chain_id} but the deployment file is for chain {}",
        deployment.chain_id
    );
    std::fs::create_dir_all(&settings.data_dir)
        .wrap_err_with(|| format!("cannot create {}", settings.data_dir.display()))?;
    super::datadir::bind(&settings.data_dir, &provider, &deployment).await?;
    let store = Arc::new(Store::open(&settings.data_dir)?);
    // A device that cannot be opened is refused now, not at the first job.
    if let Some((_, name)) = pedals_lm::exact::device::named(&settings.lm_device)
        .wrap_err("--lm-device cannot be used on this machine")?
    {
        tracing::info!(target: "pedals::provider", device = %name, "language models run their products on this device");
    }
    let config = WorkerConfig {
        min_wei_per_step: settings.min_wei_per_step,
        min_wei_per_second: settings.min_wei_per_second,
        max_active_jobs: settings.max_active_jobs,
        max_trace_bytes: settings.max_trace_bytes,
        log_range: settings.log_range,
        gateway: settings.ipfs_gateway.clone(),
        lm_device: settings.lm_device.clone(),
        #[cfg(debug_assertions)]
        falsify_steps: settings.falsify_steps.clone(),
        ..WorkerConfig::default()
    };
    let source = StoreSource::new(store.clone(), config.threads);
    #[cfg(debug_assertions)]
    let source = source.falsifying(settings.falsify_steps.iter().copied());
    let mut network =
        super::net::start_node(&settings.data_dir, settings.net.clone(), Arc::new(source)).await?;
    let span = match settings.serve {
        Some(job) => {
            let market = pedals_chain::Market::connect(
                settings.rpc_url.clone(),
                signer.clone(),
                deployment.clone(),
            )
            .await?;
            let dir = settings.data_dir.clone();
            Some(
                super::swarm::start_span(
                    job,
                    &dir,
                    &store,
                    &network.client,
                    Some(std::mem::replace(
                        &mut network.events,
                        tokio::sync::mpsc::channel(1).1,
                    )),
                    Some((market, signer.clone())),
                )
                .await
                .wrap_err("cannot serve the span of --serve-model")?,
            )
        }
        None => None,
    };
    let policy = serde_json::json!({
        "minWeiPerStep": config.min_wei_per_step.to_string(),
        "minWeiPerSecond": config.min_wei_per_second.to_string(),
        "maxActiveJobs": config.max_active_jobs,
        "maxTraceBytes": config.max_trace_bytes,
        "threads": config.threads,
        "lmDevice": config.lm_device,
    });
    let (ui_provider, ui_deployment) = (provider.clone(), deployment.clone());
    let worker = Worker::new(provider, signer, store, deployment, config)
        .await?
        .with_network(network.client.clone());
    let ui = match settings.ui {
        Some(addr) => {
            let metrics = worker.metrics();
            let operator = pedals_ui::Operator {
                role: pedals_ui::Role::Provider,
                address: worker.address(),
                policy,
                stats: Arc::new(move || {
                    serde_json::json!({
                        "stepsTrained": metrics.steps_trained.get(),
                        "stepsPerSecond": metrics.training_steps_per_second.get(),
                        "bytesServed": metrics.bytes_served.get(),
                        "peers": metrics.peers.get(),
                    })
                }),
                paused: Some(worker.pause_switch()),
            };
            Some(
                super::daemon_ui::serve(
                    addr,
                    ui_provider,
                    ui_deployment,
                    operator,
                    shutdown_signal(),
                )
                .await?,
            )
        }
        None => None,
    };
    info!(target: "pedals::node", account = %worker.address(), data_dir = %settings.data_dir.display(), "provider starting");
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let (metrics_addr, metrics_task) = serve_metrics(
        settings.metrics_addr,
        worker.metrics(),
        (settings.poll * 10).max(Duration::from_secs(30)),
        async move {
            let _ = metrics_stopped.await;
        },
    )
    .await
    .wrap_err_with(|| {
        format!(
            "cannot serve metrics on {}: pass another --metrics-addr",
            settings.metrics_addr
        )
    })?;
    info!(target: "pedals::node", %metrics_addr, "metrics and health endpoints up");
    if let Some(stake) = settings.stake_wei {
        worker
            .ensure_stake(stake)
            .await
            .wrap_err("staking failed")?;
    }
    worker.run(settings.poll, shutdown_signal()).await?;
    let _ = stop_metrics.send(());
    let _ = metrics_task.await;
    if let Some(ui) = ui {
        ui.abort();
    }
    network.client.shutdown().await;
    if let Some(span) = span {
        span.stop().await;
    }
    info!(target: "pedals::node", "provider stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("provider.toml");
        std::fs::write(
            &file,
            "rpc_url = \"http://file:8545\"\ndeployment = \"file.json\"\nkeystore = \"k.json\"\nstake_wei = \"7\"\npoll_ms = 50\n",
        )
        .expect("write");
        let cli = Cli::try_parse_from([
            "x",
            "--config",
            file.to_str().expect("utf8"),
            "--rpc-url",
            "http://flag:8545",
        ])
        .expect("parse");
        let s = cli.run.resolve().expect("resolve");
        assert_eq!(s.rpc_url.as_str(), "http://flag:8545/");
        assert_eq!(s.deployment, PathBuf::from("file.json"));
        assert_eq!(s.stake_wei, Some(U256::from(7)));
        assert_eq!(s.poll, Duration::from_millis(50));
        assert_eq!(s.min_wei_per_step, U256::ZERO);
        assert!(s.data_dir.ends_with("pedals/provider"));
    }

    #[test]
    fn a_missing_setting_or_an_unknown_key_says_what_to_do() {
        let cli =
            Cli::try_parse_from(["x", "--deployment", "d.json", "--keystore", "k"]).expect("parse");
        let err = cli.run.resolve().expect_err("no rpc url").to_string();
        assert!(err.contains("pass --rpc-url, set PEDALS_RPC_URL"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "rpc_ulr = \"http://typo\"\n").expect("write");
        let cli =
            Cli::try_parse_from(["x", "--config", file.to_str().expect("utf8")]).expect("parse");
        let err = format!("{:#}", cli.run.resolve().expect_err("typo"));
        assert!(err.contains("rpc_ulr"), "{err}");
    }
}
