//! The `pedals` binary, run as a user runs it.

mod chaos;
mod cli;
mod data;
mod deploy;
mod devnet;
mod exit_codes;
mod ft_job;
mod ft_validator;
mod job;
mod job_file;
mod lm_job;
mod model;
mod provider;
mod snapshots;
mod swarm;
mod swarm_crash;
mod swarm_defend;
mod swarm_move;
mod swarm_paid;
mod swarm_slash;
mod ui;
mod validator;
mod wallet;

use std::process::Command;

fn pedals() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pedals"))
}

/// `pedals <args>` as a daemon of the devnet's deployment in `dir`, signing with the keystore
/// `dir/<key>` (password in `dir/password`) and keeping its data in `dir/<data>`; quiet but for
/// warnings, its standard output discarded.
pub(crate) fn daemon(
    dir: &std::path::Path,
    devnet: &pedals_chain::Devnet,
    args: &[&str],
    key: &str,
    data: &str,
) -> Command {
    let mut command = pedals();
    command
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
        .stdout(std::process::Stdio::null());
    command
}

/// A devnet that mines a block every second, as a public chain does (a transaction waits for
/// its block).
pub(crate) async fn mining_devnet() -> pedals_chain::Devnet {
    pedals_chain::Devnet::start(pedals_chain::DevnetConfig {
        block_time: Some(1),
        ..pedals_chain::DevnetConfig::default()
    })
    .await
    .expect("devnet starts: run `make setup` first if the toolchain is missing")
}

/// Posts the optimistic training job of `spec` (with its `model` and `dataset`) from
/// `requester`, paying `payment`, to be claimed within 10 minutes and delivered within an
/// hour; returns its id.
pub(crate) async fn post_spec(
    requester: &pedals_chain::Market,
    spec: &pedals_ml::JobSpec,
    files: (&[u8], &[u8]),
    payment: alloy::primitives::U256,
    challenge_window: u32,
) -> pedals_core::JobId {
    use alloy::primitives::{Bytes, aliases::U40};
    let (model, dataset) = files;
    let now = pedals_chain::chain_time(requester.provider())
        .await
        .expect("time");
    let request = pedals_chain::JobRequest {
        specHash: spec.spec_hash(),
        modelCid: Bytes::from(pedals_core::cid_of(model).to_bytes()),
        datasetCid: Bytes::from(pedals_core::cid_of(dataset).to_bytes()),
        steps: u32::try_from(spec.train.steps).expect("steps"),
        verification: pedals_core::Verification::Optimistic.to_u8(),
        claimDeadline: U40::from(now + 600),
        deliveryDeadline: U40::from(now + 3600),
        challengeWindow: challenge_window,
    };
    let (id, _) = requester.post_job(request, payment).await.expect("post");
    id
}

/// A client of `devnet`'s market signing as dev account `index`.
pub(crate) async fn dev_market(
    devnet: &pedals_chain::Devnet,
    index: usize,
) -> pedals_chain::Market {
    pedals_chain::Market::connect(
        devnet.endpoint(),
        devnet.signer(index).expect("dev account"),
        devnet.deployment().clone(),
    )
    .await
    .expect("the market")
}

/// A folder for the daemons and commands of `devnet`: its `deployment.json`, a `password` file,
/// and for each `(dev account, file name)` an encrypted keystore with that password.
pub(crate) fn daemon_dir(
    devnet: &pedals_chain::Devnet,
    keys: &[(usize, &str)],
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    devnet
        .deployment()
        .save(&dir.path().join("deployment.json"))
        .expect("deployment file");
    for (account, name) in keys {
        keystore(
            dir.path(),
            &devnet.signer(*account).expect("dev account"),
            name,
        );
    }
    std::fs::write(dir.path().join("password"), "correct horse\n").expect("password");
    dir
}

/// A TCP port nobody listens on now, below Linux's ephemeral range (32768 and up): a port
/// that `bind(0)` hands out is in that range, where any outgoing connection (another test's
/// RPC call) may take it before the program the test starts binds it.
pub(crate) fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..1000)
        .map(|_| rng.gen_range(20_000..32_000))
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// A daemon the test started, killed if the test fails before stopping it (so a failed test
/// leaves no process behind).
/// The chain flags of a command acting as the account of keystore `key` in `daemon_dir`'s
/// folder `dir`, on the devnet at `rpc`.
pub(crate) fn chain_args(rpc: &str, dir: &std::path::Path, key: &str) -> Vec<String> {
    vec![
        "--rpc-url".into(),
        rpc.to_string(),
        "--deployment".into(),
        dir.join("deployment.json").display().to_string(),
        "--keystore".into(),
        dir.join(key).display().to_string(),
        "--password-file".into(),
        dir.join("password").display().to_string(),
    ]
}

