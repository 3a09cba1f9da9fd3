//! The step program of a full fine-tune (docs/protocol.md §9, "Full fine-tuning"): every
//! weight of the model is a state tensor with its Adam moments. The prelude quantizes each
//! master as the forward reads it (`<weight>.q`), the forward reads those leaves instead of
//! the model commitment (only the rotary tables stay there), and the backward pass adds each
//! weight's gradient of the slot (`e<b>.<weight>.g`) beside the signals the LoRA program has.

use super::{Builder, Operand, Program, has_bias};
use crate::config::{Family, LmConfig};
use crate::dispute::{LONG_ROW, OpKind};
use crate::error::LmError;
use crate::train::full::{Kind, Layout};
use crate::train::{LoraConfig, Target};

/// The state tensors of a full fine-tune of config `c`, in encoding order: `step`, and per
/// weight its masters and moments (`<weight>`, `.m`, `.v`), as [`crate::train::FullState`]
/// encodes them.
pub fn state_tensors_full(c: &LmConfig) -> Vec<(String, Vec<u32>)> {
    let mut t = vec![("step".to_string(), vec![])];
    for p in Layout::of(c).params {
        let (r, k) = (p.rows as u32, p.cols as u32);
        t.push((format!("{}.m", p.name), vec![r, 2 * k]));
        t.push((format!("{}.v", p.name), vec![r, 2 * k]));
        t.push((p.name, vec![r, k]));
    }
    t.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    t
}

/// The program of one step of a full fine-tune of `c` whose batch slots hold examples of
/// `lens[b]` tokens, drawn from a dataset of `samples` examples. The vocabulary is one row
/// (at most [`LONG_ROW`] tokens): the head's weight gradient over chunks is not in the game.
pub fn program_full(c: &LmConfig, lens: &[usize], samples: usize) -> Result<Program, LmError> {
    full_admissible(c)?;
    super::check_lens(c, lens)?;
    let none = LoraConfig {
        rank: 0,
        scale_log2: 0,
        targets: Vec::new(),
    };
    Ok(super::step_program(c, &none, lens, samples, None, true))
}

/// Whether the game has a full fine-tune's program for a model of config `c`: its vocabulary
/// must be one row (at most [`LONG_ROW`] tokens).
pub fn full_admissible(c: &LmConfig) -> Result<(), LmError> {
    if c.vocab > LONG_ROW {
        return Err(LmError::Config(format!(
            "the dispute game adjudicates full fine-tuning of vocabularies up to {LONG_ROW} \
             tokens, not {}; fine-tune this model with LoRA",
            c.vocab
        )));
    }
    Ok(())
}

/// The running gradient sum of weight `w` after slot `slot`.
pub(super) fn sum_name(slot: usize, w: &str) -> String {
    if slot == 0 {
        format!("e0.{w}.g")
    } else {
        format!("e{slot}.{w}.sum")
    }
}

