//! Chaos with real processes: `pedals validator run` is killed with SIGKILL again and again
//! while it plays a dispute game against a lying worker, on a chain that mines a block every
//! second (so a kill often lands between a transaction's broadcast and its block), and started
//! again on the same data folder. It still wins the game, and it never sends a transaction
//! twice: none of its transactions reverts, and it commits, reveals and opens the challenge
//! once each.

use std::{
    fs::OpenOptions,
    path::Path,
    process::Child,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    primitives::U256,
    providers::{Provider, ProviderBuilder},
    sol_types::SolCall,
};
use pedals_chain::{Devnet, JobMarket, JobStatus, Phase, SendPolicy};
use pedals_node::{StoreSource, Worker, WorkerConfig};
use pedals_store::Store;

use crate::{admit, free_port};

/// Steps of the job; the worker lies from step 4 on.
const STEPS: u64 = 20;

/// The validator daemon of dev account 4, its log appended to `log`.
fn validator(dir: &Path, devnet: &Devnet, listen: &str, stake: &str, log: &Path) -> Child {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    let config = dir.join("validator.toml");
    let config = config.to_str().expect("utf8");
    let metrics = format!("127.0.0.1:{}", free_port());
    let args = [
        "validator",
        "run",
        "--config",
        config,
        "--bootstrap",
        listen,
        "--stake-wei",
        stake,
        "--metrics-addr",
        &metrics,
    ];
    crate::daemon(dir, devnet, &args, "validator.json", "validator")
        .env("PEDALS_LOG", "info")
        .stderr(log)
        .spawn()
        .expect("the validator starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_killed_with_sigkill_at_every_turn_wins_its_game_sending_nothing_twice() {
    let devnet = crate::mining_devnet().await;
    let dir = crate::daemon_dir(&devnet, &[(4, "validator.json")]);
    let dir = dir.path();
    let validator_key = devnet.signer(4).expect("key");
    let requester = crate::dev_market(&devnet, 1).await;
    let params = requester.parameters().await.expect("params");
    // 16 of 20 steps are lies: one of 12 samples is one for certain.
    std::fs::write(
        dir.join("validator.toml"),
        "poll_ms = 200\nsamples_per_job = 12\n",
    )
    .expect("config");

    // The lying worker (dev account 3) runs in this process, on its own network node that
    // serves the states it claimed.
    let (spec, dataset, model) = crate::small_job(7, STEPS, 5, 3, 256, &dir.join("worker"));
    let lies: Vec<u64> = (4..STEPS).collect();
    let store = Arc::new(Store::open(&dir.join("worker")).expect("store"));
    let net = pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        pedals_p2p::NetConfig::default(),
        Arc::new(StoreSource::new(store.clone(), 2).falsifying(lies.iter().copied())),
    )
    .await
    .expect("network");
    let worker = Worker::new(
        ProviderBuilder::new()
            .connect_http(devnet.endpoint())
            .erased(),
        devnet.signer(3).expect("account"),
        store,
        devnet.deployment().clone(),
        WorkerConfig {
            threads: 2,
            send: SendPolicy {
                receipt_timeout: Duration::from_secs(5),
                poll_interval: Duration::from_millis(50),
                ..SendPolicy::default()
            },
            falsify_steps: lies,
            ..WorkerConfig::default()
        },
    )
    .await
    .expect("worker")
    .with_network(net.client.clone());
    let payment = U256::from(10u64).pow(U256::from(17u64));
    worker
        .ensure_stake(requester.stake_to_claim(payment).await.expect("stake"))
        .await
        .expect("stake");
    admit(&requester, &spec).await;
    let id = crate::post_spec(&requester, &spec, (&model, &dataset), payment, 3600).await;
    let until = Instant::now() + Duration::from_secs(120);
    while JobStatus::try_from(requester.job(id).await.expect("job").status)
        != Ok(JobStatus::Submitted)
    {
        worker.tick().await.expect("worker round");
        assert!(Instant::now() < until, "the worker never submitted");
    }

    // The validator lives for a different slice each time, from 0.3 s to 2.9 s: with a block
    // a second, its kills fall before, between and after its broadcasts and their blocks.
    let listen = net.client.listen_addrs().await.expect("addrs")[0].to_string();
    let log = dir.join("validator.log");
    let stake = U256::from(params.minValidatorStake).to_string();
    let slices = [300u64, 1300, 700, 2900, 500, 1900, 1100, 2300];
    let mut phases = std::collections::BTreeSet::new();
    let mut kills = 0;
    let until = Instant::now() + Duration::from_secs(420);
    let mut status = JobStatus::Submitted;
    while status != JobStatus::Resolved {
        assert!(
            Instant::now() < until,
            "the game did not end (last {status:?}, phases {phases:?}); the validator's log: {}",
            log.display()
        );
        let mut daemon = validator(dir, &devnet, &listen, &stake, &log);
        let slice = Duration::from_millis(slices[kills % slices.len()]);
        let lived = Instant::now();
        // The worker defends meanwhile, as its own daemon would.
        while lived.elapsed() < slice {
            let _ = tokio::time::timeout(slice - lived.elapsed(), worker.tick()).await;
        }
        daemon.kill().expect("SIGKILL");
        daemon.wait().expect("reaped");
        kills += 1;
        phases.insert(format!(
            "{:?}",
            requester.game_of(id).await.expect("game").phase
        ));
        status =
            JobStatus::try_from(requester.job(id).await.expect("job").status).expect("a status");
        // Every eighth life is long enough for a whole re-execution on a slow machine.
        if kills % 8 == 0 && status != JobStatus::Resolved {
            let mut daemon = validator(dir, &devnet, &listen, &stake, &log);
            let lived = Instant::now();
            while lived.elapsed() < Duration::from_secs(6) {
                let _ = tokio::time::timeout(Duration::from_secs(1), worker.tick()).await;
            }
            daemon.kill().expect("SIGKILL");
            daemon.wait().expect("reaped");
            status = JobStatus::try_from(requester.job(id).await.expect("job").status)
                .expect("a status");
        }
    }
    let resumed = std::fs::read_to_string(&log)
        .expect("log")
        .matches("resuming open transactions")
        .count();
    eprintln!(
        "validator killed {kills} times; game phases seen between kills: {phases:?}; \
         {resumed} starts found a signed transaction of the last life to finish"
    );
    assert_eq!(
        requester.game_of(id).await.expect("game").phase,
        Phase::None,
        "the game is over"
    );
    assert!(kills >= 5, "it died often ({kills} times)");
    let sent = devnet
        .sent_by(validator_key.address())
        .await
        .expect("transactions");
    let reverted = sent.iter().filter(|tx| !tx.success).count();
    assert_eq!(
        reverted, 0,
        "a reverted transaction is one sent twice: {sent:?}"
    );
    for (name, selector) in [
        ("commitChallenge", JobMarket::commitChallengeCall::SELECTOR),
        ("challenge", JobMarket::challengeCall::SELECTOR),
    ] {
        assert_eq!(
            sent.iter().filter(|tx| tx.selector() == selector).count(),
            1,
            "one {name}: {sent:?}"
        );
    }
    let collateral = requester
        .credit_of(validator_key.address())
        .await
        .expect("credit");
    assert!(
        collateral > U256::ZERO,
        "the validator was paid the worker's collateral"
    );
}
