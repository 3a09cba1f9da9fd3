//! The fine-tuning job spec: canonical bytes, its files checked against it, and each kind of
//! spec refusing to parse as another.

use pedals_core::cid_of;
use pedals_lm::{CanonicalSpec, FinetuneSpec, LmJobSpec};

use crate::fixtures;

fn terms() -> pedals_lm::train::Terms {
    serde_json::from_value(serde_json::json!({
        "rank": 4, "alpha": 8, "targets": ["v_proj", "q_proj"], "lr": 3e-3, "lr_end": 3e-4,
        "betas": [0.9, 0.999], "eps": 1e-6, "warmup": 2, "steps": 6, "batch": 4, "seed": 5
    }))
    .expect("terms")
}

#[test]
fn a_finetune_spec_is_canonical_checks_its_files_and_runs_reproducibly() {
    let model = pedals_lm::quantize(&fixtures::checkpoint("llama-tiny"), 8).expect("model");
    let model_bytes = model.to_bytes().expect("bytes");
    let dataset = std::fs::read(fixtures::dir("finetune").join("heldout.jsonl")).expect("data");
    let count = dataset.iter().filter(|&&b| b == b'\n').count() as u64;
    let spec = FinetuneSpec::new(&model_bytes, &dataset, &terms()).expect("spec");
    assert_eq!(spec.count, count);
    assert_eq!(spec.model, cid_of(&model_bytes).to_string());
    assert_eq!(spec.targets, ["q_proj", "v_proj"], "sorted");
    let bytes = spec.to_canonical_bytes();
    assert!(FinetuneSpec::is_finetune(&bytes) && !LmJobSpec::is_lm(&bytes));
    assert_eq!(
        FinetuneSpec::from_canonical_bytes(&bytes).expect("parses"),
        spec
    );
    assert!(LmJobSpec::from_canonical_bytes(&bytes).is_err());
    assert!(pedals_ml::JobSpec::from_canonical_bytes(&bytes).is_err());
    let spaced = String::from_utf8(bytes.clone())
        .expect("utf-8")
        .replace(',', ", ");
    assert!(FinetuneSpec::from_canonical_bytes(spaced.as_bytes()).is_err());

    let inputs = spec.load(&model_bytes, &dataset).expect("loads");
    let mut a = inputs.initial().expect("initial");
    let mut hashes = Vec::new();
    for _ in 0..spec.steps {
        inputs.step(&mut a);
        let bytes = inputs.state_bytes(&a).expect("bytes");
        assert_eq!(inputs.state_from(&bytes).expect("decodes"), a);
        hashes.push(pedals_core::state_hash_of_bytes(&bytes).expect("hash"));
    }
    // A step resumed from a stored state is the step run straight through.
    let mut b = inputs.initial().expect("initial");
    for _ in 0..3 {
        inputs.step(&mut b);
    }
    let mut c = inputs
        .state_from(&inputs.state_bytes(&b).expect("bytes"))
        .expect("decodes");
    for _ in 3..spec.steps {
        inputs.step(&mut c);
    }
    assert_eq!(c, a);

    // Files that are not the spec's, or a spec that does not match its files, are refused.
    let err = |r: Result<pedals_lm::FinetuneInputs, pedals_lm::LmError>| match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err(spec.load(&model_bytes, b"{\"text\": \"other\"}\n"))
            .contains("not the ones the spec names")
    );
    let other = pedals_lm::quantize(&fixtures::checkpoint("llama-tiny"), 16).expect("model");
    assert!(err(spec.load(&other.to_bytes().expect("bytes"), &dataset)).contains("not the ones"));
    let mut miscounted = spec.clone();
    miscounted.count += 1;
    assert!(
        err(miscounted.load(&model_bytes, &dataset)).contains("examples but the dataset holds")
    );
    // Roots that are not the files': a dispute would open other rows.
    let zero = format!("0x{}", "0".repeat(64));
    let wrong: [fn(&mut FinetuneSpec) -> &mut String; 3] = [
        |s| &mut s.model_root,
        |s| &mut s.data_root,
        |s| &mut s.init_hash,
    ];
    for field in wrong {
        let mut other = spec.clone();
        *field(&mut other) = zero.clone();
        assert!(err(other.load(&model_bytes, &dataset)).contains("is not the files'"));
    }
    let mut shape = spec.clone();
    shape.arch.layers += 1;
    assert!(err(shape.load(&model_bytes, &dataset)).contains("arch is not the model's shape"));
    let mut unhex = spec.clone();
    unhex.data_root = "root".into();
    assert!(
        unhex
            .validate()
            .expect_err("not a hash")
            .to_string()
            .contains("data_root")
    );
    let bad = b"{\"text\": \"fine\"}\nnot json\n";
    let new_err = |m: &[u8], d: &[u8], t: &pedals_lm::train::Terms| match FinetuneSpec::new(m, d, t)
    {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(new_err(&model_bytes, bad, &terms()).contains("line 2"));
    let gpt2 = pedals_lm::quantize(&fixtures::checkpoint("gpt2-tiny"), 8).expect("model");
    let mut gate = terms();
    gate.targets = vec!["gate_proj".into()];
    assert!(new_err(&gpt2.to_bytes().expect("b"), &dataset, &gate).contains("gate_proj"));
}

