//! One training step of an MLP, timed: `cargo bench -p pedals-ml --bench step -- [options]`.
//!
//! Options: `--mode M` (default `exact`), `--layers 784,128,10`, `--batch 64`, `--steps 200`,
//! `--warmup 20`, `--threads 1` (for `exact-cpu`), `--isa portable|avx2|avx512-vnni` (for `exact-cpu`; default: the fastest this
//! CPU has). Modes:
//! - `exact`: exact mode on burn-flex (`BurnOps::cpu`);
//! - `exact-cpu`: exact mode on the crate's own SIMD kernels (`CpuOps`);
//! - `exact-reference`: the plain-Rust executable specification;
//! - `float`: float mode, burn-flex f32 with autodiff (`FloatTrainer`);
//! - `exact-gpu`, `float-gpu`: the same on burn-wgpu over Vulkan;
//! - `worker`, `worker-audited`: a worker's training loop on `CpuOps` (every step read back
//!   and hashed), without and with the audit leaf that auditing keeps of every step.
//!
//! Each step is forced to finish (`Device::sync` on wgpu) before its time is taken. Prints one
//! JSON line: the median and mean milliseconds per step, samples per second and the process's
//! peak resident memory. `scripts/bench.sh` runs the CPU modes and PyTorch side by side and
//! prints the ratios; docs/BENCHMARKS.md has the GPU command.

use std::time::Instant;

use burn::tensor::Device;
use pedals_ml::{
    Dataset, FloatTrainer, MlpConfig, MlpState, Session, TrainConfig, Trainer,
    exact::{BurnOps, CpuOps, ExactOps, Isa, Reference},
};

