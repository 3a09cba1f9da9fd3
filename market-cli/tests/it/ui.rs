//! The web app in a real browser (docs/web-app.md): a job posted with `pedals job post` is
//! trained and finalized by a `pedals provider run` on a devnet, a second one stays open, and
//! `pedals ui` serves the page that headless Chromium (Debian's `chromium-headless-shell`,
//! driven by `ui/test/browser.mjs` with puppeteer-core) reads: both jobs with their status, the
//! provider's earnings (and their chart on its page), each job's transactions, a refusal for a tab without the token, no
//! serious accessibility violation (axe-core), and a screenshot of every page at desktop and
//! phone widths in `target/ui-screenshots/`.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use alloy::primitives::U256;
use pedals_chain::{JobStatus, Market};
use serde_json::{Value, json};

use crate::{
    Daemon, free_port,
    job::{good_job, job_file, pedals, post_serving, provider},
    wait_for,
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

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_shows_a_finalized_job_an_open_one_and_the_providers_earnings() {
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

    // One job trained and finalized by a real provider.
    let job = job_file(dir, "job.toml", &good_job(window));
    let (mut post, done, boot) = post_serving(dir, &devnet, &job);
    let stake = market
        .stake_to_claim(U256::from(10u64).pow(U256::from(17u64)))
        .await
        .expect("stake");
    let worker = Daemon(provider(dir, &devnet, free_port(), &boot, stake));
    assert!(post.wait().expect("claimed").success());
    let id = pedals_core::JobId(done);
    wait_for(&market, id, JobStatus::Finalized, Duration::from_secs(120)).await;
    drop(worker);
    // Another that nobody claims.
    let out = pedals(dir, &devnet)
        .args(["job", "post", "--json", "--no-wait"])
        .arg(job_file(dir, "open.toml", &good_job(window)))
        .output()
        .expect("runs");
    let open = crate::job::json(&out)["jobId"].as_u64().expect("id");

    let mut child = pedals(dir, &devnet)
        .args(["ui", "--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pedals ui starts");
    let mut banner = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut banner)
        .expect("reads");
    let _ui = Daemon(child);
    let url = banner
        .trim()
        .rsplit(' ')
        .next()
        .expect("an address")
        .to_owned();
    assert!(url.contains("#token="), "{banner}");

    let shots = std::env::var_os("PEDALS_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots"));
    let want = json!({
        "jobs": {done.to_string(): "finalized", open.to_string(): "open"},
        "earner": devnet.signer(5).expect("dev account").address().to_string(),
    });
    let out = Command::new("node")
        .arg(ui.join("test/browser.mjs"))
        .arg(&url)
        .arg(&shots)
        .arg(want.to_string())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(seen["violations"], 0);
    assert_eq!(seen["pages"].as_array().expect("pages").len(), 4, "{seen}");
    for page in [
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
