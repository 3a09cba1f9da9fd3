//! Exact-mode LoRA fine-tuning on the committed models.

use pedals_lm::train::{AdamConfig, Example, FineTune, LoraConfig};

use crate::fixtures;

fn examples(name: &str, len: usize) -> Vec<Example> {
    fixtures::reference(name)
        .eval_ids
        .chunks(len)
        .filter(|c| c.len() == len)
        .map(|c| Example {
            tokens: c.to_vec(),
            prompt: 0,
        })
        .collect()
}

#[test]
fn lora_training_lowers_the_loss_and_is_a_function_of_its_inputs() {
    for name in fixtures::FAMILIES {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
        let targets: &[&str] = if name.starts_with("llama") {
            &["q_proj", "v_proj", "gate_proj", "down_proj"]
        } else {
            &["q_proj", "v_proj", "up_proj", "down_proj"]
        };
        let ft = FineTune {
            lora: LoraConfig::new(4, 8, targets).expect("lora"),
            adam: AdamConfig::new(1e-2, 1e-3, (0.9, 0.999), 1e-6, 2, 30).expect("adam"),
            batch: 4,
            seed: 7,
        };
        let data = examples(name, 32);
        ft.check(&model, &data).expect("valid");
        let mut state = ft.init(&model);
        let before = ft.loss(&model, &state, &data);
        let mut again = state.clone();
        for _ in 0..30 {
            ft.step(&model, &mut state, &data);
        }
        let after = ft.loss(&model, &state, &data);
        eprintln!("{name}: loss {before:.4} -> {after:.4}");
        assert!(after < before * 0.95, "{name}: {before} -> {after}");
        for _ in 0..30 {
            ft.step(&model, &mut again, &data);
        }
        assert_eq!(again, state, "{name}: the same run gives the same bits");
    }
}

/// Gradient accumulation: a batch is summed sequence by sequence in exact integers, so the
/// micro-batches it is split into (one sequence per thread) do not change a bit of the step.
#[test]
fn any_split_of_a_batch_into_micro_batches_gives_the_same_step() {
    let name = fixtures::FAMILIES[0];
    let model = pedals_lm::quantize(&fixtures::checkpoint(name), 8).expect("quantizes");
    let ft = FineTune {
        lora: LoraConfig::new(2, 2, &["q_proj", "v_proj"]).expect("lora"),
        adam: AdamConfig::new(1e-2, 1e-3, (0.9, 0.999), 1e-6, 1, 4).expect("adam"),
        batch: 12,
        seed: 5,
    };
    let data = examples(name, 24);
    let step = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            let mut state = ft.init(&model);
            let report = ft.step(&model, &mut state, &data);
            (state, report.tokens, report.loss.to_bits())
        })
    };
    let one = step(1);
    for threads in [2, 5, 12] {
        assert_eq!(step(threads), one, "micro-batches of {threads}");
    }
}

/// The gradient of every adapter, in both families, is the derivative of the exact loss: a
/// step of 0.01 (largest element) against it lowers the loss by what the gradient predicts.
#[test]
fn every_adapters_gradient_predicts_the_change_of_the_loss() {
    let targets = [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ];
    for name in fixtures::FAMILIES {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
        let data = examples(name, 32);
        let refs: Vec<&Example> = data.iter().take(4).collect();
        for t in targets {
            if t == "gate_proj" && name.starts_with("gpt2") {
                continue;
            }
            let ft = FineTune {
                lora: LoraConfig::new(4, 4, &[t]).expect("lora"),
                adam: AdamConfig::new(1e-3, 1e-4, (0.9, 0.999), 1e-6, 2, 30).expect("adam"),
                batch: 4,
                seed: 7,
            };
            let mut state = ft.init(&model);
            // B is zero at the start, which would leave A without a gradient: fill it.
            for ad in state.adapters.iter_mut().flatten().flatten() {
                for (i, b) in ad.b.iter_mut().enumerate() {
                    *b = ((i * 7919 % 201) as i32 - 100) * 20_000;
                }
            }
            let (r0, grads) = ft.gradients(&model, &state, &refs);
            for which in ["A", "B"] {
                let mut moved = state.clone();
                let mut predicted = 0.0;
                for (row, grow) in moved.adapters.iter_mut().zip(&grads) {
                    for (ad, g) in row.iter_mut().zip(grow) {
                        let (Some(ad), Some((ga, gb))) = (ad.as_mut(), g) else {
                            continue;
                        };
                        let (w, g) = if which == "A" {
                            (&mut ad.a, ga)
                        } else {
                            (&mut ad.b, gb)
                        };
                        let max = g.iter().map(|v| v.abs()).max().unwrap_or(1).max(1) as f64;
                        for (x, &gv) in w.iter_mut().zip(g) {
                            let d = (gv as f64 / max * 167_772.0) as i32;
                            *x -= d;
                            predicted -= gv as f64 / 2f64.powi(32) * f64::from(d) / 2f64.powi(24);
                        }
                    }
                }
                let actual = ft.gradients(&model, &moved, &refs).0.loss - r0.loss;
                assert!(
                    predicted < -2e-4 && (0.75..1.25).contains(&(actual / predicted)),
                    "{name} {t} {which}: the loss moved {actual:.3e}, the gradient said {predicted:.3e}"
                );
            }
        }
    }
}

