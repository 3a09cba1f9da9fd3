//! Zk jobs end to end on anvil: the requester posts the commitment to a model and an input
//! batch, the worker fetches nothing it cannot check, proves on its blocking pool and submits;
//! the market verifies the proof with the registered verifier and pays the worker in the same
//! transaction; the requester checks the logits against the proven output commitment. And
//! the bad paths: files that do not match the job commitment, a result blob that does not
//! match the proof's output commitment, a tampered proof.

use std::{sync::Arc, time::Duration};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, Bytes, U256, aliases::U40},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};
use pedals_chain::{JobMarket, JobRequest, JobStatus, Market};
use pedals_core::cid_of;
use pedals_ml::{
    Dataset, MlpConfig, MlpState, TrainConfig, Trainer,
    exact::{Mat, Reference},
};
use pedals_node::{PostTerms, Requester, ZkFiles};
use pedals_store::{Action, JobPhase, Store};

use crate::worker::{PAYMENT, Setup, balance, gas_of, now, provider, setup, tick_until};

const CIRCUIT: u8 = 2;

fn circuit() -> &'static pedals_zk::Circuit {
    pedals_zk::circuit(CIRCUIT).expect("the test circuit")
}

fn config() -> MlpConfig {
    MlpConfig {
        layers: circuit().layers.to_vec(),
        conv: None,
        batch: 1,
        lr_q12: 0,
        momentum_q12: 0,
    }
}

fn files(seed: u64) -> ZkFiles {
    let model = MlpState::init(&config(), seed)
        .expect("init")
        .to_bytes()
        .expect("bytes");
    let data = Dataset::synthetic(seed, circuit().batch, circuit().layers[0], 4).expect("data");
    ZkFiles {
        circuit: circuit(),
        model,
        dataset: data.to_canonical_bytes().expect("bytes"),
    }
}

/// Deploys the test circuit's verifier (compiled by forge from contracts/test/zk) and
/// registers it as circuit 2, as the market's admin (the devnet's deployer).
async fn register_test_circuit(s: &Setup) -> Address {
    let dir = pedals_chain::Toolchain::locate()
        .expect("toolchain")
        .contracts_dir()
        .to_path_buf();
    let artifact: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("out/SmallMlpVerifier.sol/SmallMlpVerifier.json"))
            .expect("compiled verifier: run `make contracts`"),
    )
    .expect("json");
    let code: Bytes = artifact["bytecode"]["object"]
        .as_str()
        .expect("bytecode")
        .parse()
        .expect("hex");
    let admin = ProviderBuilder::new()
        .wallet(s.devnet.signer(0).expect("admin"))
        .connect_http(s.devnet.endpoint())
        .erased();
    let verifier = admin
        .send_transaction(TransactionRequest::default().with_deploy_code(code))
        .await
        .expect("deploy")
        .get_receipt()
        .await
        .expect("mined")
        .contract_address
        .expect("a contract");
    let market = JobMarket::new(s.devnet.deployment().job_market, admin);
    market
        .registerZkCircuit(CIRCUIT, verifier)
        .send()
        .await
        .expect("register")
        .get_receipt()
        .await
        .expect("mined");
    verifier
}

async fn requester(s: &Setup, dir: &std::path::Path) -> Requester {
    let market = Market::connect(
        s.devnet.endpoint(),
        s.devnet.signer(2).expect("account"),
        s.devnet.deployment().clone(),
    )
    .await
    .expect("requester");
    Requester::new(market, Arc::new(Store::open(dir).expect("store")), None)
}

fn terms() -> PostTerms {
    PostTerms {
        payment: U256::from(PAYMENT),
        claim_within: 600,
        deliver_within: 3600,
        challenge_window: 0,
    }
}

async fn gas_used(s: &Setup, hash: alloy::primitives::B256) -> u64 {
    provider(&s.devnet)
        .get_transaction_receipt(hash)
        .await
        .expect("rpc")
        .expect("mined")
        .gas_used
}

