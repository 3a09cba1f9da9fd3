//! The node's API on a devnet: `/api/market` and `/api/jobs/N` show posted, claimed and
//! cancelled jobs with their amounts to the wei; requests without the token, with a wrong one,
//! from another page's origin, cross-site, or to another host name (DNS rebinding) are
//! refused and see no data; no answer carries a CORS header; a non-loopback address is refused.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use alloy::{
    primitives::{Bytes, U256, aliases::U40, keccak256},
    providers::Provider,
};
use pedals_chain::{DisputeGame, JobRequest, Market};
use serde_json::Value;

/// One GET; the status, the headers (lowercase) and the body.
fn http(port: u16, path: &str, headers: &[(&str, String)]) -> (u16, String, Value) {
    request_with(port, "GET", path, headers, &[])
}

/// One request with `body`; the status, the headers (lowercase) and the body.
pub(crate) fn request_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let has_host = headers.iter().any(|(k, _)| *k == "Host");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !has_host {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut req = req.into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).expect("sends");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("reads");
    let status = out[9..12].parse().expect("status");
    let (head, body) = out.split_once("\r\n\r\n").expect("head");
    (
        status,
        head.to_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn cid(tag: &str) -> Bytes {
    pedals_core::cid_of(tag.as_bytes()).to_bytes().into()
}

async fn request(market: &Market) -> JobRequest {
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
        dataRoot: keccak256("ui data"),
        initHash: keccak256("ui model"),
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
    JobRequest {
        specHash: spec_hash,
        modelCid: cid("model"),
        datasetCid: cid("dataset"),
        steps: 4,
        verification: 0,
        claimDeadline: U40::from(now + 600),
        deliveryDeadline: U40::from(now + 3600),
        challengeWindow: 60,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_the_market_to_its_page_and_to_nobody_else() {
    let devnet = pedals_chain::Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let connect = |i: usize| {
        Market::connect(
            devnet.endpoint(),
            devnet.signer(i).expect("dev account"),
            devnet.deployment().clone(),
        )
    };
    let (requester, worker) = (
        connect(1).await.expect("market"),
        connect(2).await.expect("market"),
    );
    let payment = U256::from(10u64).pow(U256::from(16));
    let (kept_id, _) = requester
        .post_job(request(&requester).await, payment)
        .await
        .expect("post");
    let (cancelled_id, _) = requester
        .post_job(request(&requester).await, payment * U256::from(2))
        .await
        .expect("post");
    requester.cancel_job(cancelled_id).await.expect("cancel");
    worker
        .stake(U256::from(10u64).pow(U256::from(18)))
        .await
        .expect("stake");
    worker.claim_job(kept_id).await.expect("claim");
    let (kept, cancelled) = (kept_id.0, cancelled_id.0);

    assert!(matches!(
        pedals_ui::serve(
            requester.clone(),
            Default::default(),
            "0.0.0.0:0".parse().expect("addr"),
            async {}
        )
        .await,
        Err(pedals_ui::UiError::NotLoopback(_))
    ));
    let (addr, token, _task) = pedals_ui::serve(
        requester.clone(),
        Default::default(),
        "127.0.0.1:0".parse().expect("addr"),
        std::future::pending(),
    )
    .await
    .expect("serves");
    assert_eq!(token.len(), 64);
    let port = addr.port();
    let bearer = ("Authorization", format!("Bearer {token}"));
    let own = ("Origin", format!("http://127.0.0.1:{port}"));

    let (status, head, m) =
        tokio::task::spawn_blocking(move || http(port, "/api/market", &[bearer, own]))
            .await
            .expect("joins");
    assert_eq!(status, 200, "{m}");
    assert!(!head.contains("access-control-allow"), "{head}");
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    assert_eq!(m["totals"]["jobs"], 2, "{m}");
    assert_eq!(m["totals"]["open"], 0);
    assert_eq!(m["totals"]["running"], 1);
    assert_eq!(m["totals"]["settled"], 1);
    assert_eq!(
        m["totals"]["volumeWei"],
        (payment * U256::from(3)).to_string(),
        "every payment escrowed, to the wei"
    );
    let job = |id: u64| {
        m["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .find(|j| j["id"] == id)
            .cloned()
            .expect("listed")
    };
    assert_eq!(job(kept)["status"], "claimed");
    assert_eq!(
        job(kept)["worker"].as_str().map(str::to_lowercase),
        Some(worker.sender().to_string().to_lowercase())
    );
    assert_eq!(job(cancelled)["status"], "cancelled");
    assert_eq!(job(kept)["paymentWei"], payment.to_string());
    let provider = m["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .find(|p| p["jobs"] == 1)
        .cloned()
        .expect("the worker is listed");
    assert_eq!(provider["stakedWei"], "1000000000000000000");
    assert_ne!(provider["lockedWei"], "0", "its collateral is locked");

    let t = token.clone();
    let (status, _, page) = tokio::task::spawn_blocking(move || {
        http(
            port,
            &format!("/api/jobs/{kept}"),
            &[("Authorization", format!("Bearer {t}"))],
        )
    })
    .await
    .expect("joins");
    assert_eq!(status, 200, "{page}");
    let names: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["JobPosted", "JobClaimed"]);

    // Refusals: each says why, and none carries data.
    let t = token.clone();
    let refusals = tokio::task::spawn_blocking(move || {
        let bearer = || ("Authorization", format!("Bearer {t}"));
        vec![
            ("no token", http(port, "/api/market", &[])),
            (
                "a wrong token",
                http(
                    port,
                    "/api/market",
                    &[("Authorization", format!("Bearer {}", "0".repeat(64)))],
                ),
            ),
            (
                "another origin",
                http(
                    port,
                    "/api/market",
                    &[bearer(), ("Origin", "http://evil.example".into())],
                ),
            ),
            (
                "another port's origin",
                http(
                    port,
                    "/api/market",
                    &[bearer(), ("Origin", "http://127.0.0.1:1".into())],
                ),
            ),
            (
                "a cross-site fetch",
                http(
                    port,
                    "/api/market",
                    &[bearer(), ("Sec-Fetch-Site", "cross-site".into())],
                ),
            ),
            (
                "another host name",
                http(
                    port,
                    "/api/market",
                    &[bearer(), ("Host", format!("evil.example:{port}"))],
                ),
            ),
            (
                "the page under another host name",
                http(port, "/", &[("Host", format!("evil.example:{port}"))]),
            ),
        ]
    })
    .await
    .expect("joins");
    for (what, (status, head, body)) in refusals {
        assert!(status == 401 || status == 403, "{what}: {status} {body}");
        assert!(body.get("jobs").is_none(), "{what}: {body}");
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
        assert!(!head.contains("access-control-allow"), "{what}: {head}");
    }
    let t = token.clone();
    let (status, _, body) = tokio::task::spawn_blocking(move || {
        http(
            port,
            "/api/jobs/999",
            &[("Authorization", format!("Bearer {t}"))],
        )
    })
    .await
    .expect("joins");
    assert_eq!(status, 404, "{body}");
}
