//! Bad input from Rust: every revert arrives decoded into the bindings' error enums.

use alloy::primitives::{Bytes, U256};
use alloy::providers::Provider;
use pedals_chain::{ChainError, JobMarket, Market, StakeManager};

use crate::support::{PAYMENT, STEPS, advance, cid, devnet, eth, final_hash, market, request};

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_decoded_into_named_errors() {
    let devnet = devnet().await;
    let requester = market(&devnet, 1).await;
    let provider = market(&devnet, 2).await;
    let other = market(&devnet, 3).await;

    // Zero payment.
    let err = requester
        .post_job(request(&requester).await, U256::ZERO)
        .await
        .expect_err("zero payment");
    assert!(
        matches!(
            err,
            ChainError::JobMarket(JobMarket::JobMarketErrors::ZeroPayment(_))
        ),
        "{err}"
    );

    // Zero steps.
    let mut bad = request(&requester).await;
    bad.steps = 0;
    let err = requester
        .post_job(bad, eth(PAYMENT))
        .await
        .expect_err("zero steps");
    assert!(
        matches!(
            err,
            ChainError::JobMarket(JobMarket::JobMarketErrors::ZeroSteps(_))
        ),
        "{err}"
    );

    // A CID that is not a binary CIDv1.
    let mut bad = request(&requester).await;
    bad.modelCid = Bytes::from_static(b"Qm-not-a-cid");
    let err = requester
        .post_job(bad, eth(PAYMENT))
        .await
        .expect_err("bad cid");
    assert!(
        matches!(
            err,
            ChainError::JobMarket(JobMarket::JobMarketErrors::InvalidCid(_))
        ),
        "{err}"
    );

    // A claim deadline in the past.
    let mut bad = request(&requester).await;
    bad.claimDeadline = alloy::primitives::aliases::U40::from(1u64);
    let err = requester
        .post_job(bad, eth(PAYMENT))
        .await
        .expect_err("past deadline");
    assert!(
        matches!(
            err,
            ChainError::JobMarket(JobMarket::JobMarketErrors::DeadlineInPast(_))
        ),
        "{err}"
    );

    let (job_id, _) = requester
        .post_job(request(&requester).await, eth(PAYMENT))
        .await
        .expect("post");

    // An unstaked claimant is refused by the stake manager, and the error is decoded as its.
    let err = provider.claim_job(job_id).await.expect_err("unstaked");
    assert!(
        matches!(
            err,
            ChainError::StakeManager(StakeManager::StakeManagerErrors::StakeBelowMinimum(_))
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "StakeManager rejected the call: claiming needs at least 0.100000000000000000 ETH \
         staked; you have 0.000000000000000000 ETH: stake first"
    );

    provider
        .stake(eth(1_000_000_000_000_000_000))
        .await
        .expect("stake");
    provider.claim_job(job_id).await.expect("claim");

    // A second claim.
    other
        .stake(eth(1_000_000_000_000_000_000))
        .await
        .expect("stake");
    let err = other.claim_job(job_id).await.expect_err("second claim");
    assert!(
        matches!(
            err,
            ChainError::JobMarket(JobMarket::JobMarketErrors::WrongStatus(_))
        ),
        "{err}"
    );

    // Someone else's submission.
    let err = other
        .submit_result(
            job_id,
            u64::from(STEPS),
            crate::support::trace_root(),
            alloy::primitives::B256::ZERO,
            final_hash(),
            crate::support::final_proof(),
            cid("r"),
        )
        .await
        .expect_err("not the worker");
    assert!(
        matches!(
            err,
            ChainError::JobMarket(JobMarket::JobMarketErrors::NotWorker(_))
        ),
        "{err}"
    );

    // A late submission, and then the job expires with the penalty credited to the requester.
    advance(&provider, 3601).await;
    let err = provider
        .submit_result(
            job_id,
            u64::from(STEPS),
            crate::support::trace_root(),
            alloy::primitives::B256::ZERO,
            final_hash(),
            crate::support::final_proof(),
            cid("r"),
        )
        .await
        .expect_err("late");
    assert!(
        matches!(
            err,
            ChainError::JobMarket(JobMarket::JobMarketErrors::DeliveryDeadlinePassed(_))
        ),
        "{err}"
    );
    other.expire(job_id).await.expect("expire");
    let params = requester.parameters().await.expect("params");
    let collateral = eth(PAYMENT) * U256::from(params.collateralBps) / U256::from(10_000);
    let penalty = collateral * U256::from(params.expiryPenaltyBps) / U256::from(10_000);
    assert_eq!(
        requester
            .credit_of(requester.sender())
            .await
            .expect("credit"),
        eth(PAYMENT) + penalty
    );
    let account = provider.stake_of(provider.sender()).await.expect("stake");
    assert_eq!(U256::from(account.locked), U256::ZERO);
    assert_eq!(
        U256::from(account.staked),
        eth(1_000_000_000_000_000_000) - penalty
    );

    // Nothing to withdraw for a stranger, and the message says so.
    let stranger = market(&devnet, 4).await;
    let err = stranger.withdraw().await.expect_err("no credit");
    assert!(
        matches!(
            err,
            ChainError::JobMarket(JobMarket::JobMarketErrors::NothingToWithdraw(_))
        ),
        "{err}"
    );
}

/// A deployment file whose market address has no code on the chain (a chain that was reset
/// or redeployed): connecting is refused with what to do, before any transaction, so a
/// payment can never go out as a plain transfer to an empty address. The wallet keeps every
/// wei.
#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_without_contracts_on_the_chain_is_refused_before_any_transaction() {
    let devnet = devnet().await;
    let signer = devnet.signer(2).expect("account");
    let account = signer.address();
    let mut stale = devnet.deployment().clone();
    stale.job_market = alloy::primitives::Address::repeat_byte(0x42);
    let provider = alloy::providers::ProviderBuilder::new()
        .connect_http(devnet.endpoint())
        .erased();
    let before = provider.get_balance(account).await.expect("balance");
    let nonce = provider
        .get_transaction_count(account)
        .await
        .expect("nonce");
    let err = Market::connect(devnet.endpoint(), signer, stale)
        .await
        .expect_err("no contract at the market's address");
    match &err {
        ChainError::NoContract {
            contract, address, ..
        } => {
            assert_eq!(*contract, "JobMarket");
            assert_eq!(*address, alloy::primitives::Address::repeat_byte(0x42));
        }
        other => panic!("expected NoContract, got {other}"),
    }
    assert!(err.to_string().contains("deploy again"), "{err}");
    assert_eq!(
        provider.get_balance(account).await.expect("balance"),
        before
    );
    assert_eq!(
        provider
            .get_transaction_count(account)
            .await
            .expect("nonce"),
        nonce,
        "nothing was sent"
    );
}