/// The mined one among a transaction's broadcasts.
async fn mined<'a>(
    s: &Setup,
    hashes: &'a [alloy::primitives::B256],
) -> &'a alloy::primitives::B256 {
    for hash in hashes {
        if let Ok(Some(_)) = provider(&s.devnet).get_transaction_receipt(*hash).await {
            return hash;
        }
    }
    panic!("none of {hashes:?} is mined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zk_job_is_proven_and_paid_in_one_transaction_and_its_logits_check_out() {
    let s = setup().await;
    // The devnet registers the MNIST circuit itself; the test circuit is registered here.
    let market = s.requester.clone();
    assert_ne!(market.zk_verifier(1).await.expect("read"), Address::ZERO);
    register_test_circuit(&s).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let requester = requester(&s, dir.path()).await;
    let files = files(11);
    let (id, posted) = requester.post_zk(&files, &terms()).await.expect("post");
    let job = market.job(pedals_core::JobId(id)).await.expect("job");
    assert!(pedals_core::Verification::Zk.is(job.verification));
    assert_eq!(job.zkCircuit, CIRCUIT);
    assert_eq!(job.specHash, files.commitment().expect("commitment"));

    // The worker has the files (the network tests cover fetching); it proves and submits.
    s.w().store().put_blob(&files.model).expect("model");
    s.w().store().put_blob(&files.dataset).expect("dataset");
    let before = balance(&s, s.w().address()).await;
    let phase = tick_until(&s, id, |p| {
        matches!(p, JobPhase::Finalized | JobPhase::Abandoned { .. })
    })
    .await;
    assert_eq!(phase, JobPhase::Finalized);
    let job = market.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(JobStatus::try_from(job.status), Ok(JobStatus::Finalized));
    assert_eq!(
        job.worker,
        Address::ZERO,
        "a zk job's prover is in its event"
    );
    let accepted = market
        .zk_result(pedals_core::JobId(id))
        .await
        .expect("read")
        .expect("accepted");
    assert_eq!(accepted.worker, s.w().address());
    let store = s.w().store();
    assert!(
        store.intent(id, Action::Claim).expect("read").is_none(),
        "no claim"
    );
    let submit = store
        .intent(id, Action::Submit)
        .expect("read")
        .expect("submitted");
    assert!(
        store.intent(id, Action::Withdraw).expect("read").is_none(),
        "nothing to withdraw"
    );

    // Paid in the submission itself: the payment less the fee, less the gas, to the wei.
    let submit_wei = gas_of(&s, &submit.hashes).await;
    let fee = U256::from(PAYMENT) * U256::from(250u64) / U256::from(10_000u64);
    let after = balance(&s, s.w().address()).await;
    assert_eq!(after + submit_wei, before + U256::from(PAYMENT) - fee);
    assert_eq!(
        market.credit_of(s.w().address()).await.expect("credit"),
        U256::ZERO
    );

    // The whole zk job on-chain: the post and the submission, as mined.
    let post_gas = gas_used(&s, posted.hash).await;
    let submit_gas = gas_used(&s, *mined(&s, &submit.hashes).await).await;
    println!(
        "zk job gas: post {post_gas}, submit {submit_gas}, total {}",
        post_gas + submit_gas
    );
    assert!(
        post_gas + submit_gas <= 400_000,
        "a zk job costs {} gas, over the 400k goal",
        post_gas + submit_gas
    );

    // The requester gets the logits (handed over here; by CID over the network in a node) and
    // checks them against the output commitment the proof was verified with. They are the
    // exact engine's logits, bit for bit.
    let record = store.job(id).expect("read").expect("record");
    let result_cid =
        pedals_core::parse_cid(record.result_cid.as_deref().expect("a result")).expect("cid");
    let blob = store.blob(&result_cid).expect("read").expect("stored");
    put_in(&requester, &blob);
    let result = requester
        .zk_result(id, Duration::from_secs(1))
        .await
        .expect("the logits match the proof");
    let data = Dataset::from_canonical_bytes(&files.dataset).expect("data");
    let state = MlpState::from_bytes(&config(), &files.model).expect("state");
    let trainer = Trainer::new(
        Reference,
        TrainConfig {
            model: config(),
            seed: 0,
            steps: 1,
            checkpoint_every: 1,
        },
    )
    .expect("trainer");
    let expected = trainer.logits(&state, &Mat::new(data.len(), data.features, data.inputs));
    assert_eq!(result.logits, expected);
    assert_eq!(result.accepted.worker, s.w().address());
}

