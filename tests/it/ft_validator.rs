//! The validator daemon checks fine-tuning jobs as it checks training jobs: it fetches the
//! job's model and dataset and the worker's sampled checkpoints over libp2p, re-executes the
//! steps, and finds an honest worker's steps reproduce (the job is finalized and paid); a step
//! that a worker falsified does not, and the daemon challenges it and plays the fine-tuning
//! game (`LmDisputeGame`, docs/protocol.md §9) to one element by itself, through a restart in
//! the middle of the game, against the worker daemon defending its lie. The worker is slashed,
//! checked to the wei. A lying worker that serves none of its states is demanded them on-chain
//! and caught from what it publishes.

use std::sync::Arc;

use alloy::primitives::U256;
use alloy::providers::ext::AnvilApi;
use pedals_chain::{Devnet, GameKind, JobStatus, Market};
use pedals_node::{StoreSource, Worker};
use pedals_p2p::MemorySource;
use pedals_store::Store;
use pedals_verifier::{Verifier, VerifierConfig};

use crate::dispute::{WINDOW, market, past_claim_period};
use crate::ft::ft_job;
use crate::ft_dispute::submitted_ft;
use crate::worker::{PAYMENT, provider};

/// A fine-tuning job submitted by a networked worker that lies about `lies`, and a validator
/// daemon (keeping its journal in `journal`) joined to the worker's node, staked.
struct World {
    devnet: Devnet,
    requester: Market,
    w: Worker,
    validator_net: pedals_p2p::Network,
    _worker_net: pedals_p2p::Network,
    _dir: tempfile::TempDir,
    journal: tempfile::TempDir,
    id: pedals_core::JobId,
}

impl World {
    /// `withhold`: the worker's node serves the job's files but none of its states.
    async fn new(lies: Vec<u64>, withhold: bool) -> Self {
        let devnet = Devnet::start(pedals_chain::DevnetConfig::default())
            .await
            .expect("devnet");
        let requester = market(&devnet, 2).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let source = StoreSource::new(store.clone(), 2);
        let source = if withhold {
            source.withholding()
        } else {
            source
        };
        let worker_net = crate::network::net(Arc::new(source), Vec::new()).await;
        let w = crate::puppet::worker_with(&devnet, store, worker_net.client.clone(), lies).await;
        let id = submitted_ft(&devnet, &requester, &w, &ft_job()).await;
        let validator_net = crate::network::net(
            Arc::new(MemorySource::default()),
            worker_net.client.listen_addrs().await.expect("addrs"),
        )
        .await;
        let world = Self {
            devnet,
            requester,
            w,
            validator_net,
            _worker_net: worker_net,
            _dir: dir,
            journal: tempfile::tempdir().expect("tempdir"),
            id,
        };
        let params = world.requester.parameters().await.expect("params");
        world
            .validator()
            .await
            .ensure_stake(U256::from(params.minValidatorStake))
            .await
            .expect("stake");
        world
    }

    /// The validator daemon: it samples every one of the job's four steps.
    async fn validator(&self) -> Verifier {
        self.validator_holding(VerifierConfig::default().max_trace_bytes)
            .await
    }

    /// The validator daemon, letting a challenged step's op trace take `max_trace_bytes`.
    async fn validator_holding(&self, max_trace_bytes: u64) -> Verifier {
        Verifier::new(
            market(&self.devnet, 3).await,
            self.validator_net.client.clone(),
            VerifierConfig {
                samples_per_job: 4,
                threads: 1,
                state_dir: Some(self.journal.path().to_path_buf()),
                max_trace_bytes,
            },
        )
        .expect("validator")
    }

