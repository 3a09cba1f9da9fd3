//! `pedals devnet dispute-demo` (debug builds only): the main job again, but the worker lies
//! about half of its steps, and a validator catches it: it re-executes a secret sample of the
//! steps from the worker's checkpoints, challenges the first that does not reproduce, and the
//! dispute game narrows the lie to one element that the contract recomputes. The worker's
//! collateral is seized; the requester is refunded; the validator gets its bond back plus its
//! reward. Every balance is checked to the wei.
//!
//! The lying worker uses `WorkerConfig::falsify_steps`, which exists in debug builds only, so
//! this command does too.

use std::{sync::Arc, time::Instant};

use alloy::{
    primitives::U256,
    providers::{Provider, ProviderBuilder},
};
use eyre::{Context, ContextCompat};
use pedals_chain::{JobStatus, Market};
use pedals_node::{JobFiles, PostTerms, Requester, StoreSource, Worker, WorkerConfig};
use pedals_p2p::{MemorySource, NetConfig};
use pedals_store::Store;
use pedals_verifier::{Verifier, VerifierConfig};
use serde_json::json;

use super::demo::{DEMO_STEPS, DemoArgs, demo_job};

/// The worker lies about every step from this one on: half of the job.
const FIRST_LIE: u64 = DEMO_STEPS / 2;
/// Steps the validator re-executes: it misses every lie with probability 2^-16.
const SAMPLES: usize = 16;

fn start_net(
    source: Arc<dyn pedals_p2p::ContentSource>,
    bootstrap: Vec<pedals_p2p::Multiaddr>,
) -> impl std::future::Future<Output = Result<pedals_p2p::Network, pedals_p2p::P2pError>> {
    pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        NetConfig {
            bootstrap,
            ..NetConfig::default()
        },
        source,
    )
}

