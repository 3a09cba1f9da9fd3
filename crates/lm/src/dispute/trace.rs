//! The op trace of one fine-tuning step: the program run op by op with the referee's own
//! formulas, every output kept, each output committed by its row root.

use alloy_primitives::B256;
use pedals_core::{ModelState, StateTensor, hash_row, merkle_root};
use rayon::prelude::*;

use super::{OpKind, Program, ProgramOp, Source, StepParams, element, input_rows, rows::row};
use crate::error::LmError;
use crate::train::{Example, FineTune, FullState, FullTune, LoraState};
use crate::weights::ExactModel;

/// Everything one step's op trace is a function of.
#[derive(Debug, Clone)]
pub struct StepInputs {
    /// The step's program.
    pub program: Program,
    /// The formulas' constants for this step.
    pub params: StepParams,
    /// The model commitment.
    pub model: ModelState,
    /// `h_i`'s tensors.
    pub state: ModelState,
    /// The dataset row of each batch slot.
    pub samples: Vec<usize>,
    /// The data row of each batch slot: `[prompt, tokens…]`.
    pub data: Vec<Vec<i32>>,
    /// A span program's input rows (leaf 0), row-major; empty for a step.
    pub input: Vec<i32>,
}

/// An example's data row: `[prompt, tokens…]`.
pub fn data_row(ex: &Example) -> Vec<i32> {
    std::iter::once(ex.prompt as i32)
        .chain(ex.tokens.iter().map(|&t| t as i32))
        .collect()
}

impl StepInputs {
    /// The inputs of the step of a full fine-tune that `state` is at, on `data`.
    pub fn full(
        model: &ExactModel,
        ft: &FullTune,
        state: &FullState,
        data: &[Example],
    ) -> Result<Self, LmError> {
        let c = &model.config;
        let samples = ft.batch_of(state.step, data.len());
        let params = StepParams::with_adam(c, &ft.adam, state.step);
        Self::step(
            model,
            samples,
            data,
            params,
            state.to_model_state(c)?,
            |lens| super::program_full(c, lens, data.len()),
        )
    }

    /// The inputs of the step that `state` is at, on `data`.
    pub fn new(
        model: &ExactModel,
        ft: &FineTune,
        state: &LoraState,
        data: &[Example],
    ) -> Result<Self, LmError> {
        let c = &model.config;
        let samples = ft.batch_of(state.step, data.len());
        let st = state.to_model_state(c, &ft.lora)?;
        Self::step(
            model,
            samples,
            data,
            StepParams::of(c, ft, state.step),
            st,
            |lens| super::program(c, &ft.lora, lens, data.len()),
        )
    }

    fn step(
        model: &ExactModel,
        samples: Vec<usize>,
        data: &[Example],
        params: StepParams,
        state: ModelState,
        program: impl FnOnce(&[usize]) -> Result<Program, LmError>,
    ) -> Result<Self, LmError> {
        let lens: Vec<usize> = samples.iter().map(|&i| data[i].tokens.len()).collect();
        Ok(Self {
            program: program(&lens)?,
            params,
            model: super::model_state(model)?,
            state,
            data: samples.iter().map(|&i| data_row(&data[i])).collect(),
            samples,
            input: Vec::new(),
        })
    }

    /// The inputs of the forward pass of `model`'s blocks `blocks` over a session's `input`
    /// rows (every position the span was sent, from 0): what a span server's answers are a
    /// function of ([`super::span_program`]).
    pub fn span(
        model: &ExactModel,
        blocks: std::ops::Range<usize>,
        input: &[i32],
    ) -> Result<Self, LmError> {
        let c = &model.config;
        if input.is_empty() || !input.len().is_multiple_of(c.hidden) {
            return Err(LmError::Format(format!(
                "{} input values are not whole rows of {}",
                input.len(),
                c.hidden
            )));
        }
        let core = |e: pedals_core::CoreError| LmError::Format(e.to_string());
        Ok(Self {
            program: super::span_program(c, blocks, input.len() / c.hidden)?,
            params: StepParams::forward(c),
            model: super::model_state(model)?,
            state: ModelState::new(Vec::new()).map_err(core)?,
            samples: Vec::new(),
            data: Vec::new(),
            input: input.to_vec(),
        })
    }

    /// Row `index` of an op's input `o`, from the state, the model, the data or `outputs`.
    pub fn input_row<'a>(
        &'a self,
        outputs: &'a [Vec<i32>],
        o: &super::Operand,
        index: usize,
    ) -> Option<&'a [i32]> {
        let rows_of = |data: &'a [i32]| data.chunks(o.cols.max(1)).nth(index);
        match o.source {
            Source::State(i) => rows_of(&self.state.tensors.get(i)?.data),
            Source::Model(i) => rows_of(&self.model.tensors.get(i)?.data),
            Source::Data(slot) => {
                (self.samples.get(slot) == Some(&index)).then(|| self.data[slot].as_slice())
            }
            Source::Leaf(0) => rows_of(&self.input),
            Source::Leaf(k) => rows_of(outputs.get(k - 1)?),
        }
    }

    /// The dataset row and the data row of the slot `op` reads (`(0, [])` for an op that reads
    /// no data): what [`input_rows`] needs besides the element.
    pub fn data_for(&self, op: &ProgramOp) -> (usize, &[i32]) {
        op.inputs
            .iter()
            .find_map(|o| match o.source {
                Source::Data(s) => Some((self.samples[s], self.data[s].as_slice())),
                _ => None,
            })
            .unwrap_or((0, &[]))
    }

    /// The input rows of element `(r, c)` of `op`.
    pub fn element_rows<'a>(
        &'a self,
        outputs: &'a [Vec<i32>],
        op: &ProgramOp,
        r: usize,
        c: usize,
    ) -> Option<Vec<&'a [i32]>> {
        let (sample, data) = self.data_for(op);
        input_rows(op, &self.params, r, c, sample, data)
            .into_iter()
            .zip(&op.inputs)
            .map(|(i, o)| self.input_row(outputs, o, i))
            .collect()
    }
}

