//! `pedals validator run` checks fine-tuning jobs, with real processes on a real chain: a
//! `[finetune]` job posted by `pedals job post`, trained by `pedals provider run`, checked by
//! the validator daemon over libp2p, finalized and paid; the same job from a provider that
//! falsifies one step is caught by the validator daemon, which plays the fine-tuning game
//! against the provider's own defence down to one element that the contract recomputes. The
//! provider's collateral is seized, checked to the wei.

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use pedals_chain::{GameKind, JobStatus};

use crate::ft_job::ft_job;
use crate::lm_job::{World, start_job};
use crate::validator::{counter, metrics, validator_daemon};
use crate::{free_port, wait_for};

/// Long enough for the validator to check the three steps after the job is submitted.
const WINDOW: u32 = 300;

/// Starts `pedals validator run` (account 6) joined to the provider's node at `port`, sampling
/// every one of the job's three steps and staking the market's minimum; returns it with its
/// metrics port.
async fn start_validator(w: &World, port: u16) -> (crate::Daemon, u16) {
    let params = w.market.parameters().await.expect("params");
    let stake = U256::from(params.minValidatorStake).to_string();
    let metrics = free_port();
    let bootstrap = format!("/ip4/127.0.0.1/tcp/{port}");
    let child = validator_daemon(w.tmp.path(), &w.devnet, 3, &stake, &bootstrap, metrics);
    (crate::Daemon(child), metrics)
}

/// Waits until the validator's counter `name` reaches `want`; returns its metrics page.
async fn counted(port: u16, name: &str, want: u64) -> String {
    let until = Instant::now() + Duration::from_secs(180);
    loop {
        let page = metrics(port).await;
        if counter(&page, name) >= want {
            return page;
        }
        assert!(
            Instant::now() < until,
            "{name} never reached {want}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Posts the job file `file` and has a provider (lying when `lie`) train it until it has
/// submitted; returns the job's id, the provider and its libp2p port.
async fn submitted(
    w: &World,
    file: &std::path::Path,
    lie: bool,
) -> (pedals_core::JobId, crate::Daemon, u16) {
    let port = free_port();
    let (posted, provider) = start_job(w.tmp.path(), &w.devnet, file, port, lie);
    let id = pedals_core::JobId(posted["jobId"].as_u64().expect("job id"));
    wait_for(
        &w.market,
        id,
        JobStatus::Submitted,
        Duration::from_secs(180),
    )
    .await;
    (id, provider, port)
}

async fn warp(w: &World, seconds: u64) {
    let chain = w.market.provider();
    chain.anvil_increase_time(seconds).await.expect("warp");
    chain.anvil_mine(Some(1), None).await.expect("mine");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_validator_daemon_checks_cli_finetune_jobs_and_gets_a_lying_provider_slashed() {
    let w = World::new().await;
    let dir = w.tmp.path();
    let file = dir.join("ft.toml");
    std::fs::write(&file, ft_job(WINDOW, "")).expect("job file");
    let before = w
        .market
        .provider()
        .get_balance(w.provider.address())
        .await
        .expect("balance");

    // An honest provider: the validator re-executes its three steps, all reproduce, and the
    // job is finalized and paid once the window is over.
    let (id, provider, port) = submitted(&w, &file, false).await;
    let (validator, vport) = start_validator(&w, port).await;
    let page = counted(vport, "pedals_validator_jobs_checked_total", 1).await;
    assert_eq!(counter(&page, "pedals_validator_steps_checked_total"), 3);
    assert_eq!(counter(&page, "pedals_validator_mismatches_total"), 0);
    warp(&w, u64::from(WINDOW) + 1).await;
    wait_for(
        &w.market,
        id,
        JobStatus::Finalized,
        Duration::from_secs(120),
    )
    .await;
    w.assert_paid(before).await;
    drop((validator, provider));

    caught(&w, &file).await;
}

/// The same for a full fine-tune (every weight trained): a provider that lies about one step
/// is caught by the validator daemon, narrowed to one element and slashed, to the wei.
#[tokio::test(flavor = "multi_thread")]
async fn the_validator_daemon_gets_a_lying_full_finetune_provider_slashed() {
    let w = World::new().await;
    let file = w.tmp.path().join("full.toml");
    std::fs::write(&file, crate::ft_job::full_job(WINDOW)).expect("job file");
    caught(&w, &file).await;
}

/// A provider that lies about step 2 (index 1) of the job file `file`: the validator catches
/// it and wins the game; the money moves as the protocol says, to the wei.
async fn caught(w: &World, file: &std::path::Path) {
    let (id, provider, port) = submitted(w, file, true).await;
    let worker = w.provider.address();
    let staked_before = U256::from(w.market.stake_of(worker).await.expect("stake").staked);
    let validator_account = w.devnet.signer(6).expect("key").address();
    let (validator, vport) = start_validator(w, port).await;
    wait_for(&w.market, id, JobStatus::Resolved, Duration::from_secs(240)).await;
    let page = counted(vport, "pedals_validator_disputes_won_total", 1).await;
    assert_eq!(
        counter(&page, "pedals_validator_mismatches_total"),
        1,
        "{page}"
    );

    // Narrowed to one row and decided by the referee's recomputation, not by the clock.
    let lm = w.market.playing(GameKind::Lm);
    assert_eq!(lm.games_decided(id).await.expect("events"), [(true, false)]);
    assert!(lm.revealed_row(id).await.expect("row").is_some());

    // To the wei: the collateral leaves the provider's stake; the validator has its bond back
    // at once, and collects the reward once the claim period is over; the requester has its
    // payment back and the rest of the collateral.
    let job = w.market.job(id).await.expect("job");
    let params = w.market.parameters().await.expect("params");
    let collateral = U256::from(job.collateral);
    let reward = collateral * U256::from(job.challengerRewardBps) / U256::from(10_000u64);
    let bond = U256::from(params.challengeBond);
    let staked_after = U256::from(w.market.stake_of(worker).await.expect("stake").staked);
    assert_eq!(staked_before - staked_after, collateral);
    assert_eq!(
        w.market.credit_of(validator_account).await.expect("credit"),
        bond
    );
    let claim_end = w.market.reward_pool(id).await.expect("pool").claim_end;
    let now = pedals_chain::chain_time(w.market.provider())
        .await
        .expect("time");
    warp(w, claim_end.saturating_sub(now) + 1).await;
    let until = Instant::now() + Duration::from_secs(60);
    while w.market.credit_of(validator_account).await.expect("credit") != bond + reward {
        assert!(
            Instant::now() < until,
            "the validator daemon never collected its reward"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let payment = U256::from(5u64) * U256::from(10u64).pow(U256::from(16u64));
    assert_eq!(
        w.market
            .credit_of(w.requester.address())
            .await
            .expect("credit"),
        payment + collateral - reward
    );
    drop((validator, provider));
}
