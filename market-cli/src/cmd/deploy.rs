//! `pedals deploy`: every contract to a named network (or any RPC endpoint and chain id) with
//! the deployer's keystore, the roles handed to their holders, the deployment file written
//! (never over an existing one without `--force`, and then the old one is kept beside it), the
//! result read back and checked, and the commands that verify the sources printed.
//! `pedals deploy check` reads any deployment back from the chain and checks it.

use std::path::{Path, PathBuf};

use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    sol_types::SolConstructor,
    transports::http::reqwest::Url,
};
use clap::{Args, Subcommand};
use eyre::{Context, ContextCompat};
use pedals_chain::{
    DEVNET_CHAIN_ID, DataAvailability, DeployRoles, Deployer, Deployment, DeploymentReport,
    DisputeGame, JobMarket, StakeManager, Toolchain, check_deployment, deploy_as, lm,
};
use serde_json::json;

/// A network `--network` names: its chain id and a public RPC endpoint.
struct Network {
    name: &'static str,
    chain_id: u64,
    rpc_url: &'static str,
}

/// The networks known by name. Any other is reached with `--rpc-url` and `--chain-id`.
const NETWORKS: &[Network] = &[
    Network {
        name: "anvil",
        chain_id: DEVNET_CHAIN_ID,
        rpc_url: "http://127.0.0.1:8545",
    },
    Network {
        name: "base-sepolia",
        chain_id: 84532,
        rpc_url: "https://sepolia.base.org",
    },
    Network {
        name: "op-sepolia",
        chain_id: 11_155_420,
        rpc_url: "https://sepolia.optimism.io",
    },
    Network {
        name: "arbitrum-sepolia",
        chain_id: 421_614,
        rpc_url: "https://sepolia-rollup.arbitrum.io/rpc",
    },
];

/// `pedals deploy [check]`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct DeployCommand {
    #[command(subcommand)]
    sub: Option<DeploySub>,
    #[command(flatten)]
    args: DeployArgs,
}

#[derive(Debug, Subcommand)]
enum DeploySub {
    /// Read a deployment back from the chain: code at every address, the contracts' wiring,
    /// every role's holders (from the grant and revoke events), the pauser apart from the
    /// admin, and the parameters. Exits 1 when a check fails.
    ///
    /// Example: pedals deploy check --deployment contracts/deployments/84532.json --rpc-url https://sepolia.base.org
    Check(CheckArgs),
}

/// Options of `pedals deploy`.
#[derive(Debug, Args)]
struct DeployArgs {
    /// The network: anvil, base-sepolia, op-sepolia, arbitrum-sepolia, or any other name with
    /// --rpc-url and --chain-id.
    #[arg(long, default_value = "anvil")]
    network: String,
    /// JSON-RPC endpoint [default: the network's public one].
    #[arg(long)]
    rpc_url: Option<Url>,
    /// Chain id of a network not known by name.
    #[arg(long)]
    chain_id: Option<u64>,
    /// Encrypted keystore (Web3 secret storage) of the deployer, which pays for the deployment.
    #[arg(long, required = true)]
    keystore: Option<PathBuf>,
    /// File holding the keystore's password (else `PEDALS_PASSWORD`, else a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Admin of both contracts (parameters, fee recipient, resolver): a timelock or a multisig
    /// (required off a devnet) [default on a devnet: the deployer].
    #[arg(long)]
    admin: Option<Address>,
    /// Holder of the market's pause switch, another account than the admin (required off a
    /// devnet) [default on a devnet: the deployer].
    #[arg(long)]
    pauser: Option<Address>,
    /// Receiver of protocol fees [default: the admin].
    #[arg(long)]
    fee_recipient: Option<Address>,
    /// Where to write the deployment file [default: contracts/deployments/<chain id>.json].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Deploy even though the deployment file exists (the old file is kept beside it).
    #[arg(long)]
    force: bool,
    /// Accept an admin that is an account with no code (a plain key) off a devnet.
    #[arg(long)]
    allow_eoa_admin: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Options of `pedals deploy check`.
#[derive(Debug, Args)]
struct CheckArgs {
    /// The deployment file.
    #[arg(long, env = "PEDALS_DEPLOYMENT")]
    deployment: PathBuf,
    /// JSON-RPC endpoint of its chain.
    #[arg(long, env = "PEDALS_RPC_URL")]
    rpc_url: Url,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

impl DeployCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self.sub {
            Some(DeploySub::Check(args)) => check(args).await,
            None => deploy(self.args).await,
        }
    }
}

