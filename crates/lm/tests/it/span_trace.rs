//! The span program (docs/split-inference.md, "Disputes"): the forward pass of a span's blocks
//! over a session's whole prefix, run op by op with the referee's formulas, holds every row
//! the span server returned while it decoded with its key/value cache, bit for bit, in both
//! families; a server's lie about any op is narrowed to that element and refuted.

use pedals_lm::dispute::{OpKind, OpTrace, SPAN_INPUT, StepInputs, element, row_root};
use pedals_lm::{Activations, KvCache, quantize};

use crate::fixtures::{FAMILIES, checkpoint, reference};

/// The span's input rows and the rows it answered, for a prefill of the reference prompt
/// followed by one-token steps, as a server with a key/value cache computes them.
fn serve(
    model: &pedals_lm::ExactModel,
    blocks: std::ops::Range<usize>,
    tokens: &[u32],
) -> (Vec<i32>, Vec<i32>) {
    let mut cache = KvCache::for_blocks(blocks.clone());
    let (mut sent, mut answered) = (Vec::new(), Vec::new());
    let mut cut = vec![0, tokens.len() / 2];
    cut.extend(tokens.len() / 2 + 1..=tokens.len());
    for w in cut.windows(2) {
        let mut a = model
            .embed_tokens(&tokens[w[0]..w[1]], w[0])
            .expect("embed");
        // A span after block 0 is sent the previous span's output: run blocks 0..start here.
        if blocks.start > 0 {
            let mut front = KvCache::for_blocks(0..blocks.start);
            let whole = model.embed_tokens(&tokens[..w[1]], 0).expect("embed");
            let out = model.run_span(&mut front, &whole).expect("front");
            let d = model.config.hidden;
            a = Activations {
                start: w[0],
                rows: out.rows[w[0] * d..].to_vec(),
            };
        }
        sent.extend_from_slice(&a.rows);
        answered.extend(model.run_span(&mut cache, &a).expect("span").rows);
    }
    (sent, answered)
}

#[test]
fn a_spans_program_holds_every_row_its_server_answered() {
    for name in FAMILIES {
        let model = quantize(&checkpoint(name), 8).expect("model");
        let tokens = reference(name).prompt_ids.clone();
        let layers = model.blocks.len();
        for blocks in [0..layers, layers / 2..layers, 0..1] {
            let (sent, answered) = serve(&model, blocks.clone(), &tokens);
            let inputs = StepInputs::span(&model, blocks.clone(), &sent).expect("inputs");
            let trace = OpTrace::run(&inputs).expect("trace");
            let d = model.config.hidden;
            assert_eq!(
                trace.tensors.last().expect("an output"),
                &answered,
                "{name} {blocks:?}"
            );
            assert_eq!(trace.leaves[0], row_root(&sent, d).expect("root"));
            assert_eq!(
                trace.leaves.last(),
                Some(&row_root(&answered, d).expect("root"))
            );
            let ops = &inputs.program.ops;
            assert_eq!(inputs.program.input, Some((tokens.len(), d)));
            assert!(ops.iter().all(|o| o.kind != OpKind::StateHash));
            let per_block = ops.len() / blocks.len();
            assert_eq!(ops.len(), per_block * blocks.len(), "every block alike");
        }
    }
}

#[test]
fn a_lie_in_any_op_of_a_span_is_narrowed_and_refuted() {
    let name = "llama-tiny";
    let model = quantize(&checkpoint(name), 8).expect("model");
    let tokens = reference(name).prompt_ids.clone();
    let blocks = 0..model.blocks.len();
    let (sent, _) = serve(&model, blocks.clone(), &tokens);
    let inputs = StepInputs::span(&model, blocks, &sent).expect("inputs");
    let honest = OpTrace::run(&inputs).expect("trace");
    let ops = &inputs.program.ops;
    assert!(
        ops[0].inputs[0].source == pedals_lm::dispute::Source::Leaf(0),
        "{SPAN_INPUT}"
    );
    for (k, op) in ops.iter().enumerate().map(|(k, o)| (k + 1, o)) {
        let (r, c) = (k % op.rows, (7 * k) % op.cols);
        let at = r * op.cols + c;
        let mut outputs = honest.tensors[..k].to_vec();
        outputs[k - 1][at] = outputs[k - 1][at].wrapping_add(1);
        let lying = OpTrace::run_from(&inputs, outputs).expect("a trace from the lie");
        let first = (0..honest.leaves.len()).find(|&i| honest.leaves[i] != lying.leaves[i]);
        assert_eq!(first, Some(k), "{}", op.name);
        let rows = inputs
            .element_rows(&lying.tensors, op, r, c)
            .expect("input rows");
        let value = element(op, &inputs.params, r, c, &rows);
        assert_eq!(value, Some(honest.tensors[k - 1][at]), "{}", op.name);
    }
}
