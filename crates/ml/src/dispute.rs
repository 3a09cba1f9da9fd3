//! A training step as the dispute game sees it: a fixed program of ops, each producing one
//! tensor (a leaf of the step's op trace), and a referee that recomputes one element of any
//! op's output from at most three opened input rows.
//!
//! The op trace of step `i` has `M + 1` leaves: leaf 0 is `h_i`, leaf `k` (`1 ≤ k < M`) the
//! row root (docs/commitments.md §4) of op `k`'s output, and leaf `M` is `h_{i+1}`, the output
//! of the last op, which hashes the new state. Dot products always run along rows: where the
//! engine reads a column, the program transposes first (`wqᵀ`, `aᵀ`, `dᵀ`), and a transpose
//! is an op like any other, so every element the referee needs is in one row of an input.
//! docs/protocol.md lists the program; `contracts/src/DisputeProgram.sol` builds the same list.

use alloy_primitives::B256;
use pedals_core::{MerkleTree, ModelState, StateEntry, StateTensor, hash_row, merkle_root};

use crate::exact::{
    ACT_MAX, BIAS_MAX, ExactOps, GRAD_MAX, Mat, VELOCITY_MAX, W_MASTER_MAX, WQ_MAX, clamp_sym,
    exp_table, round_shift,
};
pub use crate::trainer::batch_sample;
use crate::{
    Dataset, MlError, MlpConfig, MlpState, TracedTensor, TrainConfig, Trainer, batch_indices,
};

/// What an op computes, with the code the contract uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpKind {
    /// `x[r][c] = D[idx(r)][c]`: the mini-batch inputs, from the dataset's rows.
    GatherInputs = 0,
    /// `y[r][0] = D[idx(r)][features]`: the mini-batch labels.
    GatherLabels = 1,
    /// `quantize_weights`.
    Quantize = 2,
    /// `out[r][c] = in[c][r]`.
    Transpose = 3,
    /// `linear(a, wqᵀ, b)`: row `r` of `a`, row `c` of `wqᵀ`, the bias row.
    Linear = 4,
    /// `relu`.
    Relu = 5,
    /// `softmax_xent_grad(z, y)`: row `r` of `z` and of `y`.
    SoftmaxXentGrad = 6,
    /// `weight_grad(aᵀ, dᵀ)`: row `r` of `aᵀ`, row `c` of `dᵀ`.
    WeightGrad = 7,
    /// `bias_grad(dᵀ)`: row `c` of `dᵀ`.
    BiasGrad = 8,
    /// `input_grad(d, wq)`: row `r` of `d`, row `c` of `wq`.
    InputGrad = 9,
    /// `relu_backward(e, a)`.
    ReluBackward = 10,
    /// `momentum(v, g)`.
    Momentum = 11,
    /// `descend(w, v', W_MASTER_MAX)`.
    DescendWeight = 12,
    /// `descend(b, v', BIAS_MAX)`.
    DescendBias = 13,
    /// `h_{i+1}`: the state hash of the new state tensors (no element to open).
    StateHash = 14,
}

/// Where an op reads an input from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A tensor of the state before the step (opened from `h_i`), by name.
    State(String),
    /// The output of an earlier op: a leaf of the op trace.
    Leaf(usize),
    /// The job's dataset (opened against the spec's `data_root`).
    Data,
}

/// One op of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramOp {
    /// What it computes.
    pub kind: OpKind,
    /// A name for people and logs (`"z1"`, `"wq0.T"`, `"l0.weight'"`).
    pub name: String,
    /// Its inputs, in the order [`element`] takes their rows.
    pub inputs: Vec<Operand>,
    /// Output rows.
    pub rows: usize,
    /// Output columns (elements per row).
    pub cols: usize,
}

/// The program of one training step of a model: `ops[k - 1]` produces leaf `k`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The ops, in order; the last is [`OpKind::StateHash`].
    pub ops: Vec<ProgramOp>,
    /// The state tensors in encoding order (name order), with their shapes.
    pub state: Vec<(String, Vec<u32>)>,
    /// For each state tensor (same order), the leaf holding its new value.
    pub new_state: Vec<usize>,
}