/// `tests/vectors/finetune_spec.json`: fine-tuning specs of both families with their
/// canonical bytes and hash, and the step constants of step 2, for the Solidity rebuild
/// (`contracts/test/LmSpec.t.sol`). After an intended change of the spec:
/// `PEDALS_BLESS=1 cargo test --workspace --test it finetune_spec_vectors`.
#[test]
fn finetune_spec_vectors_are_what_the_specs_encode() {
    use pedals_lm::dispute::StepParams;
    use sha2::Digest;
    let dataset = std::fs::read(fixtures::dir("finetune").join("heldout.jsonl")).expect("data");
    let mut cases = Vec::new();
    for (name, bits, targets) in [
        ("llama-tiny", 8, vec!["q_proj", "v_proj", "down_proj"]),
        ("gpt2-tiny", 16, vec!["k_proj", "o_proj", "up_proj"]),
    ] {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), bits).expect("model");
        let bytes = model.to_bytes().expect("bytes");
        let mut t = terms();
        t.targets = targets.into_iter().map(String::from).collect();
        t.alpha = 2;
        let spec = FinetuneSpec::new(&bytes, &dataset, &t).expect("spec");
        let canonical = spec.to_canonical_bytes();
        let ft = spec.fine_tune().expect("run");
        let p = StepParams::of(&model.config, &ft, 2);
        let mask: u32 = ft.lora.targets.iter().map(|t| 1u32 << t.index()).sum();
        cases.push(serde_json::json!({
            "family": name, "spec": spec, "target_mask": mask,
            "bytes": String::from_utf8(canonical.clone()).expect("utf-8"),
            "sha256": alloy_primitives::B256::from_slice(&sha2::Sha256::digest(&canonical)).to_string(),
            "scale_log2": ft.lora.scale_log2,
            "step2": {"scale": p.scale, "lr_t_q32": p.lr_t, "eps_t_q32": p.eps_t},
        }));
    }
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/finetune_spec.json");
    let description = "Pedals fine-tuning spec vectors, version 2: per family the spec's \
        fields, its canonical bytes and their sha256 (docs/commitments.md section 6), and the \
        step-2 constants of its step program (docs/protocol.md section 9). Generated by \
        PEDALS_BLESS=1 cargo test --workspace --test it finetune_spec_vectors.";
    let read = crate::vectors::bless_or_read(&path, description, cases.clone());
    assert_eq!(read, cases);
}

/// A full fine-tune's spec carries no adapter terms; one that a modified client gave a rank,
/// alpha or targets is refused when read (a worker's first check), and its files and state
/// run by the full method.
#[test]
fn a_full_finetune_spec_refuses_adapter_terms_and_runs_every_weight() {
    let model = pedals_lm::quantize(&fixtures::checkpoint("llama-tiny"), 8).expect("model");
    let model_bytes = model.to_bytes().expect("bytes");
    let dataset = std::fs::read(fixtures::dir("finetune").join("heldout.jsonl")).expect("data");
    let full = pedals_lm::Method::Full;
    let spec = FinetuneSpec::with_method(&model_bytes, &dataset, &terms(), full).expect("spec");
    assert_eq!((spec.rank, spec.alpha), (0, 0));
    assert!(spec.targets.is_empty());
    let bytes = spec.to_canonical_bytes();
    assert_eq!(
        FinetuneSpec::from_canonical_bytes(&bytes).expect("parses"),
        spec
    );
    let inputs = spec.load(&model_bytes, &dataset).expect("inputs");
    let state = inputs.initial().expect("initial");
    assert!(matches!(state, pedals_lm::JobState::Full(_)));
    assert_eq!(
        inputs.state_hash(&state).expect("h").to_string(),
        spec.init_hash
    );
    for tamper in [
        |s: &mut FinetuneSpec| s.rank = 4,
        |s: &mut FinetuneSpec| s.alpha = 8,
        |s: &mut FinetuneSpec| s.targets = vec!["q_proj".into()],
    ] {
        let mut bad = spec.clone();
        tamper(&mut bad);
        let err =
            FinetuneSpec::from_canonical_bytes(&bad.to_canonical_bytes()).expect_err("refused");
        assert!(
            err.to_string().contains("no rank, alpha or targets"),
            "{err}"
        );
    }
}
