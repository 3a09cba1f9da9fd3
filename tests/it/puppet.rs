//! A worker that cheats and has its own puppet challenge it at once, to convict itself before
//! an honest validator can (docs/economics.md): the honest validator daemon still checks the
//! job while the puppet's dispute holds it, commits, and shares the conviction's reward.

use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use pedals_chain::{Devnet, JobStatus, Market, Phase};
use pedals_node::{StoreSource, Worker, WorkerConfig};
use pedals_p2p::MemorySource;
use pedals_store::Store;
use pedals_verifier::{
    Verifier, VerifierConfig,
    game::{Turn, challenge},
};

use crate::{
    dispute::{honest, market, past_claim_period, submitted},
    worker::{STEPS, fast, job, provider},
};

/// Whether `who` has committed a challenge of job `id`.
async fn committed(market: &Market, id: pedals_core::JobId, who: Address) -> bool {
    !market
        .job_market()
        .ChallengeCommitted_filter()
        .topic1(id.to_u256())
        .topic2(who)
        .from_block(0)
        .query()
        .await
        .expect("logs")
        .is_empty()
}

/// A worker (dev account 1) on its own network node that serves its store, falsifying the
/// steps in `lies` in training and in what it serves.
pub(crate) async fn networked_worker(
    devnet: &Devnet,
    dir: &std::path::Path,
    lies: Vec<u64>,
) -> (Worker, pedals_p2p::Network) {
    let store = Arc::new(Store::open(dir).expect("store"));
    let net = crate::network::net(
        Arc::new(StoreSource::new(store.clone(), 2).falsifying(lies.iter().copied())),
        Vec::new(),
    )
    .await;
    let w = worker_with(devnet, store, net.client.clone(), lies).await;
    (w, net)
}

/// The worker of dev account 1 on `store`, reachable through `net`, falsifying `lies`.
pub(crate) async fn worker_with(
    devnet: &Devnet,
    store: Arc<Store>,
    net: pedals_p2p::Client,
    lies: Vec<u64>,
) -> Worker {
    Worker::new(
        provider(devnet),
        devnet.signer(1).expect("account"),
        store,
        devnet.deployment().clone(),
        WorkerConfig {
            threads: 2,
            send: fast(),
            falsify_steps: lies,
            ..WorkerConfig::default()
        },
    )
    .await
    .expect("worker")
    .with_network(net)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_puppet_that_convicts_its_worker_first_shares_the_reward_with_the_honest_validator() {
    let devnet = Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let requester = market(&devnet, 2).await;
    let puppet = market(&devnet, 4).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The worker falsifies every step from step 4 on, and serves what it claimed.
    let (w, worker_net) = networked_worker(&devnet, dir.path(), (4..STEPS).collect()).await;
    let params = requester.parameters().await.expect("params");
    let job = job();
    let id = submitted(&devnet, &requester, &w, &job).await;

    // The puppet knows the lie: it challenges step 4 with the true h_5 as soon as the result
    // is on-chain, so the job is Disputed before any validator looks at it.
    let ctx = honest(&job, 4);
    let truth = *ctx.trace.leaves.last().expect("leaves");
    puppet
        .stake(U256::from(params.minValidatorStake))
        .await
        .expect("stake");
    let salt = B256::from([9u8; 32]);
    puppet
        .commit_challenge(id, 4, truth, salt)
        .await
        .expect("commit");
    puppet
        .challenge(id, 4, truth, salt, U256::from(params.challengeBond))
        .await
        .expect("challenge");

    let validator_net = crate::network::net(
        Arc::new(MemorySource::default()),
        worker_net.client.listen_addrs().await.expect("addrs"),
    )
    .await;
    let validator_market = market(&devnet, 3).await;
    let honest_validator = validator_market.sender();
    let validator = Verifier::new(
        validator_market,
        validator_net.client.clone(),
        VerifierConfig {
            // 16 of 20 steps are lies: one of 12 samples is one for certain.
            samples_per_job: 12,
            threads: 1,
            ..VerifierConfig::default()
        },
    )
    .expect("validator");
    validator
        .ensure_stake(U256::from(params.minValidatorStake))
        .await
        .expect("stake");

    // The validator checks the disputed job and commits; the puppet then wins its game (the
    // worker defends its lie and loses on the element).
    for _ in 0..60 {
        w.tick().await.expect("worker round");
        assert!(
            validator.tick().await.expect("validator round").is_empty(),
            "no second dispute can open"
        );
        if committed(&requester, id, honest_validator).await {
            let _: Turn = challenge(&puppet, id, &ctx).await.expect("puppet move");
        }
        if puppet.game_of(id).await.expect("game").phase == Phase::None
            && JobStatus::try_from(requester.job(id).await.expect("job").status)
                == Ok(JobStatus::Resolved)
        {
            break;
        }
    }
    assert!(
        committed(&requester, id, honest_validator).await,
        "the validator committed while the puppet's dispute held the job"
    );
    let job_after = requester.job(id).await.expect("job");
    assert_eq!(
        JobStatus::try_from(job_after.status),
        Ok(JobStatus::Resolved),
        "the puppet convicted the worker"
    );

    // The honest validator joins the pool in its next round; both collect after the period.
    validator.tick().await.expect("validator round");
    let pool = requester.reward_pool(id).await.expect("pool");
    assert_eq!(pool.claimants, 2, "the puppet and the honest validator");
    let collateral = U256::from(job_after.collateral);
    let reward = collateral * U256::from(job_after.challengerRewardBps) / U256::from(10_000u64);
    assert_eq!(pool.remaining, reward);
    past_claim_period(&devnet, &requester, id).await;
    validator.tick().await.expect("validator round");
    let before = puppet.credit_of(puppet.sender()).await.expect("credit");
    puppet.collect_reward(id).await.expect("collect");
    let puppet_share = puppet.credit_of(puppet.sender()).await.expect("credit") - before;
    let honest_share = U256::from(validator.stats().wei_earned.get());
    assert_eq!(honest_share, reward / U256::from(2u64), "half the reward");
    assert_eq!(puppet_share, reward - honest_share, "the other half");
    assert_eq!(
        requester.reward_pool(id).await.expect("pool").remaining,
        U256::ZERO
    );
    drop(dir);
}