pub(crate) struct Daemon(pub(crate) std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `key` into `dir/name` as a keystore with the password "correct horse".
fn keystore(dir: &std::path::Path, key: &alloy::signers::local::PrivateKeySigner, name: &str) {
    alloy::signers::local::PrivateKeySigner::encrypt_keystore(
        dir,
        &mut rand::thread_rng(),
        key.to_bytes(),
        "correct horse",
        Some(name),
    )
    .expect("keystore");
}

/// A small MLP 16-12-4 training job on `samples` synthetic samples (data seed `data_seed`) and
/// its files, put in the store at `store_dir` as if the provider had fetched them: the spec,
/// the dataset bytes and the initial model bytes.
fn small_job(
    seed: u64,
    steps: u64,
    checkpoint_every: u64,
    data_seed: u64,
    samples: usize,
    store_dir: &std::path::Path,
) -> (pedals_ml::JobSpec, Vec<u8>, Vec<u8>) {
    let train = pedals_ml::TrainConfig {
        model: pedals_ml::MlpConfig {
            layers: vec![16, 12, 4],
            batch: 8,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed,
        steps,
        checkpoint_every,
    };
    let data = pedals_ml::Dataset::synthetic(data_seed, samples, 16, 4).expect("data");
    let dataset = data.to_canonical_bytes().expect("bytes");
    let model = pedals_ml::MlpState::init(&train.model, train.seed)
        .expect("init")
        .to_bytes()
        .expect("bytes");
    let spec = pedals_ml::JobSpec::new(train, &data, &model).expect("spec");
    let store = pedals_store::Store::open(store_dir).expect("store");
    for blob in [&spec.to_canonical_bytes(), &dataset, &model] {
        store.put_blob(blob).expect("blob");
    }
    (spec, dataset, model)
}

/// Posts `count` jobs of a small admitted spec from `requester` (files it serves nowhere:
/// for tests of what the chain says), each paying 0.001 ETH with a 600 s window.
async fn post_small_jobs(requester: &pedals_chain::Market, count: usize) {
    use alloy::primitives::{Bytes, U256, aliases::U40};
    let store = tempfile::tempdir().expect("dir");
    let (spec, _, _) = small_job(1, 10, 5, 1, 64, store.path());
    admit(requester, &spec).await;
    let now = pedals_chain::chain_time(requester.provider())
        .await
        .expect("time");
    for _ in 0..count {
        requester
            .post_job(
                pedals_chain::JobRequest {
                    specHash: spec.spec_hash(),
                    modelCid: Bytes::from(pedals_core::cid_of(b"model").to_bytes()),
                    datasetCid: Bytes::from(pedals_core::cid_of(b"data").to_bytes()),
                    steps: 10,
                    verification: pedals_core::Verification::Optimistic.to_u8(),
                    claimDeadline: U40::from(now + 600),
                    deliveryDeadline: U40::from(now + 3600),
                    challengeWindow: 600,
                },
                U256::from(1_000_000_000_000_000u64),
            )
            .await
            .expect("post");
    }
}

/// Asserts that a command succeeded, showing its stderr when it did not.
fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Has the dispute game admit `spec` (the market posts no training job it did not admit).
async fn admit(market: &pedals_chain::Market, spec: &pedals_ml::JobSpec) {
    let args = pedals_verifier::game::spec_args(spec).expect("a disputable spec");
    let (hash, _) = market
        .admit_spec(args, spec.train.steps)
        .await
        .expect("the game admits the spec");
    assert_eq!(hash, spec.spec_hash(), "the game rebuilds the spec's hash");
}

/// Polls until job `id` is `want` on-chain, failing after `limit`.
pub(crate) async fn wait_for(
    market: &pedals_chain::Market,
    id: pedals_core::JobId,
    want: pedals_chain::JobStatus,
    limit: std::time::Duration,
) {
    let until = std::time::Instant::now() + limit;
    loop {
        let job = market.job(id).await.expect("job");
        if pedals_chain::JobStatus::try_from(job.status) == Ok(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "job {id} never became {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Runs `pedals devnet <demo> --json`, which must succeed, and parses its one JSON document.
fn demo_json(demo: &str) -> serde_json::Value {
    let out = pedals()
        .args(["devnet", demo, "--json"])
        .env("PEDALS_LOG", "error")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

#[test]
fn devnet_demo_runs_a_paid_training_job_end_to_end_and_reports_it_as_json() {
    let doc = demo_json("demo");
    assert_eq!(doc["deployment"]["chainId"], 31337);
    assert_eq!(doc["status"], "finalized");
    assert_eq!(doc["steps"], 300);
    let accuracy = doc["testAccuracy"].as_f64().expect("accuracy");
    assert!(accuracy > 0.85, "held-out accuracy {accuracy}");
    let txs = doc["transactions"].as_array().expect("transactions");
    let steps: Vec<&str> = txs
        .iter()
        .map(|t| t["step"].as_str().expect("step"))
        .collect();
    assert_eq!(
        steps,
        [
            "stake", "admit", "post", "claim", "submit", "finalize", "withdraw"
        ]
    );
    for tx in txs {
        assert!(tx["gasUsed"].as_u64().expect("gas") > 21_000, "{tx}");
        assert_eq!(tx["hash"].as_str().expect("hash").len(), 66, "{tx}");
    }
}

#[test]
fn devnet_dispute_demo_gets_a_lying_worker_slashed_by_the_validator_daemon() {
    let doc = demo_json("dispute-demo");
    assert_eq!(doc["status"], "resolved");
    assert!(doc["mismatches"].as_u64().expect("mismatches") >= 1);
    // The default parameters: collateral 50% of 0.1 ETH, half of it to the validator with
    // its 0.01 ETH bond, the rest and the payment back to the requester.
    assert_eq!(doc["collateralSeizedWei"], "50000000000000000");
    assert_eq!(doc["validatorCreditWei"], "35000000000000000");
    assert_eq!(doc["requesterCreditWei"], "125000000000000000");
}

#[test]
fn a_missing_toolchain_is_a_one_line_error_that_says_what_to_do() {
    let out = pedals()
        .args(["devnet", "demo"])
        .env("PEDALS_CONTRACTS_DIR", "/nonexistent/pedals/contracts")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("set PEDALS_CONTRACTS_DIR to the repository's contracts/ folder"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
}

#[test]
fn help_shows_an_example() {
    let out = pedals()
        .args(["devnet", "demo", "--help"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Example: pedals devnet demo --json"));
}
