//! Exact mode: the burn implementation equals the reference bit for bit, op by op and step
//! by step; replay from a checkpoint reproduces the next state hash; training learns.

use pedals_ml::{
    Dataset, MlError, MlpConfig, MlpState, TraceSoFar, TrainConfig, Trainer,
    exact::{
        ACT_MAX, BurnOps, CpuOps, ExactOps, GRAD_MAX, Isa, Mat, Reference, VELOCITY_MAX,
        W_MASTER_MAX, exp_table,
    },
};
use proptest::prelude::*;

fn mat(rows: usize, cols: usize, max: i32) -> impl Strategy<Value = Mat> {
    proptest::collection::vec(-max..=max, rows * cols).prop_map(move |d| Mat::new(rows, cols, d))
}

fn same<O: ExactOps>(ops: &O, t: &O::T, want: &Mat, what: &str) {
    assert_eq!(&ops.read(t), want, "{what}: burn and the reference differ");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_op_matches_the_reference(
        (b, k, n) in (1usize..5, 1usize..9, 2usize..7),
        seed in any::<u64>(),
    ) {
        let mut runner = proptest::test_runner::TestRunner::new_with_rng(
            ProptestConfig::default(),
            proptest::test_runner::TestRng::from_seed(
                proptest::test_runner::RngAlgorithm::ChaCha,
                &{ let mut s = [0u8; 32]; s[..8].copy_from_slice(&seed.to_le_bytes()); s },
            ),
        );
        let mut draw = |s: BoxedStrategy<Mat>| s.new_tree(&mut runner).expect("tree").current();
        let a = draw(mat(b, k, ACT_MAX).boxed());
        let w = draw(mat(k, n, W_MASTER_MAX).boxed());
        let bias = draw(mat(1, n, 1 << 18).boxed());
        let d = draw(mat(b, n, GRAD_MAX).boxed());
        let v = draw(mat(k, n, VELOCITY_MAX).boxed());
        let g = draw(mat(k, n, 1 << 17).boxed());
        let labels: Vec<u32> = (0..b).map(|i| ((seed >> i) % n as u64) as u32).collect();

        let r = Reference;
        let burn = BurnOps::cpu();
        let (ta, tw, tb, td, tv, tg) =
            (burn.load(&a), burn.load(&w), burn.load(&bias), burn.load(&d), burn.load(&v), burn.load(&g));

        let wq = r.quantize_weights(&w);
        let twq = burn.quantize_weights(&tw);
        same(&burn, &twq, &wq, "quantize_weights");
        let z = r.linear(&a, &wq, &bias);
        same(&burn, &burn.linear(&ta, &twq, &tb), &z, "linear");
        same(&burn, &burn.relu(&ta), &r.relu(&a), "relu");
        let tz = burn.load(&z);
        same(&burn, &burn.softmax_xent_grad(&tz, &labels), &r.softmax_xent_grad(&z, &labels), "softmax_xent_grad");
        let lb = b.next_power_of_two().trailing_zeros();
        same(&burn, &burn.weight_grad(&ta, &td, lb), &r.weight_grad(&a, &d, lb), "weight_grad");
        same(&burn, &burn.bias_grad(&td, lb), &r.bias_grad(&d, lb), "bias_grad");
        same(&burn, &burn.input_grad(&td, &twq), &r.input_grad(&d, &wq), "input_grad");
        same(&burn, &burn.relu_backward(&ta, &ta), &r.relu_backward(&a, &a), "relu_backward");
        same(&burn, &burn.momentum(&tv, &tg, 3686), &r.momentum(&v, &g, 3686), "momentum");
        same(&burn, &burn.descend(&tw, &tv, 410, W_MASTER_MAX), &r.descend(&w, &v, 410, W_MASTER_MAX), "descend");

        // The crate's own CPU kernels, on 1 and 3 threads, on every instruction set this CPU has.
        for cpu in cpu_variants(&[1, 3]) {
            prop_assert_eq!(cpu.linear(&a, &wq, &bias), z.clone());
            prop_assert_eq!(cpu.weight_grad(&a, &d, lb), r.weight_grad(&a, &d, lb));
            prop_assert_eq!(cpu.input_grad(&d, &wq), r.input_grad(&d, &wq));
        }
    }
}

