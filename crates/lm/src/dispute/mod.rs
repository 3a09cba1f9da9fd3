//! A LoRA fine-tuning step as the dispute game sees it (docs/protocol.md §9): a program of
//! ops, each producing one tensor (a leaf of the step's op trace), and a referee that
//! recomputes one element of any op's output from a few opened input rows.
//!
//! Every value of the trace is an `i32`; 64-bit values (raw attention sums, weight gradients,
//! Adam moments) are stored as two halves, low first, in adjacent columns. The referee here
//! ([`element`]) is the formula the Solidity referee implements; the trace ([`OpTrace`]) is
//! built with the same functions, and its last leaf equals the engine's state hash after
//! [`crate::train::FineTune::step`] (a test holds the two to the bit).

mod element;
mod program;
mod rows;
mod trace;
mod vocab;

use pedals_core::{ModelState, StateTensor};

pub use element::{element, input_rows};
pub use program::{
    Operand, Program, ProgramOp, SPAN_INPUT, Source, full_admissible, has_bias, model_tensors,
    program, program_chunked, program_full, projections, span_program, state_tensors,
    state_tensors_full,
};
pub use rows::scored;
pub use trace::{OpTrace, StepInputs, data_row, row_root};
pub use vocab::{Chunks, LONG_ROW, VOCAB_CHUNK};

use crate::config::{Family, LmConfig};
use crate::error::LmError;
use crate::exact::ops::score_scale;
use crate::train::{AdamConfig, FineTune, Target};
use crate::weights::{ExactModel, Norm, QMat};

/// What an op computes, with the code the contract uses for it (docs/protocol.md §9 gives
/// each one's element formula and the rows it reads).
#[allow(missing_docs)]
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    Embed = 1,
    Norm = 2,
    Linear = 3,
    Quant = 4,
    Add = 5,
    Rope = 6,
    Score = 7,
    Softmax = 8,
    Transpose = 9,
    TransposeExp = 10,
    AttendRaw = 11,
    RoundAttn = 12,
    Swiglu = 13,
    Gelu = 14,
    Xent = 15,
    InputGrad = 16,
    WeightGrad = 17,
    NormBack = 18,
    AddGrad = 19,
    SwigluBackGate = 20,
    SwigluBackUp = 21,
    GeluBack = 22,
    ScoreGrad = 23,
    GroupT = 24,
    Dq = 25,
    Dk = 26,
    Dv = 27,
    RopeBack = 28,
    GradSum = 29,
    Tokens = 30,
    AdamM = 31,
    AdamV = 32,
    AdamW = 33,
    Step = 34,
    StateHash = 35,
    TransposeChunk = 36,
    LinearChunk = 37,
    XentMax = 38,
    XentSum = 39,
    XentChunk = 40,
    AbsMax = 41,
    ShiftMin = 42,
    InputGradPart = 43,
    InputGradSum = 44,
    Requant = 45,
    NormN = 46,
    GammaGrad = 47,
    BiasGrad = 48,
    EmbedGrad = 49,
    PosGrad = 50,
}

impl OpKind {
    /// The op's name in the docs and vectors (`snake_case`).
    pub fn name(self) -> &'static str {
        use OpKind::*;
        match self {
            Embed => "embed",
            Norm => "norm",
            Linear => "linear",
            Quant => "quant",
            Add => "add",
            Rope => "rope",
            Score => "score",
            Softmax => "softmax",
            Transpose => "transpose",
            TransposeExp => "transpose_exp",
            AttendRaw => "attend_raw",
            RoundAttn => "round_attn",
            Swiglu => "swiglu",
            Gelu => "gelu",
            Xent => "xent",
            InputGrad => "input_grad",
            WeightGrad => "weight_grad",
            NormBack => "norm_back",
            AddGrad => "add_grad",
            SwigluBackGate => "swiglu_back_gate",
            SwigluBackUp => "swiglu_back_up",
            GeluBack => "gelu_back",
            ScoreGrad => "score_grad",
            GroupT => "group_t",
            Dq => "dq",
            Dk => "dk",
            Dv => "dv",
            RopeBack => "rope_back",
            GradSum => "grad_sum",
            Tokens => "tokens",
            AdamM => "adam_m",
            AdamV => "adam_v",
            AdamW => "adam_w",
            Step => "step",
            StateHash => "state_hash",
            TransposeChunk => "transpose_chunk",
            LinearChunk => "linear_chunk",
            XentMax => "xent_max",
            XentSum => "xent_sum",
            XentChunk => "xent_chunk",
            AbsMax => "abs_max",
            ShiftMin => "shift_min",
            InputGradPart => "input_grad_part",
            InputGradSum => "input_grad_sum",
            Requant => "requant",
            NormN => "norm_n",
            GammaGrad => "gamma_grad",
            BiasGrad => "bias_grad",
            EmbedGrad => "embed_grad",
            PosGrad => "pos_grad",
        }
    }
}