async fn connect(rpc_url: &Url) -> eyre::Result<(DynProvider, u64)> {
    let provider = ProviderBuilder::new()
        .connect_http(rpc_url.clone())
        .erased();
    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err_with(|| format!("the RPC endpoint {rpc_url} does not answer"))?;
    Ok((provider, chain_id))
}

async fn deploy(args: DeployArgs) -> eyre::Result<()> {
    let known = NETWORKS.iter().find(|n| n.name == args.network);
    let chain_id = match (known, args.chain_id) {
        (Some(n), Some(id)) if id != n.chain_id => {
            eyre::bail!("{} is chain {}, not {id}", n.name, n.chain_id)
        }
        (Some(n), _) => n.chain_id,
        (None, Some(id)) => id,
        (None, None) => eyre::bail!(
            "unknown network {:?}: use one of {}, or give --rpc-url and --chain-id",
            args.network,
            NETWORKS
                .iter()
                .map(|n| n.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let rpc_url = match (&args.rpc_url, known) {
        (Some(url), _) => url.clone(),
        (None, Some(n)) => n.rpc_url.parse()?,
        (None, None) => eyre::bail!("pass --rpc-url for network {:?}", args.network),
    };
    let devnet = chain_id == DEVNET_CHAIN_ID;
    let toolchain = Toolchain::locate()?;
    let out = args.out.clone().unwrap_or_else(|| {
        toolchain
            .contracts_dir()
            .join("deployments")
            .join(format!("{chain_id}.json"))
    });
    // Everything that can be refused is refused before the password is asked for.
    if out.exists() && !args.force {
        let what = Deployment::load(&out)
            .map(|d| {
                format!(
                    "JobMarket {} from block {}",
                    d.job_market, d.deployment_block
                )
            })
            .unwrap_or_else(|_| "an unreadable file".into());
        eyre::bail!(
            "{} already records a deployment ({what}): check it with `pedals deploy check \
             --deployment {}`, or pass --force to deploy new contracts (the old file is kept)",
            out.display(),
            out.display()
        );
    }
    if !devnet {
        let admin = args.admin.context(
            "pass --admin: off a devnet the admin must be a timelock or a multisig, not the deployer's key",
        )?;
        let pauser = args
            .pauser
            .context("pass --pauser: off a devnet the pause switch belongs to its own account")?;
        eyre::ensure!(
            pauser != admin,
            "--pauser must be another account than --admin, so pausing needs no admin vote"
        );
    }
    // forge runs in contracts/: it gets absolute paths.
    let keystore = &std::path::absolute(args.keystore.as_deref().context("pass --keystore")?)?;
    let password = super::secret::password(args.password_file.as_deref())?;
    let signer = alloy::signers::local::PrivateKeySigner::decrypt_keystore(keystore, &password)
        .wrap_err_with(|| {
            format!(
                "cannot open the keystore {}: wrong password, or not a keystore file",
                keystore.display()
            )
        })?;
    let deployer = signer.address();
    let (provider, found) = connect(&rpc_url).await?;
    eyre::ensure!(
        found == chain_id,
        "the RPC endpoint {rpc_url} is on chain {found}, not {chain_id} ({}): check --rpc-url",
        args.network
    );
    if !devnet && !args.allow_eoa_admin {
        let admin = args.admin.context("checked above")?;
        let code = provider.get_code_at(admin).await?;
        eyre::ensure!(
            !code.is_empty(),
            "the admin {admin} has no code on chain {chain_id}: give a deployed timelock or \
             multisig, or pass --allow-eoa-admin to accept a plain key"
        );
    }
    let balance = provider.get_balance(deployer).await?;
    eyre::ensure!(
        !balance.is_zero(),
        "the deployer {deployer} has no ETH on chain {chain_id}: fund it first"
    );
    let roles = DeployRoles {
        admin: args.admin,
        pauser: args.pauser,
        fee_recipient: args.fee_recipient.or(args.admin),
        // Devnet zk keys are public: a deployment with a keystore never registers them.
        devnet_zk: false,
    };
    // forge opens the keystore itself; the password reaches it in a file only this user reads,
    // in a folder removed when this function returns.
    let mut temporary = None;
    let password_file = match &args.password_file {
        Some(path) => std::path::absolute(path)?,
        None => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("password");
            write_private(&path, &password)?;
            temporary = Some(dir);
            path
        }
    };
    let deployment = deploy_as(
        &toolchain,
        &rpc_url,
        Deployer::Keystore {
            path: keystore,
            password_file: &password_file,
            address: deployer,
        },
        &roles,
    )
    .await;
    drop(temporary);
    let deployment = deployment.wrap_err("the deploy script failed; nothing was recorded")?;
    let kept = if out.exists() {
        let old = out.with_extension(format!("replaced-{}.json", pedals_p2p::unix_now()));
        std::fs::rename(&out, &old)
            .wrap_err_with(|| format!("cannot move {} aside", out.display()))?;
        Some(old)
    } else {
        None
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    deployment.save(&out)?;
    let report = check_deployment(&provider, &deployment).await?;
    let verify = verify_commands(&deployment, &report, chain_id);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "network": args.network,
                "deployment": deployment,
                "file": out,
                "replaced": kept,
                "checks": checks_json(&report),
                "ok": report.ok(),
                "verify": verify,
            }))?
        );
    } else {
        println!(
            "deployed to {} (chain {chain_id}) from {deployer}",
            args.network
        );
        println!("  JobMarket     {}", deployment.job_market);
        println!("  StakeManager  {}", deployment.stake_manager);
        println!("  GameRouter    {}", deployment.game_router);
        println!("  DisputeGame   {}", deployment.dispute_game);
        println!("  Referee       {}", deployment.referee);
        println!("  LmDisputeGame {}", deployment.lm_dispute_game);
        println!("  DataAvailability {}", deployment.data_availability);
        println!("  AuditPool     {}", deployment.audit_pool);
        println!("  written to {}", out.display());
        if let Some(old) = &kept {
            println!("  the previous file is kept as {}", old.display());
        }
        println!();
        print_report(&report);
        if !devnet {
            println!();
            println!("verify the sources (from contracts/, with ETHERSCAN_API_KEY set):");
            for line in &verify {
                println!("  {line}");
            }
        }
    }
    eyre::ensure!(
        report.ok(),
        "the deployment does not check out (see above); it is recorded in {}",
        out.display()
    );
    Ok(())
}

