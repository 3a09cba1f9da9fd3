//! The committed verifier contracts and their vectors (written together by the `zk_verifier`
//! example from the devnet keys): each contract is what the generator writes for the verifying
//! key in its vector, and each vector's proof verifies in Rust (the Solidity tests check it on
//! the EVM).

use ark_serialize::CanonicalDeserialize;
use pedals_zk::{
    Shape,
    solidity::{Word, verifier_source, verify_words},
};

fn word(v: &serde_json::Value) -> Word {
    let x: alloy::primitives::U256 = v.as_str().expect("decimal").parse().expect("number");
    x.to_be_bytes()
}

fn words<const N: usize>(v: &serde_json::Value) -> [Word; N] {
    let list: Vec<Word> = v.as_array().expect("array").iter().map(word).collect();
    list.try_into().expect("length")
}

#[test]
fn each_committed_verifier_matches_its_key_and_its_proof_verifies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, dir) in [
        ("SmallMlpVerifier", "../../contracts/test/zk"),
        ("MnistMlpVerifier", "../../contracts/src/zk"),
    ] {
        let vector: serde_json::Value = serde_json::from_slice(
            &std::fs::read(root.join(format!("tests/vectors/{name}.json"))).expect("vector"),
        )
        .expect("json");
        let vk_hex = vector["verifyingKey"].as_str().expect("vk");
        let vk_bytes: Vec<u8> = (2..vk_hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&vk_hex[i..i + 2], 16).expect("hex"))
            .collect();
        let vk = ark_groth16::VerifyingKey::<ark_bn254::Bn254>::deserialize_compressed(
            vk_bytes.as_slice(),
        )
        .expect("a verifying key");
        let shape = Shape {
            layers: vector["shape"]["layers"]
                .as_array()
                .expect("layers")
                .iter()
                .map(|n| n.as_u64().expect("width") as usize)
                .collect(),
            batch: vector["shape"]["batch"].as_u64().expect("batch") as usize,
        };
        let committed = std::fs::read_to_string(root.join(dir).join(format!("{name}.sol")))
            .expect("committed verifier");
        assert_eq!(
            verifier_source(&vk, name, &shape),
            committed,
            "{name}.sol differs from its key: regenerate both with the zk_verifier example"
        );
        let (a, b, c) = (
            words::<2>(&vector["a"]),
            words::<4>(&vector["b"]),
            words::<2>(&vector["c"]),
        );
        let inputs: [Word; 3] = words(&vector["input"]);
        assert!(
            verify_words(&vk, &inputs, &a, &b, &c).expect("well formed"),
            "{name}"
        );
        let mut other = inputs;
        other[1][31] ^= 1;
        assert!(
            !verify_words(&vk, &other, &a, &b, &c).expect("well formed"),
            "{name}"
        );
    }
}
