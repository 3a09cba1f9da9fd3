//! post → claim → submit → finalize → withdraw, driven from Rust, every balance to the wei.

use alloy::primitives::U256;
use pedals_chain::{ChainError, JobMarket, JobStatus};

use crate::support::{
    PAYMENT, STEPS, WINDOW, advance, cid, devnet, eth, final_hash, final_proof, market, request,
    trace_root,
};

#[tokio::test(flavor = "multi_thread")]
async fn happy_path_pays_worker_and_fee_to_the_wei() {
    let devnet = devnet().await;
    let treasury = market(&devnet, 0).await; // deployer: fee recipient
    let requester = market(&devnet, 1).await;
    let provider = market(&devnet, 2).await;
    let keeper = market(&devnet, 3).await; // anyone may finalize

    let params = requester.parameters().await.expect("params");
    let payment = eth(PAYMENT);
    let fee = payment * U256::from(params.protocolFeeBps) / U256::from(10_000);
    let collateral = payment * U256::from(params.collateralBps) / U256::from(10_000);
    let stake = eth(1_000_000_000_000_000_000);

    // The spec's admission (its own transaction) comes before the measured flows.
    let job_request = request(&requester).await;
    let requester_start = requester
        .balance(requester.sender())
        .await
        .expect("balance");
    let provider_start = provider.balance(provider.sender()).await.expect("balance");
    let treasury_start = treasury.balance(treasury.sender()).await.expect("balance");

    // Provider stakes; requester posts.
    let staked = provider.stake(stake).await.expect("stake");
    let (job_id, posted) = requester
        .post_job(job_request, payment)
        .await
        .expect("post");
    assert_eq!(job_id, pedals_core::JobId(1));
    let job = requester.job(job_id).await.expect("job");
    assert_eq!(
        JobStatus::try_from(job.status).expect("known status"),
        JobStatus::Posted
    );
    assert_eq!(U256::from(job.payment), payment);

    // Claim locks collateral.
    let claimed = provider.claim_job(job_id).await.expect("claim");
    let account = provider.stake_of(provider.sender()).await.expect("stake");
    assert_eq!(U256::from(account.staked), stake);
    assert_eq!(U256::from(account.locked), collateral);

    // Submit opens the window; finalize before it ends is refused with a decoded error.
    let submitted = provider
        .submit_result(
            job_id,
            u64::from(STEPS),
            trace_root(),
            alloy::primitives::B256::ZERO,
            final_hash(),
            final_proof(),
            cid("result"),
        )
        .await
        .expect("submit");
    match keeper.finalize(job_id).await {
        Err(ChainError::JobMarket(JobMarket::JobMarketErrors::ChallengeWindowOpen(e))) => {
            assert_eq!(e.jobId, job_id.to_u256());
        }
        other => panic!("expected ChallengeWindowOpen, got {other:?}"),
    }
    advance(&keeper, u64::from(WINDOW)).await;
    let finalized = keeper.finalize(job_id).await.expect("finalize");
    let job = keeper.job(job_id).await.expect("job");
    assert_eq!(
        JobStatus::try_from(job.status).expect("known status"),
        JobStatus::Finalized
    );
    assert_eq!(
        keeper.credit_of(provider.sender()).await.expect("credit"),
        payment - fee
    );
    assert_eq!(keeper.fees_accrued().await.expect("fees"), fee);
    assert_eq!(
        provider
            .stake_of(provider.sender())
            .await
            .expect("stake")
            .locked,
        0
    );

    // Pull payments.
    let withdrawn = provider.withdraw().await.expect("withdraw");
    let fees_out = treasury.withdraw_fees().await.expect("withdraw fees");

    let provider_end = provider.balance(provider.sender()).await.expect("balance");
    let provider_gas = staked.fee() + claimed.fee() + submitted.fee() + withdrawn.fee();
    assert_eq!(
        provider_end,
        provider_start - stake - provider_gas + payment - fee
    );

    let requester_end = requester
        .balance(requester.sender())
        .await
        .expect("balance");
    assert_eq!(requester_end, requester_start - payment - posted.fee());

    let treasury_end = treasury.balance(treasury.sender()).await.expect("balance");
    assert_eq!(treasury_end, treasury_start + fee - fees_out.fee());

    let market_balance = keeper
        .balance(keeper.deployment().job_market)
        .await
        .expect("balance");
    assert_eq!(
        market_balance,
        U256::ZERO,
        "the market holds nothing once everyone withdrew"
    );
    let stake_balance = keeper
        .balance(keeper.deployment().stake_manager)
        .await
        .expect("balance");
    assert_eq!(
        stake_balance, stake,
        "the stake manager holds exactly the stake"
    );

    // The figures docs/contracts.md reports (run with --nocapture to see them).
    let total = posted.gas_used
        + claimed.gas_used
        + submitted.gas_used
        + finalized.gas_used
        + withdrawn.gas_used;
    eprintln!(
        "lifecycle gas: post {} claim {} submit {} finalize {} withdraw {} total {total}",
        posted.gas_used,
        claimed.gas_used,
        submitted.gas_used,
        finalized.gas_used,
        withdrawn.gas_used
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_refunds_the_requester_in_full() {
    let devnet = devnet().await;
    let requester = market(&devnet, 1).await;
    let job_request = request(&requester).await;
    let start = requester
        .balance(requester.sender())
        .await
        .expect("balance");
    let (job_id, posted) = requester
        .post_job(job_request, eth(PAYMENT))
        .await
        .expect("post");
    let cancelled = requester.cancel_job(job_id).await.expect("cancel");
    let withdrawn = requester.withdraw().await.expect("withdraw");
    let end = requester
        .balance(requester.sender())
        .await
        .expect("balance");
    assert_eq!(
        end,
        start - posted.fee() - cancelled.fee() - withdrawn.fee()
    );
    let job = requester.job(job_id).await.expect("job");
    assert_eq!(
        JobStatus::try_from(job.status).expect("known status"),
        JobStatus::Cancelled
    );
}
