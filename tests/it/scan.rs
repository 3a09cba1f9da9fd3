//! A validator started on a market with a thousand settled jobs finds its work in the market's
//! events: its rounds make a number of RPC requests that does not grow with the jobs the
//! market ever had (counted by a proxy in front of anvil).

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, aliases::U40},
    providers::{Provider, ext::AnvilApi},
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};
use pedals_chain::{JobMarket, JobRequest, JobStatus, Market, StakeManager, chain_time};
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

/// Sends every one of `calls` (to, calldata, value) from `signer` with mining paused, then
/// mines them in full blocks: a thousand jobs in a few dozen blocks instead of thousands of
/// one-transaction blocks. Each call's gas is the first call's estimate with room to spare
/// (the calls of one batch do the same work). Returns whether the last one succeeded.
async fn send_all(
    devnet: &pedals_chain::Devnet,
    signer: alloy::signers::local::PrivateKeySigner,
    calls: Vec<(Address, Vec<u8>, U256)>,
) -> bool {
    let from = signer.address();
    let chain = alloy::providers::ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(signer))
        .connect_http(devnet.endpoint());
    let request = |(to, input, value): &(Address, Vec<u8>, U256)| {
        TransactionRequest::default()
            .with_from(from)
            .with_to(*to)
            .with_input(input.clone())
            .with_value(*value)
    };
    let estimate = chain
        .estimate_gas(request(&calls[0]))
        .await
        .expect("the first call of the batch succeeds");
    let start = chain
        .get_transaction_count(from)
        .pending()
        .await
        .expect("nonce");
    chain
        .anvil_set_auto_mine(false)
        .await
        .expect("pause mining");
    let mut last = B256::ZERO;
    for (nonce, call) in (start..).zip(&calls) {
        let tx = request(call)
            .with_nonce(nonce)
            .with_chain_id(devnet.chain_id())
            .with_gas_limit(estimate * 3 / 2 + 20_000)
            .with_max_fee_per_gas(20_000_000_000)
            .with_max_priority_fee_per_gas(1);
        last = *chain.send_transaction(tx).await.expect("sent").tx_hash();
    }
    let end = start + calls.len() as u64;
    while chain.get_transaction_count(from).await.expect("nonce") < end {
        chain.evm_mine(None).await.expect("mine");
    }
    chain
        .anvil_set_auto_mine(true)
        .await
        .expect("resume mining");
    chain
        .get_transaction_receipt(last)
        .await
        .expect("rpc")
        .expect("mined")
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_validator_started_after_a_thousand_settled_jobs_works_per_block_not_per_job() {
    const JOBS: u64 = 1000;
    let s = setup().await;
    let job = job();
    let market = s.devnet.deployment().job_market;
    let worker = s.devnet.signer(1).expect("account");
    let each = s
        .requester
        .stake_to_claim(U256::from(PAYMENT))
        .await
        .expect("stake");
    let stake = StakeManager::stakeCall {}.abi_encode();
    send_all(
        &s.devnet,
        worker.clone(),
        vec![(
            s.devnet.deployment().stake_manager,
            stake,
            each * U256::from(JOBS),
        )],
    )
    .await;
    // Posted (the spec admitted by the first), claimed, submitted and, after the window,
    // finalized: settled jobs, numbered 1 to JOBS on this fresh devnet.
    assert_eq!(post(&s, &job).await, 1);
    let start = chain_time(s.requester.provider()).await.expect("time");
    let request = JobRequest {
        specHash: job.spec.spec_hash(),
        modelCid: Bytes::from(cid_of(&job.model).to_bytes()),
        datasetCid: Bytes::from(cid_of(&job.dataset).to_bytes()),
        steps: STEPS as u32,
        verification: pedals_core::Verification::Optimistic.to_u8(),
        // Each block moves the chain's clock a second at least: room for every job.
        claimDeadline: U40::from(start + 4 * JOBS + 600),
        deliveryDeadline: U40::from(start + 4 * JOBS + 3600),
        challengeWindow: WINDOW,
    };
    let post_call = JobMarket::postJobCall { r: request }.abi_encode();
    send_all(
        &s.devnet,
        s.devnet.signer(2).expect("requester"),
        (1..JOBS)
            .map(|_| (market, post_call.clone(), U256::from(PAYMENT)))
            .collect(),
    )
    .await;
    let leaf = B256::repeat_byte(7);
    let trace = pedals_core::TraceCommitment::new(vec![leaf; STEPS as usize + 1]).expect("trace");
    let proof = trace.proof(STEPS).expect("proof").siblings;
    let result = Bytes::from(cid_of(b"result").to_bytes());
    let claims = (1..=JOBS)
        .map(|id| {
            let call = JobMarket::claimJobCall {
                jobId: U256::from(id),
            };
            (market, call.abi_encode(), U256::ZERO)
        })
        .collect();
    assert!(send_all(&s.devnet, worker.clone(), claims).await);
    let submits = (1..=JOBS).map(|id| {
        let submit = JobMarket::submitResultCall {
            jobId: U256::from(id),
            steps: U256::from(STEPS),
            traceRoot: trace.root(),
            auditRoot: B256::ZERO,
            finalStateHash: leaf,
            finalProof: proof.clone(),
            resultCid: result.clone(),
        };
        (market, submit.abi_encode(), U256::ZERO)
    });
    assert!(send_all(&s.devnet, worker.clone(), submits.collect()).await);
    provider(&s.devnet)
        .anvil_increase_time(u64::from(WINDOW) + 1)
        .await
        .expect("time");
    let finals = (1..=JOBS).map(|id| {
        let call = JobMarket::finalizeCall {
            jobId: U256::from(id),
        };
        (market, call.abi_encode(), U256::ZERO)
    });
    assert!(
        send_all(&s.devnet, worker, finals.collect()).await,
        "the last finalize succeeded"
    );
    for id in [1, JOBS / 2, JOBS] {
        let job = s.requester.job(pedals_core::JobId(id)).await.expect("job");
        assert_eq!(
            JobStatus::try_from(job.status),
            Ok(JobStatus::Finalized),
            "job {id}"
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
    for round in 0..4 {
        if round == 3 {
            // 2,100 new blocks since the last round: read in two log requests, not 2,100.
            provider(&s.devnet)
                .anvil_mine(Some(2100), None)
                .await
                .expect("mine");
        }
        let before = requests.load(Ordering::SeqCst);
        assert!(validator.tick().await.expect("round").is_empty());
        per_round.push(requests.load(Ordering::SeqCst) - before);
    }
    let head = provider(&s.devnet).get_block_number().await.expect("head");
    eprintln!(
        "requests per round with {JOBS} settled jobs over {head} blocks: {per_round:?} \
         (each round after the first reads only the blocks since the last)"
    );
    // The first round reads the market's history in a few log requests (one per 2,000
    // blocks); each later round a genesis check, a head, a scan of the new blocks and the
    // reward pools: a handful, not one per job.
    assert!(
        per_round[0] <= 16,
        "{per_round:?} requests for {JOBS} settled jobs"
    );
    for n in &per_round[1..] {
        assert!(*n <= 8, "{per_round:?} requests for {JOBS} settled jobs");
    }
}
