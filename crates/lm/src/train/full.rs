//! Full fine-tuning in exact mode (docs/exact-ops.md, "Full fine-tuning"): every weight of the
//! model is trained, not adapters. Each weight has a Q24 master value and Adam moments; the
//! forward of a step reads the masters as a model (matrices through the row quantizer as
//! 16-bit rows with one shift each, like LoRA's adapters; γ at Q16, β and biases at Q12). The
//! rotary tables are not weights. For small models: the state holds three values per weight.

use std::collections::HashMap;

use pedals_core::{ModelState, StateTensor};
use rayon::prelude::*;

use super::adam::{self, AdamConfig};
use super::lora::{LoraConfig, Target, W_BITS, W_MAX, qmat};
use super::{Example, FineTune, StepReport, seq, state};
use crate::config::LmConfig;
use crate::dispute::model_tensors;
use crate::error::LmError;
use crate::exact::arith::{clamp, rdiv_signed, sh};
use crate::exact::ops::{ACT_MAX, GAMMA_MAX};
use crate::weights::{ExactModel, QMat};

/// How the forward reads a weight's master values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A matrix: each row through the row quantizer (`rows × cols`, one shift per row).
    Matrix,
    /// A norm's γ: `clamp(rs(master, 8), ±GAMMA_MAX)`, Q16.
    Gamma,
    /// A bias or a norm's β: `clamp(rs(master, 12), ±ACT_MAX)`, Q12.
    Shift,
}

/// One trained weight tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name: the model commitment's (docs/protocol.md §9), e.g. `b0.q_proj.weight`.
    pub name: String,
    /// Rows (1 for a vector).
    pub rows: usize,
    /// Values per row.
    pub cols: usize,
    /// How the forward reads it.
    pub kind: Kind,
}

/// The trained weights of a model, in name order, and where each one is.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The weights.
    pub params: Vec<Param>,
    index: HashMap<String, usize>,
}

impl Layout {
    /// Every weight of a model of config `c` (the model commitment's tensors but the rotary
    /// tables).
    pub fn of(c: &LmConfig) -> Self {
        let params: Vec<Param> = model_tensors(c)
            .into_iter()
            .filter(|(n, _, _)| !n.starts_with("rope."))
            .map(|(name, rows, cols)| {
                let kind = if name.ends_with(".gamma") {
                    Kind::Gamma
                } else if name.ends_with(".beta") || name.ends_with(".bias") {
                    Kind::Shift
                } else {
                    Kind::Matrix
                };
                let cols = if kind == Kind::Matrix { cols - 1 } else { cols };
                Param {
                    name,
                    rows,
                    cols,
                    kind,
                }
            })
            .collect();
        let index = params
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        Self { params, index }
    }

    /// The index of weight `name`.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Values in all.
    pub fn values(&self) -> usize {
        self.params.iter().map(|p| p.rows * p.cols).sum()
    }
}

/// A full fine-tune's state: every weight's masters (Q24) and Adam moments, and the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullState {
    /// Masters, one vector per [`Layout`] weight.
    pub w: Vec<Vec<i32>>,
    /// First moments (Q32).
    pub m: Vec<Vec<i64>>,
    /// Second moments (Q48).
    pub v: Vec<Vec<i64>>,
    /// Optimizer steps taken.
    pub step: u64,
}

