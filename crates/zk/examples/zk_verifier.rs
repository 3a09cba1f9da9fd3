//! Makes a shape's devnet keys from the public devnet seed (the same on every machine), then
//! writes the Solidity verifier of their verifying key, and a vector (the verifying key's bytes,
//! a proof and its public inputs) that the Rust and Solidity tests check against it:
//!
//! cargo run -p pedals-zk --example zk_verifier -- 784,32,10:1 MnistMlpVerifier \
//!     contracts/src/zk crates/zk/tests/vectors
//!
//! The proof is bound to the first zk job that `contracts/test/zk/ZkJobMarket.t.sol` posts: job 1
//! of the market its fixture deploys (`FORGE_MARKET`) on chain 31337, submitted by 0x4242…42.
//! That test checks the address; if the fixture's deployments change, regenerate.

use ark_serialize::CanonicalSerialize;
use pedals_ml::exact::Mat;
use pedals_zk::{
    Binding, DEVNET_SEED, Shape, ZkModel, prove, setup_seeded,
    solidity::{Word, proof_words, scalar_word, verifier_source},
};

/// The address at which `contracts/test/utils/Fixture.sol` deploys the `JobMarket` in a forge
/// test.
const FORGE_MARKET: [u8; 20] = [
    0x2e, 0x23, 0x4d, 0xae, 0x75, 0xc7, 0x93, 0xf6, 0x7a, 0x35, 0x08, 0x9c, 0x9d, 0x99, 0x24, 0x5e,
    0x1c, 0x58, 0x47, 0x0b,
];

fn hex(bytes: &[u8]) -> String {
    format!(
        "0x{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn dec(w: &Word) -> String {
    // Every word is below the base field's modulus (coordinates, and inputs below the smaller
    // scalar field's): printed in decimal through the base field.
    use ark_ff::PrimeField;
    ark_bn254::Fq::from_be_bytes_mod_order(w).to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [spec, name, sol_dir, vector_dir] = args.as_slice() else {
        eprintln!("usage: zk_verifier <layers,…:batch> <ContractName> <solidity dir> <vector dir>");
        std::process::exit(2);
    };
    let (layers, batch) = spec.split_once(':').expect("layers:batch");
    let shape = Shape {
        layers: layers
            .split(',')
            .map(|n| n.parse().expect("a width"))
            .collect(),
        batch: batch.parse().expect("a batch size"),
    };
    let keys = setup_seeded(shape.clone(), DEVNET_SEED).expect("setup");
    let sol = std::path::Path::new(sol_dir).join(format!("{name}.sol"));
    std::fs::write(&sol, verifier_source(&keys.verifying, name, &shape)).expect("write");

    // A proof of a fixed model on a fixed batch.
    let depth = shape.layers.len() - 1;
    let model = ZkModel {
        layers: shape.layers.clone(),
        wq: (0..depth)
            .map(|l| {
                (0..shape.layers[l] * shape.layers[l + 1])
                    .map(|i| (i as i32 * 37 % 4097) - 2048)
                    .collect()
            })
            .collect(),
        b: (0..depth)
            .map(|l| {
                (0..shape.layers[l + 1])
                    .map(|i| i as i32 * 997 - 4000)
                    .collect()
            })
            .collect(),
    };
    let n0 = shape.layers[0];
    let x = Mat::new(
        shape.batch,
        n0,
        (0..shape.batch * n0)
            .map(|i| (i as i32 * 13 % 2049) - 1024)
            .collect(),
    );
    let binding = Binding {
        chain_id: 31337,
        market: FORGE_MARKET,
        job_id: 1,
        worker: [0x42; 20],
    };
    let (_, statement, proof) = prove(&keys, &model, &x, binding).expect("prove");
    let (a, b, c) = proof_words(&proof);
    let mut vk = Vec::new();
    keys.verifying.serialize_compressed(&mut vk).expect("vk");
    let words = |ws: &[Word]| ws.iter().map(dec).collect::<Vec<_>>();
    let vector = serde_json::json!({
        "shape": { "layers": shape.layers, "batch": shape.batch },
        "contract": name,
        "verifyingKey": hex(&vk),
        "binding": {
            "chainId": binding.chain_id,
            "market": hex(&binding.market),
            "jobId": binding.job_id,
            "worker": hex(&binding.worker),
        },
        "a": words(&a),
        "b": words(&b),
        "c": words(&c),
        "input": words(&statement.public_inputs().map(scalar_word)),
    });
    let out = std::path::Path::new(vector_dir).join(format!("{name}.json"));
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&vector).expect("json") + "\n",
    )
    .expect("write");
    eprintln!("wrote {} and {}", sol.display(), out.display());
}