impl Program {
    /// Leaves of the op trace: `h_i`, one per op.
    pub fn leaf_count(&self) -> usize {
        self.ops.len() + 1
    }

    /// The op producing leaf `k` (`1 ≤ k ≤ M`).
    pub fn op(&self, leaf: usize) -> Option<&ProgramOp> {
        leaf.checked_sub(1).and_then(|i| self.ops.get(i))
    }

    /// The first leaf named `name`.
    pub fn leaf_named(&self, name: &str) -> Option<usize> {
        self.ops
            .iter()
            .position(|op| op.name == name)
            .map(|i| i + 1)
    }
}

/// The most layers a disputable model may have: state names (`l<l>.…`) sort by layer up to
/// ten, which the contract's numbering of state tensors relies on.
pub const MAX_DEPTH: usize = 10;

/// The program of one training step of `config`. Fails for a model the referee cannot check
/// yet (a convolution in front of the dense layers).
pub fn program(config: &MlpConfig) -> Result<Program, MlError> {
    config.validate()?;
    if config.conv.is_some() {
        return Err(MlError::Config(
            "the dispute program covers MLPs; a convolutional model cannot be disputed on-chain \
             yet, so its jobs are not slashable"
                .into(),
        ));
    }
    let n = &config.layers;
    let depth = config.depth();
    if depth > MAX_DEPTH {
        return Err(MlError::Config(format!(
            "a model of {depth} layers: the dispute program covers at most {MAX_DEPTH}"
        )));
    }
    let b = config.batch;
    let mut ops: Vec<ProgramOp> = Vec::new();
    let push = |ops: &mut Vec<ProgramOp>, kind, name: String, inputs, rows, cols| {
        ops.push(ProgramOp {
            kind,
            name,
            inputs,
            rows,
            cols,
        });
        ops.len()
    };
    let st = |l: usize, s: &str| Operand::State(format!("l{l}.{s}"));
    let x = push(
        &mut ops,
        OpKind::GatherInputs,
        "x".into(),
        vec![Operand::Data],
        b,
        n[0],
    );
    let y = push(
        &mut ops,
        OpKind::GatherLabels,
        "y".into(),
        vec![Operand::Data],
        b,
        1,
    );
    let wq: Vec<usize> = (0..depth)
        .map(|l| {
            push(
                &mut ops,
                OpKind::Quantize,
                format!("wq{l}"),
                vec![st(l, "weight")],
                n[l],
                n[l + 1],
            )
        })
        .collect();
    let wqt: Vec<usize> = (0..depth)
        .map(|l| {
            push(
                &mut ops,
                OpKind::Transpose,
                format!("wq{l}.T"),
                vec![Operand::Leaf(wq[l])],
                n[l + 1],
                n[l],
            )
        })
        .collect();
    // acts[l] = input of layer l; the last entry is the logits.
    let mut acts = vec![x];
    for l in 0..depth {
        let z = push(
            &mut ops,
            OpKind::Linear,
            format!("z{}", l + 1),
            vec![Operand::Leaf(acts[l]), Operand::Leaf(wqt[l]), st(l, "bias")],
            b,
            n[l + 1],
        );
        let a = if l + 1 < depth {
            push(
                &mut ops,
                OpKind::Relu,
                format!("a{}", l + 1),
                vec![Operand::Leaf(z)],
                b,
                n[l + 1],
            )
        } else {
            z
        };
        acts.push(a);
    }
    let mut d = push(
        &mut ops,
        OpKind::SoftmaxXentGrad,
        format!("d{depth}"),
        vec![Operand::Leaf(acts[depth]), Operand::Leaf(y)],
        b,
        n[depth],
    );
    let mut gw = vec![0; depth];
    let mut gb = vec![0; depth];
    for l in (0..depth).rev() {
        let name_a = if l == 0 { "x".into() } else { format!("a{l}") };
        let at = push(
            &mut ops,
            OpKind::Transpose,
            format!("{name_a}.T"),
            vec![Operand::Leaf(acts[l])],
            n[l],
            b,
        );
        let dt = push(
            &mut ops,
            OpKind::Transpose,
            format!("d{}.T", l + 1),
            vec![Operand::Leaf(d)],
            n[l + 1],
            b,
        );
        gw[l] = push(
            &mut ops,
            OpKind::WeightGrad,
            format!("gw{l}"),
            vec![Operand::Leaf(at), Operand::Leaf(dt)],
            n[l],
            n[l + 1],
        );
        gb[l] = push(
            &mut ops,
            OpKind::BiasGrad,
            format!("gb{l}"),
            vec![Operand::Leaf(dt)],
            1,
            n[l + 1],
        );
        if l > 0 {
            let e = push(
                &mut ops,
                OpKind::InputGrad,
                format!("e{l}"),
                vec![Operand::Leaf(d), Operand::Leaf(wq[l])],
                b,
                n[l],
            );
            d = push(
                &mut ops,
                OpKind::ReluBackward,
                format!("d{l}"),
                vec![Operand::Leaf(e), Operand::Leaf(acts[l])],
                b,
                n[l],
            );
        }
    }
    let mut new_state = Vec::new();
    for l in 0..depth {
        let vw = push(
            &mut ops,
            OpKind::Momentum,
            format!("l{l}.weight.velocity'"),
            vec![st(l, "weight.velocity"), Operand::Leaf(gw[l])],
            n[l],
            n[l + 1],
        );
        let w = push(
            &mut ops,
            OpKind::DescendWeight,
            format!("l{l}.weight'"),
            vec![st(l, "weight"), Operand::Leaf(vw)],
            n[l],
            n[l + 1],
        );
        let vb = push(
            &mut ops,
            OpKind::Momentum,
            format!("l{l}.bias.velocity'"),
            vec![st(l, "bias.velocity"), Operand::Leaf(gb[l])],
            1,
            n[l + 1],
        );
        let bias = push(
            &mut ops,
            OpKind::DescendBias,
            format!("l{l}.bias'"),
            vec![st(l, "bias"), Operand::Leaf(vb)],
            1,
            n[l + 1],
        );
        new_state.push((
            format!("l{l}.weight"),
            vec![n[l] as u32, n[l + 1] as u32],
            w,
        ));
        new_state.push((format!("l{l}.bias"), vec![1, n[l + 1] as u32], bias));
        new_state.push((
            format!("l{l}.weight.velocity"),
            vec![n[l] as u32, n[l + 1] as u32],
            vw,
        ));
        new_state.push((format!("l{l}.bias.velocity"), vec![1, n[l + 1] as u32], vb));
    }
    new_state.sort_by(|a, b| a.0.cmp(&b.0));
    let inputs = new_state.iter().map(|s| Operand::Leaf(s.2)).collect();
    push(&mut ops, OpKind::StateHash, "h'".into(), inputs, 1, 1);
    Ok(Program {
        ops,
        state: new_state
            .iter()
            .map(|(name, shape, _)| (name.clone(), shape.clone()))
            .collect(),
        new_state: new_state.iter().map(|s| s.2).collect(),
    })
}

