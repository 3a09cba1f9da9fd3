//! Posting through the node's API on a devnet, with a real store and network node: writes
//! need the token and the page's origin; a file that is not a dataset, a zero payment, a
//! job of another kind, a path instead of an upload and an unknown upload are refused with
//! what to change; a locked account posts nothing and a wrong password unlocks nothing; the
//! unlocked account posts and pays to the wei; the transactions built for a browser wallet,
//! sent by another account, post a job that `/api/tx/HASH` names.

use std::sync::Arc;

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use pedals_chain::{Devnet, DevnetConfig, JobStatus, Market};
use pedals_core::JobId;
use pedals_node::StoreSource;
use pedals_store::Store;
use serde_json::{Value, json};

use crate::api::request_with;

/// A request to the node on `port` with the token (and the page's own origin for writes).
struct Page {
    port: u16,
    token: String,
}

impl Page {
    fn send(&self, method: &str, path: &str, body: &[u8], json: bool) -> (u16, Value) {
        let mut headers = vec![
            ("Authorization", format!("Bearer {}", self.token)),
            ("Origin", format!("http://127.0.0.1:{}", self.port)),
        ];
        if json {
            headers.push(("Content-Type", "application/json".into()));
        }
        let (status, _, v) = request_with(self.port, method, path, &headers, body);
        (status, v)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send("POST", path, body.to_string().as_bytes(), true)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, &[], false)
    }
}

fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A CSV of `rows` samples of 4 values, the label (0..2) last.
fn csv(rows: usize) -> String {
    (0..rows)
        .map(|i| {
            let x = (i % 7) as f64 / 4.0 - 0.75;
            format!("{x},{},{},0.5,{}\n", -x, x / 2.0, i % 2)
        })
        .collect()
}

