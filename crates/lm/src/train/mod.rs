//! Fine-tuning in exact mode (docs/exact-ops.md, "Fine-tuning"): LoRA adapters on a frozen
//! model, trained with exact Adam on tokenized examples. Every step is a function of the model,
//! the adapters, the step number and the job's seed: the same bits on every machine.

pub mod adam;
pub mod data;
pub mod full;
pub mod grad;
pub mod lora;
pub mod peft;
mod seq;
mod state;
mod terms;

use rayon::prelude::*;

use crate::error::LmError;
use crate::exact::arith::{clamp, rdiv_signed};
use crate::weights::ExactModel;
pub use adam::AdamConfig;
pub use full::{FullState, FullTune};
pub use lora::{LoraConfig, LoraState, Target};
pub use terms::Terms;

/// One training example: tokens, of which the first `prompt` are context only (no loss on
/// predicting them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The token ids, at least 2.
    pub tokens: Vec<u32>,
    /// Leading tokens not scored.
    pub prompt: usize,
}

/// A fine-tuning run's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FineTune {
    /// The adapters.
    pub lora: LoraConfig,
    /// The optimizer.
    pub adam: AdamConfig,
    /// Examples per step, `1..=1024`.
    pub batch: usize,
    /// The job's seed (adapter initialization and batches).
    pub seed: u64,
}

/// Mean gradients (Q32) of every adapter, `[block][target] = (gA, gB)`.
pub type Gradients = Vec<Vec<Option<(Vec<i64>, Vec<i64>)>>>;

/// What a step reports (not committed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Mean `−ln p` over the scored tokens of the batch before the update.
    pub loss: f64,
    /// Scored tokens.
    pub tokens: u64,
}

impl FineTune {
    /// Checks the terms against a model and the examples.
    pub fn check(&self, model: &ExactModel, data: &[Example]) -> Result<(), LmError> {
        self.lora.check(&model.config)?;
        if !(1..=1024).contains(&self.batch) {
            return Err(LmError::Config(format!(
                "batch {} is outside 1..=1024",
                self.batch
            )));
        }
        if data.is_empty() {
            return Err(LmError::Config("the dataset has no examples".into()));
        }
        for (i, ex) in data.iter().enumerate() {
            if ex.tokens.len() < 2 {
                return Err(LmError::Config(format!(
                    "example {i} has {} tokens; an example needs at least 2",
                    ex.tokens.len()
                )));
            }
            model
                .check_tokens(&ex.tokens, 0)
                .map_err(|e| LmError::Config(format!("example {i}: {e}")))?;
        }
        Ok(())
    }

    /// The initial adapters.
    pub fn init(&self, model: &ExactModel) -> LoraState {
        LoraState::init(&model.config, &self.lora, self.seed)
    }

    /// The examples of step `t`: `pedals-ml`'s batch draw (docs/exact-ops.md, "Mini-batches").
    pub fn batch_of(&self, t: u64, n: usize) -> Vec<usize> {
        pedals_ml::batch_indices(self.seed, t, self.batch, n)
    }

    /// The mean gradient of every adapter on examples `batch` (Q32): each sequence's raw sums
    /// added, then `clamp(rdiv_signed(Σ, scored), ±G_MAX)`. The batch is accumulated in
    /// micro-batches of one sequence per thread (memory: a micro-batch's sums, not the
    /// batch's); integer sums make every split give the same bits (docs/exact-ops.md
    /// "Gradient accumulation").
    pub fn gradients(
        &self,
        model: &ExactModel,
        state: &LoraState,
        examples: &[&Example],
    ) -> (StepReport, Gradients) {
        let ads = seq::Adapters::new(model, state, self.lora.rank, self.lora.scale_log2);
        let fz = seq::Frozen::of(model);
        let micro = rayon::current_num_threads().max(1);
        let (mut tokens, mut loss_sum) = (0u64, 0.0f64);
        let mut total: Option<Gradients> = None;
        for chunk in examples.chunks(micro) {
            let per_seq: Vec<seq::SeqGrad> = chunk
                .par_iter()
                .map(|ex| seq::run(model, &fz, &ads, &ex.tokens, ex.prompt, None))
                .collect();
            // In the examples' order: the loss (a float, reported only) sums the same way
            // whatever the micro-batch.
            for s in per_seq {
                tokens += s.tokens;
                loss_sum += s.loss;
                match total.as_mut() {
                    None => total = Some(s.sums),
                    Some(t) => add_sums(t, s.sums),
                }
            }
        }
        let loss = loss_sum / tokens.max(1) as f64;
        let mut total = total.unwrap_or_default();
        let n = tokens.max(1) as i64;
        let mean = |v: &mut Vec<i64>| {
            v.iter_mut()
                .for_each(|x| *x = clamp(rdiv_signed(*x, n), adam::G_MAX))
        };
        for row in &mut total {
            for (a, b) in row.iter_mut().flatten() {
                mean(a);
                mean(b);
            }
        }
        (StepReport { loss, tokens }, total)
    }

