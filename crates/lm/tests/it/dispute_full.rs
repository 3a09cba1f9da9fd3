//! The full fine-tuning step program (docs/protocol.md §9, "Full fine-tuning"): run op by op
//! with the referee's formulas, it ends in the engine's own next full state, bit for bit, in
//! both families; and a changed element of every op kind is refuted by the referee.

use pedals_lm::dispute::{OpKind, OpTrace, Source, StepInputs, element};
use pedals_lm::train::AdamConfig;
use pedals_lm::train::full::{FullState, FullTune, Layout};

use crate::dispute::examples;
use crate::fixtures;

pub(crate) fn tune() -> FullTune {
    FullTune {
        adam: AdamConfig::new(2e-3, 2e-4, (0.9, 0.999), 1e-6, 1, 10).expect("adam"),
        batch: 3,
        seed: 5,
    }
}

#[test]
fn the_full_step_program_ends_in_the_engines_next_state() {
    for name in fixtures::FAMILIES {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
        let (ft, data) = (tune(), examples(name));
        ft.check(&model, &data).expect("valid");
        let mut state = FullState::init(&model).expect("masters");
        // One step first, so that the moments are not zero.
        ft.step(&model, &mut state, &data);
        let inputs = StepInputs::full(&model, &ft, &state, &data).expect("inputs");
        let trace = OpTrace::run(&inputs).expect("trace");
        let mut next = state.clone();
        ft.step(&model, &mut next, &data);
        let c = &model.config;
        let want = next.to_model_state(c).expect("state");
        let program = &inputs.program;
        assert_eq!(program.state.len(), 1 + 3 * Layout::of(c).params.len());
        for ((tname, _), &k) in program.state.iter().zip(&program.new_state) {
            let engine = &want.tensor(tname).expect("tensor").data;
            assert_eq!(&trace.tensors[k - 1], engine, "{name}: {tname}");
        }
        assert_eq!(
            trace.leaves.last(),
            Some(&next.state_hash(c).expect("hash")),
            "{name}: h_i+1"
        );
        assert_eq!(trace.leaves[0], state.state_hash(c).expect("hash"));
        // The forward reads no weight from the model commitment: only the rotary tables.
        for op in &program.ops {
            for o in &op.inputs {
                if let Source::Model(i) = o.source {
                    assert!(program.model[i].0.starts_with("rope."), "{}", op.name);
                }
            }
        }
        // Every weight moved, and its masters did by what Adam allows.
        let moved = state.w.iter().zip(&next.w).filter(|(a, b)| a != b).count();
        assert_eq!(moved, state.w.len(), "{name}: every weight is trained");
        eprintln!("{name}: {} ops", program.ops.len());
    }
}

/// A worker that changes one element of an op of each kind (and computes every later op
/// from it) is narrowed to that element, and the referee's formula from the agreed input
/// rows gives the honest value.
#[test]
fn a_changed_element_of_a_full_step_is_refuted() {
    for name in fixtures::FAMILIES {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
        let (ft, data) = (tune(), examples(name));
        let mut state = FullState::init(&model).expect("masters");
        ft.step(&model, &mut state, &data);
        let inputs = StepInputs::full(&model, &ft, &state, &data).expect("inputs");
        let honest = OpTrace::run(&inputs).expect("trace");
        let ops = &inputs.program.ops;
        let new_kinds = [
            OpKind::Requant,
            OpKind::NormN,
            OpKind::GammaGrad,
            OpKind::BiasGrad,
            OpKind::EmbedGrad,
            OpKind::PosGrad,
        ];
        let mut seen = Vec::new();
        for (k, op) in ops.iter().enumerate() {
            if !new_kinds.contains(&op.kind) || seen.contains(&op.kind) {
                continue;
            }
            seen.push(op.kind);
            let leaf = k + 1;
            // An element whose value is not zero where there is one (an embedding row of a
            // token the slot holds), else the first.
            let out = &honest.tensors[k];
            let at = out.iter().position(|&v| v != 0).unwrap_or(0);
            let (r, c) = (at / op.cols, at % op.cols);
            let mut outputs = honest.tensors[..leaf].to_vec();
            outputs[k][at] = outputs[k][at].wrapping_add(1);
            let lying = OpTrace::run_from(&inputs, outputs).expect("a trace from the lie");
            let first = (0..honest.leaves.len())
                .find(|&i| honest.leaves[i] != lying.leaves[i])
                .expect("the lie changes a leaf");
            assert_eq!(first, leaf, "{}", op.name);
            let rows = inputs
                .element_rows(&lying.tensors, op, r, c)
                .expect("input rows");
            let value = element(op, &inputs.params, r, c, &rows);
            assert_eq!(value, Some(honest.tensors[k][at]), "{}", op.name);
            assert_ne!(value, Some(lying.tensors[k][at]), "{}", op.name);
        }
        let want = if name.starts_with("gpt2") { 6 } else { 4 };
        assert_eq!(seen.len(), want, "{name}: {seen:?}");
    }
}

/// A vocabulary the game would lay out in chunks is refused for a full fine-tune, with what
/// to do instead.
#[test]
fn a_long_vocabulary_is_refused_for_a_full_program() {
    let mut c = fixtures::checkpoint("llama-tiny").config.clone();
    c.vocab = 9000;
    let err = pedals_lm::dispute::program_full(&c, &[8], 4).expect_err("refused");
    assert!(err.to_string().contains("LoRA"), "{err}");
}
