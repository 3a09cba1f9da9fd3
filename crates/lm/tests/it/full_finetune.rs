//! Exact-mode full fine-tuning (every weight trained) on the committed models.

use pedals_lm::train::full::{FullState, FullTune, Layout};
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

fn tune(lr: f64, steps: u64) -> FullTune {
    FullTune {
        adam: AdamConfig::new(lr, lr / 10.0, (0.9, 0.999), 1e-6, 2, steps).expect("adam"),
        batch: 4,
        seed: 7,
    }
}

/// The masters a model starts from read back as that model: the same loss as the model with
/// no adapters, to the rounding of its 16-bit rows.
#[test]
fn the_initial_masters_are_the_model() {
    for name in fixtures::FAMILIES {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
        let data = examples(name, 32);
        let state = FullState::init(&model).expect("masters");
        let full = tune(1e-3, 10).loss(&model, &state, &data[..8]);
        let lora = FineTune {
            lora: LoraConfig {
                rank: 1,
                scale_log2: 0,
                targets: Vec::new(),
            },
            adam: tune(1e-3, 10).adam,
            batch: 4,
            seed: 7,
        };
        let plain = lora.loss(&model, &lora.init(&model), &data[..8]);
        assert!((full - plain).abs() < 1e-3, "{name}: {full} vs {plain}");
        let bytes = state.to_bytes(&model.config).expect("bytes");
        let back = FullState::from_bytes(&bytes, &model.config).expect("reads");
        assert_eq!(back, state);
        // A LoRA state, or a full state of the other family, is not this model's full state.
        let lora_bytes = lora
            .init(&model)
            .to_bytes(&model.config, &lora.lora)
            .expect("bytes");
        let err = FullState::from_bytes(&lora_bytes, &model.config).expect_err("not full");
        assert!(err.to_string().contains("tensors"), "{err}");
        let other = if name.starts_with("llama") {
            "gpt2-tiny"
        } else {
            "llama-tiny"
        };
        let other = pedals_lm::quantize(&fixtures::checkpoint(other), 16).expect("quantizes");
        let other_bytes = FullState::init(&other)
            .expect("masters")
            .to_bytes(&other.config)
            .expect("bytes");
        assert!(FullState::from_bytes(&other_bytes, &model.config).is_err());
        let lay = Layout::of(&model.config);
        eprintln!(
            "{name}: {} weights in {} tensors",
            lay.values(),
            lay.params.len()
        );
    }
}

/// Every weight tensor's gradient, in both families, is the derivative of the exact loss: a
/// step against it lowers the loss by what the gradient predicts.
#[test]
fn every_weights_gradient_predicts_the_change_of_the_loss() {
    for name in fixtures::FAMILIES {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
        let data = examples(name, 32);
        let refs: Vec<&Example> = data.iter().take(4).collect();
        let ft = tune(1e-3, 10);
        let state = FullState::init(&model).expect("masters");
        let (r0, grads) = ft.gradients(&model, &state, &refs);
        let lay = Layout::of(&model.config);
        let mut checked = 0;
        for (i, p) in lay.params.iter().enumerate() {
            // One of each kind of weight: the embeddings, the head, every norm and projection
            // of the first and last blocks.
            let last = model.config.layers - 1;
            if !(p.name.starts_with("b0.")
                || p.name.starts_with(&format!("b{last}."))
                || !p.name.starts_with('b'))
            {
                continue;
            }
            // A key bias moves every score of a query by the same amount, which the softmax
            // cancels: its true gradient is zero (and the exact one about that).
            if p.name.ends_with("k_proj.bias") {
                continue;
            }
            let g = &grads[i];
            let max = g.iter().map(|v| v.abs()).max().unwrap_or(0);
            assert!(max > 0, "{name} {}: no gradient", p.name);
            // A step against the gradient sized so that the loss should fall by about 3e-3
            // (at most 0.05 on the largest element: Q12 β and biases are coarse).
            let unit: f64 =
                g.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / max as f64 / 2f64.powi(32);
            let size = (3e-3 / unit).min(0.05);
            let mut moved = state.clone();
            let mut predicted = 0.0;
            for (x, &gv) in moved.w[i].iter_mut().zip(g) {
                let d = (gv as f64 / max as f64 * size * 2f64.powi(24)) as i32;
                *x -= d;
                predicted -= gv as f64 / 2f64.powi(32) * f64::from(d) / 2f64.powi(24);
            }
            let actual = ft.gradients(&model, &moved, &refs).0.loss - r0.loss;
            assert!(
                predicted < -1e-4 && (0.7..1.3).contains(&(actual / predicted)),
                "{name} {}: the loss moved {actual:.3e}, the gradient said {predicted:.3e}",
                p.name
            );
            checked += 1;
        }
        eprintln!("{name}: {checked} weight tensors checked");
    }
}

