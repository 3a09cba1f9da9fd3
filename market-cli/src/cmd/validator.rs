//! `pedals validator run`: the validator daemon in the foreground. It stakes if asked, then
//! checks a secret sample of the steps of every submitted job, challenges a step that does not
//! reproduce and plays the dispute game to the end. Settings come from flags, their `PEDALS_*`
//! environment variables or a TOML config file (`--config`); the keystore's password from
//! `--password-file`, `PEDALS_PASSWORD` or a prompt, never logged.

use std::{path::PathBuf, sync::Arc, time::Duration};

use alloy::{primitives::U256, providers::Provider, transports::http::reqwest::Url};
use clap::{Args, Subcommand};
use eyre::Context;
use pedals_chain::{Deployment, Market};
use pedals_p2p::MemorySource;
use pedals_verifier::{Verifier, VerifierConfig, serve_metrics};
use serde::Deserialize;
use tracing::info;

/// Validator commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ValidatorCommand {
    /// Run the validator daemon in the foreground until Ctrl-C or SIGTERM.
    ///
    /// Example: pedals validator run --config validator.toml --password-file ~/.pedals/pass
    Run(Box<RunArgs>),
    #[command(flatten)]
    Stake(super::stake::StakeCommand),
}

/// Options of `pedals validator run`.
#[derive(Debug, Default, Args)]
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
    /// Data directory (the node's network identity).
    #[arg(long, env = "PEDALS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Encrypted keystore (Web3 secret storage) of the validator's account.
    #[arg(long, env = "PEDALS_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// File holding the keystore's password (else `PEDALS_PASSWORD`, else a prompt).
    #[arg(long, env = "PEDALS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// Steps re-executed per job: a worker that falsified a fraction f of its steps escapes
    /// with probability about (1 - f)^k [default: 8].
    #[arg(long, env = "PEDALS_SAMPLES_PER_JOB")]
    samples_per_job: Option<usize>,
    /// Most memory, in GiB, a challenged fine-tuning step's op trace may take: a job whose
    /// trace would not fit is not checked [default: half of this machine's memory].
    #[arg(long, env = "PEDALS_MAX_TRACE_GIB")]
    max_trace_gib: Option<f64>,
    /// Blocks per eth_getLogs request (events, a game's moves, the market's history): at most
    /// what the RPC provider serves in one [default: 2000].
    #[arg(long, env = "PEDALS_LOG_RANGE")]
    log_range: Option<u64>,
    /// Keep at least this much stake, in wei (staking the difference at start); a challenge
    /// needs the market's minimum validator stake.
    #[arg(long, env = "PEDALS_STAKE_WEI")]
    stake_wei: Option<U256>,
    /// Milliseconds between rounds [default: 1000].
    #[arg(long, env = "PEDALS_POLL_MS")]
    poll_ms: Option<u64>,
    /// Address of the /metrics and /health endpoints [default: 127.0.0.1:9465].
    #[arg(long, env = "PEDALS_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    net: super::net::NetArgs,
    /// Also serve the web app on this loopback address (port 0 picks one), with this
    /// validator's page; the address with its token is printed on stdout
    /// (docs/web-app.md).
    #[arg(long, env = "PEDALS_VALIDATOR_UI")]
    ui: Option<std::net::SocketAddr>,
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
    samples_per_job: Option<usize>,
    max_trace_gib: Option<f64>,
    log_range: Option<u64>,
    stake_wei: Option<U256>,
    poll_ms: Option<u64>,
    metrics_addr: Option<std::net::SocketAddr>,
    ui: Option<std::net::SocketAddr>,
    #[serde(default)]
    listen: Vec<pedals_p2p::Multiaddr>,
    #[serde(default)]
    bootstrap: Vec<pedals_p2p::Multiaddr>,
}

/// Everything resolved.
#[derive(Debug)]
struct Settings {
    rpc_url: Url,
    deployment: PathBuf,
    data_dir: PathBuf,
    keystore: PathBuf,
    password_file: Option<PathBuf>,
    samples_per_job: usize,
    max_trace_bytes: u64,
    log_range: u64,
    stake_wei: Option<U256>,
    poll: Duration,
    metrics_addr: std::net::SocketAddr,
    net: pedals_p2p::NetConfig,
    ui: Option<std::net::SocketAddr>,
}

