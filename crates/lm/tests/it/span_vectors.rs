//! `tests/vectors/span_dispute.json`: whole disputes of a span server's receipt, for the span
//! game contract's test (`contracts/test/SpanDisputeGame.t.sol`) to play: the model's
//! architecture and commitment, the receipt's fields, the server's op trace and every move's
//! calldata. After an intended change of the span program:
//! `PEDALS_BLESS=1 cargo test --workspace --test it span_dispute_vectors`.

use pedals_core::B256;
use pedals_lm::dispute::{OpTrace, Source, StepInputs, input_rows, model_state, row_root};
use pedals_lm::finetune_job::Arch;
use serde_json::{Value, json};

use crate::dispute_vectors::{entries, proof, row_hashes, strs};
use crate::fixtures;

/// The moves of a dispute of element `(r, c)` of op `leaf` of the server's `trace`.
fn moves(inputs: &StepInputs, trace: &OpTrace, (leaf, r, c): (usize, usize, usize)) -> Value {
    let op = &inputs.program.ops[leaf - 1];
    let leaves = &trace.leaves;
    let out = &trace.tensors[leaf - 1];
    let out_rows = row_hashes(out, op.cols);
    let index = input_rows(op, &inputs.params, r, c, 0, &[]);
    let rows = inputs.element_rows(&trace.tensors, op, r, c).expect("rows");
    let (mut openings, mut proofs) = (Vec::new(), Vec::new());
    for (o, &i) in op.inputs.iter().zip(&index) {
        let (root, leaf_proof, hashes) = match o.source {
            Source::Leaf(0) => (
                leaves[0],
                proof(leaves, 0),
                row_hashes(&inputs.input, o.cols),
            ),
            Source::Leaf(k) => (
                leaves[k],
                proof(leaves, k),
                row_hashes(&trace.tensors[k - 1], o.cols),
            ),
            Source::Model(m) => (
                B256::ZERO,
                Vec::new(),
                row_hashes(&inputs.model.tensors[m].data, o.cols),
            ),
            Source::State(_) | Source::Data(_) => unreachable!("a span reads neither"),
        };
        openings.push(json!({ "root": root.to_string(), "proof": leaf_proof }));
        proofs.push(json!(proof(&hashes, i)));
    }
    json!({
        "leaf": leaf, "r": r, "c": c, "kind": op.kind as u8, "name": op.name,
        "output": { "root": leaves[leaf].to_string(), "proof": proof(leaves, leaf) },
        "inputs": openings,
        "model_entries": entries(&inputs.model),
        "row_hashes": strs(&out_rows),
        "row": &out[r * op.cols..(r + 1) * op.cols],
        "row_proof": proof(&out_rows, r),
        "input_rows": rows, "input_proofs": proofs,
        "claimed": out[r * op.cols + c],
    })
}

fn generate() -> Vec<Value> {
    let model = pedals_lm::quantize(&fixtures::checkpoint("llama-tiny"), 8).expect("model");
    let c = &model.config;
    let blocks = c.layers / 2..c.layers;
    let tokens = &fixtures::reference("llama-tiny").prompt_ids;
    // The span's input: the output of the blocks before it over the prompt.
    let mut front = pedals_lm::KvCache::for_blocks(0..blocks.start);
    let embedded = model.embed_tokens(tokens, 0).expect("embed");
    let input = model.run_span(&mut front, &embedded).expect("front").rows;
    let inputs = StepInputs::span(&model, blocks.clone(), &input).expect("inputs");
    let honest = OpTrace::run(&inputs).expect("trace");
    let model_root = model_state(&model)
        .expect("model")
        .state_hash()
        .expect("root");
    let ops = &inputs.program.ops;
    // A server's trace with one element of op `k` changed (every later op from the lie).
    let lie = |k: usize| {
        let op = &ops[k - 1];
        let (r, col) = (op.rows / 2, op.cols / 3);
        let mut outputs = honest.tensors[..k].to_vec();
        outputs[k - 1][r * op.cols + col] += 3000;
        (
            OpTrace::run_from(&inputs, outputs).expect("lie"),
            (k, r, col),
        )
    };
    let linear = inputs
        .program
        .leaf_named(&format!("s.b{}.q_proj.y", blocks.start))
        .expect("q");
    let (lying, at) = lie(linear);
    let runs = [
        ("lying", lying, at),
        ("honest", honest.clone(), at),
        ("lying_first", lie(1).0, lie(1).1),
        ("lying_output", lie(ops.len()).0, lie(ops.len()).1),
    ];
    let d = c.hidden;
    runs.iter()
        .map(|(who, trace, at)| {
            let output = trace.leaves.last().expect("output");
            // Every lie reaches the output the server returned, as a client would see it.
            assert_eq!(
                *who == "honest",
                output == honest.leaves.last().expect("out"),
                "{who}"
            );
            assert_eq!(
                *output,
                row_root(trace.tensors.last().expect("out"), d).expect("root")
            );
            json!({
                "server": who, "arch": Arch::of(c), "model_root": model_root.to_string(),
                "start": blocks.start, "end": blocks.end, "positions": input.len() / d,
                "input": trace.leaves[0].to_string(), "output": output.to_string(),
                "leaves": strs(&trace.leaves),
                "moves": moves(&inputs, trace, *at),
            })
        })
        .collect()
}

#[test]
fn span_dispute_vectors_are_what_the_span_trace_gives() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/span_dispute.json");
    let description = "Pedals span dispute vectors, version 1: per case a span server's receipt \
        (llama-tiny, its last block over the reference prompt), its op trace, and every move's \
        calldata of a dispute over one element (docs/split-inference.md, Disputes): 'lying' \
        changed an element of a linear op, 'honest' did not, 'lying_first' changed the first \
        op (which reads the input), 'lying_output' the last (the output it returned). Generated \
        by PEDALS_BLESS=1 cargo test --workspace --test it span_dispute_vectors.";
    let fresh = generate();
    let read = crate::vectors::bless_or_read(&path, description, fresh.clone());
    assert_eq!(read, fresh);
}