/// `CpuOps` on each thread count and each instruction set this CPU supports, every product
/// split over the threads however small.
pub(crate) fn cpu_variants(threads: &[usize]) -> Vec<CpuOps> {
    threads
        .iter()
        .flat_map(|&t| {
            Isa::supported()
                .into_iter()
                .filter_map(move |isa| CpuOps::new(t).with_split_threshold(0).with_isa(isa))
        })
        .collect()
}

#[test]
fn the_exponential_table_is_the_one_the_spec_defines() {
    let t = exp_table();
    assert_eq!(t.len(), 2049);
    assert_eq!(t[0], 32768);
    assert_eq!(t[256], 12055); // round(2^15 / e)
    assert_eq!(t[2048], 11);
    assert!(t.windows(2).all(|w| w[0] >= w[1]), "non-increasing");
}

fn small_job(steps: u64) -> (TrainConfig, Dataset) {
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![16, 12, 4],
            batch: 8,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 7,
        steps,
        checkpoint_every: 2,
    };
    (
        config,
        Dataset::synthetic(3, 256, 16, 4).expect("synthetic data"),
    )
}

#[test]
fn burn_and_the_reference_agree_on_every_state_hash() {
    let (config, data) = small_job(6);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let by_burn = Trainer::new(BurnOps::cpu(), config.clone())
        .expect("trainer")
        .train(&data, &init)
        .expect("train");
    let by_reference = Trainer::new(Reference, config)
        .expect("trainer")
        .train(&data, &init)
        .expect("train");
    assert_eq!(by_burn.hashes.len(), 7);
    assert_eq!(by_burn.hashes, by_reference.hashes);
    assert_ne!(
        by_burn.hashes[0], by_burn.hashes[6],
        "training changed the state"
    );
    assert_eq!(by_burn.final_state, by_reference.final_state);
    for cpu in cpu_variants(&[1, 2]) {
        let by_cpu = Trainer::new(cpu, small_job(6).0)
            .expect("trainer")
            .train(&data, &init)
            .expect("train");
        assert_eq!(by_cpu.hashes, by_burn.hashes, "{cpu:?}");
    }
}

#[test]
fn any_step_replays_from_its_checkpoint_and_the_trace_opens() {
    let (config, data) = small_job(5);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let trainer = Trainer::new(BurnOps::cpu(), config.clone()).expect("trainer");
    let out = trainer.train(&data, &init).expect("train");
    assert_eq!(
        out.checkpoints.keys().copied().collect::<Vec<_>>(),
        vec![0, 2, 4, 5]
    );
    // A validator holding checkpoint 2 recomputes step 2 and compares with h_3.
    let state2 = MlpState::from_bytes(&config.model, &out.checkpoints[&2]).expect("checkpoint");
    assert_eq!(state2.state_hash().expect("hash"), out.hashes[2]);
    let state3 = trainer.replay_step(&data, &state2, 2).expect("replay");
    assert_eq!(state3.state_hash().expect("hash"), out.hashes[3]);
    // The trace commitment opens h_2 and h_3 against the root.
    let trace = out.trace().expect("trace");
    pedals_core::verify_transition(
        &trace.root(),
        trace.steps(),
        2,
        &out.hashes[2],
        &trace.proof(2).expect("proof"),
        &out.hashes[3],
        &trace.proof(3).expect("proof"),
    )
    .expect("transition opens");
    // The op trace ends in the state the step produces.
    let ops = trainer.trace_step(&data, &state2, 2).expect("op trace");
    let last = ops.last().expect("ops");
    assert!(last.name.ends_with(":descend:b1"), "{}", last.name);
    assert_eq!(last.value, state3.biases[1]);
    // A wrong state gives a different next hash (what a validator detects).
    let mut forged = state2.clone();
    forged.weights[0].data[0] += 1;
    let forged_next = trainer.replay_step(&data, &forged, 2).expect("replay");
    assert_ne!(forged_next.state_hash().expect("hash"), out.hashes[3]);
}

