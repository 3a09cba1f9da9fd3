//! Detection by sampling, measured: 200 simulated jobs per falsification rate, each trained by a
//! worker that falsifies every step independently with probability `f`; a validator re-executes
//! `k` distinct steps drawn at random from each job's own checkpoints, for real, and flags the
//! job when a recomputed `h_(i+1)` differs from the worker's. The observed detection rate must
//! lie within the 99.9% confidence interval of `1 - (1 - f)^k`. The chain plays no part in
//! detection, so it is left out. The printed table is in docs/protocol.md.

use pedals_ml::exact::CpuOps;
use pedals_ml::{Dataset, MlpConfig, MlpState, TrainConfig, Trainer};
use pedals_verifier::sampling::{escape_probability, pick_steps};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;

const JOBS: usize = 200;
const STEPS: u64 = 40;

/// The job every simulated worker trains: MLP 16-8-4, a checkpoint after every step.
fn setting() -> (TrainConfig, Dataset, MlpState, Trainer<CpuOps>) {
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![16, 8, 4],
            batch: 8,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 1,
        steps: STEPS,
        checkpoint_every: 1,
    };
    let data = Dataset::synthetic(9, 128, 16, 4).expect("data");
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let honest = Trainer::new(CpuOps::new(1), config.clone()).expect("trainer");
    (config, data, init, honest)
}

#[test]
fn observed_detection_matches_one_minus_one_minus_f_to_the_k() {
    let (config, data, init, honest) = setting();
    let ks = [1usize, 3, 5, 10];
    let mut rng = StdRng::seed_from_u64(0x5045_444c);
    let mut table = Vec::new();
    for f in [0.02f64, 0.05, 0.1, 0.25] {
        let mut caught = [0usize; 4];
        for _ in 0..JOBS {
            let falsified: Vec<u64> = (0..STEPS).filter(|_| rng.gen_bool(f)).collect();
            let out = Trainer::new(CpuOps::new(1), config.clone())
                .expect("trainer")
                .falsifying(falsified.iter().copied())
                .train(&data, &init)
                .expect("train");
            for (i, &k) in ks.iter().enumerate() {
                let detected = pick_steps(&mut rng, STEPS, k).into_iter().any(|s| {
                    // The worker's checkpoint before step s, re-executed honestly.
                    let before = MlpState::from_bytes(&config.model, &out.checkpoints[&s])
                        .expect("checkpoint");
                    let next = honest.replay_step(&data, &before, s).expect("replay");
                    next.state_hash().expect("hash") != out.hashes[s as usize + 1]
                });
                caught[i] += usize::from(detected);
            }
        }
        for (i, &k) in ks.iter().enumerate() {
            let expected = 1.0 - escape_probability(f, k as u32);
            let observed = caught[i] as f64 / JOBS as f64;
            // 99.9% normal interval around the expected rate, plus one job of slack for
            // rates near 0 or 1.
            let half =
                3.29 * (expected * (1.0 - expected) / JOBS as f64).sqrt() + 1.0 / JOBS as f64;
            table.push(format!(
                "| {f:.2} | {k:>2} | {expected:.3} | {observed:.3} | ±{half:.3} |"
            ));
            assert!(
                (observed - expected).abs() <= half,
                "f = {f}, k = {k}: observed {observed}, expected {expected} ± {half}"
            );
        }
    }
    eprintln!("| f | k | 1-(1-f)^k | observed ({JOBS} jobs) | 99.9% interval |");
    eprintln!("| --- | --- | --- | --- | --- |");
    for row in table {
        eprintln!("{row}");
    }
}

/// The binomial coefficient as a float (small arguments).
fn choose(n: u64, k: u64) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// A worker that trains the first `s` steps honestly and makes up every later state hash
/// serves the checkpoints it has and withholds the rest; a validator re-executes what is
/// served, and demands the rest on-chain, where only a state whose hash is the trace's leaf
/// can meet the demand (docs/protocol.md §7). It is caught when a sample lands on step `s` (a
/// real state whose next hash is made up) or after it (no state to publish): with `k` distinct
/// samples of `N` steps, `1 - C(s, k) / C(N, k)`. Measured over 200 jobs per suffix length,
/// re-executing for real.
#[test]
fn a_made_up_suffix_is_caught_as_often_as_sampling_promises() {
    let (config, data, init, honest) = setting();
    let out = honest.train(&data, &init).expect("train");
    let ks = [1usize, 3, 5, 10];
    let mut rng = StdRng::seed_from_u64(0x6461_7461);
    let mut table = Vec::new();
    for f in [0.1f64, 0.25, 0.5] {
        let s = STEPS - (f * STEPS as f64).round() as u64;
        // The worker's trace: real up to h_s, made up after it.
        let mut hashes = out.hashes.clone();
        for (i, h) in hashes.iter_mut().enumerate().skip(s as usize + 1) {
            *h = alloy::primitives::keccak256(format!("made up {i}"));
        }
        let held: std::collections::HashMap<_, _> = (0..=s)
            .map(|i| (hashes[i as usize], &out.checkpoints[&i]))
            .collect();
        let mut caught = [0usize; 4];
        for _ in 0..JOBS {
            for (i, &k) in ks.iter().enumerate() {
                let detected = pick_steps(&mut rng, STEPS, k).into_iter().any(|step| {
                    // Served over the network, or published on demand: either way only a
                    // state whose hash is h_step will do.
                    let Some(state) = held.get(&hashes[step as usize]) else {
                        return true; // the demand goes unmet: convicted
                    };
                    let before = MlpState::from_bytes(&config.model, state).expect("checkpoint");
                    let next = honest.replay_step(&data, &before, step).expect("replay");
                    next.state_hash().expect("hash") != hashes[step as usize + 1]
                });
                caught[i] += usize::from(detected);
            }
        }
        for (i, &k) in ks.iter().enumerate() {
            let expected = 1.0 - choose(s, k as u64) / choose(STEPS, k as u64);
            let observed = caught[i] as f64 / JOBS as f64;
            let half =
                3.29 * (expected * (1.0 - expected) / JOBS as f64).sqrt() + 1.0 / JOBS as f64;
            table.push(format!(
                "| made-up suffix, withheld | {f:.2} | {k:>2} | {expected:.3} | {observed:.3} | ±{half:.3} |"
            ));
            assert!(
                (observed - expected).abs() <= half,
                "suffix {f}, k = {k}: observed {observed}, expected {expected} ± {half}"
            );
        }
    }
    for row in table {
        eprintln!("{row}");
    }
}