/// The numbers an element's formula needs beyond its input rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepParams {
    /// `log2` of the batch.
    pub log2_batch: u32,
    /// Learning rate, Q12.
    pub lr_q12: i32,
    /// Momentum, Q12.
    pub momentum_q12: i32,
    /// Values per sample.
    pub features: usize,
}

impl StepParams {
    /// The parameters of `config`.
    pub fn of(config: &MlpConfig) -> Self {
        Self {
            log2_batch: config.log2_batch(),
            lr_q12: config.lr_q12,
            momentum_q12: config.momentum_q12,
            features: config.inputs(),
        }
    }
}

/// Which row of each input the referee opens to recompute element `(r, c)` of an op of
/// `kind`, in input order. For a gather, the "row" is the dataset sample of batch row `r`
/// (pass it as `sample`).
pub fn input_rows(kind: OpKind, r: usize, c: usize, sample: usize) -> Vec<usize> {
    use OpKind::*;
    match kind {
        GatherInputs | GatherLabels => vec![sample],
        Quantize | Relu => vec![r],
        Transpose => vec![c],
        Linear => vec![r, c, 0],
        SoftmaxXentGrad => vec![r, r],
        WeightGrad => vec![r, c],
        BiasGrad => vec![c],
        InputGrad => vec![r, c],
        ReluBackward | Momentum | DescendWeight | DescendBias => vec![r, r],
        StateHash => Vec::new(),
    }
}

