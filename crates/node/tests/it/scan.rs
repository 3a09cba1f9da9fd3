//! A validator started on a market with many settled jobs finds its work in the market's
//! events: its rounds make a number of RPC requests that does not grow with the jobs the
//! market ever had (counted by a proxy in front of anvil).

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use alloy::{
    primitives::{B256, Bytes, U256},
    providers::ext::AnvilApi,
};
use pedals_chain::{JobStatus, Market};
use pedals_core::cid_of;
use pedals_p2p::MemorySource;
use pedals_verifier::{Verifier, VerifierConfig};

use crate::worker::{PAYMENT, STEPS, WINDOW, job, post, provider, setup};

/// An HTTP proxy to `upstream` that counts the JSON-RPC requests it forwards.
async fn counting_proxy(
    upstream: alloy::transports::http::reqwest::Url,
) -> (alloy::transports::http::reqwest::Url, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    let client = alloy::transports::http::reqwest::Client::new();
    let forward = move |body: axum::body::Bytes| {
        let (client, upstream, counted) = (client.clone(), upstream.clone(), counted.clone());
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            let response = client
                .post(upstream)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("anvil answers");
            (
                [("content-type", "application/json")],
                response.bytes().await.expect("body").to_vec(),
            )
        }
    };
    let app = axum::Router::new().route("/", axum::routing::post(forward));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"))
        .parse()
        .expect("url");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_validator_does_not_read_settled_jobs_one_by_one() {
    const JOBS: u64 = 24;
    let s = setup().await;
    let job = job();
    let worker = Market::connect(
        s.devnet.endpoint(),
        s.devnet.signer(1).expect("account"),
        s.devnet.deployment().clone(),
    )
    .await
    .expect("the worker's account");
    let each = s
        .requester
        .stake_to_claim(U256::from(PAYMENT))
        .await
        .expect("stake");
    worker
        .stake(each * U256::from(JOBS))
        .await
        .expect("stake for every job at once");
    // Posted, claimed, submitted and, after the window, finalized: settled jobs.
    let leaf = B256::repeat_byte(7);
    let trace = pedals_core::TraceCommitment::new(vec![leaf; STEPS as usize + 1]).expect("trace");
    let mut ids = Vec::new();
    for _ in 0..JOBS {
        let id = U256::from(post(&s, &job).await);
        worker.claim_job(id).await.expect("claim");
        worker
            .submit_result(
                id,
                STEPS,
                trace.root(),
                B256::ZERO,
                leaf,
                trace.proof(STEPS).expect("proof").siblings,
                Bytes::from(cid_of(b"result").to_bytes()),
            )
            .await
            .expect("submit");
        ids.push(id);
    }
    provider(&s.devnet)
        .anvil_increase_time(u64::from(WINDOW) + 1)
        .await
        .expect("time");
    for id in &ids {
        worker.finalize(*id).await.expect("finalize");
        assert_eq!(
            JobStatus::try_from(s.requester.job(*id).await.expect("job").status),
            Ok(JobStatus::Finalized)
        );
    }

    let (url, requests) = counting_proxy(s.devnet.endpoint()).await;
    let net = crate::network::net(Arc::new(MemorySource::default()), Vec::new()).await;
    let validator = Verifier::new(
        Market::connect(
            url,
            s.devnet.signer(3).expect("account"),
            s.devnet.deployment().clone(),
        )
        .await
        .expect("through the proxy"),
        net.client.clone(),
        VerifierConfig::default(),
    )
    .expect("validator");
    let mut per_round = Vec::new();
    for _ in 0..3 {
        let before = requests.load(Ordering::SeqCst);
        assert!(validator.tick().await.expect("round").is_empty());
        per_round.push(requests.load(Ordering::SeqCst) - before);
    }
    eprintln!("requests per round with {JOBS} settled jobs: {per_round:?}");
    // A genesis check, a head, a scan, the reward pools: a handful, not one per job.
    for n in &per_round {
        assert!(
            *n < JOBS / 2,
            "{per_round:?} requests for {JOBS} settled jobs"
        );
    }
}
