//! `tests/vectors/lm_dispute.json`: whole disputes over one step of a fine-tuning job, for
//! the game contract's test (`contracts/test/LmDisputeGame.t.sol`) to play on the real market:
//! the job's spec and step trace, and every move's calldata, for a worker that changed one
//! element of a linear op (it loses) and for an honest one disputed at the same element (it
//! wins). After an intended change of the program or the spec:
//! `PEDALS_BLESS=1 cargo test --workspace --test it lm_dispute_vectors`.

use alloy_primitives::keccak256;
use pedals_core::{B256, MerkleTree, hash_row};
use pedals_lm::dispute::{OpTrace, Source, StepInputs, model_state};
use pedals_lm::{FinetuneSpec, Method};
use serde_json::{Value, json};

use crate::fixtures;

const STEP: u64 = 1;

fn tree(leaves: &[B256]) -> MerkleTree {
    MerkleTree::new(leaves).expect("tree")
}

pub(crate) fn proof(leaves: &[B256], i: usize) -> Vec<String> {
    let p = tree(leaves).proof(i).expect("proof");
    p.siblings.iter().map(ToString::to_string).collect()
}

pub(crate) fn row_hashes(data: &[i32], cols: usize) -> Vec<B256> {
    data.chunks(cols).map(hash_row).collect()
}

pub(crate) fn entries(st: &pedals_core::ModelState) -> Vec<String> {
    st.state_entries()
        .expect("entries")
        .iter()
        .flat_map(|e| [e.name_hash, e.shape_hash, e.root])
        .map(|h| h.to_string())
        .collect()
}