/// The numbers an element's formula needs beyond its input rows, all fixed by the spec and
/// the step number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepParams {
    /// Query heads `H`.
    pub heads: usize,
    /// Key/value heads `G` (`H / G` query heads share one).
    pub kv_heads: usize,
    /// Head width.
    pub head_dim: usize,
    /// The norms' ε, Q40.
    pub eps_q40: i64,
    /// LayerNorm (GPT-2) rather than RMSNorm.
    pub center: bool,
    /// The attention scale `C` ([`score_scale`]).
    pub scale: i64,
    /// Adam's β1, Q30.
    pub beta1: i64,
    /// Adam's β2, Q30.
    pub beta2: i64,
    /// This step's rate with the bias corrections, Q32.
    pub lr_t: i64,
    /// This step's ε with the bias correction, Q32.
    pub eps_t: i64,
}

impl StepParams {
    /// The parameters of step `step` of a fine-tune.
    pub fn of(c: &LmConfig, ft: &FineTune, step: u64) -> Self {
        Self::with_adam(c, &ft.adam, step)
    }

    /// The parameters of step `step` of a fine-tune with optimizer `adam` (LoRA or full).
    pub fn with_adam(c: &LmConfig, adam: &AdamConfig, step: u64) -> Self {
        let (lr_t, eps_t) = adam.scalars(step);
        Self {
            beta1: adam.beta1,
            beta2: adam.beta2,
            lr_t,
            eps_t,
            ..Self::forward(c)
        }
    }

    /// The parameters of a forward pass (a span's program): no optimizer.
    pub fn forward(c: &LmConfig) -> Self {
        Self {
            heads: c.heads,
            kv_heads: c.kv_heads,
            head_dim: c.head_dim,
            eps_q40: c.eps_q40(),
            center: c.family == Family::Gpt2,
            scale: score_scale(c.head_dim),
            beta1: 0,
            beta2: 0,
            lr_t: 0,
            eps_t: 0,
        }
    }
}

fn qmat_rows(w: &QMat) -> Vec<i32> {
    let mut out = Vec::with_capacity(w.rows * (w.cols + 1));
    for j in 0..w.rows {
        out.extend((0..w.cols).map(|k| w.value(j, k) as i32));
        out.push(i32::from(w.shift[j]));
    }
    out
}

/// The model commitment: the frozen model's tensors as [`model_tensors`] names them (a
/// quantized matrix with each row's shift as a last column). Its state hash is the spec's
/// model root. Fails for a model whose biases or norms differ from what its config implies.
pub fn model_state(model: &ExactModel) -> Result<ModelState, LmError> {
    let c = &model.config;
    let core = |e: pedals_core::CoreError| LmError::Format(e.to_string());
    let mut data: Vec<(String, Vec<i32>)> = vec![("embed".into(), qmat_rows(&model.embed))];
    if let Some(p) = &model.pos_embed {
        data.push(("pos_embed".into(), qmat_rows(p)));
    }
    if let Some(r) = &model.rotary {
        data.push(("rope.cos".into(), r.cos.clone()));
        data.push(("rope.sin".into(), r.sin.clone()));
    }
    if let Some(h) = &model.head {
        data.push(("head".into(), qmat_rows(h)));
    }
    let norm = |data: &mut Vec<(String, Vec<i32>)>, p: String, n: &Norm| {
        data.push((format!("{p}.gamma"), n.gamma.clone()));
        if let Some(b) = &n.beta {
            data.push((format!("{p}.beta"), b.clone()));
        }
    };
    norm(&mut data, "final_norm".into(), &model.final_norm);
    for (l, b) in model.blocks.iter().enumerate() {
        norm(&mut data, format!("b{l}.attn_norm"), &b.attn_norm);
        norm(&mut data, format!("b{l}.mlp_norm"), &b.mlp_norm);
        let lins = [
            (Target::Q, Some(&b.q)),
            (Target::K, Some(&b.k)),
            (Target::V, Some(&b.v)),
            (Target::O, Some(&b.o)),
            (Target::Gate, b.gate.as_ref()),
            (Target::Up, Some(&b.up)),
            (Target::Down, Some(&b.down)),
        ];
        for (t, lin) in lins {
            let Some(lin) = lin else { continue };
            data.push((format!("b{l}.{}.weight", t.name()), qmat_rows(&lin.w)));
            if let Some(bias) = &lin.b {
                data.push((format!("b{l}.{}.bias", t.name()), bias.clone()));
            }
        }
    }
    let expected = model_tensors(c);
    data.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let names: Vec<&str> = data.iter().map(|d| d.0.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|d| d.0.as_str()).collect();
    if names != want {
        return Err(LmError::Config(
            "the model's biases or norms are not those its config implies; the dispute game \
             cannot adjudicate it"
                .into(),
        ));
    }
    let tensors = data
        .into_iter()
        .zip(&expected)
        .map(|((name, d), (_, rows, cols))| {
            StateTensor::new(name, vec![*rows as u32, *cols as u32], d).map_err(core)
        })
        .collect::<Result<Vec<_>, _>>()?;
    ModelState::new(tensors).map_err(core)
}
