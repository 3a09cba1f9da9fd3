//! pedals-zk against the engine it proves, and Groth16 end to end.

use pedals_ml::{
    MlpConfig, MlpState, TrainConfig, Trainer,
    exact::{CpuOps, Mat, Reference},
};
use pedals_zk::{Keys, Shape, ZkModel, commit_inputs, forward, prove, setup, verify};
use proptest::prelude::*;

fn config(layers: Vec<usize>) -> TrainConfig {
    TrainConfig {
        model: MlpConfig {
            layers,
            batch: 4,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 1,
        steps: 1,
        checkpoint_every: 1,
    }
}

/// A state with master weights over the whole ±2^15 range and biases over ±2^18, so
/// quantization clamps and requantization saturates.
fn state(layers: &[usize], values: &[i32]) -> MlpState {
    let mut it = values.iter().cycle();
    let depth = layers.len() - 1;
    let mat = |rows: usize, cols: usize, m: i32, it: &mut dyn Iterator<Item = &i32>| {
        Mat::new(
            rows,
            cols,
            (0..rows * cols)
                .map(|_| it.next().expect("cycle") % (m + 1))
                .collect(),
        )
    };
    let weights = (0..depth)
        .map(|l| mat(layers[l], layers[l + 1], 1 << 15, &mut it))
        .collect::<Vec<_>>();
    let biases = (0..depth)
        .map(|l| mat(1, layers[l + 1], 1 << 18, &mut it))
        .collect::<Vec<_>>();
    MlpState {
        weight_velocity: weights
            .iter()
            .map(|w| Mat::new(w.rows, w.cols, vec![0; w.data.len()]))
            .collect(),
        bias_velocity: biases
            .iter()
            .map(|b| Mat::new(b.rows, b.cols, vec![0; b.data.len()]))
            .collect(),
        weights,
        biases,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The logits the circuit proves are the engine's, bit for bit, on the reference and on
    /// the SIMD kernels.
    #[test]
    fn forward_is_the_engines_inference(
        n0 in 1usize..24, h in 1usize..16, c in 2usize..8, batch in 1usize..5,
        values in proptest::collection::vec(-(1i32 << 18)..=(1 << 18), 64),
        xs in proptest::collection::vec(-1024i32..=1024, 64),
    ) {
        let layers = vec![n0, h, c];
        let cfg = config(layers.clone());
        let s = state(&layers, &values);
        let x = Mat::new(batch, n0, (0..batch * n0).map(|i| xs[i % xs.len()]).collect());
        let model = ZkModel::from_state(&cfg.model, &s).expect("model");
        let ours = forward(&model, &x).expect("forward").logits;
        let reference = Trainer::new(Reference, cfg.clone()).expect("trainer").logits(&s, &x);
        let cpu = Trainer::new(CpuOps::new(1), cfg).expect("trainer").logits(&s, &x);
        prop_assert_eq!(&ours, &reference);
        prop_assert_eq!(&ours, &cpu);
    }
}

#[test]
fn a_proof_verifies_and_nothing_else_does() {
    let layers = vec![8, 6, 4];
    let cfg = config(layers.clone());
    let values: Vec<i32> = (0..97).map(|i| (i * 7919 % 65_537) - 32_768).collect();
    let model = ZkModel::from_state(&cfg.model, &state(&layers, &values)).expect("model");
    let x = Mat::new(2, 8, (0..16).map(|i| (i * 131 % 2049) - 1024).collect());
    let keys = setup(Shape { layers, batch: 2 }).expect("setup");
    let binding = pedals_zk::Binding {
        chain_id: 31337,
        market: [0xaa; 20],
        job_id: 1,
        worker: [0x42; 20],
    };
    let (logits, statement, proof) = prove(&keys, &model, &x, binding).expect("prove");
    assert_eq!(logits, forward(&model, &x).expect("forward").logits);
    assert!(verify(&keys.verifying, &statement, &proof).expect("verify"));

    // Keys survive their bytes.
    let again = Keys::from_bytes(&keys.to_bytes().expect("bytes")).expect("keys");
    assert_eq!(again, keys);
    assert!(verify(&again.verifying, &statement, &proof).expect("verify"));

    // Another output, model, input batch, worker, job, market or chain: the proof does not
    // verify.
    let mut s = statement;
    s.commitments.outputs += pedals_zk::Fr::from(1u64);
    assert!(!verify(&keys.verifying, &s, &proof).expect("verify"));
    let mut s = statement;
    s.commitments.weights += pedals_zk::Fr::from(1u64);
    assert!(!verify(&keys.verifying, &s, &proof).expect("verify"));
    let mut s = statement;
    let mut other = x.clone();
    other.data[0] += 1;
    s.commitments.inputs = commit_inputs(&other).expect("inputs");
    assert!(!verify(&keys.verifying, &s, &proof).expect("verify"));
    for other in [
        pedals_zk::Binding {
            worker: [0x43; 20],
            ..binding
        },
        pedals_zk::Binding {
            job_id: 2,
            ..binding
        },
        pedals_zk::Binding {
            market: [0xab; 20],
            ..binding
        },
        pedals_zk::Binding {
            chain_id: 1,
            ..binding
        },
    ] {
        let mut s = statement;
        s.binding = other;
        assert!(!verify(&keys.verifying, &s, &proof).expect("verify"));
    }
    // A tampered proof.
    let mut bad = proof.clone();
    bad.a = proof.c;
    assert!(!verify(&keys.verifying, &statement, &bad).expect("verify"));

    // Keys of another shape are refused before proving.
    let err = prove(&keys, &model, &Mat::new(1, 8, vec![0; 8]), binding).expect_err("batch 1");
    assert!(err.to_string().contains("batch 2"), "{err}");
}