pub(crate) fn strs(v: &[B256]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// The challenger's naming of the last op (the state hash): every new tensor's leaf, and the
/// entries of `h_i` for their names and shapes.
fn state_hash_moves(inputs: &StepInputs, trace: &OpTrace) -> Value {
    let leaves = &trace.leaves;
    let last = leaves.len() - 1;
    let openings: Vec<Value> = inputs
        .program
        .new_state
        .iter()
        .map(|&k| json!({ "root": leaves[k].to_string(), "proof": proof(leaves, k) }))
        .collect();
    json!({
        "leaf": last, "leaves": strs(leaves),
        "output": { "root": leaves[last].to_string(), "proof": proof(leaves, last) },
        "inputs": openings, "state_entries": entries(&inputs.state), "model_entries": [],
    })
}

/// The moves of a dispute of element `(r, c)` of op `leaf` over `trace` (the worker's).
fn moves(
    inputs: &StepInputs,
    trace: &OpTrace,
    data_rows: &[B256],
    (leaf, r, c): (usize, usize, usize),
) -> Value {
    if leaf == trace.leaves.len() - 1 {
        return state_hash_moves(inputs, trace);
    }
    let op = &inputs.program.ops[leaf - 1];
    let leaves = &trace.leaves;
    let out = &trace.tensors[leaf - 1];
    let out_rows = row_hashes(out, op.cols);
    let mut openings = Vec::new();
    let (mut rows, mut proofs) = (Vec::new(), Vec::new());
    let element_rows = inputs.element_rows(&trace.tensors, op, r, c).expect("rows");
    let (sample, data) = inputs.data_for(op);
    let index = pedals_lm::dispute::input_rows(op, &inputs.params, r, c, sample, data);
    for ((o, row), &i) in op.inputs.iter().zip(&element_rows).zip(&index) {
        let (root, hashes) = match o.source {
            Source::Leaf(k) => (
                leaves[k].to_string(),
                row_hashes(&trace.tensors[k - 1], o.cols),
            ),
            Source::Model(m) => (
                String::new(),
                row_hashes(&inputs.model.tensors[m].data, o.cols),
            ),
            Source::State(s) => (
                String::new(),
                row_hashes(&inputs.state.tensors[s].data, o.cols.max(1)),
            ),
            Source::Data(_) => (String::new(), data_rows.to_vec()),
        };
        let leaf_proof = match o.source {
            Source::Leaf(k) => proof(leaves, k),
            _ => Vec::new(),
        };
        openings.push(json!({ "root": if root.is_empty() { B256::ZERO.to_string() } else { root }, "proof": leaf_proof }));
        rows.push(json!(row));
        proofs.push(json!(proof(&hashes, i)));
    }
    json!({
        "leaf": leaf, "r": r, "c": c, "kind": op.kind as u8, "name": op.name,
        "leaves": strs(leaves),
        "output": { "root": leaves[leaf].to_string(), "proof": proof(leaves, leaf) },
        "inputs": openings,
        "state_entries": entries(&inputs.state),
        "model_entries": entries(&inputs.model),
        "row_hashes": strs(&out_rows),
        "row": &out[r * op.cols..(r + 1) * op.cols],
        "row_proof": proof(&out_rows, r),
        "input_rows": rows, "input_proofs": proofs,
        "claimed": out[r * op.cols + c],
    })
}

fn generate() -> Vec<Value> {
    let mut cases = job_cases(Method::Lora);
    cases.extend(job_cases(Method::Full));
    cases
}

/// The cases of one job: for LoRA, every kind of lie; for a full fine-tune, a worker that
/// changed one element of a γ's gradient (an op only a full step has), and an honest one
/// challenged at the same element.
fn job_cases(method: Method) -> Vec<Value> {
    let model = pedals_lm::quantize(&fixtures::checkpoint("llama-tiny"), 8).expect("model");
    let bytes = model.to_bytes().expect("bytes");
    let dataset = std::fs::read(fixtures::dir("finetune").join("heldout.jsonl")).expect("data");
    let terms: pedals_lm::train::Terms = serde_json::from_value(json!({
        "rank": 2, "alpha": 2, "targets": ["q_proj", "v_proj"], "lr": 3e-3, "lr_end": 3e-4,
        "betas": [0.9, 0.999], "eps": 1e-6, "warmup": 1, "steps": 4, "batch": 2, "seed": 3
    }))
    .expect("terms");
    let spec = FinetuneSpec::with_method(&bytes, &dataset, &terms, method).expect("spec");
    let job = spec.load(&bytes, &dataset).expect("inputs");
    assert_eq!(
        model_state(&job.model)
            .expect("model")
            .state_hash()
            .expect("h")
            .to_string(),
        spec.model_root
    );
    let mut state = job.initial().expect("initial");
    for _ in 0..STEP {
        job.step(&mut state);
    }
    let inputs = job.step_inputs(&state).expect("inputs");
    let honest = OpTrace::run(&inputs).expect("trace");
    // A worker's trace with one element of op `name` changed (every later op from the lie).
    let lie = |name: &str| {
        let leaf = inputs.program.leaf_named(name).expect("the op");
        let op = &inputs.program.ops[leaf - 1];
        let (r, c) = (op.rows / 2, op.cols / 3);
        let mut outputs = honest.tensors[..leaf].to_vec();
        outputs[leaf - 1][r * op.cols + c] += 5;
        let trace = OpTrace::run_from(&inputs, outputs).expect("lie");
        (trace, (leaf, r, c))
    };
    if method == Method::Full {
        let gamma = lie("e0.b0.attn_norm.gamma.g");
        let runs = [
            ("lying_full", gamma.0.clone(), gamma.1),
            ("honest_full", honest.clone(), gamma.1),
        ];
        return cases_of(&spec, &job, &inputs, &runs);
    }
    let linear = lie("e0.b0.q_proj.y0");
    // A worker whose h_(i+1) is not the hash of its own new tensors.
    let mut hash_lie = honest.clone();
    *hash_lie.leaves.last_mut().expect("h_i+1") = keccak256(b"another state");
    let last = honest.leaves.len() - 1;
    let runs = [
        ("lying", linear.0.clone(), linear.1),
        ("honest", honest.clone(), linear.1),
        (
            "lying_quant",
            lie("b0.q_proj.A.q").0,
            lie("b0.q_proj.A.q").1,
        ),
        ("lying_embed", lie("e1.h0").0, lie("e1.h0").1),
        ("lying_hash", hash_lie, (last, 0, 0)),
    ];
    cases_of(&spec, &job, &inputs, &runs)
}

/// One case per run: the job's step trace around the worker's states and every move.
fn cases_of(
    spec: &FinetuneSpec,
    job: &pedals_lm::FinetuneInputs,
    inputs: &StepInputs,
    runs: &[(&str, OpTrace, (usize, usize, usize))],
) -> Vec<Value> {
    let data_rows: Vec<Value> = inputs.data.iter().map(|d| json!(d)).collect();
    let all_rows: Vec<B256> = job
        .examples
        .iter()
        .map(|e| hash_row(&pedals_lm::dispute::data_row(e)))
        .collect();
    let data_proofs: Vec<Value> = inputs
        .samples
        .iter()
        .map(|&s| json!(proof(&all_rows, s)))
        .collect();
    let steps = spec.steps as usize;
    let mask: u32 = job.run.lora.targets.iter().map(|t| 1u32 << t.index()).sum();
    let mut cases = Vec::new();
    for (who, trace, at) in runs {
        // The job's step trace: h_0 .. h_i, then the worker's h_(i+1); later states are
        // placeholders (a dispute of step i reads only h_i and h_(i+1)).
        let mut trace_leaves: Vec<B256> = (0..=steps)
            .map(|i| keccak256(format!("h{i}").as_bytes()))
            .collect();
        trace_leaves[STEP as usize] = trace.leaves[0];
        trace_leaves[STEP as usize + 1] = *trace.leaves.last().expect("h_i+1");
        cases.push(json!({
            "worker": who, "spec": spec, "target_mask": mask, "step": STEP,
            "lens": inputs.data.iter().map(|d| d.len() - 1).collect::<Vec<_>>(),
            "samples": inputs.samples,
            "trace_leaves": strs(&trace_leaves),
            "state_in_proof": proof(&trace_leaves, STEP as usize),
            "state_out_proof": proof(&trace_leaves, STEP as usize + 1),
            "final_proof": proof(&trace_leaves, steps),
            "data_rows": data_rows, "data_proofs": data_proofs,
            "moves": moves(inputs, trace, &all_rows, *at),
        }));
    }
    cases
}

#[test]
fn lm_dispute_vectors_are_what_the_trace_gives() {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/lm_dispute.json");
    let description = "Pedals fine-tuning dispute vectors, version 1: per case the spec, the \
        job's step trace and every move's calldata of a dispute over one element of an op \
        (docs/protocol.md sections 3 and 9): 'lying' changed an element of a linear op, \
        'honest' did not, 'lying_quant' changed a quantized adapter (read from the state), \
        'lying_embed' an embedding of slot 1 (read from the data), 'lying_hash' claims a state \
        hash that is not its tensors'; 'lying_full' and 'honest_full' are a full fine-tune of the \
        same model (method full) disputed at an element of a norm's gamma gradient. Generated by PEDALS_BLESS=1 cargo test --workspace --test it \
        lm_dispute_vectors.";
    let fresh = generate();
    let read = crate::vectors::bless_or_read(&path, description, fresh.clone());
    assert_eq!(read, fresh);
}
