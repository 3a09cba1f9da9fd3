//! The step program of a LoRA fine-tuning step (docs/protocol.md §9): the ordered ops of one
//! step, each producing one tensor, with explicit transposes so that every element the
//! referee recomputes reads whole rows of its inputs.
//!
//! Layout: a prelude (the frozen matrices transposed, the adapters quantized and transposed),
//! then for each example slot `b` of the batch its forward pass, loss signal and backward pass
//! with the running gradient sums, and last the Adam update of every adapter tensor, the step
//! counter and the state hash. Ops read state tensors of `h_i`, frozen model tensors (the
//! model commitment, [`super::model_state`]), the example's data row, or earlier ops' outputs.

use std::collections::HashMap;

use super::OpKind;
use crate::config::{Family, LmConfig};
use crate::error::LmError;
use crate::train::{LoraConfig, Target};

/// Where an op reads an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Tensor `i` of `h_i`, in the state's encoding (name) order.
    State(usize),
    /// Tensor `i` of the model commitment, in name order.
    Model(usize),
    /// The data row of the example in batch slot `b`: `[prompt, token_0, …, token_n]`.
    Data(usize),
    /// The output of op `k` (leaf `k` of the op trace).
    Leaf(usize),
}

/// One input of an op: where it is and its shape (`cols` of a data row: its length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operand {
    /// Where.
    pub source: Source,
    /// Rows (the Merkle leaf count of its root).
    pub rows: usize,
    /// Values per row.
    pub cols: usize,
}

/// One op of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramOp {
    /// What it computes.
    pub kind: OpKind,
    /// Its trace name (docs/protocol.md §9).
    pub name: String,
    /// Its inputs, in the order the referee reads them.
    pub inputs: Vec<Operand>,
    /// Output rows.
    pub rows: usize,
    /// Output values per row.
    pub cols: usize,
    /// The op's own constant: `σ` of a quantization or weight gradient, else 0.
    pub arg: i32,
}

/// The program of one step: `ops[k − 1]` produces leaf `k`; leaf 0 is `h_i` and the last op
/// hashes the new state into `h_{i+1}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The ops.
    pub ops: Vec<ProgramOp>,
    /// The state tensors of `h_i` (and `h_{i+1}`): names and shapes, in encoding order.
    pub state: Vec<(String, Vec<u32>)>,
    /// The model commitment's tensors: names and `(rows, cols)`, in name order.
    pub model: Vec<(String, usize, usize)>,
    /// The leaf that produces each new state tensor, in `state` order (none in a span's).
    pub new_state: Vec<usize>,
    /// A span's program ([`span_program`]): the `(rows, cols)` of its input, which is leaf 0
    /// (committed by its row root, like any op's output). `None` in a step's, whose leaf 0 is
    /// `h_i`.
    pub input: Option<(usize, usize)>,
}

impl Program {
    /// Leaves of the op trace: `h_i`, one per op (the last is `h_{i+1}`).
    pub fn leaf_count(&self) -> usize {
        self.ops.len() + 1
    }

    /// The op that produces leaf `leaf` (1-based).
    pub fn op(&self, leaf: usize) -> Option<&ProgramOp> {
        leaf.checked_sub(1).and_then(|k| self.ops.get(k))
    }

    /// Bytes an op trace of this program holds: every op's output, of `i32` values (what a
    /// player keeps to answer a game over the step).
    pub fn trace_bytes(&self) -> u64 {
        self.ops
            .iter()
            .filter(|o| o.kind != OpKind::StateHash)
            .map(|o| 4 * (o.rows * o.cols) as u64)
            .sum()
    }

    /// The leaf of the op named `name`.
    pub fn leaf_named(&self, name: &str) -> Option<usize> {
        self.ops.iter().position(|o| o.name == name).map(|k| k + 1)
    }
}

/// The projections of a block in program order (no `gate_proj` in the GPT-2 family).
pub fn projections(c: &LmConfig) -> Vec<Target> {
    Target::ALL
        .into_iter()
        .filter(|t| *t != Target::Gate || c.family == Family::Llama)
        .collect()
}

/// Whether projection `t` has a bias in a model of config `c`.
pub fn has_bias(c: &LmConfig, t: Target) -> bool {
    match t {
        Target::Q | Target::K | Target::V => c.qkv_bias,
        Target::O => c.out_bias,
        Target::Gate | Target::Up | Target::Down => c.mlp_bias,
    }
}