/// A mutable view of one weight of an [`ExactModel`].
enum Slot<'a> {
    Mat(&'a mut QMat),
    Vec(&'a mut Vec<i32>),
}

/// The weight `name` of `model` (a name of [`Layout::of`] its config).
fn slot<'a>(model: &'a mut ExactModel, name: &str) -> Option<Slot<'a>> {
    let mut parts = name.split('.');
    let first = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    let norm = |n: &'a mut crate::weights::Norm, which: &str| match which {
        "gamma" => Some(Slot::Vec(&mut n.gamma)),
        "beta" => n.beta.as_mut().map(Slot::Vec),
        _ => None,
    };
    match (first, rest.as_slice()) {
        ("embed", []) => Some(Slot::Mat(&mut model.embed)),
        ("head", []) => model.head.as_mut().map(Slot::Mat),
        ("pos_embed", []) => model.pos_embed.as_mut().map(Slot::Mat),
        ("final_norm", [w]) => norm(&mut model.final_norm, w),
        (b, [what, w]) if b.starts_with('b') => {
            let block = model.blocks.get_mut(b[1..].parse::<usize>().ok()?)?;
            match *what {
                "attn_norm" => norm(&mut block.attn_norm, w),
                "mlp_norm" => norm(&mut block.mlp_norm, w),
                p => {
                    let lin = match Target::parse(p)? {
                        Target::Q => &mut block.q,
                        Target::K => &mut block.k,
                        Target::V => &mut block.v,
                        Target::O => &mut block.o,
                        Target::Gate => block.gate.as_mut()?,
                        Target::Up => &mut block.up,
                        Target::Down => &mut block.down,
                    };
                    match *w {
                        "weight" => Some(Slot::Mat(&mut lin.w)),
                        "bias" => lin.b.as_mut().map(Slot::Vec),
                        _ => None,
                    }
                }
            }
        }
        _ => None,
    }
}

impl FullState {
    /// The masters of a model's own weights, moments at zero: a matrix value `q` with row
    /// shift `s` becomes `clamp(sh(q, s − 24), ±W_MAX)`, γ (Q16) `γ · 2^8`, β and biases (Q12)
    /// `b · 2^12`.
    pub fn init(model: &ExactModel) -> Result<Self, LmError> {
        let lay = Layout::of(&model.config);
        let mut m = model.clone();
        let mut w: Vec<Vec<i32>> = Vec::with_capacity(lay.params.len());
        for p in &lay.params {
            let missing = || LmError::Config(format!("the model has no {}", p.name));
            let v = match slot(&mut m, &p.name).ok_or_else(missing)? {
                Slot::Mat(q) => (0..q.rows)
                    .flat_map(|r| {
                        let s = i32::from(q.shift[r]) - W_BITS;
                        (0..q.cols).map(move |k| (r, k, s))
                    })
                    .map(|(r, k, s)| clamp(sh(q.value(r, k), s), W_MAX) as i32)
                    .collect(),
                Slot::Vec(v) => {
                    let up = if p.kind == Kind::Gamma { 8 } else { 12 };
                    v.iter()
                        .map(|&x| clamp(i64::from(x) << up, W_MAX) as i32)
                        .collect()
                }
            };
            w.push(v);
        }
        let zeros: Vec<Vec<i64>> = w.iter().map(|v| vec![0; v.len()]).collect();
        Ok(Self {
            w,
            m: zeros.clone(),
            v: zeros,
            step: 0,
        })
    }

    /// The model a step's forward reads: `base` (for its config, rotary table and tokenizer)
    /// with every weight read from the masters.
    pub fn model(&self, base: &ExactModel) -> ExactModel {
        let lay = Layout::of(&base.config);
        let mut out = base.clone();
        for (p, w) in lay.params.iter().zip(&self.w) {
            match slot(&mut out, &p.name).expect("the layout names the model's weights") {
                Slot::Mat(q) => *q = qmat(w, p.rows, p.cols, 0),
                Slot::Vec(v) => {
                    *v = w
                        .iter()
                        .map(|&x| match p.kind {
                            Kind::Gamma => clamp(sh(i64::from(x), 8), GAMMA_MAX) as i32,
                            _ => clamp(sh(i64::from(x), 12), ACT_MAX) as i32,
                        })
                        .collect();
                }
            }
        }
        out
    }