impl RunArgs {
    /// Flags and environment over the file over the defaults.
    fn resolve(self) -> eyre::Result<Settings> {
        use super::config::missing;
        let file: FileConfig = super::config::read(self.config.as_deref())?;
        Ok(Settings {
            rpc_url: self
                .rpc_url
                .or(file.rpc_url)
                .ok_or_else(|| missing("RPC endpoint", "rpc-url", "PEDALS_RPC_URL"))?,
            deployment: self
                .deployment
                .or(file.deployment)
                .ok_or_else(|| missing("deployment file", "deployment", "PEDALS_DEPLOYMENT"))?,
            data_dir: self.data_dir.or(file.data_dir).unwrap_or_else(|| {
                dirs::data_dir()
                    .unwrap_or_else(std::env::temp_dir)
                    .join("pedals")
                    .join("validator")
            }),
            keystore: self
                .keystore
                .or(file.keystore)
                .ok_or_else(|| missing("keystore", "keystore", "PEDALS_KEYSTORE"))?,
            password_file: self.password_file.or(file.password_file),
            samples_per_job: self
                .samples_per_job
                .or(file.samples_per_job)
                .unwrap_or(8)
                .max(1),
            max_trace_bytes: super::config::trace_budget(
                self.max_trace_gib.or(file.max_trace_gib),
            )?,
            log_range: super::config::log_range(self.log_range.or(file.log_range))?,
            stake_wei: self.stake_wei.or(file.stake_wei),
            poll: Duration::from_millis(self.poll_ms.or(file.poll_ms).unwrap_or(1000)),
            metrics_addr: self
                .metrics_addr
                .or(file.metrics_addr)
                .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 9465))),
            net: self.net.config(&file.listen, &file.bootstrap),
            ui: self.ui.or(file.ui),
        })
    }
}

impl ValidatorCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Run(args) => run((*args).resolve()?).await,
            Self::Stake(cmd) => cmd.run().await,
        }
    }
}

