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
