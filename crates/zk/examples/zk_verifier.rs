//! Makes a shape's devnet keys from the public devnet seed (the same on every machine), then
//! writes the Solidity verifier of their verifying key, and a vector (the verifying key's bytes,
//! a proof and its public inputs) that the Rust and Solidity tests check against it:
//!
//! cargo run -p pedals-zk --example zk_verifier -- 784,32,10:1 MnistMlpVerifier \
//!     contracts/src/zk crates/zk/tests/vectors

use ark_serialize::CanonicalSerialize;
use pedals_ml::exact::Mat;
use pedals_zk::{
    DEVNET_SEED, Shape, ZkModel, prove, setup_seeded,
    solidity::{Word, proof_words, scalar_word, verifier_source},
};

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
    let (_, statement, proof) = prove(&keys, &model, &x, [0x42; 20]).expect("prove");
    let (a, b, c) = proof_words(&proof);
    let mut vk = Vec::new();
    keys.verifying.serialize_compressed(&mut vk).expect("vk");
    let words = |ws: &[Word]| ws.iter().map(dec).collect::<Vec<_>>();
    let vector = serde_json::json!({
        "shape": { "layers": shape.layers, "batch": shape.batch },
        "contract": name,
        "verifyingKey": format!("0x{}", vk.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        "worker": format!("0x{}", "42".repeat(20)),
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
