//! Measures the zk mode on this machine: constraints, setup, proving and verification time,
//! proof and key sizes, peak memory, for MLP 784-32-10 at batch 1 and 8 (or the shapes given).
//!
//! cargo run --release -p pedals-zk --example zk_bench [-- 784,32,10:1 784,32,10:8]
//!
//! Prints one JSON object per shape.

use std::time::Instant;

use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem, SynthesisMode};
use pedals_ml::exact::Mat;
use pedals_zk::{Fr, InferenceCircuit, Shape, ZkModel, prove, setup, verify};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shapes: Vec<String> = if args.is_empty() {
        vec!["784,32,10:1".into(), "784,32,10:8".into()]
    } else {
        args
    };
    for spec in shapes {
        let (layers, batch) = spec.split_once(':').expect("layers:batch");
        let layers: Vec<usize> = layers
            .split(',')
            .map(|n| n.parse().expect("width"))
            .collect();
        let batch: usize = batch.parse().expect("batch");
        let shape = Shape {
            layers: layers.clone(),
            batch,
        };
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_mode(SynthesisMode::Setup);
        InferenceCircuit::shape_only(shape.clone())
            .generate_constraints(cs.clone())
            .expect("synthesizes");
        let constraints = cs.num_constraints();

        let t = Instant::now();
        let keys = setup(shape).expect("setup");
        let setup_s = t.elapsed().as_secs_f64();
        let key_bytes = keys.to_bytes().expect("bytes").len();

        let depth = layers.len() - 1;
        let model = ZkModel {
            layers: layers.clone(),
            wq: (0..depth)
                .map(|l| {
                    (0..layers[l] * layers[l + 1])
                        .map(|i| (i as i32 * 37 % 257) - 128)
                        .collect()
                })
                .collect(),
            b: (0..depth)
                .map(|l| (0..layers[l + 1]).map(|i| i as i32 * 1000 - 5000).collect())
                .collect(),
        };
        let x = Mat::new(
            batch,
            layers[0],
            (0..batch * layers[0])
                .map(|i| i as i32 * 13 % 256)
                .collect(),
        );
        // The first proof also builds the shape's constraint matrices, which the keys keep.
        let binding = pedals_zk::Binding {
            chain_id: 31337,
            market: [0x11; 20],
            job_id: 1,
            worker: [0x42; 20],
        };
        let t = Instant::now();
        let _ = prove(&keys, &model, &x, binding).expect("prove");
        let first_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (_, statement, proof) = prove(&keys, &model, &x, binding).expect("prove");
        let prove_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        assert!(verify(&keys.verifying, &statement, &proof).expect("verify"));
        let verify_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut proof_bytes = Vec::new();
        ark_serialize::CanonicalSerialize::serialize_compressed(&proof, &mut proof_bytes)
            .expect("proof");
        println!(
            "{{\"layers\":{layers:?},\"batch\":{batch},\"constraints\":{constraints},\"setupS\":{setup_s:.2},\"firstProveS\":{first_s:.2},\"proveS\":{prove_s:.2},\"verifyMs\":{verify_ms:.2},\"proofBytes\":{},\"keyBytes\":{key_bytes},\"threads\":{},\"peakRssMiB\":{:.0}}}",
            proof_bytes.len(),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            peak_rss_mib()
        );
    }
}
