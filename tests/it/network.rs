//! The worker on a network: it fetches a job's inputs from the requester's node over libp2p,
//! verified against their CIDs, and serves its result and its checkpoints (with openings
//! against the trace root it posted) to whoever checks its work.

use std::sync::Arc;

use pedals_node::Status;

use alloy::primitives::U256;
use pedals_core::{cid_from_bytes, cid_of};
use pedals_ml::{Dataset, JobSpec, MlpState, Trainer, exact::Reference};
use pedals_node::{JobFiles, PostTerms, Requester, StoreSource};
use pedals_p2p::{
    CheckpointOpening, ContentSource, Keypair, MemorySource, NetConfig, Network, TraceClaim,
};
use pedals_store::JobPhase;

use crate::worker::{Job, STEPS, Setup, declined, job, post, setup, tick_until};

pub(crate) async fn net(
    source: Arc<dyn ContentSource>,
    bootstrap: Vec<pedals_p2p::Multiaddr>,
) -> Network {
    pedals_p2p::start(
        Keypair::generate_ed25519(),
        NetConfig {
            bootstrap,
            ..NetConfig::default()
        },
        source,
    )
    .await
    .expect("network starts")
}

/// A requester's node serving `job`'s files from `source` and providing their CIDs.
pub(crate) async fn requester_net(source: Arc<dyn ContentSource>, job: &Job) -> Network {
    let requester = net(source, Vec::new()).await;
    for bytes in [&job.spec.to_canonical_bytes(), &job.dataset, &job.model] {
        requester
            .client
            .provide(cid_of(bytes))
            .await
            .expect("provide");
    }
    requester
}

