//! The generated Solidity verifier on a real anvil: it accepts what the Rust verifier accepts
//! and rejects what it rejects over a few hundred proofs and corruptions, and what it costs.

use alloy::{
    network::TransactionBuilder,
    node_bindings::Anvil,
    primitives::{Address, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    sol,
};
use pedals_ml::exact::Mat;
use pedals_zk::{
    Binding, DEVNET_SEED, Fr, Keys, Proof, Shape, Statement, ZkModel, prove, setup_seeded,
    solidity::{Word, proof_words, scalar_word},
    verify,
};

sol! {
    #[sol(rpc)]
    interface IVerifier {
        function verifyProof(uint256[2] a, uint256[4] b, uint256[2] c, uint256[3] input) external view returns (bool);
    }
}

fn binding(worker: u8) -> Binding {
    Binding {
        chain_id: 31337,
        market: [0xaa; 20],
        job_id: 1,
        worker: [worker; 20],
    }
}

fn shape() -> Shape {
    Shape {
        layers: vec![8, 6, 4],
        batch: 2,
    }
}

fn contracts() -> std::path::PathBuf {
    pedals_chain::Toolchain::locate()
        .expect("toolchain: run `make setup`")
        .contracts_dir()
        .to_path_buf()
}

fn u(w: &Word) -> U256 {
    U256::from_be_bytes(*w)
}

fn model(seed: u64) -> ZkModel {
    let mut x = seed | 1;
    let mut next = |m: i64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % (2 * m as u64 + 1)) as i64 - m
    };
    ZkModel {
        layers: vec![8, 6, 4],
        wq: vec![
            (0..48).map(|_| next(2048) as i32).collect(),
            (0..24).map(|_| next(2048) as i32).collect(),
        ],
        b: vec![
            (0..6).map(|_| next(1 << 18) as i32).collect(),
            (0..4).map(|_| next(1 << 18) as i32).collect(),
        ],
    }
}

async fn on_chain(v: &IVerifier::IVerifierInstance<DynProvider>, s: &Statement, p: &Proof) -> bool {
    on_chain_words(v, s.public_inputs().map(scalar_word), p).await
}