/// The model commitment's tensors of config `c`, sorted by name: `(name, rows, cols)`.
/// Quantized matrices carry each row's shift as a last column.
pub fn model_tensors(c: &LmConfig) -> Vec<(String, usize, usize)> {
    let d = c.hidden;
    let gpt2 = c.family == Family::Gpt2;
    let mut t = vec![("embed".to_string(), c.vocab, d + 1)];
    if gpt2 {
        t.push(("pos_embed".into(), c.context, d + 1));
    } else {
        let half = c.head_dim / 2;
        t.push(("rope.cos".into(), c.context, half));
        t.push(("rope.sin".into(), c.context, half));
    }
    if !c.tied {
        t.push(("head".into(), c.vocab, d + 1));
    }
    let norm = |t: &mut Vec<(String, usize, usize)>, p: &str| {
        t.push((format!("{p}.gamma"), 1, d));
        if gpt2 {
            t.push((format!("{p}.beta"), 1, d));
        }
    };
    norm(&mut t, "final_norm");
    for l in 0..c.layers {
        norm(&mut t, &format!("b{l}.attn_norm"));
        norm(&mut t, &format!("b{l}.mlp_norm"));
        for p in projections(c) {
            let (inp, out) = p.dims(c);
            t.push((format!("b{l}.{}.weight", p.name()), out, inp + 1));
            if has_bias(c, p) {
                t.push((format!("b{l}.{}.bias", p.name()), 1, out));
            }
        }
    }
    t.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    t
}

/// The state tensors of a fine-tune of config `c` with adapters `lora`, in encoding order.
pub fn state_tensors(c: &LmConfig, lora: &LoraConfig) -> Vec<(String, Vec<u32>)> {
    let mut t = vec![("step".to_string(), vec![])];
    for l in 0..c.layers {
        for p in &lora.targets {
            let (inp, out) = p.dims(c);
            for (m, rows, cols) in [("lora_A", lora.rank, inp), ("lora_B", out, lora.rank)] {
                let base = format!("b{l}.{}.{m}", p.name());
                let (r, k) = (rows as u32, cols as u32);
                t.push((base.clone(), vec![r, k]));
                t.push((format!("{base}.m"), vec![r, 2 * k]));
                t.push((format!("{base}.v"), vec![r, 2 * k]));
            }
        }
    }
    t.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    t
}

/// The program of one step of a fine-tune of `c` with adapters `lora` whose batch slots hold
/// examples of `lens[b]` tokens, drawn from a dataset of `samples` examples.
pub fn program(
    c: &LmConfig,
    lora: &LoraConfig,
    lens: &[usize],
    samples: usize,
) -> Result<Program, LmError> {
    let chunk = (c.vocab > super::LONG_ROW).then_some(super::VOCAB_CHUNK);
    program_chunked(c, lora, lens, samples, chunk)
}

/// [`program`] with the vocabulary laid out in chunks of `chunk` tokens when given (the
/// protocol chunks a vocabulary over [`super::LONG_ROW`] in [`super::VOCAB_CHUNK`]s; tests
/// chunk small vocabularies to run the same ops on small models).
pub fn program_chunked(
    c: &LmConfig,
    lora: &LoraConfig,
    lens: &[usize],
    samples: usize,
    chunk: Option<usize>,
) -> Result<Program, LmError> {
    lora.check(c)?;
    if let Some(r) = chunk
        && (r < 2 || 2 * c.vocab.div_ceil(r) > r)
    {
        return Err(LmError::Config(format!(
            "a vocabulary chunk of {r} cannot hold the partial sums of {} chunks",
            c.vocab.div_ceil(r.max(1))
        )));
    }
    check_lens(c, lens)?;
    Ok(step_program(c, lora, lens, samples, chunk, false))
}

/// The program of a LoRA step (with adapters `lora`) or a full one (`full`, `lora` empty),
/// from checked shapes.
fn step_program(
    c: &LmConfig,
    lora: &LoraConfig,
    lens: &[usize],
    samples: usize,
    chunk: Option<usize>,
    full: bool,
) -> Program {
    let state = if full {
        state_tensors_full(c)
    } else {
        state_tensors(c, lora)
    };
    let mut b = Builder {
        c,
        lora,
        ops: Vec::new(),
        names: HashMap::new(),
        model: model_tensors(c),
        state,
        samples,
        input: None,
        chunk: chunk.map(|r| super::Chunks::new(c.vocab, r)),
        full,
    };
    if full {
        b.quantize_masters();
    }
    b.prelude();
    for (slot, &n) in lens.iter().enumerate() {
        b.example(slot, n - 1);
    }
    let new_state = b.update(lens.len());
    Program {
        ops: b.ops,
        state: b.state,
        model: b.model,
        new_state,
        input: None,
    }
}

/// Every batch slot's example has `2..=context + 1` tokens.
fn check_lens(c: &LmConfig, lens: &[usize]) -> Result<(), LmError> {
    if lens.is_empty() || lens.iter().any(|&n| n < 2 || n > c.context + 1) {
        return Err(LmError::Config(format!(
            "every example needs 2..={} tokens for the step program",
            c.context + 1
        )));
    }
    Ok(())
}

