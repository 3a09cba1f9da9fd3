//! The requester's commands against a real provider process, over real libp2p on loopback:
//! `pedals job post` serves the files until `pedals provider run` (which has nothing but a
//! bootstrap address) fetches them and claims; `job status` follows the job; `job result`
//! downloads the trained model from the provider's node, checks it and scores it; `job
//! cancel` takes back the escrow of a job nobody claimed. Bad job files are refused before
//! any transaction.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use alloy::{primitives::U256, providers::Provider};
use pedals_chain::{Devnet, JobStatus, Market};
use serde_json::Value;

use crate::{free_port, keystore, wait_for};

pub(crate) fn pedals(dir: &Path, devnet: &Devnet) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pedals"));
    cmd.env("PEDALS_RPC_URL", devnet.endpoint().as_str())
        .env("PEDALS_DEPLOYMENT", dir.join("deployment.json"))
        .env("PEDALS_REQUESTER_DIR", dir.join("requester"))
        .env("PEDALS_KEYSTORE", dir.join("requester.json"))
        .env("PEDALS_PASSWORD_FILE", dir.join("password"))
        .env("PEDALS_LOG", "warn");
    cmd
}

pub(crate) fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

pub(crate) fn job_file(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("job file");
    path
}

pub(crate) fn good_job(window: u32) -> String {
    format!(
        r#"
steps = 200
checkpoint_every = 50
seed = 5
payment_eth = "0.1"
challenge_window_secs = {window}
holdout = 128

[model]
layers = [16, 12, 4]
batch = 8
lr = 0.1
momentum = 0.9

[dataset]
format = "synthetic"
seed = 3
samples = 640
features = 16
classes = 4
"#
    )
}

