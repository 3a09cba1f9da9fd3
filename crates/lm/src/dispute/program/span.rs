//! The program of a span's forward pass (docs/split-inference.md, "Disputes"): what a span
//! server commits to when it answers, as the span dispute game sees it.

use std::collections::HashMap;
use std::ops::Range;

use super::{Builder, Program, model_tensors};
use crate::config::LmConfig;
use crate::error::LmError;
use crate::train::LoraConfig;

/// The trace name of a span program's input (leaf 0).
pub const SPAN_INPUT: &str = "s.in";

/// The forward pass of blocks `blocks` over the `positions` hidden states a session has sent
/// the span so far: leaf 0 is the input (`positions × hidden`), then each block's ops exactly
/// as a fine-tuning step's forward pass orders them (no adapters), and the last leaf is the
/// span's output. Causal attention makes output row `p` a function of input rows `0..=p`
/// only, so the trace of a session's whole prefix holds every answer the server gave in it.
pub fn span_program(
    c: &LmConfig,
    blocks: Range<usize>,
    positions: usize,
) -> Result<Program, LmError> {
    if blocks.is_empty() || blocks.end > c.layers {
        return Err(LmError::Config(format!(
            "blocks {blocks:?} are not a span of this model's {} blocks",
            c.layers
        )));
    }
    if positions == 0 || positions > c.context {
        return Err(LmError::Config(format!(
            "a span's program covers 1..={} positions, not {positions}",
            c.context
        )));
    }
    let lora = LoraConfig {
        rank: 0,
        scale_log2: 0,
        targets: Vec::new(),
    };
    let mut b = Builder {
        c,
        lora: &lora,
        ops: Vec::new(),
        names: HashMap::from([(SPAN_INPUT.to_string(), 0)]),
        model: model_tensors(c),
        state: Vec::new(),
        samples: 0,
        input: Some((positions, c.hidden)),
        chunk: None,
        full: false,
    };
    let mut h = SPAN_INPUT.to_string();
    for l in blocks {
        h = b.block_forward("s", l, &h, positions);
    }
    Ok(Program {
        ops: b.ops,
        state: b.state,
        model: b.model,
        new_state: Vec::new(),
        input: b.input,
    })
}