async fn on_chain_words(
    v: &IVerifier::IVerifierInstance<DynProvider>,
    inputs: [Word; 3],
    p: &Proof,
) -> bool {
    let (a, b, c) = proof_words(p);
    v.verifyProof(
        a.map(|w| u(&w)),
        b.map(|w| u(&w)),
        c.map(|w| u(&w)),
        inputs.map(|w| u(&w)),
    )
    .call()
    .await
    .expect("the call does not revert")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evm_and_rust_verifiers_agree_on_proofs_and_corruptions() {
    let anvil = pedals_chain::Toolchain::locate()
        .expect("toolchain")
        .binary("anvil")
        .expect("anvil");
    let cache = tempfile::tempdir().expect("tempdir");
    let anvil = Anvil::at(anvil)
        .arg("--cache-path")
        .arg(cache.path().display().to_string())
        .try_spawn()
        .expect("anvil starts");
    let provider = ProviderBuilder::new()
        .wallet(alloy::signers::local::PrivateKeySigner::from(
            anvil.first_key().clone(),
        ))
        .connect_http(anvil.endpoint_url())
        .erased();
    let artifact: serde_json::Value = serde_json::from_slice(
        &std::fs::read(contracts().join("out/SmallMlpVerifier.sol/SmallMlpVerifier.json"))
            .expect("compiled verifier: run `make contracts`"),
    )
    .expect("json");
    let code: Bytes = artifact["bytecode"]["object"]
        .as_str()
        .expect("bytecode")
        .parse()
        .expect("hex");
    let receipt = provider
        .send_transaction(TransactionRequest::default().with_deploy_code(code))
        .await
        .expect("deploy")
        .get_receipt()
        .await
        .expect("mined");
    let address: Address = receipt.contract_address.expect("a contract");
    let verifier = IVerifier::new(address, provider.clone());

    let keys: Keys = setup_seeded(shape(), DEVNET_SEED).expect("setup");
    let mut agreed = 0;
    for i in 0..40u64 {
        let m = model(i + 1);
        let x = Mat::new(
            2,
            8,
            (0..16)
                .map(|k| ((k as i64 * 97 + i as i64 * 131) % 2049 - 1024) as i32)
                .collect(),
        );
        let binding = Binding {
            chain_id: 31337,
            market: [0xaa; 20],
            job_id: i,
            worker: [i as u8; 20],
        };
        let (_, statement, proof) = prove(&keys, &m, &x, binding).expect("prove");

        // The honest proof, and five corruptions of the statement or of the proof that are
        // still valid encodings: both verifiers must give the same answer.
        let mut wrong_output = statement;
        wrong_output.commitments.outputs += Fr::from(1u64);
        // Another worker, or the same proof offered for another job.
        let mut wrong_worker = statement;
        wrong_worker.binding.worker[0] ^= 1;
        let mut wrong_job = statement;
        wrong_job.binding.job_id += 1;
        let mut swapped = proof.clone();
        std::mem::swap(&mut swapped.a, &mut swapped.c);
        let mut negated = proof.clone();
        negated.a = -negated.a;
        let cases = [
            (statement, proof.clone(), true),
            (wrong_output, proof.clone(), false),
            (wrong_worker, proof.clone(), false),
            (wrong_job, proof.clone(), false),
            (statement, swapped, false),
            (statement, negated, false),
        ];
        for (s, p, expected) in cases {
            let rust = verify(&keys.verifying, &s, &p).expect("verify");
            let evm = on_chain(&verifier, &s, &p).await;
            assert_eq!(rust, expected, "case {i}");
            assert_eq!(evm, rust, "case {i}: the EVM and Rust disagree");
            agreed += 1;
        }
        // Encodings Rust cannot even build: an input at or above the field's modulus, a point
        // off the curve. The contract says no instead of reverting.
        let mut inputs = statement.public_inputs().map(scalar_word);
        inputs[0] = U256::MAX.to_be_bytes();
        assert!(!on_chain_words(&verifier, inputs, &proof).await);
        let (a, b, c) = proof_words(&proof);
        let mut off = a;
        off[1][31] ^= 1;
        let ok = verifier
            .verifyProof(
                off.map(|w| u(&w)),
                b.map(|w| u(&w)),
                c.map(|w| u(&w)),
                statement.public_inputs().map(|f| u(&scalar_word(f))),
            )
            .call()
            .await
            .expect("no revert");
        assert!(!ok);
        agreed += 2;
    }
    assert_eq!(agreed, 320);

    // What verifying costs on-chain: a transaction calling verifyProof (21k of it is the
    // transaction itself, the rest the call, calldata included). Goal: 230k.
    let (_, statement, proof) =
        prove(&keys, &model(99), &Mat::new(2, 8, vec![5; 16]), binding(7)).expect("prove");
    let (a, b, c) = proof_words(&proof);
    let call = verifier.verifyProof(
        a.map(|w| u(&w)),
        b.map(|w| u(&w)),
        c.map(|w| u(&w)),
        statement.public_inputs().map(|f| u(&scalar_word(f))),
    );
    // Not eth_estimateGas: starved of gas the pairing precompile fails, verifyProof returns
    // false without reverting, and the estimate finds that cheap path. A transaction with room
    // to spare, checked to have verified, gives the real cost.
    assert!(call.clone().gas(500_000).call().await.expect("call"));
    let call_data = call.calldata().to_vec();
    let gas = call
        .gas(500_000)
        .send()
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("mined")
        .gas_used;
    let calldata: u64 = call_data.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum();
    let verification = gas - 21_000 - calldata;
    println!(
        "verifyProof: {gas} gas as a transaction, {verification} for the verification itself \
         (less the transaction's 21000 and {calldata} of calldata)"
    );
    assert!(gas > 181_000, "the four pairings alone cost 181k: {gas}");
    assert!(
        verification <= 230_000,
        "verification costs {verification} gas, over the 230k goal"
    );
}