struct Builder<'a> {
    c: &'a LmConfig,
    lora: &'a LoraConfig,
    ops: Vec<ProgramOp>,
    names: HashMap<String, usize>,
    model: Vec<(String, usize, usize)>,
    state: Vec<(String, Vec<u32>)>,
    samples: usize,
    /// Leaf 0's shape in a span's program.
    input: Option<(usize, usize)>,
    /// The vocabulary's chunks, when it is laid out in chunks.
    chunk: Option<super::Chunks>,
    /// A full fine-tune's program: every weight is a state tensor, read through its quantized
    /// leaf `<name>.q`, and has a gradient.
    full: bool,
}

impl Builder<'_> {
    fn push(&mut self, kind: OpKind, name: String, shape: (usize, usize), inputs: Vec<Operand>) {
        self.push_arg(kind, name, shape, inputs, 0);
    }

    fn push_arg(
        &mut self,
        kind: OpKind,
        name: String,
        (rows, cols): (usize, usize),
        inputs: Vec<Operand>,
        arg: i32,
    ) {
        self.ops.push(ProgramOp {
            kind,
            name: name.clone(),
            inputs,
            rows,
            cols,
            arg,
        });
        let prev = self.names.insert(name, self.ops.len());
        debug_assert!(prev.is_none(), "trace names are unique");
    }

    fn leaf(&self, name: &str) -> Operand {
        let k = self.names[name];
        let (rows, cols) = match k {
            0 => self.input.expect("only a span's program names leaf 0"),
            _ => (self.ops[k - 1].rows, self.ops[k - 1].cols),
        };
        Operand {
            source: Source::Leaf(k),
            rows,
            cols,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    fn model(&self, name: &str) -> Operand {
        let i = self
            .model
            .iter()
            .position(|t| t.0 == name)
            .expect("the program reads tensors of the model commitment");
        Operand {
            source: Source::Model(i),
            rows: self.model[i].1,
            cols: self.model[i].2,
        }
    }

    /// The weight `name` as the forward reads it: the model commitment's tensor, or in a full
    /// fine-tune the quantized leaf of its master (the rotary tables are never weights).
    fn weight(&self, name: &str) -> Operand {
        if self.full && !name.starts_with("rope.") {
            self.leaf(&format!("{name}.q"))
        } else {
            self.model(name)
        }
    }

    fn state(&self, name: &str) -> Operand {
        let i = self
            .state
            .iter()
            .position(|t| t.0 == name)
            .expect("the program reads tensors of the state");
        let shape = &self.state[i].1;
        let (rows, cols) = match shape.as_slice() {
            [r, k] => (*r as usize, *k as usize),
            _ => (1, 1),
        };
        Operand {
            source: Source::State(i),
            rows,
            cols,
        }
    }

    fn adapted(&self, t: Target) -> bool {
        self.lora.targets.contains(&t)
    }

    fn head(&self) -> &'static str {
        if self.c.tied { "embed" } else { "head" }
    }

    /// Frozen transposes and the adapters quantized.
    fn prelude(&mut self) {
        let head = self.head();
        let h = self.weight(head);
        if let Some(ch) = self.chunk {
            let v = ch.v as i32;
            let shape = (h.cols * ch.k, ch.r);
            self.push_arg(OpKind::TransposeChunk, "head.t".into(), shape, vec![h], v);
            let ht = self.leaf("head.t");
            self.push_arg(OpKind::ShiftMin, "head.smin".into(), (1, ch.k), vec![ht], v);
        } else {
            self.push(
                OpKind::Transpose,
                "head.t".into(),
                (h.cols, h.rows),
                vec![h],
            );
        }
        let (r, sigma) = (self.lora.rank, self.lora.scale_log2);
        for l in 0..self.c.layers {
            for p in projections(self.c) {
                let w = self.weight(&format!("b{l}.{}.weight", p.name()));
                let name = format!("b{l}.{}.weight.t", p.name());
                self.push(OpKind::Transpose, name, (w.cols, w.rows), vec![w]);
                if !self.adapted(p) {
                    continue;
                }
                let (inp, out) = p.dims(self.c);
                let base = format!("b{l}.{}", p.name());
                for (m, rows, cols, s) in [("A", r, inp, 0), ("B", out, r, sigma)] {
                    let src = self.state(&format!("{base}.lora_{m}"));
                    let q = format!("{base}.{m}.q");
                    self.push_arg(OpKind::Quant, q.clone(), (rows, cols + 1), vec![src], s);
                    let qo = self.leaf(&q);
                    self.push(
                        OpKind::Transpose,
                        format!("{q}.t"),
                        (cols + 1, rows),
                        vec![qo],
                    );
                }
            }
        }
    }

    fn norm(&mut self, name: String, x: &str, norm: &str) {
        let x = self.leaf(x);
        let mut ins = vec![x, self.weight(&format!("{norm}.gamma"))];
        if self.c.family == Family::Gpt2 {
            ins.push(self.weight(&format!("{norm}.beta")));
        }
        self.push(OpKind::Norm, name, (x.rows, x.cols), ins);
    }

    /// `y = linear(x, W, b)`, plus `linear(linear(x, A), B')` with an adapter: `<e>.b<l>.<p>.y`.
    fn project(&mut self, e: &str, l: usize, t: Target, x: &str) -> String {
        let (_, out) = t.dims(self.c);
        let rows = self.leaf(x).rows;
        let w = format!("b{l}.{}", t.name());
        let base = format!("{e}.{w}");
        let mut ins = vec![self.leaf(x), self.weight(&format!("{w}.weight"))];
        if has_bias(self.c, t) {
            ins.push(self.weight(&format!("{w}.bias")));
        }
        let y = format!("{base}.y");
        if !self.adapted(t) {
            self.push(OpKind::Linear, y.clone(), (rows, out), ins);
            return y;
        }
        self.push(OpKind::Linear, format!("{base}.y0"), (rows, out), ins);
        let ins = vec![self.leaf(x), self.leaf(&format!("{w}.A.q"))];
        self.push(
            OpKind::Linear,
            format!("{base}.u"),
            (rows, self.lora.rank),
            ins,
        );
        let ins = vec![
            self.leaf(&format!("{base}.u")),
            self.leaf(&format!("{w}.B.q")),
        ];
        self.push(OpKind::Linear, format!("{base}.w"), (rows, out), ins);
        let ins = vec![
            self.leaf(&format!("{base}.y0")),
            self.leaf(&format!("{base}.w")),
        ];
        self.push(OpKind::Add, y.clone(), (rows, out), ins);
        y
    }

    /// `X.t`: `X` transposed with each row's quantizer exponent as a last row (once per `X`).
    fn transpose_e(&mut self, x: &str) -> String {
        let name = format!("{x}.t");
        if !self.has(&name) {
            let o = self.leaf(x);
            self.push(
                OpKind::TransposeExp,
                name.clone(),
                (o.cols + 1, o.rows),
                vec![o],
            );
        }
        name
    }

    fn add_grad(&mut self, name: String, a: &str, b: &str) -> String {
        let (a, b) = (self.leaf(a), self.leaf(b));
        self.push(OpKind::AddGrad, name.clone(), (a.rows, a.cols), vec![a, b]);
        name
    }

    /// The signal to a projection's input from its output's `dy`, and its adapter's gradients.
    fn project_back(&mut self, e: &str, l: usize, t: Target, x: &str, dy: &str) -> String {
        let (inp, out) = t.dims(self.c);
        let rows = self.leaf(dy).rows;
        let w = format!("b{l}.{}", t.name());
        let base = format!("{e}.{w}");
        let wt = self.leaf(&format!("{w}.weight.t"));
        let grad = |b: &mut Self, name: String, dy: &str, m: Operand, cols: usize| {
            let d = b.leaf(dy);
            b.push(OpKind::InputGrad, name, (rows, cols), vec![d, m, m]);
        };
        let dx0 = if self.adapted(t) {
            format!("{base}.dx0")
        } else {
            format!("{base}.dx")
        };
        grad(self, dx0.clone(), dy, wt, inp);
        if self.full {
            self.project_grads(e, &w, t, x, dy);
        }
        if !self.adapted(t) {
            return dx0;
        }
        let r = self.lora.rank;
        let dyt = self.transpose_e(dy);
        let ut = self.transpose_e(&format!("{base}.u"));
        let gb = vec![
            self.leaf(&dyt),
            self.leaf(&dyt),
            self.leaf(&ut),
            self.leaf(&ut),
        ];
        let sigma = self.lora.scale_log2;
        self.push_arg(
            OpKind::WeightGrad,
            format!("{base}.gB"),
            (out, 2 * r),
            gb,
            sigma,
        );
        let bt = self.leaf(&format!("{w}.B.q.t"));
        grad(self, format!("{base}.du"), dy, bt, r);
        let dut = self.transpose_e(&format!("{base}.du"));
        let xt = self.transpose_e(x);
        let ga = vec![
            self.leaf(&dut),
            self.leaf(&dut),
            self.leaf(&xt),
            self.leaf(&xt),
        ];
        self.push(OpKind::WeightGrad, format!("{base}.gA"), (r, 2 * inp), ga);
        let at = self.leaf(&format!("{w}.A.q.t"));
        grad(self, format!("{base}.dxa"), &format!("{base}.du"), at, inp);
        self.add_grad(format!("{base}.dx"), &dx0, &format!("{base}.dxa"))
    }
}

mod example;
mod full;
mod span;

pub use full::{full_admissible, program_full, state_tensors_full};

pub use span::{SPAN_INPUT, span_program};