/// The requester's node, serving the job's files from `source`, and the worker's, serving
/// from its store and bootstrapped to the requester's; the worker is rebuilt to use it.
async fn connect(s: &mut Setup, source: Arc<dyn ContentSource>, job: &Job) -> (Network, Network) {
    let requester = requester_net(source, job).await;
    let addrs = requester.client.listen_addrs().await.expect("addrs");
    let worker = s.worker.take().expect("worker");
    let worker_net = net(Arc::new(StoreSource::new(worker.store().clone(), 2)), addrs).await;
    s.worker = Some(worker.with_network(worker_net.client.clone()));
    (requester, worker_net)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_come_from_the_requesters_node_and_checkpoints_go_to_validators() {
    let mut s = setup().await;
    let job = job();
    let files = Arc::new(MemorySource::default());
    for bytes in [
        job.spec.to_canonical_bytes(),
        job.dataset.clone(),
        job.model.clone(),
    ] {
        files.insert_blob(bytes);
    }
    let (mut requester, worker_net) = connect(&mut s, files, &job).await;
    let id = post(&s, &job).await;
    tick_until(&s, id, |p| *p == JobPhase::Submitted).await;
    // The worker announced its capacity and, signed with its account key, its progress on the
    // job; the requester's node heard both (gossip already checked each progress signature).
    let (heard, progress) = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let (mut capacity, mut progress) = (None, Vec::new());
        loop {
            while let Ok(pedals_p2p::NetEvent::Announced { announcement, .. }) =
                requester.events.try_recv()
            {
                match announcement {
                    pedals_p2p::Announcement::Capacity(c) => capacity = Some(c),
                    pedals_p2p::Announcement::Progress(p) => progress.push(p),
                    pedals_p2p::Announcement::Job(_) | pedals_p2p::Announcement::Span(_) => {}
                }
            }
            if let Some(c) = &capacity
                && progress.iter().any(|p| p.steps_done == STEPS)
            {
                break (c.clone(), progress);
            }
            s.w().tick().await.expect("tick");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a capacity announcement and the final progress");
    for p in &progress {
        assert_eq!((p.job_id, p.steps, p.worker), (id, STEPS, s.w().address()));
        assert_eq!(p.signer(), Some(s.w().address()));
    }
    assert_eq!(heard.worker, s.w().address());
    assert!(
        heard.backends[0].starts_with("cpu-"),
        "{:?}",
        heard.backends
    );
    let served = requester.client.stats().snapshot();
    assert_eq!(
        (served.chunks_served, served.blobs_served),
        (3, 0),
        "spec, dataset and model came from the requester's node, each in one verified chunk"
    );
    assert_eq!(
        served.bytes_served,
        (job.spec.to_canonical_bytes().len() + job.dataset.len() + job.model.len()) as u64
    );

    // The requester downloads the result by the CID the worker committed on-chain.
    let submitted = s
        .requester
        .submitted_result(pedals_core::JobId(id))
        .await
        .expect("rpc")
        .expect("submitted");
    let result_cid = cid_from_bytes(&submitted.resultCid).expect("cid");
    let (result, from) = requester
        .client
        .fetch_blob(result_cid)
        .await
        .expect("the worker serves its result");
    assert_eq!(from, worker_net.client.peer_id());
    assert_eq!(
        pedals_core::state_hash_of_bytes(&result).expect("state"),
        submitted.finalStateHash
    );

    // A validator fetches the state after step 7 (the worker stored every 5th, so it replays
    // two steps to serve it), checks it against the posted trace root, re-executes step 7 on
    // its own and lands on the worker's h_8.
    let validator = net(
        Arc::new(MemorySource::default()),
        worker_net.client.listen_addrs().await.expect("addrs"),
    )
    .await;
    let claim = TraceClaim {
        root: submitted.traceRoot,
        steps: STEPS,
    };
    let checkpoint = validator
        .client
        .fetch_checkpoint(worker_net.client.peer_id(), id, 7, claim)
        .await
        .expect("a verified checkpoint");
    let trainer = Trainer::new(Reference, job.spec.train.clone()).expect("trainer");
    let data = Dataset::from_canonical_bytes(&job.dataset).expect("data");
    let state = MlpState::from_bytes(&job.spec.train.model, &checkpoint.state).expect("state");
    let next = trainer.replay_step(&data, &state, 7).expect("replay");
    assert_eq!(Some(next.state_hash().expect("hash")), checkpoint.next_hash);
    // Past the end of the trace there is nothing to serve.
    let err = validator
        .client
        .fetch_checkpoint(worker_net.client.peer_id(), id, STEPS + 1, claim)
        .await
        .expect_err("no such step");
    assert!(
        matches!(err, pedals_p2p::P2pError::NotFound { .. }),
        "{err}"
    );

    // The worker's metrics count what it served.
    s.w().tick().await.expect("tick");
    let page = s.w().metrics().render();
    assert!(
        page.contains("pedals_p2p_checkpoints_served_total 1"),
        "{page}"
    );
    assert!(page.contains("pedals_p2p_blobs_served_total 1"), "{page}");
}

/// A requester node that serves the wrong bytes for the dataset.
struct WrongDataset {
    honest: MemorySource,
    dataset: pedals_core::Cid,
}

impl ContentSource for WrongDataset {
    fn blob(&self, cid: &pedals_core::Cid) -> Result<Option<Vec<u8>>, String> {
        if *cid == self.dataset {
            return Ok(Some(b"not the dataset".to_vec()));
        }
        self.honest.blob(cid)
    }

    fn checkpoint(&self, _: u64, _: u64) -> Result<Option<CheckpointOpening>, String> {
        Ok(None)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_served_with_the_wrong_bytes_is_never_stored_or_claimed() {
    let mut s = setup().await;
    let job = job();
    let honest = MemorySource::default();
    honest.insert_blob(job.spec.to_canonical_bytes());
    honest.insert_blob(job.model.clone());
    let source = Arc::new(WrongDataset {
        honest,
        dataset: cid_of(&job.dataset),
    });
    let (_requester, worker_net) = connect(&mut s, source, &job).await;
    let id = post(&s, &job).await;
    let reason = declined(&s, id).await;
    assert!(reason.contains("do not match"), "{reason}");
    assert!(!s.w().store().has_blob(&cid_of(&job.dataset)).expect("read"));
    assert_eq!(worker_net.client.stats().snapshot().bad_content, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_inference_job_runs_end_to_end_and_its_chunks_can_be_checked() {
    let mut s = setup().await;
    // The model to run: a short training run; the data: 200 fresh samples.
    let trained = job();
    let data = Dataset::from_canonical_bytes(&trained.dataset).expect("data");
    let init = MlpState::from_bytes(&trained.spec.train.model, &trained.model).expect("init");
    let model = Trainer::new(Reference, trained.spec.train.clone())
        .expect("trainer")
        .train(&data, &init)
        .expect("train")
        .final_state;
    let samples = Dataset::synthetic(11, 200, 16, 4).expect("data");
    let files = JobFiles {
        spec: JobSpec::inference(
            trained.spec.train.model.clone(),
            200,
            32,
            &cid_of(&samples.to_canonical_bytes().expect("bytes")),
            &cid_of(&model.to_bytes().expect("bytes")),
        )
        .expect("spec"),
        dataset: samples.to_canonical_bytes().expect("bytes"),
        model: model.to_bytes().expect("bytes"),
    };
    assert_eq!(files.spec.train.steps, 7, "200 samples in chunks of 32");

    // The requester posts through its own node; the worker joins through it.
    let requester_dir = tempfile::tempdir().expect("tempdir");
    let requester_store = Arc::new(pedals_store::Store::open(requester_dir.path()).expect("store"));
    let requester_net = net(
        Arc::new(StoreSource::new(requester_store.clone(), 1)),
        Vec::new(),
    )
    .await;
    let requester = Requester::new(
        s.requester.clone(),
        requester_store,
        Some(requester_net.client.clone()),
    );
    let worker = s.worker.take().expect("worker");
    let worker_net = net(
        Arc::new(StoreSource::new(worker.store().clone(), 2)),
        requester_net.client.listen_addrs().await.expect("addrs"),
    )
    .await;
    s.worker = Some(worker.with_network(worker_net.client.clone()));
    let (id, _) = requester
        .post(
            &files,
            &PostTerms {
                payment: U256::from(crate::worker::PAYMENT),
                claim_within: 600,
                deliver_within: 3600,
                challenge_window: crate::worker::WINDOW,
            },
        )
        .await
        .expect("posted");
    tick_until(&s, id, |p| *p == JobPhase::Submitted).await;

    // The requester's copy of the outputs rebuilds the posted trace, and they are the model's.
    let result = requester
        .result(id, std::time::Duration::from_secs(30))
        .await
        .expect("result");
    let expected = Trainer::new(Reference, trained.spec.train.clone())
        .expect("trainer")
        .accuracy(&model, &samples)
        .expect("accuracy");
    assert_eq!(result.accuracy(&samples).expect("scored"), expected);

    // A validator samples chunk 2: the worker's committed outputs (h_3), opened against the
    // trace root, equal its own recomputation.
    let validator = net(
        Arc::new(MemorySource::default()),
        worker_net.client.listen_addrs().await.expect("addrs"),
    )
    .await;
    let claim = TraceClaim {
        root: result.submitted.traceRoot,
        steps: 7,
    };
    let committed = validator
        .client
        .fetch_checkpoint(worker_net.client.peer_id(), id, 3, claim)
        .await
        .expect("verified opening");
    let trainer = Trainer::new(Reference, files.spec.train.clone()).expect("trainer");
    let recomputed =
        pedals_ml::inference::run_chunk(&trainer, &samples, &model, 32, 2).expect("chunk");
    assert_eq!(committed.state, recomputed);
}

/// An HTTP server that answers `/ipfs/<cid>` with the bytes it holds, as an IPFS gateway
/// answers for raw blocks.
async fn gateway(files: Vec<(pedals_core::Cid, Vec<u8>)>) -> alloy::transports::http::reqwest::Url {
    use axum::{extract::Path, http::StatusCode, routing::get};
    let files: std::collections::HashMap<String, Vec<u8>> =
        files.into_iter().map(|(c, b)| (c.to_string(), b)).collect();
    let app = axum::Router::new().route(
        "/ipfs/{cid}",
        get(move |Path(cid): Path<String>| {
            let found = files.get(&cid).cloned();
            async move { found.ok_or(StatusCode::NOT_FOUND) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}").parse().expect("url")
}

/// Replaces the setup's worker (same account, already staked) with one that has no libp2p
/// node but fetches from `gateway`.
async fn worker_with_gateway(
    s: &mut Setup,
    gateway: alloy::transports::http::reqwest::Url,
    dir: &std::path::Path,
) {
    s.worker = None;
    let worker = pedals_node::Worker::new(
        crate::worker::provider(&s.devnet),
        s.devnet.signer(1).expect("account"),
        Arc::new(pedals_store::Store::open(dir).expect("store")),
        s.devnet.deployment().clone(),
        pedals_node::WorkerConfig {
            gateway: Some(gateway),
            threads: 2,
            send: crate::worker::fast(),
            ..pedals_node::WorkerConfig::default()
        },
    )
    .await
    .expect("worker");
    s.worker = Some(worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_ipfs_gateway_supplies_the_files_and_is_checked_like_a_peer() {
    let mut s = setup().await;
    let job = job();
    let spec = job.spec.to_canonical_bytes();
    let honest = gateway(vec![
        (cid_of(&spec), spec.clone()),
        (cid_of(&job.dataset), job.dataset.clone()),
        (cid_of(&job.model), job.model.clone()),
    ])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    worker_with_gateway(&mut s, honest, dir.path()).await;
    let id = post(&s, &job).await;
    tick_until(&s, id, |p| *p == JobPhase::Submitted).await;

    // A gateway that serves other bytes under the dataset's CID is caught before the claim.
    let lying = gateway(vec![
        (cid_of(&spec), spec),
        (cid_of(&job.dataset), b"something else".to_vec()),
        (cid_of(&job.model), job.model.clone()),
    ])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    worker_with_gateway(&mut s, lying, dir.path()).await;
    let id = post(&s, &job).await;
    let reason = declined(&s, id).await;
    assert!(reason.contains("do not match"), "{reason}");
    assert!(!s.w().store().has_blob(&cid_of(&job.dataset)).expect("read"));
}
