//! The small CNN (a convolution as `im2col` plus a matrix product, then dense layers): every
//! implementation gives the same state hashes, the op trace holds the gather and the reshapes,
//! replay reproduces a step, bad geometry is rejected, and it learns real digits in exact and
//! float mode.

use pedals_ml::{
    Dataset, FloatTrainer, MlError, MlpConfig, MlpState, TrainConfig, Trainer,
    exact::{BurnOps, ConvConfig, Reference},
};

use crate::exact::cpu_variants;

/// 2 channels of 6×6, 3 filters 3×3 with stride 1: 16 positions, 48 features, 18-value patches.
pub(crate) fn small_cnn(steps: u64) -> (TrainConfig, Dataset) {
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![48, 8, 4],
            batch: 4,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: Some(ConvConfig {
                channels: 2,
                height: 6,
                width: 6,
                kernel: 3,
                stride: 1,
                filters: 3,
            }),
        },
        seed: 5,
        steps,
        checkpoint_every: 1,
    };
    let data = Dataset::synthetic(9, 128, 72, 4).expect("synthetic data");
    (config, data)
}

#[test]
fn every_implementation_gives_the_same_cnn_state_hashes() {
    let (config, data) = small_cnn(4);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    assert_eq!(
        init.weights[0].rows, 18,
        "the convolution's weight is patch × filters"
    );
    assert_eq!(init.weights[0].cols, 3);
    let reference = Trainer::new(Reference, config.clone())
        .expect("trainer")
        .train(&data, &init)
        .expect("train");
    assert_ne!(
        reference.hashes[0], reference.hashes[4],
        "training changed the state"
    );
    let flex = Trainer::new(BurnOps::cpu(), config.clone())
        .expect("trainer")
        .train(&data, &init)
        .expect("train");
    assert_eq!(flex.hashes, reference.hashes, "burn-flex");
    for cpu in cpu_variants(&[1, 2]) {
        let out = Trainer::new(cpu, config.clone())
            .expect("trainer")
            .train(&data, &init)
            .expect("train");
        assert_eq!(out.hashes, reference.hashes, "{cpu:?}");
    }
}

#[test]
fn the_cnn_trace_has_the_gather_and_the_reshapes_and_replay_reproduces_a_step() {
    let (config, data) = small_cnn(3);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let trainer = Trainer::new(BurnOps::cpu(), config).expect("trainer");
    let out = trainer.train(&data, &init).expect("train");
    let state_1 =
        MlpState::from_bytes(&trainer.config().model, &out.checkpoints[&1]).expect("checkpoint");
    let replayed = trainer.replay_step(&data, &state_1, 1).expect("replay");
    assert_eq!(replayed.state_hash().expect("hash"), out.hashes[2]);

    let trace = trainer.trace_step(&data, &state_1, 1).expect("trace");
    let names: Vec<&str> = trace.iter().map(|t| t.name.as_str()).collect();
    let position = |suffix: &str| {
        names
            .iter()
            .position(|n| n.ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} missing from {names:?}"))
    };
    let cols = &trace[position(":im2col:cols")].value;
    assert_eq!((cols.rows, cols.cols), (4 * 16, 18));
    let flat = &trace[position(":reshape:a1.flat")].value;
    assert_eq!((flat.rows, flat.cols), (4, 48));
    let back = &trace[position(":reshape:d1.positions")].value;
    assert_eq!((back.rows, back.cols), (4 * 16, 3));
    assert!(position(":im2col:cols") < position(":linear:z1"));
    assert!(position(":relu_backward:d1") < position(":reshape:d1.positions"));
    assert!(position(":reshape:d1.positions") < position(":weight_grad:gw0"));
    // The trace ends with the new state, whose hash is h_2.
    let last = trace.last().expect("trace");
    assert!(last.name.ends_with(":descend:b2"), "{}", last.name);
}

#[test]
fn bad_cnn_geometry_is_rejected_before_any_work() {
    let (config, _) = small_cnn(1);
    let base = config.model;
    let conv = base.conv.expect("conv");
    let with = |conv: ConvConfig, layers: Vec<usize>, batch: usize| MlpConfig {
        conv: Some(conv),
        layers,
        batch,
        ..base.clone()
    };
    let cases = [
        (
            with(ConvConfig { kernel: 7, ..conv }, vec![48, 4], 4),
            "does not fit",
        ),
        (
            with(ConvConfig { stride: 0, ..conv }, vec![48, 4], 4),
            "stride must be at least 1",
        ),
        (with(conv, vec![40, 4], 4), "gives 48 features"),
        (
            with(
                ConvConfig {
                    channels: 120,
                    filters: 1,
                    ..conv
                },
                vec![16, 4],
                4,
            ),
            "patch of 1080 values",
        ),
        (with(conv, vec![48, 4], 128), "batch 128 × 16 positions"),
    ];
    for (model, message) in cases {
        match MlpState::init(&model, 1) {
            Err(err @ MlError::Config(_)) => {
                assert!(
                    err.to_string().contains(message),
                    "{err} should mention {message}"
                )
            }
            Err(other) => panic!("{other} is not a configuration error"),
            Ok(_) => panic!("{message}: accepted"),
        }
    }
}

#[test]
fn the_cnn_learns_real_mnist_digits_in_exact_and_float_mode() {
    let Some(mnist) = crate::mnist() else {
        return;
    };
    let (train, test) = mnist.shuffled(1).split(2000);
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![512, 64, 10],
            batch: 16,
            lr_q12: 205,
            momentum_q12: 3686,
            conv: Some(ConvConfig {
                channels: 1,
                height: 28,
                width: 28,
                kernel: 5,
                stride: 3,
                filters: 8,
            }),
        },
        seed: 42,
        steps: 300,
        checkpoint_every: 300,
    };
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let exact = Trainer::new(cpu_variants(&[2])[0], config.clone()).expect("trainer");
    let out = exact.train(&train, &init).expect("train");
    let exact_accuracy = exact.accuracy(&out.final_state, &test).expect("accuracy");
    let float = FloatTrainer::cpu(config).expect("float trainer");
    let model = float.train(&train).expect("float train");
    let float_accuracy = float.accuracy(&model, &test).expect("accuracy");
    assert!(
        exact_accuracy > 0.85,
        "exact CNN test accuracy {exact_accuracy} after 300 steps"
    );
    assert!(
        float_accuracy > 0.85,
        "float CNN test accuracy {float_accuracy} after 300 steps"
    );
}