/// The op trace of one step.
#[derive(Debug, Clone)]
pub struct OpTrace {
    /// Each op's output, row-major (empty for the state hash).
    pub tensors: Vec<Vec<i32>>,
    /// The leaves: `h_i`, each output's row root, `h_{i+1}`.
    pub leaves: Vec<B256>,
}

fn row_local(kind: OpKind) -> bool {
    use OpKind::*;
    !matches!(
        kind,
        Linear
            | Transpose
            | TransposeExp
            | GroupT
            | Score
            | AttendRaw
            | InputGrad
            | WeightGrad
            | ScoreGrad
            | Dq
            | Dk
            | Dv
            | StateHash
            | TransposeChunk
            | LinearChunk
            | XentMax
            | XentSum
            | XentChunk
            | AbsMax
            | ShiftMin
            | InputGradPart
            | InputGradSum
            | GammaGrad
            | BiasGrad
            | EmbedGrad
    )
}

/// The row root of a tensor of `cols` values a row: the Merkle root of its rows' hashes
/// (docs/commitments.md §3), how every leaf of an op trace but a state hash commits a tensor.
pub fn row_root(values: &[i32], cols: usize) -> Result<B256, LmError> {
    let hashes: Vec<B256> = values.chunks(cols.max(1)).map(hash_row).collect();
    merkle_root(&hashes).map_err(|e| LmError::Format(e.to_string()))
}

fn bad(op: &ProgramOp, r: usize) -> LmError {
    LmError::Format(format!("op {} could not compute row {r}", op.name))
}

impl OpTrace {
    /// Runs the program.
    pub fn run(inputs: &StepInputs) -> Result<Self, LmError> {
        Self::run_from(inputs, Vec::new())
    }

    /// Runs the program from the outputs of its first `outputs.len()` ops as given (a worker's
    /// trace after a changed value is this with the changed outputs): the leaves of the given
    /// outputs are their row roots, whatever their values.
    pub fn run_from(inputs: &StepInputs, outputs: Vec<Vec<i32>>) -> Result<Self, LmError> {
        let core = |e: pedals_core::CoreError| LmError::Format(e.to_string());
        let first = match inputs.program.input {
            Some((_, cols)) => row_root(&inputs.input, cols)?,
            None => inputs.state.state_hash().map_err(core)?,
        };
        let mut leaves = vec![first];
        for (op, out) in inputs.program.ops.iter().zip(&outputs) {
            leaves.push(row_root(out, op.cols)?);
        }
        let mut tensors = outputs;
        for op in &inputs.program.ops[tensors.len()..] {
            if op.kind == OpKind::StateHash {
                let new: Vec<StateTensor> = inputs
                    .program
                    .state
                    .iter()
                    .zip(&inputs.program.new_state)
                    .map(|((name, shape), &k)| {
                        StateTensor::new(name.clone(), shape.clone(), tensors[k - 1].clone())
                    })
                    .collect::<Result<_, _>>()
                    .map_err(core)?;
                leaves.push(
                    ModelState::new(new)
                        .map_err(core)?
                        .state_hash()
                        .map_err(core)?,
                );
                tensors.push(Vec::new());
                continue;
            }
            let mut out = vec![0i32; op.rows * op.cols];
            out.par_chunks_mut(op.cols).enumerate().try_for_each(
                |(r, dst)| -> Result<(), LmError> {
                    if row_local(op.kind) {
                        let rows = inputs
                            .element_rows(&tensors, op, r, 0)
                            .ok_or_else(|| bad(op, r))?;
                        let v = row(op, &inputs.params, r, &rows).ok_or_else(|| bad(op, r))?;
                        if v.len() != dst.len() {
                            return Err(bad(op, r));
                        }
                        dst.copy_from_slice(&v);
                    } else {
                        for (c, d) in dst.iter_mut().enumerate() {
                            let rows = inputs
                                .element_rows(&tensors, op, r, c)
                                .ok_or_else(|| bad(op, r))?;
                            *d = element(op, &inputs.params, r, c, &rows)
                                .ok_or_else(|| bad(op, r))?;
                        }
                    }
                    Ok(())
                },
            )?;
            leaves.push(row_root(&out, op.cols)?);
            tensors.push(out);
        }
        Ok(Self { tensors, leaves })
    }

    /// The op trace's root.
    pub fn root(&self) -> Result<B256, LmError> {
        merkle_root(&self.leaves).map_err(|e| LmError::Format(e.to_string()))
    }
}