fn write_private(path: &Path, text: &str) -> eyre::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// `forge verify-contract` for each contract, with its constructor arguments rebuilt from the
/// chain (the market's parameters and the unbonding delay are still the initial ones right
/// after the deployment).
fn verify_commands(d: &Deployment, report: &DeploymentReport, chain_id: u64) -> Vec<String> {
    let stake_args = StakeManager::constructorCall {
        admin: d.deployer,
        unbondingDelay_: report.unbonding_delay,
    }
    .abi_encode();
    let market_args = JobMarket::constructorCall {
        admin: d.deployer,
        pauser: d.pauser,
        stakeManager_: d.stake_manager,
        feeRecipient_: d.fee_recipient,
        params: report.parameters.clone(),
    }
    .abi_encode();
    let game_args = DisputeGame::constructorCall {
        market_: d.game_router,
        referee_: d.referee,
    }
    .abi_encode();
    let lm_game_args = lm::LmDisputeGame::constructorCall {
        market_: d.game_router,
        program_: d.lm_program_referee,
        fullProgram_: d.lm_full_program_referee,
        elements_: d.lm_element_referee,
    }
    .abi_encode();
    let market_only = DataAvailability::constructorCall {
        market_: d.job_market,
    }
    .abi_encode();
    let payments_args = pedals_chain::SpanPayments::constructorCall {
        delay: report.span_withdraw_delay,
    }
    .abi_encode();
    let t = report.span_dispute;
    let span_game_args = pedals_chain::span::SpanDisputeGame::constructorCall {
        stakes_: d.stake_manager,
        spans_: d.lm_span_referee,
        elements_: d.lm_element_referee,
        bond_: t.bond,
        slashAmount_: t.slash,
        clock_: t.clock,
        treasury_: d.fee_recipient,
        receiptWindow_: t.receipt_window,
    }
    .abi_encode();
    // `contract` is `Name`, in src/Name.sol, or `File:Name` for one of several in a file.
    let line = |address: Address, contract: &str, args: &[u8]| {
        let (file, name) = contract.split_once(':').unwrap_or((contract, contract));
        let mut l = format!(
            "forge verify-contract --chain {chain_id} --watch {address} src/{file}.sol:{name}"
        );
        if !args.is_empty() {
            l.push_str(&format!(
                " --constructor-args {}",
                alloy::hex::encode_prefixed(args)
            ));
        }
        l
    };
    vec![
        line(d.stake_manager, "StakeManager", &stake_args),
        line(d.job_market, "JobMarket", &market_args),
        line(d.referee, "Referee", &[]),
        line(d.game_router, "GameRouter", &market_only),
        line(d.dispute_game, "DisputeGame", &game_args),
        line(d.lm_program_referee, "LmReferee:LmProgramReferee", &[]),
        line(
            d.lm_full_program_referee,
            "LmReferee:LmFullProgramReferee",
            &[],
        ),
        line(d.lm_element_referee, "LmReferee:LmElementReferee", &[]),
        line(d.lm_dispute_game, "LmDisputeGame", &lm_game_args),
        line(d.data_availability, "DataAvailability", &market_only),
        line(d.audit_pool, "AuditPool", &market_only),
        line(d.span_payments, "SpanPayments", &payments_args),
        line(d.lm_span_referee, "LmReferee:LmSpanReferee", &[]),
        line(d.span_dispute_game, "SpanDisputeGame", &span_game_args),
    ]
}

