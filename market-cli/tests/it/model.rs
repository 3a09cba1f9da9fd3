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
