//! The market's language-model job spec: canonical bytes that round-trip and are told apart
//! from an MLP spec's; every bad spec and every file that is not the one it names is refused
//! before a worker runs anything; the chunks it runs are the batch chunks.

use pedals_core::cid_of;
use pedals_lm::CanonicalSpec as _;
use pedals_lm::job::{KIND, chunk_bytes_bound};
use pedals_lm::{GenParams, LmJobSpec, Sampling, quantize};
use proptest::prelude::*;

use crate::fixtures::checkpoint;

const PROMPTS: &[u8] = b"{\"prompt\": \"The world is\"}\n{\"prompt_ids\": [70, 71]}\n\
{\"prompt\": \"Never\"}\n";

fn params(max_tokens: usize) -> GenParams {
    GenParams {
        max_tokens,
        sampling: Sampling::new(0.7, 10, 0.9, 5).expect("valid"),
        stop: vec!["\n".into()],
    }
}

fn model_bytes() -> Vec<u8> {
    quantize(&checkpoint("llama-tiny"), 8)
        .expect("quantizes")
        .to_bytes()
        .expect("bytes")
}

#[test]
fn a_spec_loads_its_files_and_runs_the_batch_chunks() {
    let model = model_bytes();
    let spec = LmJobSpec::new(&cid_of(&model), &cid_of(PROMPTS), 3, 2, &params(5)).expect("ok");
    assert_eq!(spec.steps, 2);
    let bytes = spec.to_canonical_bytes();
    assert!(bytes.starts_with(format!("{{\"kind\":\"{KIND}\"").as_bytes()));
    assert!(LmJobSpec::is_lm(&bytes));
    assert_eq!(
        LmJobSpec::from_canonical_bytes(&bytes).expect("parses"),
        spec
    );
    assert_eq!(spec.spec_hash().as_slice(), spec.cid().hash().digest());

    let inputs = spec.load(&model, PROMPTS, 96 << 10).expect("loads");
    assert_eq!(inputs.prompts.len(), 3);
    assert_eq!(
        inputs.model_bytes_hash,
        pedals_core::checkpoint_hash(&model)
    );
    let exact = pedals_lm::ExactModel::from_bytes(&model).expect("model");
    let tok = pedals_lm::Tokenizer::from_bytes(exact.tokenizer.as_deref().expect("tok"))
        .expect("tokenizer");
    let (_, chunks) = pedals_lm::batch::run(&exact, Some(&tok), &inputs.prompts, &spec.params(), 2)
        .expect("runs");
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(&inputs.run_chunk(&spec, i as u64).expect("runs"), chunk);
    }
    assert!(inputs.run_chunk(&spec, 2).is_err(), "past the last chunk");
}

