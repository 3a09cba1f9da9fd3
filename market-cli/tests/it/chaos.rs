//! Chaos with real processes, on a chain that mines a block every second (so a kill often
//! lands between a transaction's broadcast and its block):
//!
//! - `pedals validator run` is killed with SIGKILL again and again while it plays a dispute
//!   game against a lying worker, and started again on the same data folder. It still wins,
//!   and it never sends a transaction twice: none of its transactions reverts, and it commits
//!   and reveals its challenge once each.
//! - `pedals provider run`, lying, is killed the same way while it defends against the honest
//!   validator. It plays every move it owes until it loses, and never sends one twice.

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

/// How long each life of a killed daemon lasts, in milliseconds, in turn: from 0.3 s to 2.9 s,
/// so that with a block a second the kills fall before, between and after its broadcasts and
/// their blocks.
const SLICES: [u64; 8] = [300, 1300, 700, 2900, 500, 1900, 1100, 2300];

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

    // The validator lives for a different slice each time (SLICES).
    let listen = net.client.listen_addrs().await.expect("addrs")[0].to_string();
    let log = dir.join("validator.log");
    let stake = U256::from(params.minValidatorStake).to_string();
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
        let slice = Duration::from_millis(SLICES[kills % SLICES.len()]);
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
    check_the_end(
        "validator",
        (&devnet, &requester, id),
        validator_key.address(),
        (kills, &phases, &log),
        &[
            ("commitChallenge", JobMarket::commitChallengeCall::SELECTOR),
            ("challenge", JobMarket::challengeCall::SELECTOR),
        ],
    )
    .await;
    let collateral = requester
        .credit_of(validator_key.address())
        .await
        .expect("credit");
    assert!(
        collateral > U256::ZERO,
        "the validator was paid the worker's collateral"
    );
}

/// `pedals provider run` of dev account 3, lying about `lies`, listening on `listen`, its log
/// appended to `log`.
fn provider(dir: &Path, devnet: &Devnet, listen: &str, stake: &str, log: &Path) -> Child {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    let lies: Vec<String> = (FIRST_LIE..STEPS).map(|s| s.to_string()).collect();
    let lies = lies.join(",");
    let metrics = format!("127.0.0.1:{}", free_port());
    let args = [
        "provider",
        "run",
        "--poll-ms",
        "200",
        "--stake-wei",
        stake,
        "--listen",
        listen,
        "--metrics-addr",
        &metrics,
        "--debug-falsify-steps",
        &lies,
    ];
    crate::daemon(dir, devnet, &args, "provider.json", "provider")
        .env("PEDALS_LOG", "info")
        .stderr(log)
        .spawn()
        .expect("the provider starts")
}

