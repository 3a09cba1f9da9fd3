//! `pedals validator run` as an operator runs it, beside `pedals provider run`: both real
//! processes on a devnet, the validator joining through the provider's libp2p address. The
//! validator fetches the job's files and sampled checkpoints from the provider, re-executes
//! them, finds every step honest, and reports it on its metrics endpoint.

use std::{
    path::Path,
    process::{Child, Command},
    time::{Duration, Instant},
};

use alloy::primitives::U256;
use pedals_chain::{Devnet, JobStatus};

use crate::{free_port, wait_for};

fn daemon(dir: &Path, devnet: &Devnet, args: &[&str], key: &str, data: &str) -> Child {
    crate::daemon(dir, devnet, args, key, data)
        .spawn()
        .expect("the daemon starts")
}

pub(crate) async fn metrics(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    match alloy::transports::http::reqwest::get(&url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

pub(crate) fn counter(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `pedals validator run` with the keystore `validator.json` of `dir`, its settings in a config
/// file (200 ms rounds, `samples` steps a job), staking `stake` wei, joined to `bootstrap`, its
/// metrics on `metrics`.
pub(crate) fn validator_daemon(
    dir: &Path,
    devnet: &Devnet,
    samples: usize,
    stake: &str,
    bootstrap: &str,
    metrics: u16,
) -> Child {
    let config = dir.join("validator.toml");
    std::fs::write(
        &config,
        format!("poll_ms = 200\nsamples_per_job = {samples}\n"),
    )
    .expect("config");
    daemon(
        dir,
        devnet,
        &[
            "validator",
            "run",
            "--config",
            config.to_str().expect("utf8"),
            "--stake-wei",
            stake,
            "--bootstrap",
            bootstrap,
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
        ],
        "validator.json",
        "validator",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_validator_daemon_checks_a_providers_job_over_libp2p_and_reports_it() {
    let devnet = crate::mining_devnet().await;
    let dir = crate::daemon_dir(&devnet, &[(3, "provider.json"), (4, "validator.json")]);

    let (spec, dataset, model) = crate::small_job(5, 40, 10, 4, 256, &dir.path().join("provider"));
    let requester = crate::dev_market(&devnet, 1).await;
    let params = requester.parameters().await.expect("params");
    let payment = U256::from(10u64).pow(U256::from(17u64));
    let stake = requester.stake_to_claim(payment).await.expect("params");

    let p2p = free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{p2p}");
    let provider_metrics = free_port().to_string();
    let stake_s = stake.to_string();
    let mut provider = daemon(
        dir.path(),
        &devnet,
        &[
            "provider",
            "run",
            "--poll-ms",
            "200",
            "--stake-wei",
            &stake_s,
            "--listen",
            &listen,
            "--metrics-addr",
            &format!("127.0.0.1:{provider_metrics}"),
        ],
        "provider.json",
        "provider",
    );
    crate::admit(&requester, &spec).await;
    let id = crate::post_spec(&requester, &spec, (&model, &dataset), payment, 600).await;
    wait_for(
        &requester,
        id,
        JobStatus::Submitted,
        Duration::from_secs(90),
    )
    .await;

    let port = free_port();
    let min_stake = U256::from(params.minValidatorStake).to_string();
    // Some settings from a config file: the 5 steps checked below prove it was read.
    let mut validator = validator_daemon(dir.path(), &devnet, 5, &min_stake, &listen, port);
    let until = Instant::now() + Duration::from_secs(90);
    let page = loop {
        let page = metrics(port).await;
        if counter(&page, "pedals_validator_jobs_checked_total") >= 1 {
            break page;
        }
        assert!(
            Instant::now() < until,
            "the validator never checked the job: {page}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        counter(&page, "pedals_validator_steps_checked_total"),
        5,
        "{page}"
    );
    assert_eq!(
        counter(&page, "pedals_validator_mismatches_total"),
        0,
        "{page}"
    );
    assert_eq!(
        counter(&page, "pedals_validator_disputes_won_total"),
        0,
        "{page}"
    );
    let staked = requester
        .stake_of(devnet.signer(4).expect("key").address())
        .await
        .expect("stake")
        .staked;
    assert_eq!(
        U256::from(staked),
        U256::from(params.minValidatorStake),
        "it staked"
    );
    for child in [&mut validator, &mut provider] {
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let status = child.wait().expect("exits");
        assert!(status.success(), "SIGTERM stops it cleanly: {status}");
    }
    // The job is untouched by the check.
    let job = requester.job(id).await.expect("job");
    assert_eq!(JobStatus::try_from(job.status), Ok(JobStatus::Submitted));
}