#[test]
fn full_training_lowers_the_loss_and_is_a_function_of_its_inputs() {
    for name in fixtures::FAMILIES {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
        let ft = tune(3e-3, 20);
        let data = examples(name, 32);
        ft.check(&model, &data).expect("valid");
        let mut state = FullState::init(&model).expect("masters");
        let before = ft.loss(&model, &state, &data);
        let mut again = state.clone();
        for _ in 0..20 {
            ft.step(&model, &mut state, &data);
        }
        let after = ft.loss(&model, &state, &data);
        eprintln!("{name}: loss {before:.4} -> {after:.4}");
        assert!(after < before * 0.9, "{name}: {before} -> {after}");
        for _ in 0..20 {
            ft.step(&model, &mut again, &data);
        }
        assert_eq!(again, state, "{name}: the same run gives the same bits");
        assert_eq!(state.step, 20);
    }
}

/// What scripts/lm_finetune_ref.py recorded for run_full.json: the same full fine-tune in
/// plain PyTorch, and what transformers generates with the exact run's model.
#[derive(serde::Deserialize)]
struct FloatRun {
    method: String,
    float_heldout_final: f64,
    exact_heldout_final: f64,
    float_train_loss: Vec<f64>,
    exact_train_loss: Vec<f64>,
    exact_adapter_sha256: String,
    prompt: Vec<u32>,
    peft_greedy_with_exact_adapter: Vec<u32>,
}

/// The exact full fine-tune of crates/lm/tests/fixtures/finetune/run_full.json ends within 5%
/// of plain PyTorch's held-out loss (its curve within 1e-3 at every step); the model it
/// writes is the one transformers loaded, and transformers generates the same greedy tokens.
#[test]
fn full_finetune_matches_float_and_its_model_generates_the_same_tokens_in_transformers() {
    let (model, train, heldout, terms, float): (_, _, _, _, FloatRun) =
        crate::finetune::recorded_run("run_full.json", "finetune_full_float.json");
    assert_eq!(float.method, "full");
    let ft = terms.full_tune().expect("terms");
    let mut state = FullState::init(&model).expect("masters");
    for (t, (&f, &e)) in float
        .float_train_loss
        .iter()
        .zip(&float.exact_train_loss)
        .enumerate()
    {
        let loss = ft.step(&model, &mut state, &train).loss;
        assert!((loss - e).abs() < 1e-5, "step {t}: {loss} was {e}");
        assert!((loss - f).abs() < 1e-3, "step {t}: exact {loss}, float {f}");
    }
    let held = ft.loss(&model, &state, &heldout);
    crate::finetune::held_loss_matches(held, float.exact_heldout_final, float.float_heldout_final);
    let out = tempfile::tempdir().expect("tempdir");
    state
        .model(&model)
        .to_checkpoint()
        .save_hf(out.path())
        .expect("saves");
    let sha = crate::finetune::sha256_hex(&out.path().join("model.safetensors"));
    assert_eq!(
        sha, float.exact_adapter_sha256,
        "the model transformers loaded"
    );
    let n = float.peft_greedy_with_exact_adapter.len();
    let greedy = ft.greedy(&model, &state, &float.prompt, n).expect("greedy");
    assert_eq!(greedy, float.peft_greedy_with_exact_adapter);
}