fn job(payment: &str, dataset: Value) -> Value {
    json!({
        "steps": 20,
        "checkpoint_every": 5,
        "seed": 1,
        "payment_eth": payment,
        "challenge_window_secs": 60,
        "holdout": 8,
        "model": {"layers": [4, 6, 2], "batch": 4, "lr": 0.1, "momentum": 0.0},
        "dataset": dataset,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_posts_jobs_only_with_its_token_a_checked_form_and_an_unlocked_account() {
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet");
    let reader = Market::connect(
        devnet.endpoint(),
        PrivateKeySigner::random(),
        devnet.deployment().clone(),
    )
    .await
    .expect("market");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("requester");
    let poster = devnet.signer(3).expect("dev account");
    PrivateKeySigner::encrypt_keystore(
        tmp.path(),
        &mut rand::thread_rng(),
        poster.to_bytes(),
        "the password",
        Some("key.json"),
    )
    .expect("keystore");
    let store = Arc::new(Store::open(&dir).expect("store"));
    let network = pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        pedals_p2p::NetConfig::default(),
        Arc::new(StoreSource::new(store.clone(), 1)),
    )
    .await
    .expect("network");
    let node = pedals_ui::Node {
        dir: dir.clone(),
        store,
        client: network.client.clone(),
        events: network.events,
        keystore: Some(tmp.path().join("key.json")),
    };
    let (addr, token, _task) = pedals_ui::serve(
        reader.clone(),
        pedals_ui::Options {
            node: Some(node),
            ..Default::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
        std::future::pending(),
    )
    .await
    .expect("serves");
    let page = Page {
        port: addr.port(),
        token,
    };
    let synthetic =
        json!({"format": "synthetic", "seed": 2, "samples": 40, "features": 4, "classes": 2});

    // Writes without the token, or from another origin, are refused.
    let body = json!({"job": job("0.01", synthetic.clone())}).to_string();
    let (status, _, _) = request_with(
        page.port,
        "POST",
        "/api/jobs/plan",
        &[("Content-Type", "application/json".into())],
        body.as_bytes(),
    );
    assert_eq!(status, 401);
    let (status, _, _) = request_with(
        page.port,
        "POST",
        "/api/wallet/unlock",
        &[
            ("Authorization", format!("Bearer {}", page.token)),
            ("Origin", "http://evil.example".into()),
            ("Content-Type", "application/json".into()),
        ],
        br#"{"password":"the password"}"#,
    );
    assert_eq!(status, 403);

    // Files: not a dataset, empty, a bad option; then a CSV.
    let (status, v) = page.send("POST", "/api/uploads", &[0xff, 0xfe, 0x00, 0x01], false);
    assert_eq!(status, 400);
    assert!(message(&v).contains("not a dataset"), "{v}");
    let (status, v) = page.send("POST", "/api/uploads", b"name,age\nbob,x\n", false);
    assert_eq!(status, 400);
    assert!(message(&v).contains("not a dataset"), "{v}");
    assert_eq!(page.send("POST", "/api/uploads", b"", false).0, 400);
    let (status, v) = page.send("POST", "/api/uploads?label=middle", b"1,0\n", false);
    assert_eq!(status, 400, "{v}");
    let (status, v) = page.send("POST", "/api/uploads", csv(64).as_bytes(), false);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["samples"].as_u64(), v["features"].as_u64()),
        (Some(64), Some(4))
    );
    let uploaded = json!({"upload": v["cid"]});

    // Bad jobs: each refused with what to change.
    for (bad, says) in [
        (job("0", synthetic.clone()), "more than zero"),
        (job("-1", synthetic.clone()), "payment"),
        (
            {
                let mut j = job("0.01", synthetic.clone());
                j["model_file"] = json!("/etc/passwd");
                j
            },
            "training and batch-inference jobs only",
        ),
        (
            job(
                "0.01",
                json!({"format": "canonical", "path": "/etc/passwd"}),
            ),
            "upload a file",
        ),
        (
            job(
                "0.01",
                json!({"upload": pedals_core::cid_of(b"never sent").to_string()}),
            ),
            "was not uploaded",
        ),
        (
            {
                let mut j = job("0.01", synthetic.clone());
                j["model"]["layers"] = json!([5, 6, 2]);
                j
            },
            "layers",
        ),
    ] {
        let (status, v) = page.post("/api/jobs/plan", &json!({ "job": bad }));
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(message(&v).contains(says), "{bad}: {v}");
    }

    // The plan: the payment, and at most that plus gas.
    let (status, plan) = page.post(
        "/api/jobs/plan",
        &json!({"job": job("0.01", uploaded.clone())}),
    );
    assert_eq!(status, 200, "{plan}");
    let payment = U256::from(10u64).pow(U256::from(16));
    assert_eq!(plan["paymentWei"], payment.to_string());
    let gas: U256 = plan["gasWei"].as_str().expect("gas").parse().expect("wei");
    assert_eq!(plan["totalWei"], (payment + gas).to_string());
    assert_eq!(plan["samples"], 56, "64 uploaded, 8 held out");

    // Locked, then a wrong password: nothing posted.
    let posted = json!({"job": job("0.01", uploaded.clone())});
    let (status, v) = page.post("/api/jobs", &posted);
    assert_eq!(status, 403);
    assert!(message(&v).contains("locked"), "{v}");
    let (status, v) = page.post("/api/wallet/unlock", &json!({"password": "guess"}));
    assert_eq!(status, 403);
    assert!(message(&v).contains("wrong password"), "{v}");
    assert_eq!(page.get("/api/wallet").1["address"], Value::Null);
    assert_eq!(
        reader.job(JobId(1)).await.expect("job").status,
        0,
        "nothing was posted"
    );

    // Unlocked: the node's account posts and escrows the payment to the wei.
    let (status, v) = page.post("/api/wallet/unlock", &json!({"password": "the password"}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["address"]
            .as_str()
            .and_then(|a| a.parse::<Address>().ok()),
        Some(poster.address())
    );
    let before = reader.balance(poster.address()).await.expect("balance");
    let (status, v) = page.post("/api/jobs", &posted);
    assert_eq!(status, 200, "{v}");
    let id = v["jobId"].as_u64().expect("id");
    let onchain = reader.job(JobId(id)).await.expect("job");
    assert_eq!(onchain.requester, poster.address());
    assert_eq!(U256::from(onchain.payment), payment);
    assert_eq!(
        JobStatus::try_from(onchain.status).ok(),
        Some(JobStatus::Posted)
    );
    let after = reader.balance(poster.address()).await.expect("balance");
    assert!(before - after >= payment && before - after <= payment + gas);
    assert!(dir.join("jobs").join(format!("{id}.json")).is_file());

    // Batch inference: a model file uploaded, run over the uploaded data in chunks of 16.
    let config = pedals_ml::MlpConfig {
        layers: vec![4, 6, 2],
        batch: 4,
        lr_q12: 0,
        momentum_q12: 0,
        conv: None,
    };
    let state = pedals_ml::MlpState::init(&config, 9)
        .expect("model")
        .to_bytes()
        .expect("bytes");
    let (status, model) = page.send("POST", "/api/uploads?kind=model", &state, false);
    assert_eq!(status, 200, "{model}");
    let inference = |layers: Value| {
        json!({"job": {
            "payment_eth": "0.01",
            "inference": {"chunk": 16},
            "model_upload": model["cid"],
            "model": {"layers": layers, "batch": 4},
            "dataset": uploaded,
        }})
    };
    let (status, v) = page.post("/api/jobs/plan", &inference(json!([4, 5, 2])));
    assert_eq!(status, 400, "a model state of other layers: {v}");
    assert!(message(&v).contains("not a model state"), "{v}");
    let (status, v) = page.post("/api/jobs", &inference(json!([4, 6, 2])));
    assert_eq!(status, 200, "{v}");
    let run = reader
        .job(JobId(v["jobId"].as_u64().expect("id")))
        .await
        .expect("job");
    assert_eq!(run.steps, 4, "64 samples in chunks of 16");
    assert_eq!(
        run.verification,
        pedals_core::Verification::OptimisticInference.to_u8()
    );

    // Locked again: refused again.
    assert_eq!(page.post("/api/wallet/lock", &json!({})).0, 200);
    assert_eq!(page.post("/api/jobs", &posted).0, 403);

    // A browser wallet's transactions, sent by another account (anvil's unlocked one).
    let wallet = devnet.signer(4).expect("dev account").address();
    let (status, v) = page.post("/api/jobs/calls", &json!({"job": job("0.02", synthetic)}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["chainId"], devnet.deployment().chain_id);
    let calls = v["calls"].as_array().expect("calls");
    assert_eq!(
        calls.len(),
        2,
        "an admission of a new spec, then the post: {v}"
    );
    let mut last = B256::ZERO;
    for call in calls {
        let tx =
            json!({"from": wallet, "to": call["to"], "data": call["data"], "value": call["value"]});
        last = reader
            .provider()
            .raw_request("eth_sendTransaction".into(), [tx])
            .await
            .expect("sent");
        let receipt = loop {
            if let Some(r) = reader
                .provider()
                .get_transaction_receipt(last)
                .await
                .expect("rpc")
            {
                break r;
            }
        };
        assert!(receipt.status(), "{call}");
    }
    let (status, v) = page.get(&format!("/api/tx/{last}"));
    assert_eq!(status, 200);
    assert_eq!(v["state"], "mined");
    let wallet_job: u64 = v["jobId"].as_str().expect("a job").parse().expect("id");
    let onchain = reader.job(JobId(wallet_job)).await.expect("job");
    assert_eq!(onchain.requester, wallet);
    assert_eq!(U256::from(onchain.payment), payment * U256::from(2));
    assert_eq!(page.get("/api/tx/0x12").0, 400);
    let unknown: Address = Address::repeat_byte(7);
    assert_eq!(page.get(&format!("/api/providers/{unknown}")).0, 200);
}