    /// One optimizer step on the dataset: the batch of step `state.step`, its gradients, the
    /// Adam update of every adapter.
    pub fn step(&self, model: &ExactModel, state: &mut LoraState, data: &[Example]) -> StepReport {
        let examples: Vec<&Example> = self
            .batch_of(state.step, data.len())
            .into_iter()
            .map(|i| &data[i])
            .collect();
        let (report, grads) = self.gradients(model, state, &examples);
        let scalars = self.adam.scalars(state.step);
        for (row, grow) in state.adapters.iter_mut().zip(&grads) {
            for (ad, g) in row.iter_mut().zip(grow) {
                if let (Some(ad), Some((ga, gb))) = (ad.as_mut(), g) {
                    adam::update(&self.adam, scalars, &mut ad.a, &mut ad.m_a, &mut ad.v_a, ga);
                    adam::update(&self.adam, scalars, &mut ad.b, &mut ad.m_b, &mut ad.v_b, gb);
                }
            }
        }
        state.step += 1;
        report
    }

    /// Q12 logits of every position of `input` with the adapters (a whole forward pass).
    pub fn logits(&self, model: &ExactModel, state: &LoraState, input: &[u32]) -> Vec<i32> {
        let ads = seq::Adapters::new(model, state, self.lora.rank, self.lora.scale_log2);
        seq::forward(model, &ads, input).2
    }

    /// `n` greedy tokens after `prompt` with the adapters (the largest logit, the lowest id on a
    /// tie). Each token re-runs the whole sequence: for checks, not for serving.
    pub fn greedy(
        &self,
        model: &ExactModel,
        state: &LoraState,
        prompt: &[u32],
        n: usize,
    ) -> Result<Vec<u32>, LmError> {
        model.check_tokens(prompt, n)?;
        let vocab = model.config.vocab;
        let mut seq = prompt.to_vec();
        for _ in 0..n {
            let logits = self.logits(model, state, &seq);
            let last = &logits[logits.len() - vocab..];
            let best = (0..vocab).fold(0, |b, j| if last[j] > last[b] { j } else { b });
            seq.push(best as u32);
        }
        Ok(seq.split_off(prompt.len()))
    }

    /// Mean `−ln p` of the examples under the adapters (no update), for held-out evaluation.
    pub fn loss(&self, model: &ExactModel, state: &LoraState, data: &[Example]) -> f64 {
        let refs: Vec<&Example> = data.iter().collect();
        self.gradients(model, state, &refs).0.loss
    }
}

/// Adds one sequence's raw gradient sums into the batch's.
fn add_sums(total: &mut Gradients, sums: Gradients) {
    for (tb, sb) in total.iter_mut().zip(sums) {
        for (tt, st) in tb.iter_mut().zip(sb) {
            if let (Some((ta, tbm)), Some((sa, sbm))) = (tt.as_mut(), st) {
                ta.iter_mut().zip(sa).for_each(|(x, y)| *x += y);
                tbm.iter_mut().zip(sbm).for_each(|(x, y)| *x += y);
            }
        }
    }
}
