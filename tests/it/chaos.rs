//! Chaos: a lying worker and the honest validator daemon play a whole dispute while both are
//! killed again and again at arbitrary points of their rounds (a round's future dropped at
//! whatever await it had reached, which is where a SIGKILL leaves a daemon's chain and store,
//! and a new daemon started on the same data folder). The validator still wins, the worker's
//! defence plays on until it loses, and neither sends a transaction that reverts: no move, no
//! commitment and no reveal is sent twice.

use std::{sync::Arc, time::Duration};

use alloy::primitives::U256;
use pedals_chain::{Devnet, JobStatus, Phase};
use pedals_node::StoreSource;
use pedals_p2p::MemorySource;
use pedals_store::Store;
use pedals_verifier::{Verifier, VerifierConfig};

use crate::{
    dispute::{market, submitted},
    puppet::worker_with,
    worker::{STEPS, job},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_and_worker_killed_at_every_turn_of_a_dispute_finish_it_sending_nothing_twice() {
    let devnet = Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let requester = market(&devnet, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The worker falsifies every step from step 4 on and serves what it claimed.
    let lies: Vec<u64> = (4..STEPS).collect();
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let worker_net = crate::network::net(
        Arc::new(StoreSource::new(store.clone(), 2).falsifying(lies.iter().copied())),
        Vec::new(),
    )
    .await;
    let start_worker = || {
        worker_with(
            &devnet,
            store.clone(),
            worker_net.client.clone(),
            lies.clone(),
        )
    };
    let mut w = start_worker().await;
    let job = job();
    let id = submitted(&devnet, &requester, &w, &job).await;

    let validator_net = crate::network::net(
        Arc::new(MemorySource::default()),
        worker_net.client.listen_addrs().await.expect("addrs"),
    )
    .await;
    let journal = tempfile::tempdir().expect("journal");
    let start_validator = || {
        let net = validator_net.client.clone();
        let state_dir = journal.path().to_path_buf();
        let devnet = &devnet;
        async move {
            Verifier::new(
                market(devnet, 3).await,
                net,
                VerifierConfig {
                    // 16 of 20 steps are lies: one of 12 samples is one for certain.
                    samples_per_job: 12,
                    threads: 1,
                    state_dir: Some(state_dir),
                    ..VerifierConfig::default()
                },
            )
            .expect("validator")
        }
    };
    let mut validator = start_validator().await;
    let params = requester.parameters().await.expect("params");
    validator
        .ensure_stake(U256::from(params.minValidatorStake))
        .await
        .expect("stake");
    let validator_account = validator.address();

    // Each round, each daemon is given a slice of time from a millisecond up, and killed and
    // restarted from its data folder whenever its round does not finish in it; once a slice
    // is long enough, or none was, its round runs whole, so the game moves on however slow the
    // machine is.
    let slices = [1u64, 4, 12, 30, 75, 180].map(Duration::from_millis);
    let (mut validator_kills, mut worker_kills) = (0usize, 0usize);
    let mut phases = std::collections::BTreeSet::new();
    let mut resolved = false;
    let mut last = String::new();
    for _ in 0..100 {
        let mut finished = false;
        for slice in slices {
            if tokio::time::timeout(slice, validator.tick()).await.is_ok() {
                finished = true;
                break;
            }
            drop(validator);
            validator = start_validator().await;
            validator_kills += 1;
        }
        if !finished {
            validator.tick().await.expect("validator round");
        }
        let mut finished = false;
        for slice in slices {
            if tokio::time::timeout(slice, w.tick()).await.is_ok() {
                finished = true;
                break;
            }
            drop(w);
            w = start_worker().await;
            worker_kills += 1;
        }
        if !finished {
            w.tick().await.expect("worker round");
        }
        phases.insert(format!(
            "{:?}",
            requester.game_of(id).await.expect("game").phase
        ));
        let status = JobStatus::try_from(requester.job(id).await.expect("job").status);
        last = format!("{status:?}, game {phases:?}");
        if status == Ok(JobStatus::Resolved) {
            resolved = true;
            break;
        }
    }
    eprintln!(
        "validator killed {validator_kills} times, worker {worker_kills} times; phases seen: {phases:?}"
    );
    assert!(
        resolved,
        "the lying worker was convicted (last seen: {last})"
    );
    assert_eq!(
        requester.game_of(id).await.expect("game").phase,
        Phase::None,
        "the game is over"
    );
    assert!(validator_kills >= 3 && worker_kills >= 3, "both died often");
    assert!(
        phases.len() >= 3,
        "kills landed in several phases: {phases:?}"
    );
    for (who, account) in [("validator", validator_account), ("worker", w.address())] {
        let reverted: Vec<_> = devnet
            .sent_by(account)
            .await
            .expect("transactions")
            .into_iter()
            .filter(|tx| !tx.success)
            .collect();
        assert!(
            reverted.is_empty(),
            "the {who} sent something twice (reverted: {reverted:?})"
        );
    }
}
