//! The loss a worker reports at each checkpoint (`Trainer::reporting_loss`): it starts near
//! ln(classes) for a fresh model, falls as the model learns, and reporting it changes no
//! state.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use pedals_ml::exact::CpuOps;
use pedals_ml::{Dataset, MlpConfig, MlpState, TraceSoFar, TrainConfig, Trainer};

#[test]
fn the_reported_loss_falls_as_the_model_learns() {
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![16, 12, 4],
            batch: 8,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 5,
        steps: 300,
        checkpoint_every: 1,
    };
    let data = Dataset::synthetic(3, 640, 16, 4).expect("data");
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let cell = Arc::new(AtomicU64::new(u64::MAX));
    let trainer = Trainer::new(CpuOps::default(), config.clone())
        .expect("trainer")
        .reporting_loss(cell.clone());
    let mut losses = Vec::new();
    let outcome = trainer
        .train_from(&data, &init, TraceSoFar::default(), |done, _, _| {
            if done > 0 {
                losses.push(cell.load(Ordering::Relaxed) as f64 / 1e6);
            }
            Ok(())
        })
        .expect("train");
    assert_eq!(losses.len(), 300, "one per checkpoint after the start");
    let plain = Trainer::new(CpuOps::default(), config)
        .expect("trainer")
        .train(&data, &init)
        .expect("train");
    assert_eq!(
        outcome.hashes, plain.hashes,
        "reporting the loss changes no state"
    );
    let mean = |l: &[f64]| l.iter().sum::<f64>() / l.len() as f64;
    let (first, last) = (mean(&losses[..10]), mean(&losses[250..]));
    // A fresh model of 4 classes guesses about evenly: ln 4 = 1.39.
    assert!(first > 0.7 && first < 2.5, "{first}");
    assert!(
        last < first / 2.0,
        "the loss does not fall: {first} then {last}"
    );
}