/// An endpoint that accepts the connection and never answers (a frozen node) fails the
/// connection after the request timeout, naming the endpoint, instead of hanging.
#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_that_never_answers_fails_after_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url: alloy::transports::http::reqwest::Url =
        format!("http://{}", listener.local_addr().expect("addr"))
            .parse()
            .expect("url");
    // Accept and hold every connection, reading nothing and writing nothing.
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let devnet = devnet().await;
    // A hang guard, not a timing assertion: without the request timeout this would wait
    // for the OS's TCP timeout.
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        Market::connect_within(
            url.clone(),
            devnet.signer(2).expect("account"),
            devnet.deployment().clone(),
            std::time::Duration::from_secs(2),
        ),
    )
    .await
    .expect("the connection gives up instead of hanging")
    .expect_err("nobody answers");
    assert!(matches!(err, ChainError::Unreachable { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(url.as_str()), "{text}");
    hold.abort();
}

/// An endpoint that answers with rate limits (HTTP 429) before it answers for real: the
/// request is sent again, with a pause, and succeeds; an endpoint that never stops limiting
/// fails after the retries, naming itself.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_requests_are_retried() {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn serve(limit_first: u32) -> (alloy::transports::http::reqwest::Url, Arc<AtomicU32>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"))
            .parse()
            .expect("url");
        let hits = Arc::new(AtomicU32::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let hits = counted.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // One request: its head, then as many body bytes as it announces.
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        }
                        let body: serde_json::Value =
                            serde_json::from_slice(&buf[end + 4..end + 4 + len]).expect("json");
                        buf.drain(..end + 4 + len);
                        let n = hits.fetch_add(1, Ordering::SeqCst);
                        let response = if n < limit_first {
                            "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n"
                                .to_string()
                        } else {
                            let json = serde_json::json!({
                                "jsonrpc": "2.0", "id": body["id"], "result": "0x7a69"
                            })
                            .to_string();
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                 content-length: {}\r\n\r\n{json}",
                                json.len()
                            )
                        };
                        if socket.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, hits)
    }

    let (url, hits) = serve(2).await;
    let provider = pedals_chain::rpc_provider(url).expect("provider");
    use alloy::providers::Provider;
    assert_eq!(
        provider.get_chain_id().await.expect("answered at last"),
        31337
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3, "two limited, one answered");

    let (url, hits) = serve(u32::MAX).await;
    let provider = pedals_chain::rpc_provider(url.clone()).expect("provider");
    let err = provider.get_chain_id().await.expect_err("always limited");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1 + pedals_chain::RPC_RETRIES,
        "the request and its retries"
    );
    let text = pedals_chain::ChainError::from(err).to_string();
    assert!(text.contains("429"), "{text}");
}