/// Element `(r, c)` of an op of `kind`, from the input rows [`input_rows`] names: the
/// referee's formula, which the Solidity referee implements line for line. `None` when a row
/// is too short for the element (the contract reverts there) or for [`OpKind::StateHash`].
pub fn element(kind: OpKind, p: &StepParams, r: usize, c: usize, rows: &[&[i32]]) -> Option<i32> {
    use OpKind::*;
    let at = |i: usize, j: usize| rows.get(i)?.get(j).map(|&v| i64::from(v));
    let dot = |a: &[i32], b: &[i32]| -> Option<i64> {
        (a.len() == b.len()).then(|| {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| i64::from(x) * i64::from(y))
                .sum()
        })
    };
    let v = match kind {
        GatherInputs => {
            if c >= p.features {
                return None;
            }
            at(0, c)?
        }
        GatherLabels => {
            if c != 0 {
                return None;
            }
            at(0, p.features)?
        }
        Quantize => clamp_sym(round_shift(at(0, c)?, 4), WQ_MAX),
        Transpose => at(0, r)?,
        Linear => {
            let acc = dot(rows.first()?, rows.get(1)?)? + (at(2, c)? << 4);
            clamp_sym(round_shift(acc, 12), ACT_MAX)
        }
        Relu => at(0, c)?.max(0),
        SoftmaxXentGrad => {
            let z = rows.first()?;
            let label = at(1, 0)?;
            let zc = at(0, c)?;
            if zc.abs() == i64::from(ACT_MAX) {
                0
            } else {
                let lut = exp_table();
                let max = i64::from(*z.iter().max()?);
                let e = |v: i32| i64::from(lut[(max - i64::from(v)) as usize]);
                let sum: i64 = z.iter().map(|&v| e(v)).sum();
                let prob = (e(z[c]) << 15) / sum;
                let target = if label == c as i64 { 1 << 15 } else { 0 };
                round_shift(prob - target, 5)
            }
        }
        WeightGrad => round_shift(dot(rows.first()?, rows.get(1)?)?, 2 + p.log2_batch),
        BiasGrad => {
            let sum: i64 = rows.first()?.iter().map(|&v| i64::from(v)).sum();
            round_shift(sum << 6, p.log2_batch)
        }
        InputGrad => clamp_sym(round_shift(dot(rows.first()?, rows.get(1)?)?, 12), GRAD_MAX),
        ReluBackward => {
            let a = at(1, c)?;
            if a > 0 && a < i64::from(ACT_MAX) {
                at(0, c)?
            } else {
                0
            }
        }
        Momentum => clamp_sym(
            round_shift(i64::from(p.momentum_q12) * at(0, c)?, 12) + at(1, c)?,
            VELOCITY_MAX,
        ),
        DescendWeight | DescendBias => {
            let max = if kind == DescendWeight {
                W_MASTER_MAX
            } else {
                BIAS_MAX
            };
            clamp_sym(
                at(0, c)? - round_shift(i64::from(p.lr_q12) * at(1, c)?, 12),
                max,
            )
        }
        StateHash => return None,
    };
    i32::try_from(v).ok()
}

