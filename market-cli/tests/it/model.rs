//! `pedals model`: a real Hugging Face checkpoint imported into the store, inspected, run and
//! exported; the export imports to the same CID; bad input exits 1 with what to do.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::pedals;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/lm/tests/fixtures")
        .join(name)
}

fn run_json(args: &[&str], dir: &Path) -> Value {
    let out = pedals()
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn a_checkpoint_is_imported_run_and_exported_to_the_same_cid() {
    let data = tempfile::tempdir().expect("tempdir");
    let src = fixture("gpt2-tiny");
    let imported = run_json(
        &["model", "import", src.to_str().expect("utf-8"), "--json"],
        data.path(),
    );
    let cid = imported["cid"].as_str().expect("cid").to_owned();
    assert_eq!(imported["family"], "gpt2");
    assert_eq!(imported["parameters"], 81_216);
    let inspected = run_json(&["model", "inspect", &cid, "--json"], data.path());
    assert_eq!(inspected["cid"], cid.as_str());
    let args = [
        "model",
        "generate",
        &cid,
        "--prompt",
        "The world is",
        "--max-tokens",
        "12",
    ];
    let sampled = [
        &args[..],
        &["--temperature", "0.9", "--seed", "4", "--json"],
    ]
    .concat();
    let a = run_json(&sampled, data.path());
    let b = run_json(&sampled, data.path());
    assert_eq!(
        a["completion"]["tokens"].as_array().expect("tokens").len(),
        12
    );
    assert_eq!(a, b, "the same seed gives the same tokens");
    // On burn's CPU backend and on the GPU (lavapipe in CI), the same tokens.
    for device in ["flex", "gpu"] {
        let on = run_json(&[&sampled[..], &["--device", device]].concat(), data.path());
        assert_eq!(on["completion"], a["completion"], "on {device}");
        assert_ne!(on["device"], "cpu");
    }

    let out_dir = data.path().join("exported");
    let out = pedals()
        .args(["model", "export", &cid, "--out"])
        .arg(&out_dir)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = run_json(
        &[
            "model",
            "import",
            out_dir.to_str().expect("utf-8"),
            "--json",
        ],
        data.path(),
    );
    assert_eq!(again["cid"], cid.as_str());
}

#[test]
fn bad_models_and_requests_exit_1_and_say_what_to_do() {
    let data = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    let cases: [(Vec<String>, &str); 3] = [
        (
            vec![
                "model".into(),
                "import".into(),
                empty.path().display().to_string(),
            ],
            "config.json",
        ),
        (
            vec![
                "model".into(),
                "generate".into(),
                "bafkreinotacid".into(),
                "--prompt".into(),
                "x".into(),
            ],
            "neither a file, a folder nor a CID",
        ),
        (
            vec![
                "model".into(),
                "generate".into(),
                fixture("llama-tiny").display().to_string(),
                "--prompt-ids".into(),
                "1,2".into(),
                "--max-tokens".into(),
                "500".into(),
            ],
            "do not fit the model's context",
        ),
    ];
    for (args, want) in cases {
        let out = pedals()
            .args(&args)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

/// `pedals model finetune` on an imported model: the loss falls, the trace file is the trace
/// its root commits to, the state file decodes to the final state hash, and the adapter is
/// written in peft's layout; a bad dataset or bad terms exit 1 with what to change.
#[test]
fn finetune_writes_a_peft_adapter_a_state_and_its_trace() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = data.path().join("adapter");
    let ft = fixture("finetune");
    let src = fixture("llama-tiny");
    let cid = run_json(
        &[
            "model",
            "import",
            src.to_str().expect("utf-8"),
            "--bits",
            "16",
            "--json",
        ],
        data.path(),
    )["cid"]
        .as_str()
        .expect("cid")
        .to_owned();
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let train = path(&ft.join("train.jsonl"));
    let args = |out: &Path, data: &str| -> Vec<String> {
        [
            "model",
            "finetune",
            &cid,
            "--data",
            data,
            "--heldout",
            &path(&ft.join("heldout.jsonl")),
            "--out",
            &path(out),
            "--steps",
            "20",
            "--lr",
            "3e-3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let targets = ["--targets", "q_proj,v_proj,up_proj,down_proj", "--json"];
    let run = |out: &Path| {
        let a = args(out, &train);
        let a: Vec<&str> = a.iter().map(String::as_str).chain(targets).collect();
        run_json(&a, data.path())
    };
    let summary = run(&out);
    let (before, after) = (
        summary["heldoutBefore"].as_f64().expect("before"),
        summary["heldoutAfter"].as_f64().expect("after"),
    );
    assert!(after < before, "{before} -> {after}");
    let trace: Value =
        serde_json::from_slice(&std::fs::read(out.join("trace.json")).expect("trace.json"))
            .expect("json");
    let hashes: Vec<alloy::primitives::B256> =
        serde_json::from_value(trace["stateHashes"].clone()).expect("hashes");
    assert_eq!(hashes.len(), 21);
    let commitment = pedals_core::TraceCommitment::new(hashes).expect("trace");
    assert_eq!(summary["traceRoot"], serde_json::json!(commitment.root()));
    let bytes = std::fs::read(out.join("state.pdls")).expect("state");
    assert_eq!(
        pedals_core::state_hash_of_bytes(&bytes).expect("canonical"),
        commitment.final_hash()
    );
    let adapter = std::fs::read(out.join("adapter_model.safetensors")).expect("adapter");
    let names = String::from_utf8_lossy(&adapter[..4096.min(adapter.len())]).into_owned();
    assert!(names.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    // The same command gives the same bits.
    let again = run(&data.path().join("b"));
    assert_eq!(again["traceRoot"], summary["traceRoot"]);
    // A full fine-tune: every weight trained, the model written as a Hugging Face folder that
    // the CLI imports again.
    let full_out = data.path().join("full");
    let a = args(&full_out, &train);
    let a: Vec<&str> = a
        .iter()
        .map(String::as_str)
        .chain(["--full", "--json"])
        .collect();
    let full = run_json(&a, data.path());
    assert_eq!(full["method"], "full");
    let (before, after) = (
        full["heldoutBefore"].as_f64().expect("before"),
        full["heldoutAfter"].as_f64().expect("after"),
    );
    assert!(after < before, "full: {before} -> {after}");
    let bytes = std::fs::read(full_out.join("state.pdls")).expect("state");
    assert_eq!(
        serde_json::json!(pedals_core::state_hash_of_bytes(&bytes).expect("canonical")),
        full["finalStateHash"]
    );
    let imported = run_json(
        &[
            "model",
            "import",
            &path(&full_out.join("model")),
            "--bits",
            "16",
            "--json",
        ],
        data.path(),
    );
    assert!(imported["cid"].is_string(), "{imported}");
    for (dataset, extra, says) in [
        (train.as_str(), vec!["--alpha", "12"], "not a power of two"),
        (
            train.as_str(),
            vec!["--targets", "qkv"],
            "unknown LoRA target",
        ),
        ("/etc/hostname", vec![], "line 1: not a JSON object"),
    ] {
        let out = crate::pedals()
            .args(args(&data.path().join("bad"), dataset))
            .args(&extra)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}
