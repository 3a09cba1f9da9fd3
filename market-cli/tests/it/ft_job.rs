//! A fine-tuning job through the market, with real processes on a real chain: `pedals job post`
//! with a `[finetune]` job file (a Hugging Face checkpoint folder and a JSONL dataset),
//! `pedals provider run` fetching it over libp2p, fine-tuning step by step and getting paid, and
//! `pedals job result` saving the adapter and re-executing steps from the provider's own
//! checkpoints. A provider that lies about one step is caught by the re-execution. Bad job
//! files are refused before any transaction.

use std::path::{Path, PathBuf};

use alloy::providers::Provider;

use crate::free_port;
use crate::lm_job::{World, json, pedals, run_job};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The job file: the tiny Llama fixture, the held-out GPL-3 examples, three steps of four.
pub(crate) fn ft_job(window: u32, extra: &str) -> String {
    job_text(
        window,
        &format!(
            "targets = [\"q_proj\", \"v_proj\", \"down_proj\"]\nrank = 4\nalpha = 8\n\
             lr = 3e-3\n{extra}"
        ),
    )
}

/// The same model and data as a full fine-tune (`method = "full"`: every weight trained, no
/// adapter terms), three steps of four.
pub(crate) fn full_job(window: u32) -> String {
    job_text(window, "method = \"full\"\nlr = 1e-3")
}

fn job_text(window: u32, terms: &str) -> String {
    let model = root().join("crates/lm/tests/fixtures/llama-tiny");
    let dataset = root().join("crates/lm/tests/fixtures/finetune/heldout.jsonl");
    format!(
        r#"
payment_eth = "0.05"
challenge_window_secs = {window}

[finetune]
model = {model:?}
dataset = {dataset:?}
steps = 3
batch = 4
seed = 9
{terms}
"#,
        model = model.display().to_string(),
        dataset = dataset.display().to_string(),
    )
}

/// The state after the job's three steps as this process computes them from the same files,
/// with the job file's terms and their defaults (`lr_end = lr / 10`, warm-up `steps / 10`).
fn computed_state(terms: serde_json::Value, method: pedals_lm::Method) -> Vec<u8> {
    let model = pedals_lm::quantize(
        &pedals_lm::Checkpoint::load_hf(&root().join("crates/lm/tests/fixtures/llama-tiny"))
            .expect("checkpoint"),
        8,
    )
    .expect("quantized");
    let model_bytes = model.to_bytes().expect("bytes");
    let data = std::fs::read(root().join("crates/lm/tests/fixtures/finetune/heldout.jsonl"))
        .expect("dataset");
    let terms: pedals_lm::train::Terms = serde_json::from_value(terms).expect("terms");
    let spec =
        pedals_lm::FinetuneSpec::with_method(&model_bytes, &data, &terms, method).expect("spec");
    let count = data.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(spec.count, count);
    let inputs = spec.load(&model_bytes, &data).expect("inputs");
    let mut state = inputs.initial().expect("initial");
    for _ in 0..3 {
        inputs.step(&mut state);
    }
    inputs.state_bytes(&state).expect("bytes")
}

