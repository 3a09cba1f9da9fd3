//! `pedals validator run` as an operator runs it, beside `pedals provider run`: both real
//! processes on a devnet, the validator joining through the provider's libp2p address. The
//! validator fetches the job's files and sampled checkpoints from the provider, re-executes
//! them, finds every step honest, and reports it on its metrics endpoint and on its own page
//! (`--ui`: `/api/me`, behind the token; a validator has nothing to pause).

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
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
    validator_command(dir, devnet, samples, stake, bootstrap, metrics)
        .spawn()
        .expect("the validator starts")
}

/// [`validator_daemon`], not yet started.
fn validator_command(
    dir: &Path,
    devnet: &Devnet,
    samples: usize,
    stake: &str,
    bootstrap: &str,
    metrics: u16,
) -> Command {
    let config = dir.join("validator.toml");
    std::fs::write(
        &config,
        // Seven blocks a log query: every scan, follower and game read pages through many.
        format!("poll_ms = 200\nsamples_per_job = {samples}\nlog_range = 7\n"),
    )
    .expect("config");
    crate::daemon(
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
    // Some settings from a config file: the 5 steps checked below prove it was read. It
    // serves its own page too (`--ui`); the address with the token is its first line.
    let mut validator = validator_command(dir.path(), &devnet, 5, &min_stake, &listen, port)
        .env("PEDALS_VALIDATOR_UI", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the validator starts");
    let mut out = BufReader::new(validator.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("reads");
    let (origin, token) = first
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|u| u.split_once("/#token="))
        .expect("the web app's address with its token");
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
    // Its own page says the same, with its settings; there is nothing to pause.
    let http = alloy::transports::http::reqwest::Client::new();
    let me: serde_json::Value = http
        .get(format!("{origin}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(me["role"], "validator", "{me}");
    assert_eq!(me["stats"]["stepsReexecuted"], 5, "{me}");
    assert!(me["stats"]["jobsChecked"].as_u64() >= Some(1), "{me}");
    assert_eq!(me["policy"]["samplesPerJob"], 5, "{me}");
    let pause = http
        .post(format!("{origin}/api/me/pause"))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers");
    assert_eq!(pause.status().as_u16(), 409);
    let anonymous = http
        .get(format!("{origin}/api/me"))
        .send()
        .await
        .expect("answers");
    assert_eq!(anonymous.status().as_u16(), 401);
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
