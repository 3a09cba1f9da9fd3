//! The command line's contract with scripts: `job list` and `job status` in both output forms,
//! the documented exit codes (1: the user's to fix, 2: a command line clap cannot parse, 3:
//! the chain, 4: the network), one-line errors that say what to do, and shell completions.

use std::path::Path;

use alloy::primitives::{Bytes, U256};
use pedals_chain::{Devnet, DevnetConfig, Market};
use pedals_core::cid_of;
use serde_json::Value;

use crate::pedals;

fn run(args: &[&str], deployment: &Path, rpc: &str) -> std::process::Output {
    pedals()
        .args(args)
        .env("PEDALS_RPC_URL", rpc)
        .env("PEDALS_DEPLOYMENT", deployment)
        .env("PEDALS_LOG", "error")
        .output()
        .expect("runs")
}

fn one_line_error(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn job_list_and_status_answer_scripts_and_people_and_errors_have_distinct_exit_codes() {
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet");
    let dir = tempfile::tempdir().expect("tempdir");
    let deployment = dir.path().join("deployment.json");
    devnet
        .deployment()
        .save(&deployment)
        .expect("deployment file");
    let rpc = devnet.endpoint().to_string();
    let requester = crate::dev_market(&devnet, 1).await;
    crate::post_small_jobs(&requester, 2).await;
    requester
        .cancel_job(pedals_core::JobId(1))
        .await
        .expect("cancel");

    let out = run(&["job", "list", "--json"], &deployment, &rpc);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let statuses: Vec<&str> = doc["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["posted", "cancelled"], "newest first");
    assert_eq!(doc["jobs"][0]["jobId"], 2);
    assert_eq!(doc["jobs"][0]["paymentWei"], "1000000000000000");

    let out = run(&["job", "list", "--status", "cancelled"], &deployment, &rpc);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cancelled") && !text.contains("posted"),
        "{text}"
    );

    let out = run(&["job", "status", "2", "--json"], &deployment, &rpc);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["status"], "posted");
    assert_eq!(doc["dispute"], Value::Null);

    // Claimed, submitted and challenged at step 4: the status shows the game.
    let connect = |i: usize| {
        Market::connect(
            devnet.endpoint(),
            devnet.signer(i).expect("key"),
            devnet.deployment().clone(),
        )
    };
    let (worker, validator) = (
        connect(2).await.expect("worker"),
        connect(3).await.expect("validator"),
    );
    let id = pedals_core::JobId(2);
    let params = worker.parameters().await.expect("params");
    worker
        .stake(
            worker
                .stake_to_claim(U256::from(1_000_000_000_000_000u64))
                .await
                .expect("stake"),
        )
        .await
        .expect("stake");
    worker.claim_job(id).await.expect("claim");
    let root = alloy::primitives::B256::repeat_byte(1);
    // A one-leaf-per-step trace whose every leaf is `root`: its last leaf is the final hash.
    let trace = pedals_core::TraceCommitment::new(vec![root; 11]).expect("trace");
    worker
        .submit_result(
            id,
            10,
            trace.root(),
            alloy::primitives::B256::ZERO,
            root,
            trace.proof(10).expect("proof").siblings,
            Bytes::from(cid_of(b"result").to_bytes()),
        )
        .await
        .expect("submit");
    // The output people and scripts read, pinned (cancelled, submitted, the worker's stake).
    crate::keystore(dir.path(), &devnet.signer(2).expect("key"), "worker.json");
    let keystore = dir.path().join("worker.json");
    let provider = |json: bool| {
        let mut args = vec![
            "provider",
            "status",
            "--keystore",
            keystore.to_str().expect("utf8"),
        ];
        if json {
            args.push("--json");
        }
        let out = pedals()
            .args(&args)
            .env("PEDALS_RPC_URL", &rpc)
            .env("PEDALS_DEPLOYMENT", &deployment)
            .env("PEDALS_PASSWORD", "correct horse")
            .env("PEDALS_LOG", "error")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    let stdout = |args: &[&str]| {
        let out = run(args, &deployment, &rpc);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    crate::snapshots::redacted(|| {
        insta::assert_snapshot!("job_list", stdout(&["job", "list"]));
        insta::assert_snapshot!("job_list_json", stdout(&["job", "list", "--json"]));
        insta::assert_snapshot!("job_status", stdout(&["job", "status", "2"]));
        insta::assert_snapshot!("job_status_json", stdout(&["job", "status", "2", "--json"]));
        insta::assert_snapshot!("provider_status", provider(false));
        insta::assert_snapshot!("provider_status_json", provider(true));
    });

    validator
        .stake(U256::from(params.minValidatorStake))
        .await
        .expect("stake");
    let (claim, salt) = (
        alloy::primitives::B256::repeat_byte(2),
        alloy::primitives::B256::repeat_byte(3),
    );
    validator
        .commit_challenge(id, 4, claim, salt)
        .await
        .expect("commit");
    validator
        .challenge(id, 4, claim, salt, U256::from(params.challengeBond))
        .await
        .expect("challenge");
    let out = run(&["job", "status", "2", "--json"], &deployment, &rpc);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["status"], "disputed");
    assert_eq!(doc["dispute"]["step"], 4);
    assert_eq!(doc["dispute"]["toMove"], "worker");
    assert_eq!(doc["dispute"]["phase"], "Commit");
    let out = run(&["job", "status", "2"], &deployment, &rpc);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("at step 4: worker to move (Commit)"),
        "{text}"
    );
    // `job watch` follows the game: the worker never commits, its clock runs out, anyone
    // times the game out, and the watch ends with the job resolved.
    let mut watch = crate::Daemon(
        std::process::Command::new(env!("CARGO_BIN_EXE_pedals"))
            .args(["job", "watch", "2", "--json", "--poll-ms", "100"])
            .env("PEDALS_RPC_URL", &rpc)
            .env("PEDALS_DEPLOYMENT", &deployment)
            .env("PEDALS_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("watch starts"),
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let remaining = validator.game_of(id).await.expect("game").remaining;
    {
        use alloy::providers::ext::AnvilApi;
        requester
            .provider()
            .anvil_increase_time(remaining + 1)
            .await
            .expect("warp");
        requester.provider().evm_mine(None).await.expect("mine");
    }
    validator.timeout_game(id).await.expect("timeout");
    let out = watch.0.wait().expect("watch returns");
    assert!(out.success());
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut watch.0.stdout.take().expect("stdout"), &mut stdout)
        .expect("read");
    let statuses: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json line")["status"].to_string())
        .collect();
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("\"disputed\""),
        "{stdout}"
    );
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("\"resolved\""),
        "{stdout}"
    );

    // `job watch` on a job that has ended prints its state and returns.
    let out = run(&["job", "watch", "1", "--json"], &deployment, &rpc);
    assert!(out.status.success());
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["status"], "cancelled");

    // User errors: exit 1, one line that says what to do, nothing sent.
    let out = run(&["job", "status", "99"], &deployment, &rpc);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line_error(&out).contains("there is no job 99"));
    // An unknown job's result is an unknown job, not a peer that did not answer.
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().display().to_string();
    let out = run(
        &[
            "job",
            "result",
            "99",
            "--data-dir",
            &data_dir,
            "--wait-secs",
            "1",
        ],
        &deployment,
        &rpc,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(
        err.contains("there is no job 99")
            && err.contains("numbered 1 to 2")
            && !err.contains("peer"),
        "{err}"
    );
    let out = run(&["job", "list", "--status", "lost"], &deployment, &rpc);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line_error(&out).contains("use posted, claimed"));
    // A command line clap cannot parse: 2.
    let out = run(&["job", "list", "--limit", "many"], &deployment, &rpc);
    assert_eq!(out.status.code(), Some(2));
    // The chain: an endpoint nobody answers is 3.
    let out = run(&["job", "list"], &deployment, "http://127.0.0.1:9");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    one_line_error(&out);
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = pedals()
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("validator"),
            "{shell}: the subcommands are there"
        );
    }
    let out = pedals()
        .args(["completions", "tcsh"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}