/// What scripts/lm_finetune_ref.py recorded: the same LoRA run in float (PyTorch + peft) and
/// what peft generates with the exact run's adapter.
#[derive(serde::Deserialize)]
struct FloatRun {
    float_heldout_final: f64,
    exact_heldout_final: f64,
    exact_adapter_sha256: String,
    prompt: Vec<u32>,
    peft_greedy_with_exact_adapter: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Run {
    model: String,
    bits: u8,
    #[allow(dead_code)]
    #[serde(default)]
    method: Option<String>,
    #[serde(flatten)]
    terms: pedals_lm::train::Terms,
}

/// A recorded fine-tuning run of crates/lm/tests/fixtures/finetune (`run`, e.g. `run.json`):
/// its model, training and held-out examples, its terms, and the reference vector `vector` of
/// crates/lm/tests/vectors that scripts/lm_finetune_ref.py wrote for it.
pub(crate) fn recorded_run<T: serde::de::DeserializeOwned>(
    run: &str,
    vector: &str,
) -> (
    pedals_lm::ExactModel,
    Vec<Example>,
    Vec<Example>,
    pedals_lm::train::Terms,
    T,
) {
    let dir = fixtures::dir("finetune");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("fixture");
    let run: Run = serde_json::from_str(&read(run)).expect("the run file");
    let float: T = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/vectors")
                .join(vector),
        )
        .expect("the float reference"),
    )
    .expect("parses");
    let model = pedals_lm::quantize(&fixtures::checkpoint(&run.model), run.bits).expect("model");
    let tok = pedals_lm::Tokenizer::from_bytes(model.tokenizer.as_deref().expect("tokenizer"))
        .expect("tokenizer");
    let parse = |f: &str| {
        pedals_lm::train::data::parse_jsonl(&read(f), &tok, model.config.context).expect(f)
    };
    let (train, heldout) = (parse("train.jsonl"), parse("heldout.jsonl"));
    (model, train, heldout, run.terms, float)
}

/// The exact run's held-out loss `held` is the recorded `exact`'s, and at most 5% above
/// float mode's `float`.
pub(crate) fn held_loss_matches(held: f64, exact: f64, float: f64) {
    assert!(
        (held - exact).abs() < 1e-5,
        "the exact run is not the one recorded: {held} vs {exact}"
    );
    assert!(
        held <= float * 1.05,
        "exact held-out loss {held} is more than 5% above float's {float}"
    );
}

/// The SHA-256 of a file, in hex.
pub(crate) fn sha256_hex(path: &std::path::Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).expect("the file");
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The exact run of crates/lm/tests/fixtures/finetune/run.json on the GPL-3 examples ends
/// within 5% of float mode's held-out loss; its adapter, exported for peft, is the one the
/// reference loaded, and peft + transformers generate the same greedy tokens with it.
#[test]
fn finetune_matches_float_and_its_adapter_generates_the_same_tokens_in_peft() {
    let (model, train, heldout, terms, float): (_, _, _, _, FloatRun) =
        recorded_run("run.json", "finetune_float.json");
    let ft = terms.fine_tune().expect("terms");
    let mut state = ft.init(&model);
    for _ in 0..terms.steps {
        ft.step(&model, &mut state, &train);
    }
    let held = ft.loss(&model, &state, &heldout);
    held_loss_matches(held, float.exact_heldout_final, float.float_heldout_final);
    let out = tempfile::tempdir().expect("tempdir");
    pedals_lm::train::peft::save_peft(out.path(), &model.config, &ft.lora, &state).expect("peft");
    let sha = sha256_hex(&out.path().join("adapter_model.safetensors"));
    assert_eq!(sha, float.exact_adapter_sha256, "the adapter peft loaded");
    let greedy = ft
        .greedy(
            &model,
            &state,
            &float.prompt,
            float.peft_greedy_with_exact_adapter.len(),
        )
        .expect("greedy");
    assert_eq!(greedy, float.peft_greedy_with_exact_adapter);
}