fn checks_json(report: &DeploymentReport) -> serde_json::Value {
    json!({
        "checks": report.checks.iter().map(|c| json!({
            "name": c.name, "ok": c.ok, "detail": c.detail,
        })).collect::<Vec<_>>(),
        "roles": report.holders,
        "parameters": {
            "protocolFeeBps": report.parameters.protocolFeeBps,
            "collateralBps": report.parameters.collateralBps,
            "expiryPenaltyBps": report.parameters.expiryPenaltyBps,
            "challengerRewardBps": report.parameters.challengerRewardBps,
            "minChallengeWindow": report.parameters.minChallengeWindow,
            "maxChallengeWindow": report.parameters.maxChallengeWindow,
            "maxDisputeDuration": report.parameters.maxDisputeDuration,
            "challengeBondWei": report.parameters.challengeBond.to_string(),
            "minProviderStakeWei": report.parameters.minProviderStake.to_string(),
            "minValidatorStakeWei": report.parameters.minValidatorStake.to_string(),
        },
        "unbondingDelay": report.unbonding_delay.to_string(),
        "spanWithdrawDelay": report.span_withdraw_delay.to_string(),
        "spanDispute": {
            "bondWei": report.span_dispute.bond.to_string(),
            "slashWei": report.span_dispute.slash.to_string(),
            "clock": report.span_dispute.clock,
            "receiptWindow": report.span_dispute.receipt_window,
        },
        "paused": report.paused,
    })
}

fn print_report(report: &DeploymentReport) {
    for c in &report.checks {
        println!(
            "  {} {:<45} {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let p = &report.parameters;
    println!(
        "  parameters: fee {} bps, collateral {} bps, challenge window {}..{} s, dispute {} s, \
         bond {} ETH, stakes {} / {} ETH (provider / validator); unbonding {} s{}",
        p.protocolFeeBps,
        p.collateralBps,
        p.minChallengeWindow,
        p.maxChallengeWindow,
        p.maxDisputeDuration,
        super::eth(U256::from(p.challengeBond)),
        super::eth(U256::from(p.minProviderStake)),
        super::eth(U256::from(p.minValidatorStake)),
        report.unbonding_delay,
        if report.paused { "; PAUSED" } else { "" }
    );
    let t = report.span_dispute;
    println!(
        "  split inference: withdrawal delay {} s; disputes bond {} ETH, slash up to {} ETH, \
         {} s a side, receipts disputable for {} s",
        report.span_withdraw_delay,
        super::eth(t.bond),
        super::eth(t.slash),
        t.clock,
        t.receipt_window,
    );
}

async fn check(args: CheckArgs) -> eyre::Result<()> {
    let deployment = Deployment::load(&args.deployment)?;
    let (provider, _) = connect(&args.rpc_url).await?;
    let report = check_deployment(&provider, &deployment).await?;
    if args.json {
        let mut doc = checks_json(&report);
        doc["ok"] = json!(report.ok());
        doc["deployment"] = json!(deployment);
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        println!(
            "deployment {} on chain {}:",
            args.deployment.display(),
            deployment.chain_id
        );
        print_report(&report);
    }
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    eyre::ensure!(
        failed.is_empty(),
        "{} check(s) failed: {}",
        failed.len(),
        failed.join("; ")
    );
    Ok(())
}