#[test]
fn training_learns_the_synthetic_task() {
    let (mut config, data) = small_job(150);
    config.checkpoint_every = 50;
    let (train, test) = data.split(64);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let trainer = Trainer::new(BurnOps::cpu(), config).expect("trainer");
    let before = trainer.accuracy(&init, &test).expect("accuracy");
    let out = trainer.train(&train, &init).expect("train");
    let after = trainer.accuracy(&out.final_state, &test).expect("accuracy");
    assert!(
        after > before + 0.2 && after > 0.7,
        "accuracy {before} → {after}"
    );
}

#[test]
fn out_of_bounds_configurations_are_rejected_before_any_work() {
    let base = MlpConfig {
        layers: vec![16, 8, 4],
        batch: 8,
        lr_q12: 410,
        momentum_q12: 0,
        conv: None,
    };
    let cases = [
        (
            MlpConfig {
                layers: vec![2000, 10],
                ..base.clone()
            },
            "layer width 2000",
        ),
        (
            MlpConfig {
                layers: vec![16],
                ..base.clone()
            },
            "at least an input",
        ),
        (
            MlpConfig {
                layers: vec![16, 1],
                ..base.clone()
            },
            "at least 2 classes",
        ),
        (
            MlpConfig {
                batch: 12,
                ..base.clone()
            },
            "power of two",
        ),
        (
            MlpConfig {
                batch: 2048,
                ..base.clone()
            },
            "power of two",
        ),
        (
            MlpConfig {
                lr_q12: 5000,
                ..base.clone()
            },
            "learning rate 5000",
        ),
        (
            MlpConfig {
                momentum_q12: -1,
                ..base.clone()
            },
            "momentum -1",
        ),
    ];
    for (config, message) in cases {
        let err = MlpState::init(&config, 1).expect_err("rejected");
        assert!(matches!(err, MlError::Config(_)), "{err}");
        assert!(
            err.to_string().contains(message),
            "{err} should mention {message}"
        );
    }
    let (config, _) = small_job(1);
    let wrong = Dataset::synthetic(1, 32, 10, 4).expect("synthetic data");
    let trainer = Trainer::new(Reference, config.clone()).expect("trainer");
    let init = MlpState::init(&config.model, 1).expect("init");
    let err = trainer.train(&wrong, &init).expect_err("shape mismatch");
    assert!(
        err.to_string()
            .contains("10 features but the model takes 16"),
        "{err}"
    );
}

#[test]
fn exact_training_learns_real_mnist_digits() {
    let Some(mnist) = crate::mnist() else {
        return;
    };
    let data = mnist.shuffled(1);
    let (train, test) = data.split(1000);
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![784, 64, 10],
            batch: 32,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 42,
        steps: 200,
        checkpoint_every: 100,
    };
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let trainer = Trainer::new(BurnOps::cpu(), config).expect("trainer");
    let out = trainer.train(&train, &init).expect("train");
    let accuracy = trainer.accuracy(&out.final_state, &test).expect("accuracy");
    assert!(
        accuracy > 0.85,
        "test accuracy {accuracy} after 200 exact steps"
    );
}

#[test]
fn a_session_steps_like_the_trainer_and_rejects_bad_batches() {
    let (config, data) = small_job(3);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let trainer = Trainer::new(Reference, config.clone()).expect("trainer");
    let out = trainer.train(&data, &init).expect("train");
    let mut session =
        pedals_ml::Session::new(CpuOps::new(2), config.model.clone(), &init).expect("session");
    for step in 0..3 {
        let (x, y) = trainer.batch(&data, step);
        session.step(&x, &y).expect("step");
    }
    assert_eq!(session.state().state_hash().expect("hash"), out.hashes[3]);

    let (x, mut y) = trainer.batch(&data, 0);
    let short = Mat::new(x.rows - 1, x.cols, x.data[x.cols..].to_vec());
    let err = session.step(&short, &y[1..]).expect_err("short batch");
    assert!(matches!(err, MlError::DatasetMismatch(_)), "{err}");
    y[0] = 4;
    let err = session.step(&x, &y).expect_err("label out of range");
    assert!(err.to_string().contains("label 4 is not below"), "{err}");
    let float = pedals_ml::FloatTrainer::cpu(config).expect("float");
    let mut model = float.init().expect("init");
    let err = float
        .step_batch(&mut model, &x, &y)
        .expect_err("label out of range");
    assert!(err.to_string().contains("label 4 is not below"), "{err}");
}

