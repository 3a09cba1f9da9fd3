//! The chain behind running daemons is reset (a devnet started again on the same port, with
//! the same contract addresses): the worker and the validator report unhealthy at once, with
//! the reason, and act on the new chain no more, though a job there is theirs to take.

use pedals_node::Status;
use std::{sync::Arc, time::Duration};

use alloy::primitives::U256;
use pedals_chain::{Devnet, DevnetConfig, JobStatus, Market};
use pedals_p2p::MemorySource;
use pedals_store::Action;
use pedals_verifier::{Verifier, VerifierConfig};

use crate::worker::{
    PAYMENT, Setup, fast, hand_over, http_get, job, metrics_server, post, setup, worker_on,
};

const REPLACED: &str = "is not the one this node's records are of";

async fn get(addr: std::net::SocketAddr) -> (u16, String) {
    http_get(addr, "/health").await
}

#[tokio::test]
async fn daemons_on_a_reset_chain_say_so_and_act_no_more() {
    let s = setup().await;
    let port = s.devnet.endpoint().port().expect("a port");
    let worker_health = metrics_server(s.w()).await;
    let validator_net = crate::network::net(Arc::new(MemorySource::default()), Vec::new()).await;
    let validator = Verifier::new(
        Market::connect(
            s.devnet.endpoint(),
            s.devnet.signer(3).expect("account"),
            s.devnet.deployment().clone(),
        )
        .await
        .expect("validator"),
        validator_net.client.clone(),
        VerifierConfig::default(),
    )
    .expect("validator");
    let (validator_health, _v) = pedals_verifier::serve_metrics(
        "127.0.0.1:0".parse().expect("addr"),
        validator.stats(),
        Duration::from_secs(60),
        std::future::pending(),
    )
    .await
    .expect("metrics server");

    let rounds = |secs| tokio::time::sleep(Duration::from_secs(secs));
    tokio::join!(
        s.w().run(Duration::from_millis(100), rounds(1)),
        validator.run(Duration::from_millis(100), rounds(1))
    )
    .0
    .expect("worker");
    assert_eq!(get(worker_health).await, (200, "ok\n".into()));
    assert_eq!(get(validator_health).await, (200, "ok\n".into()));

    // The chain is started again: same port, same chain id, same addresses, another genesis.
    let Setup {
        devnet,
        worker,
        _dir,
        ..
    } = s;
    let before = devnet.deployment().clone();
    drop(devnet);
    let devnet = Devnet::start(DevnetConfig {
        port: Some(port),
        ..DevnetConfig::default()
    })
    .await
    .expect("the second devnet");
    assert_eq!(devnet.deployment().job_market, before.job_market);
    // A job there that the worker could take: staked, files in hand, a paying job posted.
    let requester = Market::connect(
        devnet.endpoint(),
        devnet.signer(2).expect("account"),
        devnet.deployment().clone(),
    )
    .await
    .expect("requester");
    let mut s = Setup {
        devnet,
        requester,
        worker,
        _dir,
    };
    let stake = s
        .requester
        .stake_to_claim(U256::from(PAYMENT))
        .await
        .expect("params");
    let as_worker = Market::connect(
        s.devnet.endpoint(),
        s.devnet.signer(1).expect("account"),
        s.devnet.deployment().clone(),
    )
    .await
    .expect("worker's account");
    as_worker.stake(stake).await.expect("stake");
    let job = job();
    hand_over(s.w(), &job);
    let id = post(&s, &job).await;

    tokio::join!(
        s.w().run(Duration::from_millis(100), rounds(3)),
        validator.run(Duration::from_millis(100), rounds(3))
    )
    .0
    .expect("worker");
    for (who, addr) in [("worker", worker_health), ("validator", validator_health)] {
        let (status, body) = get(addr).await;
        assert_eq!(status, 503, "{who}: {body}");
        assert!(body.contains(REPLACED), "{who}: {body}");
    }
    let metrics = s.w().metrics().render();
    assert!(
        metrics.contains("pedals_failed_rounds_total ")
            && !metrics.contains("pedals_failed_rounds_total 0\n"),
        "failures are counted: {metrics}"
    );
    assert!(
        s.w()
            .store()
            .intent(id, Action::Claim)
            .expect("read")
            .is_none(),
        "the worker signed nothing on the new chain"
    );
    let on_chain = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(
        JobStatus::try_from(on_chain.status),
        Ok(JobStatus::Posted),
        "the job is left alone"
    );

    // A worker started afresh for this chain takes it: the job was there to take.
    let dir = tempfile::tempdir().expect("tempdir");
    s.worker = Some(worker_on(&s.devnet, dir.path(), fast()).await);
    hand_over(s.w(), &job);
    let mut status = Ok(JobStatus::Posted);
    for _ in 0..30 {
        s.w().tick().await.expect("a round of the fresh worker");
        status = JobStatus::try_from(
            s.requester
                .job(pedals_core::JobId(id))
                .await
                .expect("job")
                .status,
        );
        if status != Ok(JobStatus::Posted) {
            break;
        }
    }
    assert_ne!(status, Ok(JobStatus::Posted), "the fresh worker claimed it");
}