/// A full fine-tune through the market: posted from the CLI, trained by the provider, paid,
/// every step re-executed here matching, and the result saved as a Hugging Face checkpoint
/// whose state is the one this process computes from the same files.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_finetune_job_is_trained_paid_rechecked_and_saved_as_a_model() {
    let w = World::new().await;
    let (devnet, dir, market, window) = (&w.devnet, w.tmp.path(), &w.market, w.window);
    let chain = market.provider().clone();
    let job = dir.join("full.toml");
    std::fs::write(&job, full_job(window)).expect("job file");
    let before = chain
        .get_balance(w.provider.address())
        .await
        .expect("balance");
    let saved = |id: u64| dir.join(format!("job-{id}-model"));
    let (posted, out) = run_job(dir, devnet, market, &job, free_port(), false, saved).await;
    assert_eq!(posted["method"], "full");
    let id = posted["jobId"].as_u64().expect("job id");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = json(&out);
    assert_eq!(result["rechecked"], serde_json::json!([1, 2, 3]));
    assert_eq!(result["mismatched"], serde_json::json!([]));
    w.assert_paid(before).await;
    let terms = serde_json::json!({
        "rank": 8, "alpha": 16, "targets": [], "lr": 1e-3, "lr_end": 1e-4,
        "betas": [0.9, 0.999], "eps": 1e-6, "warmup": 0, "steps": 3, "batch": 4, "seed": 9
    });
    assert_eq!(
        std::fs::read(saved(id).join("state.pdls")).expect("saved state"),
        computed_state(terms, pedals_lm::Method::Full)
    );
    // A Hugging Face checkpoint folder that loads back.
    pedals_lm::Checkpoint::load_hf(&saved(id)).expect("the saved model loads");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finetune_job_is_trained_paid_and_rechecked_and_a_lying_step_is_caught() {
    let w = World::new().await;
    let (devnet, dir, market, window) = (&w.devnet, w.tmp.path(), &w.market, w.window);
    let chain = market.provider().clone();

    // Bad job files are refused before any transaction, saying what to fix.
    let long = dir.join("long.jsonl");
    std::fs::write(
        &long,
        format!("{{\"text\": \"{}\"}}\n", "word ".repeat(300)),
    )
    .expect("w");
    let dataset = format!(
        "{:?}",
        root()
            .join("crates/lm/tests/fixtures/finetune/heldout.jsonl")
            .display()
            .to_string()
    );
    w.assert_refused(vec![
        (
            ft_job(window, "").replace("alpha = 8", "alpha = 12"),
            "not a power of two",
        ),
        (
            ft_job(window, "").replace("\"down_proj\"", "\"mlp\""),
            "unknown LoRA target \"mlp\"",
        ),
        (
            ft_job(window, "").replace(&dataset, &format!("{:?}", long.display().to_string())),
            "more than the model's context of 128; split the example",
        ),
        (
            ft_job(window, "").replace(
                &dataset,
                &format!("{:?}", root().join("README.md").display().to_string()),
            ),
            "not a JSON object",
        ),
        (
            ft_job(window, "lr = 2.0").replace("lr = 3e-3\n", ""),
            "learning rate",
        ),
        (
            format!("holdout = 5\n{}", ft_job(window, "")),
            "holdout does not apply",
        ),
        (
            ft_job(window, "bits = 4"),
            "finetune.bits = 4: write 8 or 16",
        ),
        (
            ft_job(window, "method = \"full\""),
            "trains every weight: remove rank, alpha and targets",
        ),
        (
            ft_job(window, "method = \"qlora\""),
            "finetune.method \"qlora\" is unknown",
        ),
    ])
    .await;

    // An honest provider: paid, its first state and every step re-executed here match.
    let job = dir.join("ft.toml");
    std::fs::write(&job, ft_job(window, "")).expect("job file");
    let before = chain
        .get_balance(w.provider.address())
        .await
        .expect("balance");
    let adapter = |id: u64| dir.join(format!("job-{id}-adapter"));
    let (posted, out) = run_job(dir, devnet, market, &job, free_port(), false, adapter).await;
    assert_eq!(posted["kind"], "lm-finetune");
    assert_eq!(posted["steps"], 3);
    let id = posted["jobId"].as_u64().expect("job id");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = json(&out);
    assert_eq!(result["rechecked"], serde_json::json!([1, 2, 3]));
    assert_eq!(result["mismatched"], serde_json::json!([]));
    assert_eq!(result["unavailable"], serde_json::json!([]));
    w.assert_paid(before).await;
    // The saved state is the fine-tune this process computes from the same files.
    let terms = serde_json::json!({
        "rank": 4, "alpha": 8, "targets": ["q_proj", "v_proj", "down_proj"],
        "lr": 3e-3, "lr_end": 3e-4, "betas": [0.9, 0.999], "eps": 1e-6, "warmup": 0,
        "steps": 3, "batch": 4, "seed": 9
    });
    assert_eq!(
        std::fs::read(adapter(id).join("state.pdls")).expect("saved state"),
        computed_state(terms, pedals_lm::Method::Lora)
    );
    assert!(adapter(id).join("adapter_model.safetensors").is_file());
    assert!(adapter(id).join("adapter_config.json").is_file());

    // With the worker's node gone, nothing can be re-executed: the command fails, names every
    // step it could not check and the demand that makes the worker publish one.
    let gone = pedals(dir, devnet)
        .args(["job", "result", "--json", "--recheck", "3", &id.to_string()])
        .args([
            "--bootstrap",
            &format!("/ip4/127.0.0.1/tcp/{}", free_port()),
        ])
        .arg("--out")
        .arg(dir.join("again"))
        .output()
        .expect("runs");
    assert_eq!(gone.status.code(), Some(1), "unchecked steps are an error");
    assert_eq!(json(&gone)["unavailable"], serde_json::json!([0, 1, 2, 3]));
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(
        stderr.contains(&format!("pedals job demand {id} --step N")),
        "{stderr}"
    );

    // A provider that lies about step 2 (index 1): its trace is consistent with its lie, so
    // the final state is accepted as committed, but re-executing step 2 finds it.
    let (_, out) = run_job(dir, devnet, market, &job, free_port(), true, adapter).await;
    assert_eq!(out.status.code(), Some(1), "a mismatch is an error");
    let result = json(&out);
    assert_eq!(result["mismatched"], serde_json::json!([2]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("differ from what this machine computes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