#[test]
fn a_job_spec_round_trips_canonically_and_its_hash_gives_its_cid() {
    let (config, data) = small_job(4);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let model_bytes = init.to_bytes().expect("bytes");
    let spec = pedals_ml::JobSpec::new(config, &data, &model_bytes).expect("spec");
    let commitments = spec.dispute.expect("a training spec commits to its data");
    assert_eq!(commitments.samples, data.len() as u64);
    assert_eq!(commitments.data_root, data.row_root().expect("root"));
    assert_eq!(commitments.init_hash, init.state_hash().expect("hash"));
    spec.check_commitments(&data, &init)
        .expect("the files match");
    let mut other = data.clone();
    other.labels[3] = (other.labels[3] + 1) % other.classes;
    let err = spec
        .check_commitments(&other, &init)
        .expect_err("a changed label");
    assert!(err.to_string().contains("row root"), "{err}");
    let moved = MlpState::init(&spec.train.model, 99).expect("init");
    assert!(
        spec.check_commitments(&data, &moved).is_err(),
        "another h_0"
    );
    let mut unbound = spec.clone();
    unbound.dispute = None;
    assert!(
        unbound.validate().is_err(),
        "a training spec without commitments"
    );
    assert_eq!(
        spec.dataset_cid().expect("cid"),
        data.cid().expect("dataset cid")
    );
    assert_eq!(
        spec.model_cid().expect("cid"),
        pedals_core::cid_of(&model_bytes)
    );
    let bytes = spec.to_canonical_bytes();
    assert_eq!(
        pedals_ml::JobSpec::from_canonical_bytes(&bytes).expect("read"),
        spec
    );
    assert_eq!(
        pedals_ml::JobSpec::cid_for_hash(&spec.spec_hash()),
        pedals_core::cid_of(&bytes)
    );
    // Whitespace or reordering is not canonical; a bad config is refused.
    let mut pretty = serde_json::to_vec_pretty(&spec).expect("json");
    assert!(pedals_ml::JobSpec::from_canonical_bytes(&pretty).is_err());
    pretty = bytes.clone();
    let text = String::from_utf8(pretty)
        .expect("utf8")
        .replace("\"batch\":8", "\"batch\":12");
    let err = pedals_ml::JobSpec::from_canonical_bytes(text.as_bytes()).expect_err("batch 12");
    assert!(err.to_string().contains("power of two"), "{err}");
}

fn upto(hashes: &[alloy_primitives::B256], n: usize) -> TraceSoFar {
    TraceSoFar {
        hashes: hashes[..n].to_vec(),
        audit_leaves: Vec::new(),
    }
}

#[test]
fn training_resumed_from_a_checkpoint_gives_the_trace_of_an_unbroken_run() {
    let (config, data) = small_job(12);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let trainer = Trainer::new(CpuOps::new(2), config.clone()).expect("trainer");
    let mut seen = Vec::new();
    let whole = trainer
        .train_from(&data, &init, TraceSoFar::default(), |done, _, so_far| {
            seen.push((done, so_far.hashes.len()));
            Ok(())
        })
        .expect("train");
    assert_eq!(
        seen,
        vec![(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13)]
    );
    assert_eq!(
        whole.hashes,
        trainer.train(&data, &init).expect("train").hashes
    );

    // Resume from the checkpoint after 6 steps with h_0..h_6.
    let at_6 = MlpState::from_bytes(&config.model, &whole.checkpoints[&6]).expect("checkpoint");
    let resumed = trainer
        .train_from(&data, &at_6, upto(&whole.hashes, 7), |_, _, _| Ok(()))
        .expect("resume");
    assert_eq!(resumed.hashes, whole.hashes);
    assert_eq!(resumed.final_state, whole.final_state);
    assert_eq!(
        resumed.checkpoints.keys().copied().collect::<Vec<_>>(),
        vec![8, 10, 12]
    );

    // A state that does not match the trace given is refused.
    let err = trainer
        .train_from(&data, &init, upto(&whole.hashes, 7), |_, _, _| Ok(()))
        .expect_err("mismatch");
    assert!(err.to_string().contains("does not hash to h_6"), "{err}");
}