/// The first step the worker falsifies.
const FIRST_LIE: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_at_every_turn_defends_to_the_end_sending_nothing_twice() {
    let devnet = crate::mining_devnet().await;
    let dir = crate::daemon_dir(&devnet, &[(3, "provider.json")]);
    let dir = dir.path();
    let worker_account = devnet.signer(3).expect("key").address();
    let requester = crate::dev_market(&devnet, 1).await;
    let params = requester.parameters().await.expect("params");
    let (spec, dataset, model) = crate::small_job(7, STEPS, 5, 3, 256, &dir.join("provider"));
    let payment = U256::from(10u64).pow(U256::from(17u64));
    let stake = requester
        .stake_to_claim(payment)
        .await
        .expect("stake")
        .to_string();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let log = dir.join("provider.log");

    // The worker trains (lying from step 4) and submits, undisturbed.
    let mut first = Some(provider(dir, &devnet, &listen, &stake, &log));
    admit(&requester, &spec).await;
    let id = crate::post_spec(&requester, &spec, (&model, &dataset), payment, 3600).await;
    crate::wait_for(
        &requester,
        id,
        JobStatus::Submitted,
        Duration::from_secs(120),
    )
    .await;

    // The honest validator (dev account 4) runs in this process on its own node.
    let net = pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        pedals_p2p::NetConfig {
            bootstrap: vec![listen.parse().expect("multiaddr")],
            ..pedals_p2p::NetConfig::default()
        },
        Arc::new(pedals_p2p::MemorySource::default()),
    )
    .await
    .expect("network");
    let validator = pedals_verifier::Verifier::new(
        crate::dev_market(&devnet, 4).await,
        net.client.clone(),
        pedals_verifier::VerifierConfig {
            samples_per_job: 12,
            threads: 1,
            state_dir: Some(dir.join("validator")),
            ..pedals_verifier::VerifierConfig::default()
        },
    )
    .expect("validator");
    let _announcements = validator.watch_announcements(net.events);
    validator
        .ensure_stake(U256::from(params.minValidatorStake))
        .await
        .expect("stake");
    // It plays on in a task of its own, as its daemon would, whatever the worker's state.
    let validator = Arc::new(validator);
    let playing = {
        let validator = validator.clone();
        tokio::spawn(async move {
            let mut last = String::new();
            loop {
                if let Err(e) = validator.tick().await {
                    let e = e.to_string();
                    if e != last {
                        eprintln!("validator round: {e}");
                        last = e;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    // The worker lives for a different slice each time while the validator plays on.
    let mut phases = std::collections::BTreeSet::new();
    let mut kills = 0;
    let until = Instant::now() + Duration::from_secs(420);
    let mut status = JobStatus::Submitted;
    while status != JobStatus::Resolved {
        assert!(
            Instant::now() < until,
            "the game did not end (last {status:?}, phases {phases:?}); the provider's log: {}",
            log.display()
        );
        let mut daemon = first
            .take()
            .unwrap_or_else(|| provider(dir, &devnet, &listen, &stake, &log));
        // Every eighth life is long enough for a restart and a move on a slow machine.
        let slice = match kills % 8 {
            7 => Duration::from_secs(6),
            k => Duration::from_millis(SLICES[k]),
        };
        tokio::time::sleep(slice).await;
        daemon.kill().expect("SIGKILL");
        daemon.wait().expect("reaped");
        kills += 1;
        phases.insert(format!(
            "{:?}",
            requester.game_of(id).await.expect("game").phase
        ));
        status =
            JobStatus::try_from(requester.job(id).await.expect("job").status).expect("a status");
    }
    playing.abort();
    check_the_end(
        "provider",
        (&devnet, &requester, id),
        worker_account,
        (kills, &phases, &log),
        &[
            ("claimJob", JobMarket::claimJobCall::SELECTOR),
            ("submitResult", JobMarket::submitResultCall::SELECTOR),
            (
                "commitOpTrace",
                pedals_chain::DisputeGame::commitOpTraceCall::SELECTOR,
            ),
        ],
    )
    .await;
}

/// After a game played by a daemon killed `kills` times with its log in `log`: the game is
/// over, the daemon died often, none of `account`'s transactions reverted (a reverted one is
/// one sent twice), and each of `once` was sent exactly once.
async fn check_the_end(
    who: &str,
    (devnet, requester, id): (&Devnet, &pedals_chain::Market, pedals_core::JobId),
    account: alloy::primitives::Address,
    (kills, phases, log): (usize, &std::collections::BTreeSet<String>, &Path),
    once: &[(&str, [u8; 4])],
) {
    let resumed = std::fs::read_to_string(log)
        .expect("log")
        .matches("resuming open transactions")
        .count();
    eprintln!(
        "{who} killed {kills} times; game phases seen between kills: {phases:?}; \
         {resumed} starts found a signed transaction of the last life to finish"
    );
    assert_eq!(
        requester.game_of(id).await.expect("game").phase,
        Phase::None,
        "the game is over"
    );
    assert!(kills >= 5, "it died often ({kills} times)");
    let sent = devnet.sent_by(account).await.expect("transactions");
    let reverted = sent.iter().filter(|tx| !tx.success).count();
    assert_eq!(
        reverted, 0,
        "a reverted transaction is one sent twice: {sent:?}"
    );
    for (name, selector) in once {
        assert_eq!(
            sent.iter().filter(|tx| tx.selector() == *selector).count(),
            1,
            "one {name}: {sent:?}"
        );
    }
}