    /// The state's tensors: `step`, and per weight its masters (`[rows, cols]`, `i32`) and its
    /// moments `.m`, `.v` (64-bit values as two 32-bit halves, low first: `[rows, 2·cols]`).
    pub fn to_model_state(&self, c: &LmConfig) -> Result<ModelState, LmError> {
        let core = |e: pedals_core::CoreError| LmError::Format(e.to_string());
        let lay = Layout::of(c);
        let mut t = vec![StateTensor::new("step", vec![], vec![self.step as i32]).map_err(core)?];
        for (i, p) in lay.params.iter().enumerate() {
            let (r, k) = (p.rows as u32, p.cols as u32);
            t.push(StateTensor::new(&p.name, vec![r, k], self.w[i].clone()).map_err(core)?);
            for (suffix, d) in [("m", &self.m[i]), ("v", &self.v[i])] {
                t.push(
                    StateTensor::new(
                        format!("{}.{suffix}", p.name),
                        vec![r, 2 * k],
                        state::halves(d),
                    )
                    .map_err(core)?,
                );
            }
        }
        ModelState::new(t).map_err(core)
    }

    /// Canonical bytes.
    pub fn to_bytes(&self, c: &LmConfig) -> Result<Vec<u8>, LmError> {
        self.to_model_state(c)?
            .to_canonical_bytes()
            .map_err(|e| LmError::Format(e.to_string()))
    }

    /// The state hash.
    pub fn state_hash(&self, c: &LmConfig) -> Result<alloy_primitives::B256, LmError> {
        self.to_model_state(c)?
            .state_hash()
            .map_err(|e| LmError::Format(e.to_string()))
    }

    /// Reads canonical bytes for a model of config `c`: every tensor the config implies, with
    /// its shape, and nothing else.
    pub fn from_bytes(bytes: &[u8], c: &LmConfig) -> Result<Self, LmError> {
        let st =
            ModelState::from_canonical_bytes(bytes).map_err(|e| LmError::Format(e.to_string()))?;
        let lay = Layout::of(c);
        if st.tensors.len() != 1 + 3 * lay.params.len() {
            return Err(LmError::Format(format!(
                "the fine-tuning state has {} tensors; a full fine-tune of this model has {}",
                st.tensors.len(),
                1 + 3 * lay.params.len()
            )));
        }
        let get = |name: &str, shape: &[u32]| state::tensor(&st, name, shape);
        let mut s = Self {
            w: Vec::new(),
            m: Vec::new(),
            v: Vec::new(),
            step: state::step_of(&st)?,
        };
        for p in &lay.params {
            let (r, k) = (p.rows as u32, p.cols as u32);
            s.w.push(get(&p.name, &[r, k])?);
            s.m.push(state::join(&get(&format!("{}.m", p.name), &[r, 2 * k])?));
            s.v.push(state::join(&get(&format!("{}.v", p.name), &[r, 2 * k])?));
        }
        Ok(s)
    }
}

/// A full fine-tune's terms: the optimizer, examples per step and the seed of the batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullTune {
    /// The optimizer.
    pub adam: AdamConfig,
    /// Examples per step, `1..=1024`.
    pub batch: usize,
    /// The job's seed (the batches).
    pub seed: u64,
}

/// Raw gradient sums of one sequence or a batch, one vector per [`Layout`] weight (Q32).
pub(crate) struct Sums<'a> {
    pub(crate) lay: &'a Layout,
    pub(crate) g: Vec<Vec<i64>>,
}

impl<'a> Sums<'a> {
    pub(crate) fn new(lay: &'a Layout) -> Self {
        let g = lay
            .params
            .iter()
            .map(|p| vec![0; p.rows * p.cols])
            .collect();
        Self { lay, g }
    }

    /// The sums of weight `name` (one the model has).
    pub(crate) fn of(&mut self, name: &str) -> &mut Vec<i64> {
        let i = self
            .lay
            .get(name)
            .expect("the layout names the model's weights");
        &mut self.g[i]
    }

    /// The sums of weight `name`, if the model has it (biases, β).
    pub(crate) fn maybe(&mut self, name: &str) -> Option<&mut Vec<i64>> {
        let i = self.lay.get(name)?;
        Some(&mut self.g[i])
    }

