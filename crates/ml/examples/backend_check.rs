//! Trains the same small exact-mode jobs (an MLP and a CNN, synthetic data) on every backend
//! this machine has and compares the state hash after every step: burn-flex, the crate's CPU
//! kernels on each instruction set and on 1 and 2 threads, burn-wgpu over Vulkan (a GPU when
//! there is one), and the plain-Rust reference. Exits non-zero on the first difference. Run it
//! on a new machine before it works or validates for the market:
//!
//! ```sh
//! cargo run --release -p pedals-ml --example backend_check
//! ```

use pedals_ml::{
    Dataset, MlpConfig, MlpState, TrainConfig, Trainer,
    exact::{BurnOps, ConvConfig, CpuOps, ExactOps, Isa, Reference},
};

fn jobs() -> Vec<(&'static str, TrainConfig, Dataset)> {
    let job = |model: MlpConfig| TrainConfig {
        model,
        seed: 11,
        steps: 6,
        checkpoint_every: 3,
    };
    let mlp = MlpConfig {
        layers: vec![784, 64, 10],
        batch: 32,
        lr_q12: 410,
        momentum_q12: 3686,
        conv: None,
    };
    let cnn = MlpConfig {
        layers: vec![512, 32, 10],
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
    };
    let data = || Dataset::synthetic(5, 512, 784, 10).expect("synthetic data");
    vec![
        ("MLP 784-64-10", job(mlp), data()),
        ("CNN 8×5×5/3 + 512-32-10", job(cnn), data()),
    ]
}

fn hashes<O: ExactOps>(ops: O, config: &TrainConfig, data: &Dataset) -> Vec<String> {
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let out = Trainer::new(ops, config.clone())
        .expect("trainer")
        .train(data, &init)
        .expect("train");
    out.hashes.iter().map(ToString::to_string).collect()
}

fn main() {
    let mut failed = false;
    for (name, config, data) in jobs() {
        let reference = hashes(Reference, &config, &data);
        println!(
            "{name}: h_{} = {}",
            reference.len() - 1,
            reference[reference.len() - 1]
        );
        let mut runs = vec![(
            "burn-flex".to_string(),
            hashes(BurnOps::cpu(), &config, &data),
        )];
        for isa in Isa::supported() {
            for threads in [1, 2] {
                let ops = CpuOps::new(threads)
                    .with_split_threshold(0)
                    .with_isa(isa)
                    .expect("supported");
                runs.push((format!("cpu {isa} ×{threads}"), hashes(ops, &config, &data)));
            }
        }
        match BurnOps::gpu() {
            Ok(gpu) => {
                let adapter = gpu.adapter_name().unwrap_or_default();
                runs.push((format!("wgpu ({adapter})"), hashes(gpu, &config, &data)));
            }
            Err(e) => println!("  wgpu: skipped, {e}"),
        }
        for (backend, got) in runs {
            let same = got == reference;
            failed |= !same;
            println!(
                "  {backend:<40} {}",
                if same {
                    "same hashes at every step"
                } else {
                    "DIFFERS from the reference"
                }
            );
        }
    }
    if failed {
        std::process::exit(1);
    }
}
