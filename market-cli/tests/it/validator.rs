//! `pedals validator run` as an operator runs it, beside `pedals provider run`: both real
//! processes on a devnet, the validator joining through the provider's libp2p address. The
//! validator fetches the job's files and sampled checkpoints from the provider, re-executes
//! them, finds every step honest, and reports it on its metrics endpoint.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::primitives::{Bytes, U256, aliases::U40};
use pedals_chain::{Devnet, DevnetConfig, JobRequest, JobStatus, Market, chain_time};
use pedals_core::cid_of;

use crate::{free_port, keystore, wait_for};

fn daemon(dir: &Path, devnet: &Devnet, args: &[&str], key: &str, data: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pedals"))
        .args(args)
        .arg("--rpc-url")
        .arg(devnet.endpoint().as_str())
        .arg("--deployment")
        .arg(dir.join("deployment.json"))
        .arg("--data-dir")
        .arg(dir.join(data))
        .arg("--keystore")
        .arg(dir.join(key))
        .arg("--password-file")
        .arg(dir.join("password"))
        .env("PEDALS_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the daemon starts")
}

async fn metrics(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    match alloy::transports::http::reqwest::get(&url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn counter(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_validator_daemon_checks_a_providers_job_over_libp2p_and_reports_it() {
    let devnet = Devnet::start(DevnetConfig {
        block_time: Some(1),
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts: run `make setup` first if the toolchain is missing");
    let dir = tempfile::tempdir().expect("tempdir");
    devnet
        .deployment()
        .save(&dir.path().join("deployment.json"))
        .expect("deployment file");
    keystore(dir.path(), &devnet.signer(3).expect("key"), "provider.json");
    keystore(
        dir.path(),
        &devnet.signer(4).expect("key"),
        "validator.json",
    );
    std::fs::write(dir.path().join("password"), "correct horse\n").expect("password");

    let (spec, dataset, model) = crate::small_job(5, 40, 10, 4, 256, &dir.path().join("provider"));
    let requester = Market::connect(
        devnet.endpoint(),
        devnet.signer(1).expect("account"),
        devnet.deployment().clone(),
    )
    .await
    .expect("requester");
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
    let now = chain_time(requester.provider()).await.expect("time");
    let (id, _) = requester
        .post_job(
            JobRequest {
                specHash: spec.spec_hash(),
                modelCid: Bytes::from(cid_of(&model).to_bytes()),
                datasetCid: Bytes::from(cid_of(&dataset).to_bytes()),
                steps: 40,
                verification: pedals_core::Verification::Optimistic.to_u8(),
                claimDeadline: U40::from(now + 600),
                deliveryDeadline: U40::from(now + 3600),
                challengeWindow: 600,
            },
            payment,
        )
        .await
        .expect("post");
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
    let config = dir.path().join("validator.toml");
    std::fs::write(&config, "poll_ms = 200\nsamples_per_job = 5\n").expect("config");
    let mut validator = daemon(
        dir.path(),
        &devnet,
        &[
            "validator",
            "run",
            "--config",
            config.to_str().expect("utf8"),
            "--stake-wei",
            &min_stake,
            "--bootstrap",
            &listen,
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ],
        "validator.json",
        "validator",
    );
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
