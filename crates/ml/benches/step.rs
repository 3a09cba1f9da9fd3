//! One training step of an MLP, timed: `cargo bench -p pedals-ml --bench step -- [options]`.
//!
//! Options: `--mode exact|exact-cpu|exact-reference` (default exact), `--layers 784,128,10`,
//! `--batch 64`, `--steps 200`, `--warmup 20`. Prints one JSON line: the median and mean
//! milliseconds per step, samples per second and the process's peak resident memory.
//! `scripts/bench.sh` runs every mode and PyTorch side by side and prints the ratios.

use std::time::Instant;

use pedals_ml::{
    Dataset, MlpConfig, MlpState, Session, TrainConfig, Trainer,
    exact::{BurnOps, CpuOps, ExactOps, Reference},
};

struct Args {
    mode: String,
    layers: Vec<usize>,
    batch: usize,
    steps: u64,
    warmup: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        mode: "exact".into(),
        layers: vec![784, 128, 10],
        batch: 64,
        steps: 200,
        warmup: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--mode" => a.mode = value()?,
            "--layers" => {
                a.layers = value()?
                    .split(',')
                    .map(|w| w.parse().map_err(|e| format!("--layers: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--batch" => a.batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--steps" => a.steps = value()?.parse().map_err(|e| format!("--steps: {e}"))?,
            "--warmup" => a.warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--bench" => {} // cargo bench passes this
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn run<O: ExactOps>(ops: O, args: &Args) -> Result<Vec<f64>, String> {
    let config = TrainConfig {
        model: MlpConfig {
            layers: args.layers.clone(),
            batch: args.batch,
            lr_q12: 410,
            momentum_q12: 3686,
        },
        seed: 42,
        steps: 1,
        checkpoint_every: 1,
    };
    let data = Dataset::synthetic(
        1,
        4096,
        args.layers[0],
        *args.layers.last().unwrap_or(&10) as u32,
    )
    .map_err(|e| e.to_string())?;
    let init = MlpState::init(&config.model, config.seed).map_err(|e| e.to_string())?;
    let batches = Trainer::new(Reference, config.clone()).map_err(|e| e.to_string())?;
    let mut session = Session::new(ops, config.model.clone(), &init).map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(args.steps as usize);
    for step in 0..args.warmup + args.steps {
        let (x, y) = batches.batch(&data, step);
        let start = Instant::now();
        session.step(&x, &y).map_err(|e| e.to_string())?;
        if step >= args.warmup {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    // Force every result (flex is synchronous; a GPU device is not).
    let _ = session.state();
    Ok(times)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let result = match args.mode.as_str() {
        "exact" => run(BurnOps::cpu(), &args),
        "exact-reference" => run(Reference, &args),
        "exact-cpu" => run(CpuOps::default(), &args),
        other => Err(format!(
            "unknown mode {other}; use exact, exact-cpu or exact-reference"
        )),
    };
    let mut times = match result {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{{\"impl\":\"pedals-{}\",\"layers\":{:?},\"batch\":{},\"steps\":{},\"median_ms\":{median:.4},\"mean_ms\":{mean:.4},\"samples_per_s\":{:.1},\"peak_rss_mib\":{:.1}}}",
        args.mode,
        args.layers,
        args.batch,
        times.len(),
        args.batch as f64 / (median / 1000.0),
        peak_rss_mib()
    );
}
