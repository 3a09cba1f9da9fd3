//! The web app over a busy market (issue 23: the page loads in under a second with 1 000
//! jobs): posts `JOBS` jobs on a devnet, then times `GET /api/market` cold (the node reads
//! every event into its index) and warm, and the market page in headless Chromium from
//! navigation to a table of every job (`ui/test/pageload.mjs`), cold and warm.
//!
//! Run: `cargo bench --profile dev --workspace --bench pageload -- [JOBS]` (default 1000;
//! under `cargo test --all-targets`, a smoke run of 5).
//! Needs `scripts/ui.sh` and Debian's `chromium-headless-shell` for the page figures.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Bytes, U256, aliases::U40, keccak256},
    providers::Provider,
};
use pedals_chain::{Devnet, DevnetConfig, DisputeGame, JobRequest, Market};

/// `GET path` with the token; the body's length and the time it took.
fn get(port: u16, path: &str, token: &str) -> (usize, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .expect("sends");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("reads");
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    (out.len(), t0.elapsed())
}

fn cid(tag: &str) -> Bytes {
    pedals_core::cid_of(tag.as_bytes()).to_bytes().into()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this as a smoke test of a
    // few jobs, which times nothing worth reading.
    let full = std::env::args().any(|a| a == "--bench");
    let jobs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if full { 1000 } else { 5 });
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet");
    let market = Market::connect(
        devnet.endpoint(),
        devnet.signer(1).expect("dev account"),
        devnet.deployment().clone(),
    )
    .await
    .expect("market");
    let spec = DisputeGame::Spec {
        layers: vec![4, 3, 2],
        batch: 2,
        lrQ12: 410,
        momentumQ12: 0,
        seed: 7,
        checkpointEvery: 1,
        datasetCid: "dataset".into(),
        modelCid: "model".into(),
        samples: 16,
        dataRoot: keccak256("bench data"),
        initHash: keccak256("bench model"),
    };
    let (spec_hash, _) = market.admit_spec(spec, 4).await.expect("admitted");
    let now = market
        .provider()
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .expect("rpc")
        .expect("block")
        .header
        .timestamp;
    let request = JobRequest {
        specHash: spec_hash,
        modelCid: cid("model"),
        datasetCid: cid("dataset"),
        steps: 4,
        verification: 0,
        claimDeadline: U40::from(now + 86_400),
        deliveryDeadline: U40::from(now + 2 * 86_400),
        challengeWindow: 60,
    };
    let t0 = Instant::now();
    for _ in 0..jobs {
        market
            .post_job(request.clone(), U256::from(10u64).pow(U256::from(15)))
            .await
            .expect("post");
    }
    eprintln!("posted {jobs} jobs in {:.1} s", t0.elapsed().as_secs_f64());

    let (addr, token, _task) = pedals_ui::serve(
        market.clone(),
        Default::default(),
        "127.0.0.1:0".parse().expect("addr"),
        std::future::pending(),
    )
    .await
    .expect("serves");
    let port = addr.port();
    let t = token.clone();
    let api = tokio::task::spawn_blocking(move || {
        let cold = get(port, "/api/market", &t);
        // Past the index's half-second freshness, so each warm read also reads the head.
        let warm: Vec<Duration> = (0..5)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(600));
                get(port, "/api/market", &t).1
            })
            .collect();
        (cold, warm)
    })
    .await
    .expect("joins");
    let ((bytes, cold), warm) = api;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "GET /api/market with {jobs} jobs ({} kB): cold {:.0} ms, warm {:.1} ms (median of 5)",
        bytes / 1000,
        cold.as_secs_f64() * 1e3,
        median(warm).as_secs_f64() * 1e3
    );

    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
    if !ui.join("node_modules/puppeteer-core").exists() {
        println!("page: skipped (run scripts/ui.sh)");
        return;
    }
    // A fresh node, so that the page's first load is a cold index.
    let (addr, token, _task2) = pedals_ui::serve(
        market.clone(),
        Default::default(),
        "127.0.0.1:0".parse().expect("addr"),
        std::future::pending(),
    )
    .await
    .expect("serves");
    let url = format!("http://{addr}/#token={token}");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(ui.join("test/pageload.mjs"))
            .arg(url)
            .arg(jobs.to_string())
            .arg("6")
            .output()
            .expect("node runs")
    })
    .await
    .expect("joins");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ms: Vec<u64> = v["ms"]
        .as_array()
        .expect("ms")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .collect();
    let mut warm = ms[1..].to_vec();
    warm.sort_unstable();
    println!(
        "market page with {jobs} jobs, navigation to a full table: cold {} ms, warm {} ms (median of {})",
        ms[0],
        warm[warm.len() / 2],
        warm.len()
    );
}
