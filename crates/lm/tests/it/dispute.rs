//! The fine-tuning step program (docs/protocol.md §9): run op by op with the referee's
//! formulas, it ends in the engine's own next state, bit for bit, in both families.

use pedals_lm::dispute::{OpKind, OpTrace, StepInputs};
use pedals_lm::train::{AdamConfig, Example, FineTune, LoraConfig, Target};

use crate::fixtures;

/// Examples of different lengths and prompts, so that shapes and masks differ per slot.
pub(crate) fn examples(name: &str) -> Vec<Example> {
    let ids = &fixtures::reference(name).eval_ids;
    [(9, 0), (14, 4), (6, 1), (11, 20), (17, 2), (8, 3)]
        .iter()
        .scan(0, |at, &(len, prompt)| {
            let ex = Example {
                tokens: ids[*at..*at + len].to_vec(),
                prompt,
            };
            *at += len;
            Some(ex)
        })
        .collect()
}

pub(crate) fn run(name: &str) -> FineTune {
    let llama = name.starts_with("llama");
    let targets: Vec<&str> = Target::ALL
        .iter()
        .filter(|t| llama || **t != Target::Gate)
        .map(|t| t.name())
        .collect();
    FineTune {
        lora: LoraConfig::new(2, 4, &targets).expect("lora"),
        adam: AdamConfig::new(2e-2, 1e-3, (0.9, 0.999), 1e-6, 1, 10).expect("adam"),
        batch: 3,
        seed: 11,
    }
}

#[test]
fn the_step_program_run_by_the_referees_formulas_ends_in_the_engines_next_state() {
    for name in fixtures::FAMILIES {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
        let ft = run(name);
        let data = examples(name);
        ft.check(&model, &data).expect("valid");
        let mut state = ft.init(&model);
        // Two steps first, so that B is no longer zero and the moments are not either.
        for _ in 0..2 {
            ft.step(&model, &mut state, &data);
        }
        let inputs = StepInputs::new(&model, &ft, &state, &data).expect("inputs");
        let trace = OpTrace::run(&inputs).expect("trace");
        let mut next = state.clone();
        ft.step(&model, &mut next, &data);
        let c = &model.config;
        let want = next.to_model_state(c, &ft.lora).expect("state");
        for ((tname, _), &k) in inputs.program.state.iter().zip(&inputs.program.new_state) {
            let engine = &want.tensor(tname).expect("tensor").data;
            assert_eq!(&trace.tensors[k - 1], engine, "{name}: {tname}");
        }
        let ops = &inputs.program.ops;
        assert_eq!(ops.last().map(|o| o.kind), Some(OpKind::StateHash));
        assert_eq!(
            trace.leaves.last(),
            Some(&next.state_hash(c, &ft.lora).expect("hash")),
            "{name}: h_i+1"
        );
        assert_eq!(
            trace.leaves[0],
            state.state_hash(c, &ft.lora).expect("hash")
        );
        // What a player holds (and a worker checks against its memory before it claims).
        let held: usize = trace.tensors.iter().map(|t| 4 * t.len()).sum();
        assert_eq!(
            inputs.program.trace_bytes(),
            held as u64,
            "{name}: trace bytes"
        );
        eprintln!("{name}: {} ops, {} leaves", ops.len(), trace.leaves.len());
    }
}

