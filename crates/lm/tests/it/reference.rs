//! Float mode reproduces Hugging Face's logits; exact mode agrees with them on the next token
//! and on perplexity; the key/value cache changes nothing.

use pedals_lm::{KvCache, float::FloatModel, quantize};

use crate::fixtures::{FAMILIES, checkpoint, reference};

#[test]
fn float_mode_reproduces_transformers_logits() {
    for name in FAMILIES {
        let ck = checkpoint(name);
        let r = reference(name);
        let logits = FloatModel::new(&ck)
            .forward(&r.prompt_ids)
            .expect("test step");
        let vocab = ck.config.vocab;
        let mut worst = 0f32;
        for (t, want) in r.logits.iter().enumerate() {
            let got = &logits[t * vocab..(t + 1) * vocab];
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (g, w) in got.iter().zip(want) {
                worst = worst.max((g - w).abs() / scale);
            }
        }
        println!("{name}: float mode, worst relative logit error {worst:.2e}");
        assert!(
            worst < 1e-4,
            "{name}: float logits differ by {worst:e} relative"
        );
    }
}

fn exact_eval(name: &str, bits: u8) -> (f64, f64, f64) {
    let r = reference(name);
    let model = quantize(&checkpoint(name), bits).expect("quantizes");
    let e = model.evaluate(&r.eval_ids, r.eval_chunk_len).expect("runs");
    (e.agreement(&r.eval_top1), (e.nll - r.eval_nll).exp(), e.nll)
}

#[test]
fn exact_mode_agrees_with_transformers_on_held_out_text() {
    for name in FAMILIES {
        for bits in [8u8, 16] {
            let (top1, ppl_ratio, nll) = exact_eval(name, bits);
            println!(
                "{name} w{bits}: top-1 agreement {:.2}%, perplexity ratio {ppl_ratio:.4} (nll {nll:.4})",
                100.0 * top1
            );
            assert!(
                top1 >= 0.99 || bits == 8,
                "{name} w{bits}: top-1 agreement {top1}"
            );
            assert!(
                (ppl_ratio - 1.0).abs() < 0.02,
                "{name} w{bits}: perplexity ratio {ppl_ratio}"
            );
        }
    }
}

#[test]
fn the_cache_changes_nothing() {
    for name in FAMILIES {
        let model = quantize(&checkpoint(name), 8).expect("test step");
        let prompt = reference(name).prompt_ids;
        let whole = model
            .forward(&prompt, &mut KvCache::new(&model.config), true)
            .expect("test step");
        let mut cache = KvCache::new(&model.config);
        let mut stepped = model
            .forward(&prompt[..5], &mut cache, true)
            .expect("test step");
        for &t in &prompt[5..] {
            stepped.extend(model.forward(&[t], &mut cache, false).expect("test step"));
        }
        assert_eq!(whole, stepped, "{name}");
        assert_eq!(cache.len(), prompt.len());
    }
}

#[test]
fn one_and_two_threads_give_the_same_bits() {
    for name in FAMILIES {
        let model = quantize(&checkpoint(name), 8).expect("quantizes");
        let ids = reference(name).eval_ids;
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| {
                model
                    .forward(&ids[..128], &mut KvCache::new(&model.config), true)
                    .expect("runs")
            })
        };
        assert_eq!(run(1), run(2), "{name}");
    }
}
