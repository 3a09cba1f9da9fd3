//! `pedals devnet demo`: start anvil, deploy every contract with the project's deploy script,
//! send real transactions against them, print what happened, and stop.

use std::time::Instant;

use alloy::{
    primitives::{Address, U256, aliases::U40, keccak256, utils::format_ether},
    providers::Provider,
};
use clap::{Args, Subcommand};
use eyre::{Context, ContextCompat};
use pedals_chain::{Devnet, DevnetConfig, JobRequest, JobStatus, Market, TxOutcome};
use serde_json::json;

/// Devnet commands.
#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start anvil, deploy the contracts, send a stake and a paid job posting (then cancel it and
    /// withdraw the refund), print the addresses and receipts, and stop anvil.
    ///
    /// Example: pedals devnet demo --json
    Demo(DemoArgs),
}

/// Options of `pedals devnet demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Port for anvil (a free one by default).
    #[arg(long, env = "PEDALS_DEVNET_PORT")]
    port: Option<u16>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

impl DevnetCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            // On Ctrl-C the demo future is dropped, and with it the devnet, which stops anvil.
            Self::Demo(args) => tokio::select! {
                result = demo(args) => result,
                _ = tokio::signal::ctrl_c() => Err(eyre::eyre!("interrupted; anvil stopped")),
            },
        }
    }
}

/// One step of the demo, as printed.
struct Step {
    what: &'static str,
    from: Address,
    tx: TxOutcome,
}

async fn demo(args: DemoArgs) -> eyre::Result<()> {
    let started = Instant::now();
    let devnet = Devnet::start(DevnetConfig {
        port: args.port,
        ..DevnetConfig::default()
    })
    .await
    .wrap_err("could not start the devnet")?;
    let deployment = devnet.deployment().clone();

    let connect = |index: usize| {
        let signer = devnet.signer(index);
        let endpoint = devnet.endpoint();
        let deployment = deployment.clone();
        async move {
            let signer = signer.context("anvil has fewer dev accounts than the demo needs")?;
            Market::connect(endpoint, signer, deployment)
                .await
                .wrap_err("could not connect to the devnet")
        }
    };
    let requester = connect(1).await?;
    let provider = connect(2).await?;

    let params = requester.parameters().await?;
    let stake = U256::from(params.minProviderStake) * U256::from(2);
    let payment = U256::from(10u64).pow(U256::from(17u64)); // 0.1 ETH
    let requester_before = requester.balance(requester.sender()).await?;

    let mut steps = Vec::new();
    let staked = provider.stake(stake).await.wrap_err("staking failed")?;
    steps.push(Step {
        what: "provider stakes",
        from: provider.sender(),
        tx: staked,
    });

    let now = requester
        .provider()
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .context("the devnet has no latest block")?
        .header
        .timestamp;
    let request = JobRequest {
        specHash: keccak256("pedals devnet demo spec"),
        modelCid: demo_cid(b"model"),
        datasetCid: demo_cid(b"dataset"),
        steps: 100,
        verification: 0,
        claimDeadline: U40::from(now + 600),
        deliveryDeadline: U40::from(now + 3600),
        challengeWindow: params.minChallengeWindow,
    };
    let (job_id, posted) = requester
        .post_job(request, payment)
        .await
        .wrap_err("posting the job failed")?;
    steps.push(Step {
        what: "requester posts job",
        from: requester.sender(),
        tx: posted,
    });
    let status =
        JobStatus::try_from(requester.job(job_id).await?.status).unwrap_or(JobStatus::None);

    let cancelled = requester
        .cancel_job(job_id)
        .await
        .wrap_err("cancelling failed")?;
    steps.push(Step {
        what: "requester cancels job",
        from: requester.sender(),
        tx: cancelled,
    });
    let withdrawn = requester
        .withdraw()
        .await
        .wrap_err("withdrawing the refund failed")?;
    steps.push(Step {
        what: "requester withdraws refund",
        from: requester.sender(),
        tx: withdrawn,
    });

    let requester_after = requester.balance(requester.sender()).await?;
    let gas_paid: U256 = steps
        .iter()
        .filter(|s| s.from == requester.sender())
        .map(|s| s.tx.fee())
        .sum();
    eyre::ensure!(
        requester_after == requester_before - gas_paid,
        "the refund did not return the escrow in full: before {requester_before}, after \
         {requester_after}, gas {gas_paid}"
    );
    let stake_account = provider.stake_of(provider.sender()).await?;
    let elapsed = started.elapsed();

    if args.json {
        let out = json!({
            "rpcUrl": devnet.endpoint().to_string(),
            "deployment": deployment,
            "jobId": job_id.to_string(),
            "statusAfterPost": status.to_string(),
            "providerStake": stake_account.staked.to_string(),
            "requesterGasPaidWei": gas_paid.to_string(),
            "transactions": steps.iter().map(|s| json!({
                "step": s.what,
                "from": s.from,
                "hash": s.tx.hash,
                "block": s.tx.block_number,
                "gasUsed": s.tx.gas_used,
                "effectiveGasPrice": s.tx.effective_gas_price.to_string(),
            })).collect::<Vec<_>>(),
            "elapsedMs": elapsed.as_millis() as u64,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "devnet      {} (chain {})",
            devnet.endpoint(),
            devnet.chain_id()
        );
        println!("JobMarket   {}", deployment.job_market);
        println!("StakeManager {}", deployment.stake_manager);
        println!(
            "deployed at block {} by {}",
            deployment.deployment_block, deployment.deployer
        );
        println!();
        for s in &steps {
            println!(
                "{:<28} tx {}  block {:>3}  gas {:>7}",
                s.what, s.tx.hash, s.tx.block_number, s.tx.gas_used
            );
        }
        println!();
        println!(
            "job {job_id}: {status} with {} ETH escrowed, then cancelled and refunded in full \
             (the requester paid only {} ETH of gas)",
            format_ether(payment),
            format_ether(gas_paid)
        );
        println!(
            "provider stake: {} ETH, {} locked",
            format_ether(U256::from(stake_account.staked)),
            format_ether(U256::from(stake_account.locked))
        );
        println!("done in {:.1} s; anvil stopped", elapsed.as_secs_f64());
    }
    drop(devnet);
    Ok(())
}

/// The binary CIDv1 (raw codec, sha2-256) of `data`: the form the market accepts.
fn demo_cid(data: &[u8]) -> alloy::primitives::Bytes {
    pedals_core::cid_of(data).to_bytes().into()
}