/// The game's promise on a transformer step: a worker that changes any one element of any op
/// (and computes every later op from it, so that its trace is consistent with the lie) is
/// narrowed to exactly that op, row and element by comparing leaves, rows and values, and the
/// referee's formula, from input rows both sides agree on, gives the honest value, not the
/// worker's; a challenger that disputes an honest element loses.
#[test]
fn a_changed_element_of_any_op_is_narrowed_to_and_refuted_by_the_referee() {
    let name = "llama-tiny";
    let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
    let (ft, data) = (run(name), examples(name));
    let mut state = ft.init(&model);
    ft.step(&model, &mut state, &data);
    let inputs = StepInputs::new(&model, &ft, &state, &data).expect("inputs");
    let honest = OpTrace::run(&inputs).expect("trace");
    let ops = &inputs.program.ops;
    // The first op of every kind, and a spread of others.
    let mut leaves: Vec<usize> = Vec::new();
    for (k, op) in ops.iter().enumerate() {
        if op.kind != OpKind::StateHash && !leaves.iter().any(|&l| ops[l - 1].kind == op.kind) {
            leaves.push(k + 1);
        }
    }
    leaves.extend((1..ops.len()).step_by(97));
    let mut seed = 0x9e37_79b9_u64;
    let mut draw = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for &k in &leaves {
        let op = &ops[k - 1];
        let (r, c) = (draw(op.rows), draw(op.cols));
        let at = r * op.cols + c;
        let mut outputs = honest.tensors[..k].to_vec();
        outputs[k - 1][at] = outputs[k - 1][at].wrapping_add(1);
        let lying = OpTrace::run_from(&inputs, outputs).expect("a trace from the lie");
        // The challenger names the first leaf that differs from its own: op k.
        let first = (0..honest.leaves.len())
            .find(|&i| honest.leaves[i] != lying.leaves[i])
            .expect("the lie changes a leaf");
        assert_eq!(first, k, "{}", op.name);
        // Then the first row and element that differ: the changed one.
        let differs = (0..op.rows * op.cols)
            .find(|&i| honest.tensors[k - 1][i] != lying.tensors[k - 1][i])
            .expect("the lie");
        assert_eq!(differs, at);
        // The referee recomputes it from the worker's input rows, which are the honest ones
        // (every earlier leaf agrees), and finds the honest value, not the worker's.
        let rows = inputs
            .element_rows(&lying.tensors, op, r, c)
            .expect("input rows");
        let value = pedals_lm::dispute::element(op, &inputs.params, r, c, &rows);
        assert_eq!(value, Some(honest.tensors[k - 1][at]), "{}", op.name);
        assert_ne!(value, Some(lying.tensors[k - 1][at]), "{}", op.name);
        // A challenge of an honest element fails: the referee agrees with the worker.
        let rows = inputs
            .element_rows(&honest.tensors, op, r, c)
            .expect("input rows");
        let again = pedals_lm::dispute::element(op, &inputs.params, r, c, &rows);
        assert_eq!(again, Some(honest.tensors[k - 1][at]), "{}", op.name);
    }
    assert!(leaves.len() > 40, "{}", leaves.len());
}

/// Long rows (docs/protocol.md §9): with the vocabulary laid out in chunks (here the fixtures'
/// small vocabularies of 384 tokens in chunks of 60 and 100, the last one short), the program's
/// chunked logits, partial softmax sums and partial input gradients end in the engine's own
/// next state to the bit, in both families; no row any op reads is longer than a chunk but
/// for the model's own rows; and a changed element of each chunked op is refuted by the
/// referee's formula.
#[test]
fn a_vocabulary_in_chunks_gives_the_engines_next_state() {
    use pedals_lm::dispute::{Source, program_chunked};
    for (name, chunk) in [("llama-tiny", 60), ("gpt2-tiny", 100)] {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
        let ft = run(name);
        let data = examples(name);
        let mut state = ft.init(&model);
        ft.step(&model, &mut state, &data);
        let mut inputs = StepInputs::new(&model, &ft, &state, &data).expect("inputs");
        let lens: Vec<usize> = inputs.data.iter().map(|d| d.len() - 1).collect();
        let c = &model.config;
        inputs.program =
            program_chunked(c, &ft.lora, &lens, data.len(), Some(chunk)).expect("program");
        let ops = &inputs.program.ops;
        for op in ops {
            for o in &op.inputs {
                if !matches!(o.source, Source::Model(_) | Source::Data(_)) {
                    assert!(
                        o.cols <= chunk.max(2 * c.intermediate),
                        "{} reads rows of {}",
                        op.name,
                        o.cols
                    );
                }
            }
        }
        let honest = OpTrace::run(&inputs).expect("trace");
        let mut next = state.clone();
        ft.step(&model, &mut next, &data);
        assert_eq!(
            honest.leaves.last(),
            Some(&next.state_hash(c, &ft.lora).expect("hash")),
            "{name}: h_i+1"
        );
        let chunked: Vec<usize> = (0..ops.len())
            .filter(|&k| {
                (OpKind::TransposeChunk as u8..=OpKind::InputGradSum as u8)
                    .contains(&(ops[k].kind as u8))
            })
            .collect();
        assert_eq!(chunked.len(), 2 + 7 * data.len().min(ft.batch), "{name}");
        for &k in chunked.iter().take(9) {
            let op = &ops[k];
            // The last element of the op: the short last chunk, a padded column or the last
            // position.
            let (r, col) = (op.rows - 1, op.cols - 1);
            let mut outputs = honest.tensors[..=k].to_vec();
            outputs[k][r * op.cols + col] ^= 1;
            let lying = OpTrace::run_from(&inputs, outputs).expect("a trace from the lie");
            let rows = inputs
                .element_rows(&lying.tensors, op, r, col)
                .expect("input rows");
            let value = pedals_lm::dispute::element(op, &inputs.params, r, col, &rows);
            assert_eq!(
                value,
                Some(honest.tensors[k][r * op.cols + col]),
                "{}",
                op.name
            );
        }
        eprintln!("{name}: {} ops, {} chunked", ops.len(), chunked.len());
    }
}
