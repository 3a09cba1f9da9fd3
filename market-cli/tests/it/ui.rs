//! The web app in a real browser (docs/web-app.md), on a devnet with a real provider:
//! `pedals ui` is the requester's node. In headless Chromium (Debian's
//! `chromium-headless-shell`, driven by `ui/test/post.mjs` and `ui/test/browser.mjs` with
//! puppeteer-core): the post form refuses a zero and a negative payment, a file that is not a
//! dataset and a wrong keystore password, sending nothing; a CSV is uploaded, the plan shown,
//! the node's account unlocked, the job posted, and its page follows it through claimed,
//! trained (the worker's signed progress) and finalized; the provider's page shows the
//! earnings. Then a browser wallet (EIP-1193, backed by a devnet account) on the wrong chain
//! and one that rejects the signature are refused, and it posts a batch-inference job of an
//! uploaded model file, which stays open while the provider is paused from its own page.
//! Then every page: both jobs with their status, transactions, the earnings chart, a tab
//! without the token refused, no serious accessibility violation (axe-core), and screenshots
//! at desktop and phone widths in `target/ui-screenshots/`.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use alloy::primitives::U256;
use pedals_chain::{JobStatus, Market};
use serde_json::{Value, json};

use crate::{
    Daemon, free_port,
    job::{pedals, provider_command},
};

/// The browser and the script's packages, or why they are missing (CI must have them).
fn browser_ready(ui: &Path) -> Result<(), String> {
    let chromium = std::env::var("PEDALS_CHROMIUM")
        .unwrap_or_else(|_| "/usr/bin/chromium-headless-shell".into());
    if !Path::new(&chromium).exists() {
        return Err(format!(
            "{chromium} is missing: run scripts/system-deps.sh as root"
        ));
    }
    if !ui.join("node_modules/puppeteer-core").exists() {
        return Err("ui/node_modules is missing: run scripts/ui.sh".into());
    }
    Ok(())
}

/// A CSV of `rows` samples of 16 values in -2..2 with the label (0..4) last: the index of the
/// largest of the first four values, so that there is something to learn.
fn csv(rows: usize) -> String {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 4001) as f64 / 1000.0 - 2.0
    };
    let mut out = String::new();
    for _ in 0..rows {
        let x: Vec<f64> = (0..16).map(|_| next()).collect();
        let label = (0..4)
            .max_by(|&a, &b| x[a].total_cmp(&x[b]))
            .expect("four values");
        for v in &x {
            out.push_str(&format!("{v:.3},"));
        }
        out.push_str(&format!("{label}\n"));
    }
    out
}

