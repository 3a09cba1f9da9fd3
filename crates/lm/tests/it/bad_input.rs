//! Bad checkpoints, stored models and requests: a typed error that says what is wrong, never
//! a panic.

use std::path::Path;

use pedals_lm::{Checkpoint, ExactModel, GenParams, KvCache, LmError, Sampling, quantize};
use serde_json::Value;

use crate::fixtures::{checkpoint, dir};

fn copy(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("test step");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(dir(name).join(f), tmp.path().join(f)).expect("test step");
    }
    tmp
}

fn edit_config(path: &Path, edit: impl FnOnce(&mut Value)) {
    let file = path.join("config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("test step"))
        .expect("test step");
    edit(&mut v);
    std::fs::write(file, v.to_string()).expect("test step");
}

fn load_err(path: &Path) -> String {
    Checkpoint::load_hf(path)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn malformed_and_truncated_files_are_refused() {
    let t = copy("llama-tiny");
    let weights = t.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).expect("test step");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("test step");
    assert!(load_err(t.path()).contains("not a valid safetensors file"));
    std::fs::write(&weights, b"").expect("test step");
    assert!(load_err(t.path()).contains("not a valid safetensors file"));
    std::fs::remove_file(&weights).expect("test step");
    assert!(load_err(t.path()).contains("model.safetensors"));

    let t = copy("gpt2-tiny");
    std::fs::write(t.path().join("config.json"), "{\"model_type\": \"gpt2\", ").expect("test step");
    assert!(load_err(t.path()).contains("not valid JSON"));
    std::fs::remove_file(t.path().join("config.json")).expect("test step");
    assert!(load_err(t.path()).contains("config.json"));

    let ck = checkpoint("llama-tiny");
    let bad = pedals_lm::Tokenizer::from_bytes(&ck.tokenizer.expect("test step")[..100])
        .err()
        .expect("test step");
    assert!(matches!(bad, LmError::Tokenizer(_)), "{bad}");
}

#[test]
fn unsupported_architectures_name_the_supported_ones() {
    let t = copy("llama-tiny");
    edit_config(t.path(), |v| v["model_type"] = "mamba".into());
    let e = load_err(t.path());
    assert!(e.contains("mamba") && e.contains("llama, gpt2"), "{e}");
    edit_config(t.path(), |v| {
        v["model_type"] = "llama".into();
        v["hidden_act"] = "gelu".into();
    });
    assert!(load_err(t.path()).contains("hidden_act"));
    edit_config(t.path(), |v| {
        v["hidden_act"] = "silu".into();
        v["rope_parameters"]["rope_type"] = "yarn".into();
    });
    assert!(load_err(t.path()).contains("yarn"));
}

#[test]
fn shapes_that_disagree_with_the_config_are_refused() {
    let t = copy("llama-tiny");
    edit_config(t.path(), |v| v["intermediate_size"] = 96.into());
    let e = load_err(t.path());
    assert!(e.contains("gate") && e.contains("[96, 48]"), "{e}");
    edit_config(t.path(), |v| {
        v["intermediate_size"] = 128.into();
        v["num_key_value_heads"] = 3.into();
    });
    assert!(load_err(t.path()).contains("do not share"));
    edit_config(t.path(), |v| {
        v["num_key_value_heads"] = 2.into();
        v["max_position_embeddings"] = 100_000.into();
    });
    assert!(load_err(t.path()).contains("exact mode's bound"));
}

#[test]
fn nan_and_out_of_range_weights_are_refused() {
    let t = copy("gpt2-tiny");
    let weights = t.path().join("model.safetensors");
    let mut bytes = std::fs::read(&weights).expect("test step");
    // The header is followed by the data; poison the last value of the last tensor.
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&weights, &bytes).expect("test step");
    assert!(load_err(t.path()).contains("NaN"));

    let mut ck = checkpoint("llama-tiny");
    ck.tensors
        .get_mut("b0.attn_norm.weight")
        .expect("test step")
        .data[0] = 1e6;
    let e = quantize(&ck, 8).expect_err("must fail").to_string();
    assert!(
        e.contains("b0.attn_norm.weight") && e.contains("outside"),
        "{e}"
    );
    let mut ck = checkpoint("llama-tiny");
    ck.tensors.get_mut("b1.up.weight").expect("test step").data[5] = 1e30;
    assert!(
        quantize(&ck, 8)
            .expect_err("must fail")
            .to_string()
            .contains("beyond")
    );
    assert!(
        quantize(&checkpoint("llama-tiny"), 4)
            .expect_err("must fail")
            .to_string()
            .contains("8 or 16")
    );
}

#[test]
fn corrupt_stored_models_are_refused() {
    let model = quantize(&checkpoint("gpt2-tiny"), 8).expect("test step");
    let bytes = model.to_bytes().expect("test step");
    for cut in [0, 7, bytes.len() / 3, bytes.len() - 1] {
        assert!(
            matches!(
                ExactModel::from_bytes(&bytes[..cut]),
                Err(LmError::Format(_))
            ),
            "cut {cut}"
        );
    }
    let mut other = model.clone();
    other.blocks[0].up.b.as_mut().expect("test step")[0] = i32::MAX;
    let e = ExactModel::from_bytes(&other.to_bytes().expect("test step"))
        .expect_err("must fail")
        .to_string();
    assert!(e.contains("b0.up.bias"), "{e}");
}

#[test]
fn prompts_beyond_the_context_and_bad_tokens_are_refused() {
    let model = quantize(&checkpoint("llama-tiny"), 8).expect("test step");
    let long = vec![5u32; model.config.context + 1];
    let e = model
        .forward(&long, &mut KvCache::new(&model.config), false)
        .expect_err("must fail");
    assert!(matches!(e, LmError::TooLong { .. }), "{e}");
    let p = GenParams {
        max_tokens: model.config.context,
        sampling: Sampling::GREEDY,
        stop: vec![],
    };
    assert!(matches!(
        model.generate(&[1, 2], &p, None),
        Err(LmError::TooLong { .. })
    ));
    let e = model
        .forward(&[1, 9999], &mut KvCache::new(&model.config), false)
        .expect_err("must fail");
    assert!(matches!(e, LmError::Token { id: 9999, .. }), "{e}");
    assert!(
        model
            .generate(
                &[],
                &GenParams {
                    max_tokens: 1,
                    ..p.clone()
                },
                None
            )
            .is_err()
    );
    assert!(Sampling::new(-1.0, 0, 1.0, 0).is_err() && Sampling::new(1.0, 0, 0.0, 0).is_err());
}
