//! The dispute program against the engine: every element of every op of a step, recomputed by
//! the referee's formula from the rows the contract would open, equals the engine's value.

use alloy_primitives::keccak256;
use pedals_core::{MerkleTree, StateEntry, shape_hash, state_hash_of};
use pedals_ml::dispute::{
    OpKind, Operand, StepParams, batch_sample, element, input_rows, mat_row, mat_row_hashes,
    program,
};
use pedals_ml::exact::{ConvConfig, CpuOps, Mat, Reference};
use pedals_ml::{Dataset, MlpConfig, MlpState, TrainConfig, Trainer, batch_indices};

fn job() -> (TrainConfig, Dataset) {
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![16, 12, 8, 4],
            batch: 8,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 11,
        steps: 4,
        checkpoint_every: 1,
    };
    (
        config,
        Dataset::synthetic(5, 200, 16, 4).expect("synthetic data"),
    )
}

#[test]
fn every_element_of_every_op_is_what_the_referee_recomputes() {
    let (config, data) = job();
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let trainer = Trainer::new(CpuOps::default(), config.clone()).expect("trainer");
    let out = trainer.train(&data, &init).expect("train");
    let step = 2;
    let state = MlpState::from_bytes(&config.model, &out.checkpoints[&step]).expect("checkpoint");
    let trace = trainer.op_trace(&data, &state, step).expect("op trace");
    // The reference engine arranges the same trace.
    let by_reference = Trainer::new(Reference, config.clone())
        .expect("trainer")
        .op_trace(&data, &state, step)
        .expect("op trace");
    assert_eq!(by_reference.leaves, trace.leaves);

    let prog = program(&config.model).expect("program");
    assert_eq!(trace.leaves.len(), prog.leaf_count());
    assert_eq!(trace.leaves[0], out.hashes[step as usize], "leaf 0 is h_i");
    assert_eq!(
        *trace.leaves.last().expect("leaves"),
        out.hashes[step as usize + 1],
        "the last leaf is h_(i+1)"
    );
    let model_in = state.to_model_state().expect("state");
    let params = StepParams::of(&config.model);
    let mut checked = 0usize;
    for (k, op) in prog.ops.iter().enumerate() {
        let leaf = k + 1;
        if op.kind == OpKind::StateHash {
            assert_eq!(leaf, prog.leaf_count() - 1, "the state hash is the last op");
            continue;
        }
        let out_t = trace.tensor(leaf).expect("tensor");
        assert_eq!((out_t.rows, out_t.cols), (op.rows, op.cols), "{}", op.name);
        for r in 0..op.rows {
            for c in 0..op.cols {
                let sample = trace.samples.get(r).copied().unwrap_or(0);
                let idx = input_rows(op.kind, r, c, sample);
                let rows: Vec<Vec<i32>> = op
                    .inputs
                    .iter()
                    .zip(&idx)
                    .map(|(input, &i)| match input {
                        Operand::Data => data.dispute_row(i),
                        Operand::Leaf(l) => mat_row(trace.tensor(*l).expect("input"), i).to_vec(),
                        Operand::State(name) => {
                            let t = model_in.tensor(name).expect("state tensor");
                            let cols = *t.shape.last().expect("shape") as usize;
                            t.data[i * cols..(i + 1) * cols].to_vec()
                        }
                    })
                    .collect();
                let refs: Vec<&[i32]> = rows.iter().map(Vec::as_slice).collect();
                assert_eq!(
                    element(op.kind, &params, r, c, &refs),
                    Some(out_t.data[r * op.cols + c]),
                    "{} [{r}][{c}]",
                    op.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 2_000, "{checked} elements");

    // The last op: h_(i+1) from the new state tensors' leaves alone.
    let entries: Vec<StateEntry> = prog
        .state
        .iter()
        .zip(&prog.new_state)
        .map(|((name, shape), &leaf)| StateEntry {
            name_hash: keccak256(name.as_bytes()),
            shape_hash: shape_hash(shape),
            root: trace.leaves[leaf],
        })
        .collect();
    assert_eq!(state_hash_of(&entries), out.hashes[step as usize + 1]);
    // And h_i opens the same way from the entries the trace keeps.
    assert_eq!(state_hash_of(&trace.entries_in), trace.leaves[0]);
}

#[test]
fn a_falsified_element_changes_only_its_leaf_and_the_referee_catches_it() {
    let (config, data) = job();
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let trainer = Trainer::new(CpuOps::default(), config.clone()).expect("trainer");
    let honest = trainer.op_trace(&data, &init, 0).expect("op trace");
    let prog = program(&config.model).expect("program");
    let z1 = prog.leaf_named("z1").expect("z1");
    let mut forged = honest.clone();
    let was = honest.tensor(z1).expect("z1").data[3 * 12 + 5];
    forged.falsify(z1, 3, 5, was + 1).expect("falsify");
    assert_ne!(forged.root(), honest.root());
    for (leaf, (a, b)) in honest.leaves.iter().zip(&forged.leaves).enumerate() {
        assert_eq!(a == b, leaf != z1, "leaf {leaf}");
    }
    // The worker's row 3 hashes differently from the honest one, and only row 3.
    let rows_h = mat_row_hashes(honest.tensor(z1).expect("z1")).expect("rows");
    let rows_f = mat_row_hashes(forged.tensor(z1).expect("z1")).expect("rows");
    let differ: Vec<usize> = (0..rows_h.len())
        .filter(|&r| rows_h[r] != rows_f[r])
        .collect();
    assert_eq!(differ, vec![3]);
    let tree = MerkleTree::new(&rows_f).expect("tree");
    assert!(
        tree.proof(3)
            .expect("proof")
            .verify(&forged.leaves[z1], &rows_f[3])
    );
    // The referee recomputes element (3, 5) from the agreed inputs: not the worker's value.
    let x = honest.tensor(prog.leaf_named("x").expect("x")).expect("x");
    let wqt = honest
        .tensor(prog.leaf_named("wq0.T").expect("wq0.T"))
        .expect("wq0.T");
    let bias = init.to_model_state().expect("state");
    let b0 = &bias.tensor("l0.bias").expect("bias").data;
    let value = element(
        OpKind::Linear,
        &StepParams::of(&config.model),
        3,
        5,
        &[mat_row(x, 3), mat_row(wqt, 5), b0],
    );
    assert_eq!(value, Some(was));
}

#[test]
fn batch_rows_are_the_documented_keccak_derivation() {
    // docs/exact-ops.md: u64_be(keccak256("pedals.batch" ‖ u64_be(seed) ‖ u64_be(step) ‖
    // u64_be(j))[0..8]) mod n, spelled out here as the contract's abi.encodePacked does it.
    let idx = batch_indices(42, 17, 64, 8000);
    for (j, &i) in idx.iter().enumerate() {
        let mut pre = b"pedals.batch".to_vec();
        for word in [42u64, 17, j as u64] {
            pre.extend_from_slice(&word.to_be_bytes());
        }
        let h = keccak256(&pre);
        let word = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
        assert_eq!(word % 8000, i as u64);
        assert_eq!(batch_sample(42, 17, j as u64, 8000), i as u64);
    }
    assert_ne!(
        batch_indices(42, 18, 64, 8000),
        idx,
        "another step, another batch"
    );
}

#[test]
fn the_program_has_one_leaf_per_op_and_refuses_convolutions() {
    let mut model = MlpConfig {
        layers: vec![784, 64, 10],
        batch: 64,
        lr_q12: 410,
        momentum_q12: 3686,
        conv: None,
    };
    let prog = program(&model).expect("program");
    // x, y, 2 wq, 2 wqᵀ, z1, a1, z2, d2, 2 × (aᵀ, dᵀ, gw, gb), e1, d1, 8 updates, h'.
    assert_eq!(prog.ops.len(), 2 + 2 + 2 + 3 + 1 + 8 + 2 + 8 + 1);
    assert_eq!(prog.state.len(), 8);
    let names: Vec<&str> = prog.ops.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(&names[..6], &["x", "y", "wq0", "wq1", "wq0.T", "wq1.T"]);
    // The same codes contracts/test/DisputeProgram.t.sol pins for DisputeProgram.sol.
    let kinds: Vec<u8> = prog.ops.iter().map(|o| o.kind as u8).collect();
    assert_eq!(
        kinds,
        [
            0, 1, 2, 2, 3, 3, 4, 5, 4, 6, 3, 3, 7, 8, 9, 10, 3, 3, 7, 8, 11, 12, 11, 13, 11, 12,
            11, 13, 14
        ]
    );
    let last = prog.ops.last().expect("ops");
    let leaves: Vec<usize> = last
        .inputs
        .iter()
        .map(|i| match i {
            Operand::Leaf(l) => *l,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(leaves, [24, 23, 22, 21, 28, 27, 26, 25]);
    let deep = MlpConfig {
        layers: vec![4; 12],
        ..model.clone()
    };
    assert!(program(&deep).is_err(), "eleven layers");
    model.conv = Some(ConvConfig {
        channels: 1,
        height: 28,
        width: 28,
        kernel: 5,
        stride: 3,
        filters: 4,
    });
    model.layers[0] = model.conv.as_ref().expect("conv").features();
    model.batch = 16;
    let err = program(&model).expect_err("a CNN");
    assert!(err.to_string().contains("convolutional"), "{err}");
    let _ = Mat::zeros(1, 1);
}
