//! Split-model inference speed: time to first token and decode tokens per second through a
//! chain of 1, 2 and 4 span servers (real libp2p nodes on loopback, in this process), with
//! an added delay per hop, against single-process generation of the same model in the same
//! run; and the best a chain could do (per-token compute plus one round trip per hop).
//!
//! `cargo bench -p pedals-infer --bench split -- [options]`:
//! `--hidden 512 --layers 8 --intermediate 1376 --heads 8 --vocab 2048` (a Llama-family model
//! with seeded random weights, 8-bit), `--prompt 32 --decode 32`, `--servers 1,2,4`,
//! `--delay-ms 0,20,100` (each server answers that late: the round trip of a slow link; the
//! kernel's netem is not available on every machine), `--verify 0,0.1,1` (the client's spot
//! checks: the share of answers re-executed). One JSON line per configuration.
//! `cargo test --all-targets` builds it; CI never runs it (timing is not a test).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use pedals_core::cid_of;
use pedals_infer::{RemoteModel, SpanServer, SpotCheck, follow, serve};
use pedals_lm::{
    Checkpoint, ExactModel, GenParams, KvCache, LmConfig, Sampling, Tensor,
    checkpoint::canonical_shapes, generate_with, quantize,
};
use pedals_p2p::{Keypair, MemorySource, Multiaddr, NetConfig, Network, start};
use rand::{Rng, SeedableRng};
use serde_json::json;

struct Args {
    hidden: usize,
    layers: usize,
    intermediate: usize,
    heads: usize,
    vocab: usize,
    prompt: usize,
    decode: usize,
    servers: Vec<usize>,
    delays: Vec<u64>,
    verify: Vec<f64>,
}

fn list<T: std::str::FromStr>(s: &str) -> Vec<T> {
    s.split(',').filter_map(|v| v.trim().parse().ok()).collect()
}

fn parse() -> Args {
    let mut a = Args {
        hidden: 512,
        layers: 8,
        intermediate: 1376,
        heads: 8,
        vocab: 2048,
        prompt: 32,
        decode: 32,
        servers: vec![1, 2, 4],
        delays: vec![0, 20, 100],
        verify: vec![0.0],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue;
        }
        let v = it.next().unwrap_or_default();
        let n = v.parse().unwrap_or(0);
        match flag.as_str() {
            "--hidden" => a.hidden = n,
            "--layers" => a.layers = n,
            "--intermediate" => a.intermediate = n,
            "--heads" => a.heads = n,
            "--vocab" => a.vocab = n,
            "--prompt" => a.prompt = n,
            "--decode" => a.decode = n,
            "--servers" => a.servers = list(&v),
            "--delay-ms" => a.delays = list(&v),
            "--verify" => a.verify = list(&v),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

/// A Llama-family model of the given widths with seeded random weights (no end-of-sequence
/// token, so every run decodes the same number of tokens).
fn synthetic(a: &Args) -> ExactModel {
    let hf = json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": a.hidden, "num_hidden_layers": a.layers, "intermediate_size": a.intermediate,
        "num_attention_heads": a.heads, "num_key_value_heads": a.heads, "vocab_size": a.vocab,
        "max_position_embeddings": (a.prompt + a.decode).next_power_of_two().max(64),
        "rms_norm_eps": 1e-5, "tie_word_embeddings": true, "hidden_act": "silu",
    })
    .to_string();
    let config = LmConfig::from_hf_json(&hf).expect("config");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let tensors = canonical_shapes(&config)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else {
                (0..n).map(|_| rng.gen_range(-0.05f32..0.05)).collect()
            };
            (name, Tensor { shape, data })
        })
        .collect();
    let ck = Checkpoint {
        config,
        tensors,
        tokenizer: None,
        hf_config: hf,
    };
    quantize(&ck, 8).expect("quantizes")
}

async fn node(bootstrap: &[Multiaddr]) -> Network {
    let config = NetConfig {
        bootstrap: bootstrap.to_vec(),
        gossip_heartbeat: Duration::from_millis(100),
        ..NetConfig::default()
    };
    start(
        Keypair::generate_ed25519(),
        config,
        Arc::new(MemorySource::default()),
    )
    .await
    .expect("node")
}

