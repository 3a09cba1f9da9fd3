//! How often spot checks catch a lying span server, measured against `1 − (1 − f)^k`
//! (docs/split-inference.md, "Verification"): a server that lies in every answer of a session
//! of `k` answers, checked by the client's own `SpotCheck` at fraction `f` (its real secret
//! sampling and re-execution, on the tiny Llama fixture), over many sessions. One JSON line per
//! `(f, k)`: the share of sessions in which the lie was caught, the formula's value, and the
//! 95% interval of the measurement.
//!
//! `cargo bench -p pedals-infer --bench detect -- [--trials 2000] [--fractions 0.05,0.1,0.2,0.5]
//! [--answers 1,5,10,20,50]`. `cargo test --all-targets` builds it; CI never runs it.

use std::{path::Path, sync::Arc};

use pedals_infer::{Checked, Hop, SpotCheck};
use pedals_lm::{Activations, Checkpoint, KvCache, quantize};
use pedals_p2p::PeerId;
use serde_json::json;

fn list<T: std::str::FromStr>(s: &str) -> Vec<T> {
    s.split(',').filter_map(|v| v.trim().parse().ok()).collect()
}

fn main() {
    let (mut trials, mut fractions, mut answers) = (
        2000usize,
        vec![0.05, 0.1, 0.2, 0.5],
        vec![1usize, 5, 10, 20, 50],
    );
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue;
        }
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--trials" => trials = v.parse().expect("--trials N"),
            "--fractions" => fractions = list(&v),
            "--answers" => answers = list(&v),
            other => panic!("unknown option {other}"),
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lm/tests/fixtures/llama-tiny");
    let model = quantize(&Checkpoint::load_hf(&dir).expect("fixture"), 8).expect("quantizes");
    let blocks = 0..model.blocks.len();
    let k_max = answers.iter().copied().max().unwrap_or(1);
    // One session: a prompt of 4 positions, then one position per answer. The liar answers
    // each with one value changed.
    let tokens: Vec<u32> = (0..4 + k_max as u32).map(|i| 3 + 7 * i).collect();
    let mut cache = KvCache::for_blocks(blocks.clone());
    let mut steps = Vec::new();
    let mut sent = Vec::new();
    for (start, end) in std::iter::once((0, 4)).chain((4..3 + k_max).map(|p| (p, p + 1))) {
        let input = model
            .embed_tokens(&tokens[start..end], start)
            .expect("embed");
        let mut out = model.run_span(&mut cache, &input).expect("span");
        out.rows[0] += if out.rows[0] > 0 { -1 } else { 1 };
        steps.push((sent.clone(), input.clone(), out));
        sent.extend_from_slice(&input.rows);
    }
    let hop = Hop {
        peer: PeerId::random(),
        blocks,
        wei_per_token: Default::default(),
        payee: None,
    };
    for &f in &fractions {
        let check = SpotCheck {
            model: Arc::new(model.clone()),
            fraction: f,
        };
        for &k in &answers {
            let caught = (0..trials)
                .filter(|_| {
                    steps[..k]
                        .iter()
                        .any(|(sent, input, out): &(Vec<i32>, Activations, _)| {
                            matches!(check.check(&hop, sent, input, out), Checked::Lie(_))
                        })
                })
                .count();
            let p = caught as f64 / trials as f64;
            let half = 1.96 * (p * (1.0 - p) / trials as f64).sqrt();
            println!(
                "{}",
                json!({
                    "fraction": f, "answers": k, "trials": trials,
                    "caught": p, "formula": 1.0 - (1.0 - f).powi(k as i32),
                    "interval95": [p - half, p + half],
                })
            );
        }
    }
}
