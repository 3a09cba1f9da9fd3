//! The long-vocabulary ops' vectors, `tests/vectors/lm_vocab.json` (docs/protocol.md §9 "Long
//! rows"): the fixtures' 384-token vocabularies laid out in chunks of 60 (llama-tiny) and 100
//! (gpt2-tiny), and elements of every chunked op kind with the rows the referee opens and the
//! value the trace holds, in `lm_step.json`'s case format, and both programs (with their
//! `chunk`), which the on-chain builder must give op for op. The Solidity referee reads the same
//! file. Regenerate: `PEDALS_BLESS=1 cargo test --workspace --test it vocab_vectors`.

use pedals_lm::dispute::{OpKind, OpTrace, StepInputs, VOCAB_CHUNK, program_chunked};
use serde_json::Value;

use crate::dispute::{examples, run};
use crate::fixtures;
use crate::step_vectors::{case, committed_kinds, program_case, program_json};
use crate::vectors::Draw;

const DESCRIPTION: &str = "Pedals long-vocabulary op vectors, version 1: the fine-tuning step \
    program's ops over a vocabulary laid out in chunks (codes 36 to 44): per family the whole \
    program of one step (case kind 'program', with the tokens per chunk as 'chunk'; a third: \
    gpt2-tiny's shape with a 50257-token vocabulary in chunks of 2048) and one \
    element (r, c) of an op per case with the input rows the referee opens (in input order) \
    and the value, in the case format of lm_step.json. Semantics: docs/protocol.md section 9, 'Long rows'. Generated \
    by the Rust reference (PEDALS_BLESS=1 cargo test --workspace --test it vocab_vectors).";

fn generate() -> Vec<Value> {
    let mut cases = Vec::new();
    for (name, chunk) in [("llama-tiny", 60), ("gpt2-tiny", 100)] {
        let model = pedals_lm::quantize(&fixtures::checkpoint(name), 16).expect("quantizes");
        let (ft, data) = (run(name), examples(name));
        let mut state = ft.init(&model);
        ft.step(&model, &mut state, &data);
        let mut inputs = StepInputs::new(&model, &ft, &state, &data).expect("inputs");
        let lens: Vec<usize> = inputs.data.iter().map(|d| d.len() - 1).collect();
        inputs.program = program_chunked(&model.config, &ft.lora, &lens, data.len(), Some(chunk))
            .expect("program");
        let trace = OpTrace::run(&inputs).expect("trace");
        let (c, lora) = (&model.config, &ft.lora);
        let mut program = program_case(name, c, lora, &inputs, &trace, data.len(), state.step);
        program["chunk"] = chunk.into();
        cases.push(program);
        let mut draw = Draw(0x70c4 ^ chunk as u64);
        for code in OpKind::TransposeChunk as u8..=OpKind::InputGradSum as u8 {
            let leaves: Vec<usize> = (1..inputs.program.leaf_count())
                .filter(|&k| inputs.program.ops[k - 1].kind as u8 == code)
                .collect();
            let mut picks = vec![leaves[0], leaves[leaves.len() - 1]];
            picks.dedup();
            for leaf in picks {
                let op = &inputs.program.ops[leaf - 1];
                let r = draw.int(op.rows as i64 - 1).unsigned_abs() as usize % op.rows;
                let col = draw.int(op.cols as i64 - 1).unsigned_abs() as usize % op.cols;
                cases.push(case(&inputs, &trace, name, leaf, r, col));
                // The last element: the short last chunk, past the vocabulary, the last row.
                cases.push(case(&inputs, &trace, name, leaf, op.rows - 1, op.cols - 1));
            }
        }
    }
    cases.push(wide_program());
    cases
}

/// The program of gpt2-tiny's shape with GPT-2's 50 257-token vocabulary, built as the
/// protocol builds it (`program`: chunks of `VOCAB_CHUNK` above `LONG_ROW`), with the
/// fixture's slot lengths: the on-chain builder must give it from the spec's terms alone.
fn wide_program() -> Value {
    let name = "gpt2-tiny";
    let (ft, data) = (run(name), examples(name));
    // The program needs the shape alone: no weights to quantize.
    let mut c = fixtures::checkpoint(name).config;
    c.vocab = 50_257;
    let lens: Vec<usize> = data.iter().take(ft.batch).map(|d| d.tokens.len()).collect();
    let program = pedals_lm::dispute::program(&c, &ft.lora, &lens, data.len()).expect("program");
    let mut case = program_json(
        "gpt2-tiny, vocabulary 50257",
        &c,
        &ft.lora,
        &program,
        &lens,
        data.len(),
    );
    case["chunk"] = VOCAB_CHUNK.into();
    case
}

#[test]
fn vocab_vectors_are_what_the_reference_computes() {
    let kinds = committed_kinds("lm_vocab.json", DESCRIPTION, generate());
    assert_eq!(kinds.len(), 9, "{kinds:?}");
}