pub(crate) async fn dispute_demo(args: DemoArgs) -> eyre::Result<()> {
    let started = Instant::now();
    let (spec, dataset, model, _) = demo_job()?;
    let devnet = super::demo::start_devnet(args.port).await?;
    let deployment = devnet.deployment().clone();
    let signer = |i: usize| {
        devnet
            .signer(i)
            .context("anvil has fewer dev accounts than the demo needs")
    };
    let requester_market = Market::connect(devnet.endpoint(), signer(1)?, deployment.clone())
        .await
        .wrap_err("could not connect to the devnet")?;
    let requester_dir = tempfile::tempdir()?;
    let requester_store = Arc::new(Store::open(requester_dir.path())?);
    let requester_net = start_net(
        Arc::new(StoreSource::new(requester_store.clone(), 1)),
        Vec::new(),
    )
    .await?;
    let requester = Requester::new(
        requester_market,
        requester_store,
        Some(requester_net.client.clone()),
    );
    let market = requester.market();

    // The lying worker: it trains, commits and serves checkpoints consistently with its lies.
    let lies: Vec<u64> = (FIRST_LIE..DEMO_STEPS).collect();
    let worker_dir = tempfile::tempdir()?;
    let worker_store = Arc::new(Store::open(worker_dir.path())?);
    let worker_net = start_net(
        Arc::new(StoreSource::new(worker_store.clone(), 1).falsifying(lies.iter().copied())),
        requester_net.client.listen_addrs().await?,
    )
    .await?;
    let chain = ProviderBuilder::new()
        .connect_http(devnet.endpoint())
        .erased();
    let worker = Worker::new(
        chain,
        signer(2)?,
        worker_store.clone(),
        deployment.clone(),
        WorkerConfig {
            falsify_steps: lies,
            ..WorkerConfig::default()
        },
    )
    .await?
    .with_network(worker_net.client.clone());

    // The validator, joining through the worker's node.
    let validator_net = start_net(
        Arc::new(MemorySource::default()),
        worker_net.client.listen_addrs().await?,
    )
    .await?;
    let validator_market =
        Market::connect(devnet.endpoint(), signer(3)?, deployment.clone()).await?;
    let validator = Verifier::new(
        validator_market.clone(),
        validator_net.client.clone(),
        VerifierConfig {
            samples_per_job: SAMPLES,
            threads: 1,
            ..VerifierConfig::default()
        },
    )?;

    let params = market.parameters().await?;
    let payment = U256::from(10u64).pow(U256::from(17u64));
    worker
        .ensure_stake(market.stake_to_claim(payment).await?)
        .await
        .wrap_err("the worker could not stake")?;
    validator
        .ensure_stake(U256::from(params.minValidatorStake))
        .await
        .wrap_err("the validator could not stake")?;
    let staked_before = U256::from(market.stake_of(worker.address()).await?.staked);
    let (id, _) = requester
        .post(
            &JobFiles {
                spec,
                dataset,
                model,
            },
            &PostTerms {
                payment,
                claim_within: 600,
                deliver_within: 3600,
                challenge_window: 600,
            },
        )
        .await
        .wrap_err("posting the job failed")?;
    let job_id = pedals_core::JobId(id);
    let say = |line: String| {
        if !args.json {
            println!("{line}");
        }
    };
    say(format!(
        "job {job_id} posted: MLP 784-64-10 on 8000 MNIST digits, {DEMO_STEPS} steps, {} ETH; \
         the worker will lie about steps {FIRST_LIE}..{DEMO_STEPS}",
        super::eth(payment)
    ));

    let deadline = Instant::now() + std::time::Duration::from_secs(600);
    let mut last = JobStatus::None;
    let mut challenged_at = None;
    loop {
        worker.tick().await?;
        if !validator.tick().await?.is_empty() {
            challenged_at = Some(started.elapsed());
        }
        let status =
            JobStatus::try_from(market.job(job_id).await?.status).unwrap_or(JobStatus::None);
        if status != last {
            say(format!(
                "  job: {status}  ({:.1} s)",
                started.elapsed().as_secs_f64()
            ));
            last = status;
        }
        match status {
            JobStatus::Resolved => break,
            JobStatus::Finalized => eyre::bail!("the lie went unnoticed and the job finalized"),
            _ if Instant::now() > deadline => eyre::bail!("the dispute did not end in 10 minutes"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }

    let job = market.job(job_id).await?;
    let collateral = U256::from(job.collateral);
    let reward = collateral * U256::from(job.challengerRewardBps) / U256::from(10_000u64);
    let bond = U256::from(params.challengeBond);
    eyre::ensure!(
        market.credit_of(validator.address()).await? == bond,
        "the validator's bond did not come back at once"
    );
    // The reward waits in a pool that every challenger who committed before the conviction
    // may join; the validator collects its share once the claim period is over. The devnet
    // skips those hours on the chain's clock.
    {
        use alloy::providers::ext::AnvilApi;
        let claim_end = market.reward_pool(job_id).await?.claim_end;
        let now = pedals_chain::chain_time(market.provider()).await?;
        let chain = market.provider();
        chain
            .anvil_increase_time(claim_end.saturating_sub(now) + 1)
            .await?;
        chain.anvil_mine(Some(1), None).await?;
    }
    validator.tick().await?;
    say(format!(
        "  claim period over: the validator collected the reward ({} ETH)",
        super::eth(reward)
    ));
    let validator_credit = market.credit_of(validator.address()).await?;
    let requester_credit = market.credit_of(market.sender()).await?;
    let staked_after = U256::from(market.stake_of(worker.address()).await?.staked);
    eyre::ensure!(
        validator_credit == bond + reward,
        "the validator's credit does not add up"
    );
    eyre::ensure!(
        requester_credit == payment + collateral - reward,
        "the requester's credit does not add up"
    );
    eyre::ensure!(
        staked_before - staked_after == collateral,
        "the worker's stake did not lose exactly its collateral"
    );
    let stats = validator.stats();
    let elapsed = started.elapsed();
    if args.json {
        let out = json!({
            "jobId": job_id.to_string(),
            "status": JobStatus::Resolved.to_string(),
            "lies": format!("{FIRST_LIE}..{DEMO_STEPS}"),
            "stepsChecked": stats.steps_checked.get(),
            "mismatches": stats.mismatches.get(),
            "collateralSeizedWei": collateral.to_string(),
            "validatorCreditWei": validator_credit.to_string(),
            "requesterCreditWei": requester_credit.to_string(),
            "challengedAfterMs": challenged_at.map(|d| d.as_millis() as u64),
            "elapsedMs": elapsed.as_millis() as u64,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!();
        println!(
            "the validator re-executed {} sampled steps, found {} that do not reproduce, challenged, and won the game",
            stats.steps_checked.get(),
            stats.mismatches.get()
        );
        println!(
            "worker: collateral {} ETH seized; validator: bond {} + reward {} ETH; requester: payment {} + {} ETH of the collateral back; checked to the wei",
            super::eth(collateral),
            super::eth(bond),
            super::eth(reward),
            super::eth(payment),
            super::eth(collateral - reward)
        );
        println!("done in {:.1} s; anvil stopped", elapsed.as_secs_f64());
    }
    // The chain clients first: their block pollers would report the stopped anvil.
    drop((worker, validator, validator_market, requester));
    drop(devnet);
    Ok(())
}
