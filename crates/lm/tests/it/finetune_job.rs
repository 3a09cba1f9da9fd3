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
    let spec =
        FinetuneSpec::new(&cid_of(&model_bytes), &cid_of(&dataset), count, &terms()).expect("spec");
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
    let mut a = inputs.initial();
    let mut hashes = Vec::new();
    for _ in 0..spec.steps {
        inputs.step(&mut a);
        let bytes = inputs.state_bytes(&a).expect("bytes");
        assert_eq!(inputs.state_from(&bytes).expect("decodes"), a);
        hashes.push(pedals_core::state_hash_of_bytes(&bytes).expect("hash"));
    }
    // A step resumed from a stored state is the step run straight through.
    let mut b = inputs.initial();
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
    let miscounted = FinetuneSpec::new(
        &cid_of(&model_bytes),
        &cid_of(&dataset),
        count + 1,
        &terms(),
    )
    .expect("spec");
    assert!(
        err(miscounted.load(&model_bytes, &dataset)).contains("examples but the dataset holds")
    );
    let bad = b"{\"text\": \"fine\"}\nnot json\n";
    let broken = FinetuneSpec::new(&cid_of(&model_bytes), &cid_of(bad), 2, &terms()).expect("spec");
    assert!(err(broken.load(&model_bytes, bad)).contains("line 2"));
    let gpt2 = pedals_lm::quantize(&fixtures::checkpoint("gpt2-tiny"), 8).expect("model");
    let mut gate = terms();
    gate.targets = vec!["gate_proj".into()];
    let gate_spec = FinetuneSpec::new(
        &cid_of(&gpt2.to_bytes().expect("b")),
        &cid_of(&dataset),
        count,
        &gate,
    )
    .expect("spec");
    assert!(err(gate_spec.load(&gpt2.to_bytes().expect("b"), &dataset)).contains("gate_proj"));
}