/// The op trace of one step: every op's output, its leaves and their Merkle tree.
#[derive(Debug, Clone)]
pub struct OpTrace {
    /// Output of op `k` at index `k - 1`, for every op but the last (the state hash).
    pub tensors: Vec<Mat>,
    /// `[h_i, root of op 1, …, h_{i+1}]`.
    pub leaves: Vec<B256>,
    /// The state entries of `h_i` (what opens a state tensor on-chain).
    pub entries_in: Vec<StateEntry>,
    /// The dataset sample of every batch row.
    pub samples: Vec<usize>,
    tree: MerkleTree,
}

impl OpTrace {
    /// The op-trace root the worker commits to.
    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// The Merkle proof of leaf `k`.
    pub fn proof(&self, leaf: usize) -> Result<pedals_core::MerkleProof, MlError> {
        Ok(self.tree.proof(leaf)?)
    }

    /// Output of the op producing leaf `k` (none for leaf 0 or the last).
    pub fn tensor(&self, leaf: usize) -> Option<&Mat> {
        leaf.checked_sub(1).and_then(|i| self.tensors.get(i))
    }

    /// Replaces element `(r, c)` of leaf `k`'s tensor and recommits it: how a test builds the
    /// trace of a worker that falsified one element. Later leaves are left as they were.
    pub fn falsify(&mut self, leaf: usize, r: usize, c: usize, value: i32) -> Result<(), MlError> {
        let t = leaf
            .checked_sub(1)
            .and_then(|i| self.tensors.get_mut(i))
            .ok_or_else(|| MlError::Config(format!("leaf {leaf} holds no tensor")))?;
        let cols = t.cols;
        t.data[r * cols + c] = value;
        self.leaves[leaf] = mat_root(t)?;
        self.tree = MerkleTree::new(&self.leaves)?;
        Ok(())
    }
}

/// The row hashes of a matrix (docs/commitments.md §4).
pub fn mat_row_hashes(m: &Mat) -> Result<Vec<B256>, MlError> {
    if m.cols == 0 {
        return Err(MlError::Config(
            "a matrix with empty rows cannot be committed row by row".into(),
        ));
    }
    Ok(m.data.chunks_exact(m.cols).map(hash_row).collect())
}

/// The row root of a matrix.
pub fn mat_root(m: &Mat) -> Result<B256, MlError> {
    Ok(merkle_root(&mat_row_hashes(m)?)?)
}

/// Row `r` of a matrix.
pub fn mat_row(m: &Mat, r: usize) -> &[i32] {
    &m.data[r * m.cols..(r + 1) * m.cols]
}

impl<O: ExactOps> Trainer<O> {
    /// The op trace of step `step` from `state` (which must be `h_step`'s state): the engine's
    /// own tensors ([`Trainer::trace_step`]) arranged as the dispute program lists them.
    pub fn op_trace(
        &self,
        data: &Dataset,
        state: &MlpState,
        step: u64,
    ) -> Result<OpTrace, MlError> {
        let traced = self.trace_step(data, state, step)?;
        self.op_trace_from(&traced, data, state, step)
    }

