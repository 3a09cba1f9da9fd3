//! Split-model inference's unit (docs/split-inference.md): a model's blocks run as a chain of
//! spans, each with its own key/value cache, give the logits of one process bit for bit in both
//! families, however the blocks are split; a span whose server is replaced mid-generation is
//! given the session's prefix again and the generation goes on with the same tokens; bad
//! activations are refused with a message that says what to send.

use pedals_lm::{Activations, ExactModel, KvCache, LmError, quantize};

use crate::fixtures::{FAMILIES, checkpoint, reference};

/// The index of the largest logit (the lowest id on a tie).
fn argmax(logits: &[i32]) -> u32 {
    (0..logits.len()).fold(0, |b, j| if logits[j] > logits[b] { j } else { b }) as u32
}

/// A client of a chain of spans: it keeps every input it sent to each span, to replay a
/// session's prefix to a server that replaces one.
struct Chain<'a> {
    model: &'a ExactModel,
    caches: Vec<KvCache>,
    sent: Vec<Vec<i32>>,
}

impl<'a> Chain<'a> {
    fn new(model: &'a ExactModel, n: usize) -> Self {
        let caches: Vec<KvCache> = model
            .even_spans(n)
            .into_iter()
            .map(KvCache::for_blocks)
            .collect();
        let sent = vec![Vec::new(); caches.len()];
        Self {
            model,
            caches,
            sent,
        }
    }

    /// The last position's logits after `tokens` at `start`.
    fn step(&mut self, tokens: &[u32], start: usize) -> Vec<i32> {
        let mut a = self.model.embed_tokens(tokens, start).expect("embed");
        for (i, cache) in self.caches.iter_mut().enumerate() {
            self.sent[i].extend_from_slice(&a.rows);
            a = self.model.run_span(cache, &a).expect("span");
        }
        self.model.span_logits(&a, false).expect("logits")
    }

    /// Span `i`'s server is gone: a new one is given everything span `i` was sent.
    fn replace(&mut self, i: usize) {
        let blocks = self.caches[i].blocks();
        let mut fresh = KvCache::for_blocks(blocks);
        let prefix = Activations {
            start: 0,
            rows: self.sent[i].clone(),
        };
        self.model.run_span(&mut fresh, &prefix).expect("replay");
        self.caches[i] = fresh;
    }
}

#[test]
fn a_chain_of_spans_gives_one_processs_logits_and_survives_a_replaced_server() {
    for name in FAMILIES {
        let r = reference(name);
        let model = quantize(&checkpoint(name), 8).expect("model");
        let layers = model.blocks.len();
        // One process: prefill, then greedy decoding.
        let mut cache = KvCache::new(&model.config);
        let mut local = vec![
            model
                .forward(&r.prompt_ids, &mut cache, false)
                .expect("prefill"),
        ];
        let mut tokens = Vec::new();
        for _ in 0..8 {
            let next = argmax(local.last().expect("logits"));
            tokens.push(next);
            local.push(model.forward(&[next], &mut cache, false).expect("decode"));
        }
        for n in 1..=layers {
            let mut chain = Chain::new(&model, n);
            let mut pos = 0;
            let mut feed = r.prompt_ids.clone();
            for (i, want) in local.iter().enumerate() {
                // A middle server dies halfway through: its replacement replays the prefix.
                if i == 4 {
                    chain.replace(n / 2);
                }
                assert_eq!(&chain.step(&feed, pos), want, "{name}: {n} spans, step {i}");
                pos += feed.len();
                feed = tokens.get(i).map(|&t| vec![t]).unwrap_or_default();
            }
        }
    }
}

#[test]
fn bad_activations_are_refused_and_leave_the_span_as_it_was() {
    let model = quantize(&checkpoint("llama-tiny"), 8).expect("model");
    let d = model.config.hidden;
    let mut cache = KvCache::for_blocks(0..1);
    let a = model.embed_tokens(&[1, 2, 3], 0).expect("embed");
    let err = |r: Result<Activations, LmError>| r.expect_err("refused").to_string();
    // Not the next position: the message says which prefix to send.
    let later = Activations {
        start: 5,
        ..a.clone()
    };
    assert!(err(model.run_span(&mut cache, &later)).contains("from position 0 again"));
    let ragged = Activations {
        start: 0,
        rows: a.rows[..d + 1].to_vec(),
    };
    assert!(err(model.run_span(&mut cache, &ragged)).contains("not whole rows"));
    let mut wild = a.clone();
    wild.rows[7] = i32::MAX;
    assert!(err(model.run_span(&mut cache, &wild)).contains("outside"));
    let mut beyond = KvCache::for_blocks(0..model.blocks.len() + 1);
    assert!(err(model.run_span(&mut beyond, &a)).contains("not a span"));
    let long = Activations {
        start: 0,
        rows: vec![0; d * (model.config.context + 1)],
    };
    assert!(matches!(
        model.run_span(&mut cache, &long),
        Err(LmError::TooLong { .. })
    ));
    assert_eq!(cache.len(), 0, "nothing was cached");
    // A span's cache is not the whole model's: the forward pass says which to use.
    let whole = model
        .forward(&[1, 2], &mut cache, false)
        .expect_err("a span's cache");
    assert!(whole.to_string().contains("run_span"), "{whole}");
    model
        .run_span(&mut cache, &a)
        .expect("the good activations run");
    assert_eq!(cache.len(), 3);
    // The wire form round-trips and is hashed as it is sent.
    let bytes = a.to_bytes();
    assert_eq!(Activations::from_bytes(&bytes).expect("bytes"), a);
    assert_eq!(a.hash(), alloy_primitives::keccak256(&bytes));
    assert!(Activations::from_bytes(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn a_span_read_from_the_stored_bytes_holds_only_its_blocks_and_computes_the_same_rows() {
    for name in FAMILIES {
        let model = quantize(&checkpoint(name), 8).expect("model");
        let bytes = model.to_bytes().expect("bytes");
        let layers = model.blocks.len();
        assert_eq!(
            ExactModel::stored_config(&bytes).expect("config"),
            model.config
        );
        for span in [0..1, 1..layers, 0..layers] {
            let part = ExactModel::span_from_bytes(&bytes, span.clone()).expect("span");
            assert_eq!(part.blocks, model.blocks[span.clone()], "{name} {span:?}");
            assert_eq!(part.final_norm, model.final_norm);
            if span.len() < layers {
                assert_eq!(part.embed.rows, 0, "{name}: the embeddings are not kept");
                assert!(part.head.as_ref().is_none_or(|h| h.rows == 0));
            }
            // The span's rows are the whole model's rows through the same blocks.
            let a = model.embed_tokens(&[1, 2, 3], 0).expect("embed");
            let mut whole = KvCache::for_blocks(span.clone());
            let mut own = KvCache::for_blocks(0..span.len());
            assert_eq!(
                part.run_span(&mut own, &a).expect("own"),
                model.run_span(&mut whole, &a).expect("whole"),
                "{name} {span:?}"
            );
        }
        for bad in [0..0, 1..1, 0..layers + 1] {
            let e = ExactModel::span_from_bytes(&bytes, bad.clone()).expect_err("refused");
            assert!(e.to_string().contains("not a span"), "{bad:?}: {e}");
        }
    }
}