/// `pedals job post --json` of `job`, which serves the files until a provider claims: the
/// running command, the job's id, and an address of the requester's node.
pub(crate) fn post_serving(dir: &Path, devnet: &Devnet, job: &Path) -> (Child, u64, String) {
    let mut post = pedals(dir, devnet)
        .args(["job", "post", "--json"])
        .arg(job)
        .stdout(Stdio::piped())
        .spawn()
        .expect("post runs");
    let mut line = String::new();
    BufReader::new(post.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the posted job");
    let posted: Value = serde_json::from_str(&line).expect("JSON");
    let id = posted["jobId"].as_u64().expect("job id");
    let addr = posted["addrs"][0].as_str().expect("an address").to_owned();
    (post, id, addr)
}

pub(crate) fn provider(
    dir: &Path,
    devnet: &Devnet,
    port: u16,
    bootstrap: &str,
    stake: U256,
) -> Child {
    provider_command(dir, devnet, port, bootstrap, stake)
        .stdout(Stdio::null())
        .spawn()
        .expect("the provider starts")
}

/// `pedals provider run` on the devnet with the test's keystore, not yet started.
pub(crate) fn provider_command(
    dir: &Path,
    devnet: &Devnet,
    port: u16,
    bootstrap: &str,
    stake: U256,
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pedals"));
    cmd.args(["provider", "run", "--poll-ms", "200"])
        .args(["--stake-wei", &stake.to_string()])
        .args(["--rpc-url", devnet.endpoint().as_str()])
        .arg("--deployment")
        .arg(dir.join("deployment.json"))
        .arg("--data-dir")
        .arg(dir.join("provider"))
        .arg("--keystore")
        .arg(dir.join("provider.json"))
        .arg("--password-file")
        .arg(dir.join("password"))
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{port}")])
        .args(["--bootstrap", bootstrap])
        .env("PEDALS_LOG", "warn");
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn a_requester_posts_a_job_a_provider_fetches_it_over_libp2p_and_the_result_comes_back() {
    let devnet = crate::mining_devnet().await;
    let tmp = crate::daemon_dir(&devnet, &[(4, "requester.json"), (5, "provider.json")]);
    let dir = tmp.path();
    let requester_key = devnet.signer(4).expect("dev account");
    let provider_key = devnet.signer(5).expect("dev account");
    let market = Market::connect(
        devnet.endpoint(),
        requester_key.clone(),
        devnet.deployment().clone(),
    )
    .await
    .expect("market");
    let chain = market.provider().clone();
    let window = market
        .parameters()
        .await
        .expect("params")
        .minChallengeWindow;

    // Bad job files are refused before any transaction, saying what to fix.
    for (body, says) in [
        (
            good_job(window).replace("layers = [16, 12, 4]", "layers = [15, 12, 4]"),
            "[model] layers",
        ),
        (
            good_job(window).replace("lr = 0.1", "lr = 3.0"),
            "between 0 and 1",
        ),
        (
            good_job(window).replace("payment_eth = \"0.1\"", ""),
            "payment_eth",
        ),
        (
            good_job(window).replace("steps = 200", "stepz = 200"),
            "stepz",
        ),
        (
            good_job(window).replace("holdout = 128", "holdout = 5000"),
            "only 640 samples",
        ),
        // No layers at all: refused with what to fix, not a panic.
        (
            good_job(window).replace("layers = [16, 12, 4]", "layers = []"),
            "at least an input and an output width",
        ),
        // A negative amount does not wrap around; extra decimals are not cut off silently.
        (
            good_job(window).replace("payment_eth = \"0.1\"", "payment_eth = \"-0.1\""),
            "is not an amount of ETH",
        ),
        (
            good_job(window).replace(
                "payment_eth = \"0.1\"",
                "payment_eth = \"0.1000000000000000001\"",
            ),
            "19 decimals",
        ),
        // More than the account holds (a dev account has 10 000 ETH).
        (
            good_job(window).replace("payment_eth = \"0.1\"", "payment_eth = \"20000\""),
            "fund it or lower the payment",
        ),
        // All it holds, which leaves nothing for the gas: refused before any transaction.
        (
            good_job(window).replace("payment_eth = \"0.1\"", "payment_eth = \"10000\""),
            "wei of gas: fund it or lower the payment",
        ),
    ] {
        let out = pedals(dir, &devnet)
            .args(["job", "post"])
            .arg(job_file(dir, "bad.toml", &body))
            .output()
            .expect("runs");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "expected {says:?} in: {err}");
    }
    assert_eq!(
        chain
            .get_transaction_count(requester_key.address())
            .await
            .expect("nonce"),
        0,
        "nothing was sent"
    );

    // Post; the command serves the files and waits for a claim.
    let job = job_file(dir, "job.toml", &good_job(window));
    let (mut post, id, requester_addr) = post_serving(dir, &devnet, &job);

    // The provider knows only the requester's address; it fetches, claims and trains.
    let stake = market
        .stake_to_claim(U256::from(10u64).pow(U256::from(17u64)))
        .await
        .expect("stake");
    let port = free_port();
    let mut daemon = crate::Daemon(provider(dir, &devnet, port, &requester_addr, stake));
    let posted_exit = post.wait().expect("post returns once the job is claimed");
    assert!(posted_exit.success());
    wait_for(
        &market,
        pedals_core::JobId(id),
        JobStatus::Finalized,
        Duration::from_secs(120),
    )
    .await;

    let status = json(
        &pedals(dir, &devnet)
            .args(["job", "status", "--json", &id.to_string()])
            .output()
            .expect("runs"),
    );
    assert_eq!(status["status"], "finalized");
    assert_eq!(status["worker"], provider_key.address().to_string());

    // The result comes from the provider's node; the requester scores it on its held-out
    // samples.
    let out_file = dir.join("model.bin");
    let result = json(
        &pedals(dir, &devnet)
            .args(["job", "result", "--json", &id.to_string()])
            .args(["--bootstrap", &format!("/ip4/127.0.0.1/tcp/{port}")])
            .arg("--out")
            .arg(&out_file)
            .output()
            .expect("runs"),
    );
    let saved = std::fs::read(&out_file).expect("saved");
    assert_eq!(
        pedals_core::checkpoint_hash(&saved).to_string(),
        result["finalStateHash"].as_str().expect("hash")
    );
    assert_eq!(result["heldOut"], 128);
    let accuracy = result["accuracy"].as_f64().expect("scored");
    assert!(accuracy > 0.5, "accuracy {accuracy}");

    // The trained model, run as a batch-inference job over fresh samples by the same
    // provider; its outputs come back, rebuild the posted trace, and are scored.
    let inference = job_file(
        dir,
        "inference.toml",
        &format!(
            r#"
model_file = "model.bin"
payment_eth = "0.1"
challenge_window_secs = {window}

[inference]
chunk = 100

[model]
layers = [16, 12, 4]
batch = 8

[dataset]
format = "synthetic"
seed = 8
samples = 300
features = 16
classes = 4
"#
        ),
    );
    // This time the requester joins the network through the provider's node.
    let posted = json(
        &pedals(dir, &devnet)
            .args(["job", "post", "--json"])
            .args(["--bootstrap", &format!("/ip4/127.0.0.1/tcp/{port}")])
            .arg(&inference)
            .output()
            .expect("runs"),
    );
    assert_eq!(posted["steps"], 3, "300 samples in chunks of 100");
    let inference_id = posted["jobId"].as_u64().expect("id");
    wait_for(
        &market,
        pedals_core::JobId(inference_id),
        JobStatus::Finalized,
        Duration::from_secs(120),
    )
    .await;
    let outputs = json(
        &pedals(dir, &devnet)
            .args(["job", "result", "--json", &inference_id.to_string()])
            .args(["--bootstrap", &format!("/ip4/127.0.0.1/tcp/{port}")])
            .arg("--out")
            .arg(dir.join("outputs.bin"))
            .output()
            .expect("runs"),
    );
    assert_eq!(outputs["heldOut"], 300);
    assert_eq!(
        std::fs::metadata(dir.join("outputs.bin"))
            .expect("saved")
            .len(),
        300 * 4 * 4,
        "four i32 logits per sample"
    );

    // A finalized job cannot be cancelled.
    let out = pedals(dir, &devnet)
        .args(["job", "cancel", &id.to_string()])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only a job nobody has claimed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With the provider stopped, a second job stays unclaimed and is cancelled: the escrow
    // comes back to the wei (less gas).
    Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(daemon.0.wait().expect("exits").success());
    let before = chain
        .get_balance(requester_key.address())
        .await
        .expect("balance");
    let second = json(
        &pedals(dir, &devnet)
            .args(["job", "post", "--json", "--no-wait"])
            .arg(&job)
            .output()
            .expect("runs"),
    );
    let second_id = second["jobId"].as_u64().expect("id");
    let out = pedals(dir, &devnet)
        .args(["job", "cancel", &second_id.to_string()])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = chain
        .get_balance(requester_key.address())
        .await
        .expect("balance");
    assert!(
        after < before && before - after < U256::from(10u64).pow(U256::from(15u64)),
        "only gas was spent: before {before}, after {after}"
    );
    assert_eq!(
        market
            .credit_of(requester_key.address())
            .await
            .expect("credit"),
        U256::ZERO
    );

    // The two finalized jobs left their protocol fee in the market; only the fee recipient
    // (the devnet's deployer) takes it out, to the wei.
    let accrued = market.fees_accrued().await.expect("fees");
    assert!(accrued > U256::ZERO);
    let fees = json(
        &pedals(dir, &devnet)
            .args(["market", "fees", "--json"])
            .output()
            .expect("runs"),
    );
    assert_eq!(fees["feesAccruedWei"], accrued.to_string());
    assert_eq!(fees["protocolFeeBps"], 250);
    let recipient = devnet.signer(0).expect("deployer");
    assert_eq!(fees["feeRecipient"], recipient.address().to_string());
    let out = pedals(dir, &devnet)
        .args(["market", "withdraw-fees"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "the requester may not");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only the fee recipient"));
    keystore(dir, &recipient, "fees.json");
    let before = chain
        .get_balance(recipient.address())
        .await
        .expect("balance");
    let out = pedals(dir, &devnet)
        .args(["market", "withdraw-fees"])
        .env("PEDALS_KEYSTORE", dir.join("fees.json"))
        .output()
        .expect("runs");
    crate::succeeded(&out);
    let after = chain
        .get_balance(recipient.address())
        .await
        .expect("balance");
    let gas = before + accrued - after;
    assert!(
        gas < U256::from(10u64).pow(U256::from(15u64)),
        "only gas: {gas}"
    );
    assert_eq!(market.fees_accrued().await.expect("fees"), U256::ZERO);
}