    /// The op trace of step `step` from the engine's tensors `traced` of that step (what
    /// [`Trainer::trace_step`] returns, or what a training loop kept as it stepped).
    pub(crate) fn op_trace_from(
        &self,
        traced: &[TracedTensor],
        data: &Dataset,
        state: &MlpState,
        step: u64,
    ) -> Result<OpTrace, MlError> {
        let config: &TrainConfig = self.config();
        let prog = program(&config.model)?;
        let by_name = |name: &str| -> Result<&Mat, MlError> {
            traced
                .iter()
                .find(|t| t.name.rsplit(':').next() == Some(name))
                .map(|t| &t.value)
                .ok_or_else(|| MlError::Config(format!("the engine's trace has no {name}")))
        };
        let samples = batch_indices(config.seed, step, config.model.batch, data.len());
        let labels = Mat::new(
            samples.len(),
            1,
            samples.iter().map(|&i| data.labels[i] as i32).collect(),
        );
        let mut tensors: Vec<Mat> = Vec::with_capacity(prog.ops.len());
        for op in &prog.ops {
            let t = match op.kind {
                OpKind::GatherInputs => by_name("input")?.clone(),
                OpKind::GatherLabels => labels.clone(),
                OpKind::Transpose => {
                    let Some(Operand::Leaf(src)) = op.inputs.first() else {
                        unreachable!("a transpose reads a leaf");
                    };
                    transpose(&tensors[src - 1])
                }
                OpKind::StateHash => break,
                _ => by_name(&engine_name(&op.name))?.clone(),
            };
            if (t.rows, t.cols) != (op.rows, op.cols) {
                return Err(MlError::Config(format!(
                    "{} is {}×{}, the program expects {}×{}",
                    op.name, t.rows, t.cols, op.rows, op.cols
                )));
            }
            tensors.push(t);
        }
        let model_in = state.to_model_state()?;
        let entries_in = model_in.state_entries()?;
        let mut leaves = Vec::with_capacity(prog.leaf_count());
        leaves.push(pedals_core::state_hash_of(&entries_in));
        for t in &tensors {
            leaves.push(mat_root(t)?);
        }
        let new_state = ModelState::new(
            prog.state
                .iter()
                .zip(&prog.new_state)
                .map(|((name, shape), &leaf)| {
                    StateTensor::new(name.clone(), shape.clone(), tensors[leaf - 1].data.clone())
                })
                .collect::<Result<_, _>>()?,
        )?;
        leaves.push(new_state.state_hash()?);
        let tree = MerkleTree::new(&leaves)?;
        Ok(OpTrace {
            tensors,
            leaves,
            entries_in,
            samples,
            tree,
        })
    }
}

impl<O: ExactOps> Trainer<O> {
    /// The op trace a worker that claims `claimed` as the state after step `step` must commit:
    /// the engine's trace from `state`, with the new-state tensors replaced by `claimed`'s and
    /// the last leaf set to its hash. For an honest worker (`claimed` is the true next state)
    /// it is [`Trainer::op_trace`]; for a worker that falsified the step, the first leaf that
    /// differs from the honest trace is an update op, which the referee then recomputes.
    pub fn claimed_op_trace(
        &self,
        data: &Dataset,
        state: &MlpState,
        step: u64,
        claimed: &MlpState,
    ) -> Result<OpTrace, MlError> {
        let mut trace = self.op_trace(data, state, step)?;
        let prog = program(&self.config().model)?;
        let claimed_state = claimed.to_model_state()?;
        for ((name, _), &leaf) in prog.state.iter().zip(&prog.new_state) {
            let tensor = claimed_state
                .tensor(name)
                .ok_or_else(|| MlError::Config(format!("the claimed state has no {name}")))?;
            let mat = &mut trace.tensors[leaf - 1];
            if mat.data != tensor.data {
                if mat.data.len() != tensor.data.len() {
                    return Err(MlError::Config(format!(
                        "the claimed {name} has another shape"
                    )));
                }
                mat.data.clone_from(&tensor.data);
                trace.leaves[leaf] = mat_root(mat)?;
            }
        }
        let last = trace.leaves.len() - 1;
        trace.leaves[last] = claimed.state_hash()?;
        trace.tree = MerkleTree::new(&trace.leaves)?;
        Ok(trace)
    }
}

/// The engine's name for a program op's output (`trace_step` names the new state `w0`,
/// `vw0`, …).
fn engine_name(program_name: &str) -> String {
    let Some(rest) = program_name.strip_prefix('l') else {
        return program_name.to_string();
    };
    let Some((layer, what)) = rest.split_once('.') else {
        return program_name.to_string();
    };
    let short = match what {
        "weight.velocity'" => "vw",
        "weight'" => "w",
        "bias.velocity'" => "vb",
        "bias'" => "b",
        _ => return program_name.to_string(),
    };
    format!("{short}{layer}")
}

fn transpose(m: &Mat) -> Mat {
    let mut out = Vec::with_capacity(m.data.len());
    for c in 0..m.cols {
        for r in 0..m.rows {
            out.push(m.data[r * m.cols + c]);
        }
    }
    Mat::new(m.cols, m.rows, out)
}