fn put_in(requester: &Requester, blob: &[u8]) {
    requester.store().put_blob(blob).expect("stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_files_that_miss_the_commitment_and_a_lying_result_are_caught() {
    let s = setup().await;
    register_test_circuit(&s).await;
    let market = s.requester.clone();

    // A job whose posted model is not the committed one: the worker proves nothing.
    let honest = files(21);
    let other = files(22);
    let t = now(&s.devnet).await;
    let request = JobRequest {
        specHash: other.commitment().expect("commitment"),
        modelCid: Bytes::from(cid_of(&honest.model).to_bytes()),
        datasetCid: Bytes::from(cid_of(&honest.dataset).to_bytes()),
        steps: 2,
        verification: pedals_core::Verification::Zk.to_u8(),
        claimDeadline: U40::from(t + 600),
        deliveryDeadline: U40::from(t + 3600),
        challengeWindow: 0,
    };
    let (id, _) = market
        .post_zk_job(request, CIRCUIT, U256::from(PAYMENT))
        .await
        .expect("post");
    let id = id.get();
    s.w().store().put_blob(&honest.model).expect("model");
    s.w().store().put_blob(&honest.dataset).expect("dataset");
    let phase = tick_until(&s, id, |p| matches!(p, JobPhase::Abandoned { .. })).await;
    let JobPhase::Abandoned { reason } = phase else {
        unreachable!()
    };
    assert!(reason.contains("job commitment"), "{reason}");
    assert!(
        s.w()
            .store()
            .intent(id, Action::Submit)
            .expect("read")
            .is_none()
    );

    // A worker that proves honestly but posts the CID of other logits: the market cannot see
    // it (the logits travel off-chain), the requester's check does.
    let dir = tempfile::tempdir().expect("tempdir");
    let requester = requester(&s, dir.path()).await;
    let (id, _) = requester.post_zk(&honest, &terms()).await.expect("post");
    let keys = pedals_zk::setup_seeded(circuit().shape(), pedals_zk::DEVNET_SEED).expect("keys");
    let data = Dataset::from_canonical_bytes(&honest.dataset).expect("data");
    let job = pedals_zk::ZkJob::from_files(circuit(), &honest.model, &data).expect("job");
    let liar = s.devnet.signer(3).expect("account");
    let binding = pedals_zk::Binding {
        chain_id: s.devnet.deployment().chain_id,
        market: s.devnet.deployment().job_market.into_array(),
        job_id: id,
        worker: liar.address().into_array(),
    };
    let (_, statement, proof) =
        pedals_zk::prove(&keys, &job.model, &job.inputs, binding).expect("prove");
    let garbage = vec![0u8; 2 * 4 * 4];
    put_in(&requester, &garbage);
    let (a, b, c) = pedals_zk::solidity::proof_words(&proof);
    let mut words = [U256::ZERO; 8];
    for (w, v) in words.iter_mut().zip(a.iter().chain(&b).chain(&c)) {
        *w = U256::from_be_bytes(*v);
    }
    let c_out = alloy::primitives::B256::from(pedals_zk::solidity::scalar_word(
        statement.commitments.outputs,
    ));
    let liar_market = Market::connect(
        s.devnet.endpoint(),
        liar.clone(),
        s.devnet.deployment().clone(),
    )
    .await
    .expect("market");
    // A tampered proof first: refused with InvalidProof, nothing paid.
    let mut tampered = words;
    tampered[0] = words[6];
    tampered[6] = words[0];
    let err = liar_market
        .job_market()
        .submitZkResult(
            U256::from(id),
            c_out,
            Bytes::from(cid_of(&garbage).to_bytes()),
            tampered,
        )
        .call()
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err.as_decoded_interface_error::<JobMarket::JobMarketErrors>(),
            Some(JobMarket::JobMarketErrors::InvalidProof(_))
        ),
        "{err}"
    );
    assert_eq!(
        JobStatus::try_from(
            market
                .job(pedals_core::JobId(id))
                .await
                .expect("job")
                .status
        ),
        Ok(JobStatus::Posted)
    );
    // The real proof with the wrong blob: accepted on-chain, caught by the requester.
    let call = JobMarket::submitZkResultCall {
        jobId: U256::from(id),
        outputCommitment: c_out,
        resultCid: Bytes::from(cid_of(&garbage).to_bytes()),
        proof: words,
    };
    liar_market
        .provider()
        .send_transaction(
            TransactionRequest::default()
                .with_to(s.devnet.deployment().job_market)
                .with_input(call.abi_encode()),
        )
        .await
        .expect("sent")
        .get_receipt()
        .await
        .expect("mined");
    let err = requester
        .zk_result(id, Duration::from_secs(1))
        .await
        .expect_err("the blob is not the proven output");
    assert!(err.to_string().contains("output commitment"), "{err}");
}