    async fn status(&self) -> JobStatus {
        let job = self.requester.job(self.id).await.expect("job");
        JobStatus::try_from(job.status).expect("status")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_daemon_checks_an_honest_finetune_job_and_the_worker_is_paid() {
    let world = World::new(Vec::new(), false).await;
    let validator = world.validator().await;
    for _ in 0..10 {
        assert_eq!(validator.tick().await.expect("round"), Vec::<u64>::new());
        if validator.stats().jobs_checked.get() == 1 {
            break;
        }
    }
    let stats = validator.stats();
    assert_eq!(stats.jobs_checked.get(), 1, "every sampled step reproduces");
    assert_eq!(stats.steps_checked.get(), 4);
    assert_eq!(stats.mismatches.get(), 0);
    assert_eq!(world.status().await, JobStatus::Submitted);

    let chain = provider(&world.devnet);
    chain
        .anvil_increase_time(u64::from(WINDOW) + 1)
        .await
        .expect("time");
    chain.anvil_mine(Some(1), None).await.expect("mine");
    for _ in 0..10 {
        world.w.tick().await.expect("worker round");
        if world.status().await == JobStatus::Finalized {
            break;
        }
    }
    assert_eq!(world.status().await, JobStatus::Finalized);
    validator.tick().await.expect("round");
    assert_eq!(validator.stats().disputes_won.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_daemon_catches_a_lying_finetune_worker_and_wins_the_game_by_itself() {
    // Step 2 of 4 (index 1) is a lie: the worker's states after it go on from the lie.
    let world = World::new(vec![1], false).await;
    let job = world.requester.job(world.id).await.expect("job");
    let stake_before = world
        .requester
        .stake_of(job.worker)
        .await
        .expect("stake")
        .staked;
    let mut validator = world.validator().await;
    let finder = validator.stats();
    let mut challenged = Vec::new();
    let mut restarts = 0;
    for _ in 0..40 {
        world.w.tick().await.expect("worker round");
        challenged.extend(validator.tick().await.expect("validator round"));
        let status = world.status().await;
        if status == JobStatus::Resolved {
            break;
        }
        // Killed in the middle of its game, it plays on from its journal.
        if status == JobStatus::Disputed && restarts < 2 {
            drop(validator);
            validator = world.validator().await;
            restarts += 1;
        }
    }
    assert_eq!(restarts, 2, "restarted in the middle of its game");
    assert_eq!(challenged, [world.id.get()]);
    assert_eq!(finder.mismatches.get(), 1, "only the lie differs");
    assert_eq!(world.status().await, JobStatus::Resolved);
    assert_eq!(validator.stats().disputes_won.get(), 1);

    // Decided by the referee's recomputation of one element of a revealed row, not the clock.
    let lm = world.requester.playing(GameKind::Lm);
    assert_eq!(
        lm.games_decided(world.id).await.expect("events"),
        [(true, false)]
    );
    assert!(lm.revealed_row(world.id).await.expect("row").is_some());

    // To the wei: the collateral leaves the worker's stake; the validator has its bond back
    // at once and the reward after the claim period; the requester its payment and the rest.
    let params = world.requester.parameters().await.expect("params");
    let collateral = U256::from(job.collateral);
    let reward = collateral * U256::from(job.challengerRewardBps) / U256::from(10_000u64);
    let bond = U256::from(params.challengeBond);
    let stake_after = world
        .requester
        .stake_of(job.worker)
        .await
        .expect("stake")
        .staked;
    assert_eq!(U256::from(stake_before - stake_after), collateral);
    assert_eq!(U256::from(validator.stats().wei_earned.get()), bond);
    drop(validator);
    past_claim_period(&world.devnet, &world.requester, world.id).await;
    let restarted = world.validator().await;
    restarted.tick().await.expect("validator round");
    assert_eq!(U256::from(restarted.stats().wei_earned.get()), reward);
    let validator_market = market(&world.devnet, 3).await;
    assert_eq!(
        validator_market
            .credit_of(validator_market.sender())
            .await
            .expect("credit"),
        bond + reward
    );
    assert_eq!(
        world
            .requester
            .credit_of(world.requester.sender())
            .await
            .expect("credit"),
        U256::from(PAYMENT) + collateral - reward
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_finetune_worker_that_serves_no_state_is_caught_from_what_it_publishes() {
    // It lies about step 2 (index 1) and answers no request for a state: the validator demands
    // each sampled state on-chain, re-executes from what the worker publishes (a fine-tuning
    // state rebuilt from its rows), and challenges the lie.
    let world = World::new(vec![1], true).await;
    let validator = world.validator().await;
    for _ in 0..200 {
        world.w.tick().await.expect("worker round");
        validator.tick().await.expect("validator round");
        if world.status().await == JobStatus::Resolved {
            break;
        }
    }
    assert_eq!(world.status().await, JobStatus::Resolved);
    let stats = validator.stats();
    assert!(stats.demands.get() >= 1, "it demanded states");
    assert_eq!(stats.demands_unmet.get(), 0, "every demand was met");
    assert_eq!(stats.mismatches.get(), 1);
    assert_eq!(stats.disputes_won.get(), 1);
    let lm = world.requester.playing(GameKind::Lm);
    assert_eq!(
        lm.games_decided(world.id).await.expect("events"),
        [(true, false)]
    );
}

/// A validator whose memory would not hold a challenged step's op trace leaves the job alone,
/// even a lying worker's: it could not play the game it would start, and would lose its bond
/// by the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_that_could_not_hold_the_op_trace_does_not_check_the_job() {
    let world = World::new(vec![1], false).await;
    let validator = world.validator_holding(1 << 10).await;
    for _ in 0..5 {
        assert_eq!(
            validator.tick().await.expect("round"),
            Vec::<u64>::new(),
            "no challenge"
        );
    }
    assert_eq!(
        validator.stats().steps_checked.get(),
        0,
        "no step re-executed"
    );
    assert_eq!(world.status().await, JobStatus::Submitted);
    // The same rounds are enough for a validator that can hold it to find the lie.
    drop(validator);
    let able = world.validator().await;
    let mut challenged = Vec::new();
    for _ in 0..5 {
        challenged.extend(able.tick().await.expect("round"));
    }
    assert_eq!(challenged, [world.id.get()]);
}