async fn run(args: Settings) -> eyre::Result<()> {
    let signer = super::secret::open_keystore(&args.keystore, args.password_file.as_deref())?;
    let deployment = Deployment::load(&args.deployment)?;
    let provider = pedals_chain::rpc_provider(args.rpc_url.clone())?;
    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err_with(|| format!("the RPC endpoint {} does not answer", args.rpc_url))?;
    eyre::ensure!(
        chain_id == deployment.chain_id,
        "the RPC endpoint is on chain {chain_id} but the deployment file is for chain {}",
        deployment.chain_id
    );
    let data_dir = args.data_dir;
    std::fs::create_dir_all(&data_dir)
        .wrap_err_with(|| format!("cannot create {}", data_dir.display()))?;
    super::datadir::bind(&data_dir, &provider, &deployment).await?;
    let network =
        super::net::start_node(&data_dir, args.net, Arc::new(MemorySource::default())).await?;
    let market = Market::over(provider, signer, deployment).with_log_range(args.log_range);
    market.check_contracts().await?;
    let validator = Verifier::new(
        market.clone(),
        network.client.clone(),
        VerifierConfig {
            samples_per_job: args.samples_per_job,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            // Its findings and the games it plays survive a restart.
            state_dir: Some(data_dir.clone()),
            max_trace_bytes: args.max_trace_bytes,
        },
    )?;
    // Workers are found by the peer their signed progress came from; reading the events also
    // keeps the node's event queue from filling up.
    let _announcements = validator.watch_announcements(network.events);
    info!(target: "pedals::validator", account = %validator.address(), samples_per_job = args.samples_per_job, "validator starting");
    if let Some(stake) = args.stake_wei {
        validator
            .ensure_stake(stake)
            .await
            .wrap_err("staking failed")?;
    }
    let min = U256::from(market.parameters().await?.minValidatorStake);
    let staked = U256::from(market.stake_of(market.sender()).await?.staked);
    if staked < min {
        tracing::warn!(target: "pedals::validator", %staked, %min, "below the market's minimum validator stake: checks run but challenges will be refused; pass --stake-wei");
    }
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let (metrics_addr, metrics_task) = serve_metrics(
        args.metrics_addr,
        validator.stats(),
        // A round re-executes steps; each one done also counts as a sign of life.
        (args.poll * 10).max(Duration::from_secs(120)),
        async move {
            let _ = metrics_stopped.await;
        },
    )
    .await
    .wrap_err_with(|| {
        format!(
            "cannot serve metrics on {}: pass another --metrics-addr",
            args.metrics_addr
        )
    })?;
    info!(target: "pedals::validator", %metrics_addr, "metrics endpoint up");
    let ui = match args.ui {
        Some(addr) => {
            let stats = validator.stats();
            let operator = pedals_ui::Operator {
                role: pedals_ui::Role::Validator,
                address: validator.address(),
                policy: serde_json::json!({
                    "samplesPerJob": args.samples_per_job,
                    "pollMs": args.poll.as_millis(),
                }),
                stats: Arc::new(move || {
                    serde_json::json!({
                        "jobsChecked": stats.jobs_checked.get(),
                        "stepsReexecuted": stats.steps_checked.get(),
                        "mismatches": stats.mismatches.get(),
                        "unavailable": stats.unavailable.get(),
                        "demands": stats.demands.get(),
                        "disputesWon": stats.disputes_won.get(),
                        "disputesLost": stats.disputes_lost.get(),
                        "earnedWei": stats.wei_earned.get().to_string(),
                    })
                }),
                paused: None,
            };
            Some(
                super::daemon_ui::serve(
                    addr,
                    market.provider().clone(),
                    market.deployment().clone(),
                    operator,
                    super::provider::shutdown_signal(),
                )
                .await?,
            )
        }
        None => None,
    };
    validator
        .run(args.poll, super::provider::shutdown_signal())
        .await;
    let _ = stop_metrics.send(());
    let _ = metrics_task.await;
    if let Some(ui) = ui {
        ui.abort();
    }
    network.client.shutdown().await;
    info!(target: "pedals::validator", "validator stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_config_file_parses_and_flags_win_over_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("validator.toml");
        std::fs::write(
            &path,
            r#"
rpc_url = "http://127.0.0.1:8545"
deployment = "/d/deployment.json"
keystore = "/d/keystores/validator.json"
password_file = "/d/password"
samples_per_job = 8
max_trace_gib = 1.5
log_range = 500
stake_wei = "100000000000000000"
bootstrap = ["/ip4/127.0.0.1/tcp/4001"]
metrics_addr = "127.0.0.1:9465"
"#,
        )
        .expect("write");
        let args = RunArgs {
            config: Some(path),
            rpc_url: None,
            deployment: None,
            data_dir: None,
            keystore: None,
            password_file: None,
            samples_per_job: Some(3),
            max_trace_gib: None,
            log_range: None,
            stake_wei: None,
            poll_ms: None,
            metrics_addr: None,
            net: super::super::net::NetArgs::default(),
            ui: None,
        };
        let bad = RunArgs {
            config: args.config.clone(),
            max_trace_gib: Some(-1.0),
            ..RunArgs::default()
        };
        let err = format!("{:#}", bad.resolve().expect_err("refused"));
        assert!(
            err.contains("--max-trace-gib must be a positive number"),
            "{err}"
        );
        let zero = RunArgs {
            config: args.config.clone(),
            log_range: Some(0),
            ..RunArgs::default()
        };
        let err = format!("{:#}", zero.resolve().expect_err("refused"));
        assert!(
            err.contains("--log-range must be at least 1 block"),
            "{err}"
        );
        let s = args.resolve().expect("resolves");
        assert_eq!(s.samples_per_job, 3, "the flag wins");
        assert_eq!(s.max_trace_bytes, 3 << 29, "1.5 GiB from the file");
        assert_eq!(s.log_range, 500, "from the file");
        assert_eq!(s.stake_wei, Some(U256::from(100_000_000_000_000_000u64)));
        assert_eq!(s.keystore, PathBuf::from("/d/keystores/validator.json"));
        assert_eq!(s.net.bootstrap.len(), 1);
        assert_eq!(s.poll, Duration::from_millis(1000), "the default");
    }
}