#[test]
fn bad_specs_and_files_that_are_not_the_named_ones_are_refused() {
    let model = model_bytes();
    let (m, p) = (cid_of(&model), cid_of(PROMPTS));
    let good = LmJobSpec::new(&m, &p, 3, 2, &params(5)).expect("ok");
    let refused = |spec: LmJobSpec, says: &str| {
        let err = spec.validate().expect_err("refused").to_string();
        assert!(err.contains(says), "{says:?} not in {err}");
    };
    refused(
        LmJobSpec {
            chunk: 0,
            ..good.clone()
        },
        "it must be 1 to 1024",
    );
    refused(
        LmJobSpec {
            steps: 3,
            ..good.clone()
        },
        "are not 3 chunks",
    );
    refused(
        LmJobSpec {
            max_tokens: 0,
            ..good.clone()
        },
        "max_tokens = 0",
    );
    refused(
        LmJobSpec {
            top_p_q16: 0,
            ..good.clone()
        },
        "top_p_q16 = 0",
    );
    refused(
        LmJobSpec {
            stop: vec![String::new()],
            ..good.clone()
        },
        "a stop sequence is empty",
    );
    refused(
        LmJobSpec {
            version: 2,
            ..good.clone()
        },
        "upgrade Pedals",
    );
    refused(
        LmJobSpec {
            model: "not a cid".into(),
            ..good.clone()
        },
        "model CID",
    );

    // Not canonical: whitespace, or a field out of order, or an unknown field.
    let bytes = String::from_utf8(good.to_canonical_bytes()).expect("utf-8");
    for text in [
        bytes.replace(",", ", "),
        bytes.replace("}", ",\"extra\":1}"),
    ] {
        assert!(
            LmJobSpec::from_canonical_bytes(text.as_bytes()).is_err(),
            "{text}"
        );
    }
    // An MLP job spec is not a language-model spec, and the other way round.
    let mlp = b"{\"version\":1,\"train\":{}}";
    assert!(!LmJobSpec::is_lm(mlp));
    assert!(LmJobSpec::from_canonical_bytes(mlp).is_err());

    let load_err = |spec: &LmJobSpec, model: &[u8], prompts: &[u8], limit: u64| match spec
        .load(model, prompts, limit)
    {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    };
    // Other bytes than the spec names.
    assert!(load_err(&good, &model, b"{\"prompt\": \"x\"}\n", 1 << 20).contains("prompts bytes"));
    assert!(load_err(&good, b"model", PROMPTS, 1 << 20).contains("model bytes"));
    // A count that is not the file's.
    let four = LmJobSpec::new(&m, &p, 4, 2, &params(5)).expect("ok");
    assert!(load_err(&four, &model, PROMPTS, 1 << 20).contains("holds 3"));
    // A prompt that leaves no room in the context (128 tokens) for max_tokens.
    let long = LmJobSpec::new(&m, &p, 3, 2, &params(127)).expect("ok");
    assert!(load_err(&long, &model, PROMPTS, 1 << 20).contains("does not fit the model's context"));
    // A token the model does not have (its vocabulary is 384): refused before any claim, not
    // when the chunk runs.
    let bad_ids = b"{\"prompt_ids\": [5, 384]}\n";
    let spec = LmJobSpec::new(&m, &cid_of(bad_ids), 1, 1, &params(5)).expect("ok");
    let err = load_err(&spec, &model, bad_ids, 1 << 20);
    assert!(err.contains("prompt 0") && err.contains("384"), "{err}");
    // Chunks whose completions might not fit one transaction if demanded.
    assert!(load_err(&good, &model, PROMPTS, 100).contains("ask for smaller chunks"));
}

#[test]
fn the_chunk_bound_holds_for_real_completions() {
    let model = model_bytes();
    let exact = pedals_lm::ExactModel::from_bytes(&model).expect("model");
    let tok = pedals_lm::Tokenizer::from_bytes(exact.tokenizer.as_deref().expect("tok"))
        .expect("tokenizer");
    let prompts = pedals_lm::batch::parse_prompts(PROMPTS, Some(&tok)).expect("prompts");
    let p = GenParams {
        max_tokens: 40,
        sampling: Sampling::new(2.0, 0, 1.0, 9).expect("valid"),
        stop: vec![],
    };
    let (_, chunks) = pedals_lm::batch::run(&exact, Some(&tok), &prompts, &p, 3).expect("runs");
    let bound = chunk_bytes_bound(3, 40, tok.max_token_bytes() as u64);
    assert!(
        (chunks[0].len() as u64) <= bound,
        "{} > {bound}",
        chunks[0].len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any valid spec's canonical bytes read back to the same spec and nothing else does.
    #[test]
    fn canonical_bytes_round_trip(
        count in 1u64..5000,
        chunk in 1u64..=1024,
        max_tokens in 1usize..=65536,
        temperature in 0.0f64..4.0,
        top_k in 0usize..1000,
        top_p in 0.01f64..=1.0,
        seed in any::<u64>(),
        stop in proptest::collection::vec("[a-z\\n\"\\\\]{1,4}", 0..3),
    ) {
        let sampling = Sampling::new(temperature, top_k, top_p, seed);
        prop_assume!(sampling.is_ok());
        let p = GenParams { max_tokens, sampling: sampling.expect("ok"), stop };
        let spec = LmJobSpec::new(&cid_of(b"m"), &cid_of(b"p"), count, chunk, &p)
            .expect("valid");
        let bytes = spec.to_canonical_bytes();
        prop_assert!(LmJobSpec::is_lm(&bytes));
        prop_assert_eq!(LmJobSpec::from_canonical_bytes(&bytes).expect("reads"), spec.clone());
        prop_assert_eq!(spec.steps, count.div_ceil(chunk));
        prop_assert_eq!(spec.params().sampling, p.sampling);
    }
}