/// Runs a browser script with `args`; its JSON, or the test fails with what it printed.
fn browser(ui: &Path, script: &str, args: &[&str]) -> Value {
    let out = Command::new("node")
        .arg(ui.join("test").join(script))
        .args(args)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_posts_a_job_follows_it_to_finalized_and_sees_the_providers_earnings() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui");
    if let Err(why) = browser_ready(&ui) {
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
        return;
    }
    let devnet = crate::mining_devnet().await;
    let tmp = crate::daemon_dir(&devnet, &[(4, "requester.json"), (5, "provider.json")]);
    let dir = tmp.path();
    let market = Market::connect(
        devnet.endpoint(),
        devnet.signer(4).expect("dev account"),
        devnet.deployment().clone(),
    )
    .await
    .expect("market");
    let window = market
        .parameters()
        .await
        .expect("params")
        .minChallengeWindow;
    std::fs::write(dir.join("data.csv"), csv(640)).expect("csv");
    std::fs::write(dir.join("notes.txt"), "these are my notes, not numbers\n").expect("txt");

    let mut child = pedals(dir, &devnet)
        .args(["ui", "--http", "127.0.0.1:0"])
        .args(["--explorer", "https://explorer.example"])
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", free_port())])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pedals ui starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let banner = lines.next().expect("a line").expect("reads");
    let serving = lines.next().expect("a line").expect("reads");
    let _ui = Daemon(child);
    let url = banner
        .trim()
        .rsplit(' ')
        .next()
        .expect("an address")
        .to_owned();
    assert!(url.contains("#token="), "{banner}");
    let boot = serving
        .trim()
        .rsplit(' ')
        .next()
        .expect("an address")
        .to_owned();

    let stake = market
        .stake_to_claim(U256::from(10u64).pow(U256::from(17u64)))
        .await
        .expect("stake");
    // The provider serves its own page too (`--ui`): its address is its first line.
    let mut child = provider_command(dir, &devnet, free_port(), &boot, stake)
        .args(["--ui", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the provider starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("reads");
    let worker = Daemon(child);
    let provider_url = first
        .trim()
        .rsplit(' ')
        .next()
        .expect("an address")
        .to_owned();
    assert!(provider_url.contains("#token="), "{first}");
    let shots = std::env::var_os("PEDALS_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots"));
    let shots_arg = shots.to_str().expect("utf-8 path");
    let earner = devnet.signer(5).expect("dev account").address();
    let form = |options: Value| browser(&ui, "post.mjs", &[&url, shots_arg, &options.to_string()]);

    let seen = form(json!({
        "phase": "node",
        "csv": dir.join("data.csv"),
        "notData": dir.join("notes.txt"),
        "password": "correct horse",
        "earner": earner.to_string(),
        "steps": 2000,
        "hidden": "128,128",
        "lr": 0.02,
        "momentum": 0.5,
        "window": window,
    }));
    eprintln!("the post form saw: {seen}");
    let done = seen["jobId"].as_u64().expect("a job id");
    let statuses: Vec<&str> = seen["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(statuses.last(), Some(&"finalized"), "{statuses:?}");
    for status in ["open", "claimed", "submitted"] {
        assert!(statuses.contains(&status), "the page showed {statuses:?}");
    }
    // The worker's signed progress, heard by the node on the network, while it trained.
    let training = seen["training"].to_string();
    assert!(
        seen["training"]
            .as_array()
            .expect("progress seen")
            .iter()
            .filter_map(Value::as_str)
            .any(|t| t.starts_with("Training: step") && !t.contains("step 2000 of")),
        "the page never showed the worker part-way: {training}"
    );
    assert!(
        seen["loss"]
            .as_str()
            .is_some_and(|l| l.starts_with("Training loss at step 2000: ")),
        "{}",
        seen["loss"]
    );
    let (job, status) = (
        market.job(pedals_core::JobId(done)).await.expect("job"),
        JobStatus::Finalized,
    );
    assert_eq!(JobStatus::try_from(job.status).ok(), Some(status));
    assert_eq!(
        job.requester,
        market.sender(),
        "posted by the node's account"
    );
    assert_eq!(job.worker, earner);
    // The refused inputs sent nothing: this is the only job.
    assert_eq!(
        market
            .job(pedals_core::JobId(done + 1))
            .await
            .expect("job")
            .status,
        0,
        "a refused form posted a job"
    );
    // The page fetched the result: checked against the commitment, saved, scored.
    let result = seen["result"].as_str().unwrap_or_default();
    assert!(
        result.contains("matches the worker's on-chain commitment 0x"),
        "{result}"
    );
    assert!(result.contains("on 128 held-out samples"), "{result}");
    assert!(
        dir.join("requester/results")
            .join(format!("job-{done}-model.bin"))
            .is_file()
    );
    // `pedals job result` finds the job posted from the page (once `pedals ui` lets go of
    // the folder).
    assert!(
        dir.join("requester/jobs")
            .join(format!("{done}.json"))
            .is_file()
    );

    // The provider's own page pauses claiming: the next job stays open while it runs.
    let paused = browser(
        &ui,
        "post.mjs",
        &[
            &provider_url,
            shots_arg,
            &json!({"phase": "pause"}).to_string(),
        ],
    );
    assert_eq!(
        paused["claiming"],
        "Claiming new jobs: paused (the jobs it holds go on)"
    );

    // A browser wallet: the wrong chain and a rejected signature send nothing; then it posts
    // a batch-inference job of a model file (the form's default layers, 16-12-4).
    let wallet = devnet.signer(6).expect("dev account").address();
    let model = pedals_ml::MlpState::init(
        &pedals_ml::MlpConfig {
            layers: vec![16, 12, 4],
            batch: 8,
            lr_q12: 0,
            momentum_q12: 0,
            conv: None,
        },
        1,
    )
    .expect("model")
    .to_bytes()
    .expect("bytes");
    std::fs::write(dir.join("model.bin"), model).expect("model file");
    let seen = form(json!({
        "phase": "wallet",
        "rpc": devnet.endpoint().to_string(),
        "account": wallet.to_string(),
        "wrongChain": 1,
        "model": dir.join("model.bin"),
        "chunk": 64,
    }));
    eprintln!("the wallet post saw: {seen}");
    let open = seen["jobId"].as_u64().expect("a job id");
    assert_eq!(open, done + 1, "the refused attempts posted nothing");
    // Twenty of the paused provider's rounds later, nobody claimed it.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    drop(worker);
    let job = market.job(pedals_core::JobId(open)).await.expect("job");
    assert_eq!(job.requester, wallet, "posted by the wallet's account");
    assert_eq!(
        (job.verification, job.steps),
        (pedals_core::Verification::OptimisticInference.to_u8(), 10),
        "640 samples in chunks of 64"
    );
    assert_eq!(
        JobStatus::try_from(job.status).ok(),
        Some(JobStatus::Posted)
    );

    let want = json!({
        "jobs": {done.to_string(): "finalized", open.to_string(): "open"},
        "earner": earner.to_string(),
        "explorer": "https://explorer.example",
    });
    let seen = browser(&ui, "browser.mjs", &[&url, shots_arg, &want.to_string()]);
    assert_eq!(seen["violations"], 0);
    assert_eq!(seen["pages"].as_array().expect("pages").len(), 4, "{seen}");
    for page in [
        "post",
        "my-provider",
        "market",
        &format!("job-{done}"),
        &format!("job-{open}"),
        "provider",
    ] {
        for size in ["desktop", "phone"] {
            assert!(
                shots.join(format!("{page}-{size}.png")).is_file(),
                "{page}-{size}"
            );
        }
    }
}