impl Builder<'_> {
    /// `<weight>.q` of every weight: a matrix through the row quantizer (`quant`, σ = 0, its
    /// rows' shifts last, the model commitment's layout), γ as `requant` by 8, β and biases
    /// by 12.
    pub(super) fn quantize_masters(&mut self) {
        for p in Layout::of(self.c).params {
            let src = self.state(&p.name);
            let name = format!("{}.q", p.name);
            match p.kind {
                Kind::Matrix => {
                    self.push(OpKind::Quant, name, (p.rows, p.cols + 1), vec![src]);
                }
                Kind::Gamma | Kind::Shift => {
                    let by = if p.kind == Kind::Gamma { 8 } else { 12 };
                    self.push_arg(OpKind::Requant, name, (p.rows, p.cols), vec![src], by);
                }
            }
        }
    }

    /// A projection's weight gradient `e<b>.<w>.weight.g` (`weight_grad` over `dy.t` and
    /// `x.t`, σ = 0) and its bias's `e<b>.<w>.bias.g`.
    pub(super) fn project_grads(&mut self, e: &str, w: &str, t: Target, x: &str, dy: &str) {
        let (inp, out) = t.dims(self.c);
        let dyt = self.transpose_e(dy);
        let xt = self.transpose_e(x);
        let ins = vec![
            self.leaf(&dyt),
            self.leaf(&dyt),
            self.leaf(&xt),
            self.leaf(&xt),
        ];
        let name = format!("{e}.{w}.weight.g");
        self.push(OpKind::WeightGrad, name, (out, 2 * inp), ins);
        if has_bias(self.c, t) {
            let ins = vec![self.leaf(&dyt)];
            self.push(
                OpKind::BiasGrad,
                format!("{e}.{w}.bias.g"),
                (1, 2 * out),
                ins,
            );
        }
    }

    /// A norm's parameter gradients from its input `x` and its output's signal `dy`: the
    /// normalized rows `e<b>.<norm>.n`, then `e<b>.<norm>.gamma.g` (and `.beta.g`).
    pub(super) fn norm_grads(&mut self, e: &str, norm: &str, x: &str, dy: &str) {
        let xo = self.leaf(x);
        let n = format!("{e}.{norm}.n");
        self.push(OpKind::NormN, n.clone(), (xo.rows, xo.cols), vec![xo]);
        let nt = self.transpose_e(&n);
        let dyt = self.transpose_e(dy);
        let d = xo.cols;
        let ins = vec![self.leaf(&dyt), self.leaf(&nt)];
        self.push(
            OpKind::GammaGrad,
            format!("{e}.{norm}.gamma.g"),
            (1, 2 * d),
            ins,
        );
        if self.c.family == Family::Gpt2 {
            let ins = vec![self.leaf(&dyt)];
            self.push(
                OpKind::BiasGrad,
                format!("{e}.{norm}.beta.g"),
                (1, 2 * d),
                ins,
            );
        }
    }

    /// The head's weight gradient `e<b>.head.g` over the loss signal and the final norm's
    /// output (the tied embedding's share, when the head is the embedding).
    pub(super) fn head_grads(&mut self, slot: usize, t: usize) {
        let e = format!("e{slot}");
        let dzt = self.transpose_e(&format!("{e}.dz"));
        let xft = self.transpose_e(&format!("{e}.xf"));
        let ins = vec![
            self.leaf(&dzt),
            self.leaf(&dzt),
            self.leaf(&xft),
            self.leaf(&xft),
        ];
        let shape = (self.c.vocab, 2 * self.c.hidden);
        debug_assert!(t > 0);
        self.push(OpKind::WeightGrad, format!("{e}.head.g"), shape, ins);
    }

    /// The embeddings' gradients from the signal `dh` of block 0's input: the table rows of
    /// the slot's tokens (`embed_grad`, added to the head's share when tied) and the learned
    /// positions' rows (`pos_grad`).
    pub(super) fn embed_grads(&mut self, slot: usize, t: usize, dh: &str) {
        let (e, c) = (format!("e{slot}"), self.c);
        let dht = self.transpose_e(dh);
        let ins: Vec<Operand> = vec![self.data(slot, t), self.leaf(&dht)];
        let shape = (c.vocab, 2 * c.hidden);
        if c.tied {
            let scatter = format!("{e}.embed.scatter");
            self.push(OpKind::EmbedGrad, scatter.clone(), shape, ins);
            let ins = vec![self.leaf(&scatter), self.leaf(&format!("{e}.head.g"))];
            self.push(OpKind::GradSum, format!("{e}.embed.g"), shape, ins);
        } else {
            self.push(OpKind::EmbedGrad, format!("{e}.embed.g"), shape, ins);
        }
        if c.family == Family::Gpt2 {
            let ins = vec![self.leaf(dh)];
            let shape = (c.context, 2 * c.hidden);
            self.push(OpKind::PosGrad, format!("{e}.pos_embed.g"), shape, ins);
        }
    }

    /// Every weight's running gradient sum after slot `slot > 0`: `e<b>.<weight>.sum`.
    pub(super) fn full_sums(&mut self, slot: usize) {
        if slot == 0 {
            return;
        }
        for p in Layout::of(self.c).params {
            let prev = self.leaf(&sum_name(slot - 1, &p.name));
            let cur = self.leaf(&format!("e{slot}.{}.g", p.name));
            let shape = (prev.rows, prev.cols);
            self.push(
                OpKind::GradSum,
                sum_name(slot, &p.name),
                shape,
                vec![prev, cur],
            );
        }
    }
}