/// Bad datasets and terms are refused with the line or the term and what to change.
#[test]
fn bad_datasets_and_terms_say_what_to_change() {
    use pedals_lm::train::data::parse_jsonl;
    let model = pedals_lm::quantize(&fixtures::checkpoint("llama-tiny"), 8).expect("model");
    let tok = pedals_lm::Tokenizer::from_bytes(model.tokenizer.as_deref().expect("tokenizer"))
        .expect("tokenizer");
    let ctx = model.config.context;
    let long = format!("{{\"text\": \"{}\"}}", "word ".repeat(400));
    for (text, says) in [
        ("not json\n", "line 1: not a JSON object"),
        (
            "{\"text\": \"fine text\"}\n{\"prompt\": \"p\"}\n",
            "line 2: give either",
        ),
        (
            "{\"text\": \"a\", \"prompt\": \"b\"}\n",
            "line 1: give either",
        ),
        ("{\"txt\": \"a\"}\n", "line 1: not a JSON object"),
        (
            "{\"prompt\": \"Q\", \"completion\": \"\"}\n",
            "the completion is empty",
        ),
        ("{\"text\": \"a\"}\n", "an example needs at least 2"),
        (
            long.as_str(),
            "more than the model's context of 128; split the example",
        ),
        ("\n\n", "the file has no examples"),
    ] {
        let err = parse_jsonl(text, &tok, ctx).expect_err(says).to_string();
        assert!(err.contains(says), "{err:?} should say {says:?}");
    }
    let ok = parse_jsonl(
        "{\"prompt\": \"The license\", \"completion\": \" applies to all\"}\n",
        &tok,
        ctx,
    )
    .expect("parses");
    assert_eq!(
        ok[0].prompt,
        tok.encode("The license").expect("encodes").len()
    );
    for (rank, alpha, targets, says) in [
        (0, 8, vec!["q_proj"], "outside 1..=64"),
        (8, 12, vec!["q_proj"], "not a power of two"),
        (8, 8, vec!["qkv"], "unknown LoRA target \"qkv\""),
        (8, 8, vec![], "at least one target"),
    ] {
        let err = LoraConfig::new(rank, alpha, &targets)
            .expect_err(says)
            .to_string();
        assert!(err.contains(says), "{err:?} should say {says:?}");
    }
    let gpt2 = pedals_lm::quantize(&fixtures::checkpoint("gpt2-tiny"), 8).expect("model");
    let gate = LoraConfig::new(4, 4, &["gate_proj"]).expect("lora");
    assert!(gate.check(&gpt2.config).is_err());
    let lora = LoraConfig::new(4, 4, &["q_proj"]).expect("lora");
    let state = pedals_lm::train::LoraState::init(&gpt2.config, &lora, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = pedals_lm::train::peft::save_peft(dir.path(), &gpt2.config, &lora, &state)
        .expect_err("GPT-2 has no peft form here");
    assert!(err.to_string().contains("Llama-family"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

    /// A fine-tuning state survives its canonical bytes, 64-bit moments of either sign
    /// included, and bytes for other adapters are refused.
    #[test]
    fn a_state_round_trips_through_its_canonical_bytes(seed in proptest::prelude::any::<u64>(), step in 0u64..1000) {
        let model = pedals_lm::quantize(&fixtures::checkpoint("llama-tiny"), 8).expect("model");
        let lora = LoraConfig::new(2, 2, &["k_proj", "down_proj"]).expect("lora");
        let mut state = pedals_lm::train::LoraState::init(&model.config, &lora, seed);
        state.step = step;
        let mut x = seed;
        for ad in state.adapters.iter_mut().flatten().flatten() {
            for v in ad.m_a.iter_mut().chain(&mut ad.v_b).chain(&mut ad.m_b) {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                *v = (x as i64) >> 20;
            }
        }
        let bytes = state.to_bytes(&model.config, &lora).expect("bytes");
        let back = pedals_lm::train::LoraState::from_bytes(&bytes, &model.config, &lora).expect("decodes");
        proptest::prop_assert_eq!(&back, &state);
        proptest::prop_assert_eq!(
            pedals_core::state_hash_of_bytes(&bytes).expect("hash"),
            state.state_hash(&model.config, &lora).expect("hash")
        );
        let other = LoraConfig::new(2, 2, &["k_proj"]).expect("lora");
        proptest::prop_assert!(pedals_lm::train::LoraState::from_bytes(&bytes, &model.config, &other).is_err());
        let wider = LoraConfig::new(4, 4, &["k_proj", "down_proj"]).expect("lora");
        proptest::prop_assert!(pedals_lm::train::LoraState::from_bytes(&bytes, &model.config, &wider).is_err());
    }
}