struct Args {
    mode: String,
    layers: Vec<usize>,
    batch: usize,
    steps: u64,
    warmup: u64,
    isa: Option<Isa>,
    threads: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        mode: "exact".into(),
        layers: vec![784, 128, 10],
        batch: 64,
        steps: 200,
        warmup: 20,
        isa: None,
        threads: 1,
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
            "--isa" => {
                let name = value()?;
                a.isa = Some(
                    [Isa::Portable, Isa::Avx2, Isa::Avx512Vnni]
                        .into_iter()
                        .find(|isa| isa.to_string() == name)
                        .ok_or(format!(
                            "--isa: {name} is not portable, avx2 or avx512-vnni"
                        ))?,
                );
            }
            "--threads" => a.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
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

fn config(args: &Args) -> TrainConfig {
    TrainConfig {
        model: MlpConfig {
            layers: args.layers.clone(),
            batch: args.batch,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 42,
        steps: 1,
        checkpoint_every: 1,
    }
}

fn data(args: &Args) -> Result<Dataset, String> {
    Dataset::synthetic(
        1,
        4096,
        args.layers[0],
        *args.layers.last().unwrap_or(&10) as u32,
    )
    .map_err(|e| e.to_string())
}

/// Times `steps` after `warmup` calls of `step(i)`, each followed by `sync()`.
fn time_steps(
    args: &Args,
    mut step: impl FnMut(u64) -> Result<(), String>,
    sync: impl Fn() -> Result<(), String>,
) -> Result<Vec<f64>, String> {
    let mut times = Vec::with_capacity(args.steps as usize);
    for i in 0..args.warmup + args.steps {
        let start = Instant::now();
        step(i)?;
        sync()?;
        if i >= args.warmup {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(times)
}

fn run_exact<O: ExactOps>(
    ops: O,
    args: &Args,
    sync: impl Fn() -> Result<(), String>,
) -> Result<Vec<f64>, String> {
    let config = config(args);
    let data = data(args)?;
    let init = MlpState::init(&config.model, config.seed).map_err(|e| e.to_string())?;
    let batches = Trainer::new(Reference, config.clone()).map_err(|e| e.to_string())?;
    let mut session = Session::new(ops, config.model.clone(), &init).map_err(|e| e.to_string())?;
    let batches: Vec<_> = (0..args.warmup + args.steps)
        .map(|i| batches.batch(&data, i))
        .collect();
    time_steps(
        args,
        |i| {
            let (x, y) = &batches[i as usize];
            session.step(x, y).map_err(|e| e.to_string())
        },
        sync,
    )
}

fn run_float(device: Device, args: &Args) -> Result<Vec<f64>, String> {
    let config = config(args);
    let data = data(args)?;
    let batches = Trainer::new(Reference, config.clone()).map_err(|e| e.to_string())?;
    let batches: Vec<_> = (0..args.warmup + args.steps)
        .map(|i| batches.batch(&data, i))
        .collect();
    let trainer = FloatTrainer::new(device.clone(), config).map_err(|e| e.to_string())?;
    let mut model = trainer.init().map_err(|e| e.to_string())?;
    time_steps(
        args,
        |i| {
            let (x, y) = &batches[i as usize];
            trainer
                .step_batch(&mut model, x, y)
                .map_err(|e| e.to_string())
        },
        || device.sync().map_err(|e| e.to_string()),
    )
}

/// A worker's whole training loop on `CpuOps` (`Trainer::train`: each step read back and
/// hashed, and with `audit` its audit leaf kept too), `args.steps` steps after a warm-up
/// run of `args.warmup`; every entry is the mean time per step of the timed run.
fn run_worker(args: &Args, audit: bool) -> Result<Vec<f64>, String> {
    let data = data(args)?;
    let run = |steps: u64| -> Result<f64, String> {
        let config = TrainConfig {
            steps,
            checkpoint_every: steps.max(1),
            ..config(args)
        };
        let init = MlpState::init(&config.model, config.seed).map_err(|e| e.to_string())?;
        let mut trainer =
            Trainer::new(CpuOps::new(args.threads), config).map_err(|e| e.to_string())?;
        if audit {
            trainer = trainer.auditing();
        }
        let start = Instant::now();
        trainer.train(&data, &init).map_err(|e| e.to_string())?;
        Ok(start.elapsed().as_secs_f64() * 1000.0 / steps.max(1) as f64)
    };
    run(args.warmup)?;
    let per_step = run(args.steps)?;
    Ok(vec![per_step; args.steps as usize])
}

fn run_mode(args: &Args) -> Result<Vec<f64>, String> {
    let no_sync = || Ok(());
    match args.mode.as_str() {
        "exact" => run_exact(BurnOps::cpu(), args, no_sync),
        "exact-reference" => run_exact(Reference, args, no_sync),
        "exact-cpu" => {
            let cpu = CpuOps::new(args.threads);
            let cpu = match args.isa {
                Some(isa) => cpu
                    .with_isa(isa)
                    .ok_or(format!("this CPU does not support {isa}"))?,
                None => cpu,
            };
            eprintln!("exact-cpu: {} kernels", cpu.isa());
            run_exact(cpu, args, no_sync)
        }
        "float" => run_float(Device::flex(), args),
        "worker" => run_worker(args, false),
        "worker-audited" => run_worker(args, true),
        #[cfg(feature = "wgpu")]
        "exact-gpu" => {
            let gpu = BurnOps::gpu().map_err(|e| e.to_string())?;
            eprintln!("exact-gpu: {}", gpu.adapter_name().unwrap_or_default());
            let device = gpu.device().clone();
            run_exact(gpu, args, || device.sync().map_err(|e| e.to_string()))
        }
        #[cfg(feature = "wgpu")]
        "float-gpu" => {
            let gpu = BurnOps::gpu().map_err(|e| e.to_string())?;
            run_float(gpu.device().clone(), args)
        }
        other => Err(format!(
            "unknown mode {other}; use exact, exact-cpu, exact-reference, float, exact-gpu or float-gpu"
        )),
    }
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let mut times = match run_mode(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let label = match args.mode.as_str() {
        "exact-cpu" => format!("exact-cpu-{}", args.isa.unwrap_or_else(Isa::detect)),
        mode => mode.to_string(),
    };
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{{\"impl\":\"pedals-{}\",\"layers\":{:?},\"batch\":{},\"steps\":{},\"median_ms\":{median:.4},\"mean_ms\":{mean:.4},\"samples_per_s\":{:.1},\"peak_rss_mib\":{:.1}}}",
        label,
        args.layers,
        args.batch,
        times.len(),
        args.batch as f64 / (median / 1000.0),
        peak_rss_mib()
    );
}