    fn add(&mut self, other: Sums<'_>) {
        for (a, b) in self.g.iter_mut().zip(other.g) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
    }
}

impl FullTune {
    /// The same terms as a LoRA fine-tune with no adapters: its batches and forward.
    pub(crate) fn base(&self) -> FineTune {
        FineTune {
            lora: LoraConfig {
                rank: 1,
                scale_log2: 0,
                targets: Vec::new(),
            },
            adam: self.adam,
            batch: self.batch,
            seed: self.seed,
        }
    }

    /// Checks the terms against a model and the examples.
    pub fn check(&self, model: &ExactModel, data: &[Example]) -> Result<(), LmError> {
        self.base().check(model, data)
    }

    /// The examples of step `t`.
    pub fn batch_of(&self, t: u64, n: usize) -> Vec<usize> {
        self.base().batch_of(t, n)
    }

    /// The mean gradient of every weight on `examples` (Q32): each sequence's raw sums added
    /// (one sequence per thread at a time), then `clamp(rdiv_signed(Σ, scored), ±G_MAX)`.
    pub fn gradients(
        &self,
        base: &ExactModel,
        state: &FullState,
        examples: &[&Example],
    ) -> (StepReport, Vec<Vec<i64>>) {
        let model = state.model(base);
        let lay = Layout::of(&model.config);
        let ads = seq::Adapters::new(&model, &self.base().init(&model), 1, 0);
        let fz = seq::Frozen::of(&model);
        let micro = rayon::current_num_threads().max(1);
        let (mut tokens, mut loss_sum) = (0u64, 0.0f64);
        let mut total = Sums::new(&lay);
        for chunk in examples.chunks(micro) {
            let per_seq: Vec<(seq::SeqGrad, Sums<'_>)> = chunk
                .par_iter()
                .map(|ex| {
                    let mut s = Sums::new(&lay);
                    let g = seq::run(&model, &fz, &ads, &ex.tokens, ex.prompt, Some(&mut s));
                    (g, s)
                })
                .collect();
            for (g, s) in per_seq {
                tokens += g.tokens;
                loss_sum += g.loss;
                total.add(s);
            }
        }
        let n = tokens.max(1) as i64;
        let mut g = total.g;
        g.iter_mut().flatten().for_each(|x| {
            *x = clamp(rdiv_signed(*x, n), adam::G_MAX);
        });
        let loss = loss_sum / tokens.max(1) as f64;
        (StepReport { loss, tokens }, g)
    }

    /// One optimizer step: the batch of step `state.step`, its gradients, the Adam update of
    /// every weight.
    pub fn step(&self, base: &ExactModel, state: &mut FullState, data: &[Example]) -> StepReport {
        let examples: Vec<&Example> = self
            .batch_of(state.step, data.len())
            .into_iter()
            .map(|i| &data[i])
            .collect();
        let (report, grads) = self.gradients(base, state, &examples);
        let scalars = self.adam.scalars(state.step);
        let adam = self.adam;
        state
            .w
            .par_iter_mut()
            .zip(state.m.par_iter_mut())
            .zip(state.v.par_iter_mut())
            .zip(grads.par_iter())
            .for_each(|(((w, m), v), g)| adam::update(&adam, scalars, w, m, v, g));
        state.step += 1;
        report
    }

    /// Mean `−ln p` of the examples under the state (no update), for held-out evaluation.
    pub fn loss(&self, base: &ExactModel, state: &FullState, data: &[Example]) -> f64 {
        let model = state.model(base);
        let none = self.base().init(&model);
        self.base().loss(&model, &none, data)
    }

    /// `n` greedy tokens after `prompt` under the state.
    pub fn greedy(
        &self,
        base: &ExactModel,
        state: &FullState,
        prompt: &[u32],
        n: usize,
    ) -> Result<Vec<u32>, LmError> {
        let model = state.model(base);
        let none = self.base().init(&model);
        self.base().greedy(&model, &none, prompt, n)
    }
}
