//! Generation: greedy decoding follows `transformers`, seeded sampling is a function of the
//! seed, and stop sequences and the end token end it.

use pedals_lm::{Finish, GenParams, Sampling, Tokenizer, quantize, sample::sample};

use crate::fixtures::{checkpoint, reference};

fn params(max_tokens: usize, sampling: Sampling) -> GenParams {
    GenParams {
        max_tokens,
        sampling,
        stop: Vec::new(),
    }
}

#[test]
fn greedy_decoding_matches_transformers() {
    let r = reference("llama-tiny");
    let model = quantize(&checkpoint("llama-tiny"), 16).expect("test step");
    let g = model
        .generate(
            &r.prompt_ids,
            &params(r.greedy.len(), Sampling::GREEDY),
            None,
        )
        .expect("test step");
    assert_eq!(g.tokens, r.greedy);
    assert_eq!(g.finish, Finish::Length);
}

#[test]
fn seeded_sampling_repeats_and_depends_on_the_seed() {
    let r = reference("gpt2-tiny");
    let model = quantize(&checkpoint("gpt2-tiny"), 8).expect("test step");
    let run = |seed| {
        let s = Sampling::new(1.0, 0, 1.0, seed).expect("test step");
        model
            .generate(&r.prompt_ids, &params(16, s), None)
            .expect("test step")
            .tokens
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let top1 = Sampling::new(0.7, 1, 1.0, 3).expect("test step");
    let greedy = model
        .generate(&r.prompt_ids, &params(8, Sampling::GREEDY), None)
        .expect("test step");
    assert_eq!(
        model
            .generate(&r.prompt_ids, &params(8, top1), None)
            .expect("test step")
            .tokens,
        greedy.tokens
    );
}

#[test]
fn draws_follow_the_exact_softmax() {
    // Three tokens at logits 0, ln 2 and ln 4 (Q12) draw in proportion 1 : 2 : 4.
    let z = [
        0,
        (2f64.ln() * 4096.0).round() as i32,
        (4f64.ln() * 4096.0).round() as i32,
    ];
    let s = |seed| Sampling::new(1.0, 0, 1.0, seed).expect("test step");
    let mut counts = [0usize; 3];
    for pos in 0..7000u64 {
        counts[sample(&z, &s(11), pos) as usize] += 1;
    }
    let share: Vec<f64> = counts.iter().map(|&c| c as f64 / 7000.0).collect();
    for (got, want) in share.iter().zip([1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0]) {
        assert!((got - want).abs() < 0.03, "{share:?}");
    }
    // Top-p 0.5 keeps only the most likely token (4/7 ≥ 1/2).
    let narrow = Sampling {
        top_p_q16: 1 << 15,
        ..s(11)
    };
    assert!((0..200).all(|pos| sample(&z, &narrow, pos) == 2));
}

#[test]
fn stop_sequences_cut_the_text() {
    let ck = checkpoint("llama-tiny");
    let tok =
        Tokenizer::from_bytes(ck.tokenizer.as_deref().expect("test step")).expect("test step");
    let model = quantize(&ck, 8).expect("test step");
    let prompt = tok
        .encode("The most difficult thing in the world is")
        .expect("test step");
    let free = model
        .generate(&prompt, &params(24, Sampling::GREEDY), Some(&tok))
        .expect("test step");
    let text = free.text.expect("test step");
    let stop: String = text.chars().skip(3).take(2).collect();
    let p = GenParams {
        stop: vec![stop.clone()],
        ..params(24, Sampling::GREEDY)
    };
    let cut = model.generate(&prompt, &p, Some(&tok)).expect("test step");
    assert_eq!(cut.finish, Finish::Stop);
    let cut_text = cut.text.expect("test step");
    assert!(
        !cut_text.contains(&stop) && text.starts_with(&cut_text),
        "{cut_text:?} of {text:?}"
    );
}