/// (time to first token, seconds per decoded token, tokens) of one generation driven by `step`.
fn timed(
    prompt: &[u32],
    p: &GenParams,
    step: impl FnMut(&[u32]) -> Result<Vec<i32>, pedals_lm::LmError>,
) -> (f64, f64, Vec<u32>) {
    let began = Instant::now();
    let mut first = None;
    let g = generate_with(prompt, p, None, &[], step, |_| {
        first.get_or_insert(began.elapsed().as_secs_f64());
        true
    })
    .expect("generates");
    let total = began.elapsed().as_secs_f64();
    let ttft = first.unwrap_or(total);
    let per = (total - ttft) / (g.tokens.len().saturating_sub(1).max(1)) as f64;
    (ttft, per, g.tokens)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut a = parse();
    let smoke = !std::env::args().any(|f| f == "--bench");
    if smoke {
        (a.hidden, a.layers, a.intermediate, a.heads, a.vocab) = (64, 4, 128, 4, 256);
        (a.prompt, a.decode, a.servers, a.delays) = (4, 4, vec![2], vec![0]);
    }
    let m = synthetic(&a);
    let cid = cid_of(&m.to_bytes().expect("bytes"));
    let prompt: Vec<u32> = (0..a.prompt as u32)
        .map(|i| (i * 37 + 11) % a.vocab as u32)
        .collect();
    let params = GenParams {
        max_tokens: a.decode,
        sampling: Sampling::GREEDY,
        stop: Vec::new(),
    };
    let mut cache = KvCache::new(&m.config);
    let (l_ttft, l_per, local) = timed(&prompt, &params, |t| m.forward(t, &mut cache, false));
    println!(
        "{}",
        json!({"mode": "local", "parameters": m.config.parameters(), "layers": a.layers,
               "ttft_ms": l_ttft * 1e3, "decode_tok_s": 1.0 / l_per})
    );
    for &n in &a.servers {
        for &delay in &a.delays {
            let client = node(&[]).await;
            let boot = client.client.listen_addrs().await.expect("addrs");
            let mut nets = Vec::new();
            for span in m.even_spans(n) {
                let s = SpanServer::new(m.clone(), cid, span, 256 << 20)
                    .expect("span")
                    .with_reply_delay(Duration::from_millis(delay));
                let net = node(&boot).await;
                tokio::spawn(serve(
                    net.client.clone(),
                    Arc::new(s),
                    Duration::from_millis(200),
                ));
                nets.push(net);
            }
            let remote = RemoteModel::new(
                m.clone(),
                cid,
                client.client.clone(),
                Duration::from_secs(60),
                Duration::from_secs(30),
            )
            .expect("remote");
            let Network {
                events, client: c, ..
            } = client;
            tokio::spawn(follow(
                remote.chain.net.clone(),
                events,
                remote.chain.directory.clone(),
            ));
            while remote.chain.directory.lock().expect("lock").live().len() < n {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for &fraction in &a.verify {
                let mut r = remote.clone();
                r.chain.checker = (fraction > 0.0).then(|| SpotCheck {
                    model: Arc::new(m.clone()),
                    fraction,
                });
                let rt = tokio::runtime::Handle::current();
                let (p, pr) = (prompt.clone(), params.clone());
                let (ttft, per, tokens) = tokio::task::spawn_blocking(move || {
                    let mut session = rt
                        .block_on(r.chain.session(Duration::from_secs(10)))
                        .expect("session");
                    let mut position = 0;
                    timed(&p, &pr, |t| {
                        let input = r.head.embed_tokens(t, position)?;
                        let out = rt
                            .block_on(r.chain.run(&mut session, input))
                            .map_err(|e| pedals_lm::LmError::Format(e.to_string()))?;
                        position += t.len();
                        r.head.span_logits(&out, false)
                    })
                })
                .await
                .expect("joins");
                let best = l_per + n as f64 * delay as f64 / 1e3;
                println!(
                    "{}",
                    json!({"mode": "split", "servers": n, "delay_ms": delay, "verify": fraction,
                           "ttft_ms": ttft * 1e3, "decode_tok_s": 1.0 / per,
                           "best_tok_s": 1.0 / best, "over_best": per / best,
                           "over_local": per / l_per, "same_tokens": tokens == local})
                );
            }
            for net in nets {
                net.client.shutdown().await;
            }
            c.shutdown().await;
        }
    }
}
