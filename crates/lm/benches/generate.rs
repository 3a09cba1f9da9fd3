//! Prefill and decode speed of a language model:
//! `cargo bench -p pedals-lm --bench generate -- --model DIR [options]`.
//!
//! Options: `--mode exact|float` (default `exact`), `--bits 8|16` (exact, default 8),
//! `--prompt 128` (prompt tokens), `--decode 64` (tokens generated after it, greedy),
//! `--threads 1`, `--device cpu|flex|gpu` (exact: where the matrix products run; `gpu` is
//! wgpu over Vulkan; off the CPU the run is repeated on the CPU kernel and the tokens and last
//! logits compared, `same_as_cpu` in the output). The prompt is the first tokens of a fixed pseudo-random sequence. Exact mode
//! prefills through the cache and decodes one token at a time; float mode (no cache) is timed
//! on the prefill only. Prints one JSON line: tokens per second of each phase, the model's
//! weight bytes, the peak resident memory of the run (after the float checkpoint is
//! quantized and dropped) and of the import before it. `scripts/bench_lm.sh` runs it beside
//! Hugging Face `transformers` and prints the ratios; docs/BENCHMARKS.md records them.
//! `cargo test --all-targets` (CI) runs it without `--bench`: a smoke run of both modes on the
//! committed tiny model, no timing judged.

use std::path::PathBuf;
use std::time::Instant;

use pedals_lm::{Checkpoint, ExactModel, KvCache, float::FloatModel, quantize, sample::argmax};

struct Args {
    model: PathBuf,
    mode: String,
    bits: u8,
    prompt: usize,
    decode: usize,
    threads: usize,
    device: String,
    smoke: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        model: PathBuf::new(),
        mode: "exact".into(),
        bits: 8,
        prompt: 128,
        decode: 64,
        threads: 1,
        device: "cpu".into(),
        smoke: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = value()?.into(),
            "--mode" => a.mode = value()?,
            "--bits" => a.bits = value()?.parse().map_err(|e| format!("--bits: {e}"))?,
            "--prompt" => a.prompt = value()?.parse().map_err(|e| format!("--prompt: {e}"))?,
            "--decode" => a.decode = value()?.parse().map_err(|e| format!("--decode: {e}"))?,
            "--threads" => a.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--device" => a.device = value()?,
            "--bench" => a.smoke = false,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn prompt(vocab: u64, n: usize) -> Vec<u32> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % vocab) as u32
        })
        .collect()
}

fn main() -> Result<(), String> {
    let mut a = parse()?;
    if a.smoke {
        a.model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama-tiny");
        (a.prompt, a.decode) = (16, 4);
        for mode in ["exact", "float"] {
            a.mode = mode.into();
            run(&a)?;
        }
        (a.mode, a.device) = ("exact".into(), "flex".into());
        run(&a)?;
        return Ok(());
    }
    if a.model.as_os_str().is_empty() {
        return Err("--model DIR (a Hugging Face checkpoint folder) is required".into());
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build_global()
        .map_err(|e| e.to_string())?;
    run(&a)
}

fn run(a: &Args) -> Result<(), String> {
    let ck = Checkpoint::load_hf(&a.model).map_err(|e| e.to_string())?;
    let prompt = prompt(ck.config.vocab as u64, a.prompt);
    let line = match a.mode.as_str() {
        "exact" => {
            let model = quantize(&ck, a.bits).map_err(|e| e.to_string())?;
            drop(ck);
            let import_peak = peak_rss_mb();
            // The run's own peak from here: Linux resets the high-water mark on "5".
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            let (on, adapter) = on_device(&model, &a.device)?;
            let (prefill, decode, tokens, last, kv) = timed(&on, &prompt, a.decode)?;
            let same = (a.device != "cpu")
                .then(|| timed(&model, &prompt, a.decode).map(|r| r.2 == tokens && r.3 == last))
                .transpose()?;
            format!(
                "{{\"impl\":\"pedals-exact-w{}\",\"device\":{:?},\"same_as_cpu\":{},\"threads\":{},\"prompt\":{},\"decode\":{},\"prefill_tok_s\":{:.1},\"decode_tok_s\":{:.2},\"weight_mb\":{:.1},\"kv_cache_mb\":{:.2},\"peak_rss_mb\":{:.1},\"import_peak_rss_mb\":{:.1}}}",
                a.bits,
                adapter,
                same.map_or("null".to_string(), |s| s.to_string()),
                a.threads,
                a.prompt,
                a.decode,
                a.prompt as f64 / prefill,
                a.decode as f64 / decode,
                model.weight_bytes() as f64 / 1e6,
                kv as f64 / 1e6,
                peak_rss_mb(),
                import_peak
            )
        }
        "float" => {
            let t0 = Instant::now();
            FloatModel::new(&ck)
                .forward(&prompt)
                .map_err(|e| e.to_string())?;
            let prefill = t0.elapsed().as_secs_f64();
            format!(
                "{{\"impl\":\"pedals-float\",\"threads\":{},\"prompt\":{},\"prefill_tok_s\":{:.1},\"peak_rss_mb\":{:.1}}}",
                a.threads,
                a.prompt,
                a.prompt as f64 / prefill,
                peak_rss_mb()
            )
        }
        other => return Err(format!("unknown mode {other}")),
    };
    println!("{line}");
    Ok(())
}

/// `model` with its products on `device` (`cpu`: as it is), and the device's name.
fn on_device(model: &ExactModel, device: &str) -> Result<(ExactModel, String), String> {
    let mut on = model.clone();
    match pedals_lm::exact::device::named(device).map_err(|e| e.to_string())? {
        None => Ok((on, "cpu".into())),
        Some((d, name)) => {
            on.to_device(&d);
            Ok((on, name))
        }
    }
}

/// A timed run: the seconds of the prefill and of the decoding, the tokens, the last logits
/// and the cache's bytes.
type Timed = (f64, f64, Vec<u32>, Vec<i32>, usize);

/// Prefills `prompt`, then decodes `n` tokens greedily.
fn timed(model: &ExactModel, prompt: &[u32], n: usize) -> Result<Timed, String> {
    let mut cache = KvCache::new(&model.config);
    let t0 = Instant::now();
    let mut logits = model
        .forward(prompt, &mut cache, false)
        .map_err(|e| e.to_string())?;
    let prefill = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        let next = argmax(&logits);
        tokens.push(next);
        logits = model
            .forward(&[next], &mut cache, false)
            .map_err(|e| e.to_string())?;
    }
    Ok((
        prefill,
        t1.elapsed().as_secs_f64(),
        tokens,
        logits,
        cache.bytes(),
    ))
}
