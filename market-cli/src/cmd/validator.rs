//! `pedals validator run`: the validator daemon in the foreground. It stakes if asked, then
//! checks a secret sample of the steps of every submitted job, challenges a step that does not
//! reproduce and plays the dispute game to the end. Settings come from flags or their
//! `PEDALS_*` environment variables; the keystore's password from `--password-file`,
//! `PEDALS_PASSWORD` or a prompt, never logged.

use std::{path::PathBuf, sync::Arc, time::Duration};

use alloy::{
    primitives::U256,
    providers::{Provider, ProviderBuilder},
    transports::http::reqwest::Url,
};
use clap::{Args, Subcommand};
use eyre::Context;
use pedals_chain::{Deployment, Market};
use pedals_p2p::MemorySource;
use pedals_verifier::{Verifier, VerifierConfig, serve_metrics};
use tracing::info;

/// Validator commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ValidatorCommand {
    /// Run the validator daemon in the foreground until Ctrl-C or SIGTERM.
    ///
    /// Example: pedals validator run --rpc-url http://127.0.0.1:8545 --deployment
    /// contracts/deployments/31337.json --keystore ~/.local/share/pedals/keystores/v.json
    /// --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW… --stake-wei 100000000000000000
    Run(Box<RunArgs>),
    #[command(flatten)]
    Stake(super::stake::StakeCommand),
}

/// Options of `pedals validator run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "PEDALS_RPC_URL")]
    rpc_url: Url,
    /// Deployment file written by the deploy script (contracts/deployments/<chain>.json).
    #[arg(long, env = "PEDALS_DEPLOYMENT")]
    deployment: PathBuf,
    /// Data directory (the node's network identity).
    #[arg(long, env = "PEDALS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Encrypted keystore (Web3 secret storage) of the validator's account.
    #[arg(long, env = "PEDALS_KEYSTORE")]
    keystore: PathBuf,
    /// File holding the keystore's password (else `PEDALS_PASSWORD`, else a prompt).
    #[arg(long, env = "PEDALS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// Steps re-executed per job: a worker that falsified a fraction f of its steps escapes
    /// with probability about (1 - f)^k.
    #[arg(long, env = "PEDALS_SAMPLES_PER_JOB", default_value_t = 8)]
    samples_per_job: usize,
    /// Keep at least this much stake, in wei (staking the difference at start); a challenge
    /// needs the market's minimum validator stake.
    #[arg(long, env = "PEDALS_STAKE_WEI")]
    stake_wei: Option<U256>,
    /// Milliseconds between rounds.
    #[arg(long, env = "PEDALS_POLL_MS", default_value_t = 1000)]
    poll_ms: u64,
    /// Address of the /metrics and /health endpoints.
    #[arg(long, env = "PEDALS_METRICS_ADDR", default_value = "127.0.0.1:9465")]
    metrics_addr: std::net::SocketAddr,
    #[command(flatten)]
    net: super::net::NetArgs,
}

impl ValidatorCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Run(args) => run(*args).await,
            Self::Stake(cmd) => cmd.run().await,
        }
    }
}

async fn run(args: RunArgs) -> eyre::Result<()> {
    let signer = super::secret::open_keystore(&args.keystore, args.password_file.as_deref())?;
    let deployment = Deployment::load(&args.deployment)?;
    let provider = ProviderBuilder::new()
        .connect_http(args.rpc_url.clone())
        .erased();
    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err_with(|| format!("the RPC endpoint {} does not answer", args.rpc_url))?;
    eyre::ensure!(
        chain_id == deployment.chain_id,
        "the RPC endpoint is on chain {chain_id} but the deployment file is for chain {}",
        deployment.chain_id
    );
    let data_dir = args.data_dir.unwrap_or_else(|| {
        dirs::data_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("pedals")
            .join("validator")
    });
    std::fs::create_dir_all(&data_dir)
        .wrap_err_with(|| format!("cannot create {}", data_dir.display()))?;
    let network = super::net::start_node(
        &data_dir,
        args.net.config(&[], &[]),
        Arc::new(MemorySource::default()),
    )
    .await?;
    let market = Market::over(provider, signer, deployment);
    let validator = Verifier::new(
        market.clone(),
        network.client.clone(),
        VerifierConfig {
            samples_per_job: args.samples_per_job.max(1),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
    );
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
    let (metrics_addr, metrics_task) =
        serve_metrics(args.metrics_addr, validator.stats(), async move {
            let _ = metrics_stopped.await;
        })
        .await
        .wrap_err_with(|| {
            format!(
                "cannot serve metrics on {}: pass another --metrics-addr",
                args.metrics_addr
            )
        })?;
    info!(target: "pedals::validator", %metrics_addr, "metrics endpoint up");
    validator
        .run(
            Duration::from_millis(args.poll_ms),
            super::provider::shutdown_signal(),
        )
        .await;
    let _ = stop_metrics.send(());
    let _ = metrics_task.await;
    network.client.shutdown().await;
    info!(target: "pedals::validator", "validator stopped");
    Ok(())
}
