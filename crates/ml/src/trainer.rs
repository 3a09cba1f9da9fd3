//! The exact-mode trainer: mini-batches from the job seed, a state hash after every step,
//! the step trace and its root, checkpoints, single-step replay, and inference.

use std::collections::BTreeMap;

use alloy_primitives::{B256, keccak256};
use pedals_core::TraceCommitment;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::{
    Dataset, MlError,
    exact::{ExactOps, Mat},
    mlp::{self, DeviceState, MlpConfig, MlpState, TracedTensor},
};

/// What a job trains: the model, the seed that picks every mini-batch, the number of steps,
/// and how often the worker keeps a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model and optimizer.
    pub model: MlpConfig,
    /// The job seed.
    pub seed: u64,
    /// Steps to train.
    pub steps: u64,
    /// Keep the state after every `checkpoint_every`-th step (and the initial state).
    pub checkpoint_every: u64,
}

/// The sample indices of mini-batch `step`: sample `j` is
/// `u64_be(keccak256("pedals.batch" ‖ seed ‖ step ‖ j)[0..8]) mod n`, with seed, step and j
/// as big-endian u64. It depends on the seed and the step alone, so any step can be replayed
/// without the ones before it.
pub fn batch_indices(seed: u64, step: u64, batch: usize, n: usize) -> Vec<usize> {
    (0..batch as u64)
        .map(|j| batch_sample(seed, step, j, n as u64) as usize)
        .collect()
}

/// The sample of batch row `j` of step `step` (see [`batch_indices`]): one row's share of the
/// derivation, which the dispute referee also computes on-chain.
pub fn batch_sample(seed: u64, step: u64, j: u64, samples: u64) -> u64 {
    let mut buf = Vec::with_capacity(12 + 24);
    buf.extend_from_slice(b"pedals.batch");
    buf.extend_from_slice(&seed.to_be_bytes());
    buf.extend_from_slice(&step.to_be_bytes());
    buf.extend_from_slice(&j.to_be_bytes());
    let h = keccak256(&buf);
    let mut word = [0u8; 8];
    word.copy_from_slice(&h[..8]);
    u64::from_be_bytes(word) % samples
}

/// What a run has committed to so far: the state hashes `h_0..h_k` and, when the trainer
/// audits ([`Trainer::auditing`]), the audit leaves of steps `0..k` (one fewer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceSoFar {
    /// `h_0..h_k`; empty before the first step.
    pub hashes: Vec<B256>,
    /// The audit leaf of each step done, step 0 first; empty when not auditing.
    pub audit_leaves: Vec<B256>,
}

/// The result of training.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// `[h_0 .. h_N]`: the state hash before the first step and after every step.
    pub hashes: Vec<B256>,
    /// The audit leaf of every step (docs/commitments.md §8), when the trainer audits.
    pub audit_leaves: Vec<B256>,
    /// The state after the last step.
    pub final_state: MlpState,
    /// Canonical bytes of the kept states, by the number of steps done.
    pub checkpoints: BTreeMap<u64, Vec<u8>>,
}

impl TrainOutcome {
    /// The trace commitment whose root goes on-chain.
    pub fn trace(&self) -> Result<TraceCommitment, MlError> {
        Ok(TraceCommitment::new(self.hashes.clone())?)
    }

    /// The audit root that goes on-chain with the result: the Merkle root over the op-trace
    /// roots of every step, or none when the run did not audit (or made no step).
    pub fn audit_root(&self) -> Result<Option<B256>, MlError> {
        audit_root(&self.audit_leaves)
    }
}

/// The engine's name of the tensor a step's audit leaf commits to: the bias gradient of the
/// first layer, the last thing the backward pass computes, so that only a forward and a whole
/// backward pass of the step yield it; yet it is one row of a layer's width, cheap to hash.
pub const AUDITED_TENSOR: &str = "gb0";

/// The audit leaf of a step from the tensors kept of it: the row root (docs/commitments.md §4)
/// of [`AUDITED_TENSOR`].
fn audit_leaf_of(kept: &[TracedTensor]) -> Result<B256, MlError> {
    let t = kept
        .iter()
        .find(|t| t.name.rsplit(':').next() == Some(AUDITED_TENSOR))
        .ok_or_else(|| MlError::Config(format!("the step kept no {AUDITED_TENSOR}")))?;
    crate::dispute::mat_root(&t.value)
}

/// The Merkle root over the audit leaves of a run's steps (docs/commitments.md §8); none for
/// an empty list.
pub fn audit_root(audit_leaves: &[B256]) -> Result<Option<B256>, MlError> {
    if audit_leaves.is_empty() {
        return Ok(None);
    }
    Ok(Some(pedals_core::merkle_root(audit_leaves)?))
}

/// A model's state held on a device, stepped without reading it back: the unit a benchmark
/// times and a worker drives between hashes.
pub struct Session<O: ExactOps> {
    ops: O,
    config: MlpConfig,
    state: DeviceState<O>,
}

impl<O: ExactOps> Session<O> {
    /// Uploads `init` to the device of `ops`.
    pub fn new(ops: O, config: MlpConfig, init: &MlpState) -> Result<Self, MlError> {
        config.validate()?;
        let state = DeviceState::upload(&ops, init);
        Ok(Self { ops, config, state })
    }

    /// One exact training step on the batch `x` (`batch × inputs`, Q8) with `labels`.
    pub fn step(&mut self, x: &Mat, labels: &[u32]) -> Result<(), MlError> {
        if x.rows != self.config.batch || x.cols != self.config.inputs() || labels.len() != x.rows {
            return Err(MlError::DatasetMismatch(format!(
                "a batch must be {} × {} with one label per row, got {} × {} and {} labels",
                self.config.batch,
                self.config.inputs(),
                x.rows,
                x.cols,
                labels.len()
            )));
        }
        if let Some(&y) = labels
            .iter()
            .find(|&&y| y as usize >= self.config.classes())
        {
            return Err(MlError::DatasetMismatch(format!(
                "label {y} is not below the model's {} classes",
                self.config.classes()
            )));
        }
        let x = self.ops.load(x);
        mlp::step(
            &self.ops,
            &self.config,
            &mut self.state,
            &x,
            labels,
            None,
            None,
        );
        Ok(())
    }

    /// Reads the state back to the host (this waits for the device).
    pub fn state(&self) -> MlpState {
        self.state.download(&self.ops)
    }
}

/// The mean cross-entropy of Q8 `logits` (one row per sample) against `labels`, in
/// millionths, computed in floating point: a figure to show, never committed or disputed.
pub fn loss_micro(logits: &Mat, labels: &[u32]) -> u64 {
    let mut sum = 0.0f64;
    for (row, &label) in logits.data.chunks(logits.cols.max(1)).zip(labels) {
        let z: Vec<f64> = row.iter().map(|&v| f64::from(v) / 256.0).collect();
        let top = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = top + z.iter().map(|v| (v - top).exp()).sum::<f64>().ln();
        sum += log_sum - z.get(label as usize).copied().unwrap_or(top);
    }
    let mean = sum / labels.len().max(1) as f64;
    (mean * 1e6).round().clamp(0.0, u64::MAX as f64) as u64
}

/// Trains, replays and infers with one implementation of the exact ops.
#[derive(Debug, Clone)]
pub struct Trainer<O: ExactOps> {
    ops: O,
    config: TrainConfig,
    /// Where training and inference report the steps (chunks) done, if anyone watches.
    progress: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// Where training reports the loss at each checkpoint (see [`Trainer::reporting_loss`]).
    loss: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// Whether training keeps every step's audit leaf (what auditors are paid to open).
    audit: bool,
    /// Debug builds only: the steps after which the trainer lies (see [`Trainer::falsifying`]).
    #[cfg(debug_assertions)]
    falsify: std::collections::BTreeSet<u64>,
}

impl<O: ExactOps> Trainer<O> {
    /// A trainer; rejects a configuration outside exact mode's bounds.
    pub fn new(ops: O, config: TrainConfig) -> Result<Self, MlError> {
        config.model.validate()?;
        if config.checkpoint_every == 0 {
            return Err(MlError::Config(
                "checkpoint_every must be at least 1".into(),
            ));
        }
        Ok(Self {
            ops,
            config,
            progress: None,
            loss: None,
            audit: false,
            #[cfg(debug_assertions)]
            falsify: std::collections::BTreeSet::new(),
        })
    }

    /// Debug builds only (the method does not exist in a release build, so no release binary
    /// can cheat with it): after each of `steps` the trainer adds 1 to the first master weight,
    /// as a cheating worker would, in training and in every replay, so its trace, checkpoints
    /// and dispute answers stay consistent with the lie. Tests use it to play a dishonest
    /// worker (an `Option<u64>` names one step or none).
    #[cfg(debug_assertions)]
    pub fn falsifying(mut self, steps: impl IntoIterator<Item = u64>) -> Self {
        self.falsify = steps.into_iter().collect();
        self
    }

    /// Reports into `counter` the steps done (chunks, for inference) as the run goes: a node
    /// reads it from another thread to tell watchers how far a job has got.
    pub fn reporting(mut self, counter: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        self.progress = Some(counter);
        self
    }

    /// Reports into `cell`, at every checkpoint, the training loss of the step just taken:
    /// the mean cross-entropy of the updated model on that step's batch, in millionths
    /// ([`loss_micro`]). It costs one forward pass of one batch per checkpoint, and is not
    /// part of anything committed: it is for people watching the job.
    pub fn reporting_loss(mut self, cell: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        self.loss = Some(cell);
        self
    }

    /// Training also commits to every step's audit leaf: the row root of the step's
    /// first-layer bias gradient ([`AUDITED_TENSOR`]), read back as the step makes it. It costs
    /// one read-back and one small hash per step, not a second step.
    pub fn auditing(mut self) -> Self {
        self.audit = true;
        self
    }

    /// Records that `done` steps (or chunks) are done, for whoever watches.
    pub(crate) fn report(&self, done: u64) {
        if let Some(counter) = &self.progress {
            counter.store(done, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Applies the debug-only falsification to the state after `step` (a no-op otherwise).
    fn tamper(&self, step: u64, device: &mut DeviceState<O>) {
        #[cfg(debug_assertions)]
        if self.falsify.contains(&step) {
            let mut w = self.ops.read(&device.w[0]);
            w.data[0] = w.data[0].saturating_add(1);
            device.w[0] = self.ops.load(&w);
        }
        let _ = (step, device);
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn check_data(&self, data: &Dataset) -> Result<(), MlError> {
        self.config.model.check_dataset(data)
    }

    /// Mini-batch `step` of `data`: the inputs (`batch × inputs`, Q8) and the labels.
    pub fn batch(&self, data: &Dataset, step: u64) -> (Mat, Vec<u32>) {
        let m = &self.config.model;
        let idx = batch_indices(self.config.seed, step, m.batch, data.len());
        let mut x = Vec::with_capacity(m.batch * m.inputs());
        let mut y = Vec::with_capacity(m.batch);
        for i in idx {
            let (features, label) = data.sample(i);
            x.extend_from_slice(features);
            y.push(label);
        }
        (Mat::new(m.batch, m.inputs(), x), y)
    }

    /// Trains `steps` steps from `init`, hashing the state after every step.
    pub fn train(&self, data: &Dataset, init: &MlpState) -> Result<TrainOutcome, MlError> {
        self.train_from(data, init, TraceSoFar::default(), |_, _, _| Ok(()))
    }

    /// Trains from the state after `k` steps (`state`), where `prefix` holds what an earlier
    /// run committed up to there (`h_0..h_k`, and the audit leaves of steps `0..k` when
    /// auditing); an empty `prefix` means `state` is the initial state. At every checkpoint
    /// (every `checkpoint_every` steps and the last), it calls `on_checkpoint(steps_done,
    /// canonical bytes, everything committed so far)` before going on, so a caller can persist
    /// enough to resume from there after a crash. The outcome covers every step; its
    /// `checkpoints` are the ones this call made (with step 0 when starting fresh).
    pub fn train_from(
        &self,
        data: &Dataset,
        state: &MlpState,
        prefix: TraceSoFar,
        mut on_checkpoint: impl FnMut(u64, &[u8], &TraceSoFar) -> Result<(), MlError>,
    ) -> Result<TrainOutcome, MlError> {
        self.check_data(data)?;
        let mut so_far = prefix;
        let mut checkpoints = BTreeMap::new();
        let start = match so_far.hashes.len() {
            0 => {
                let bytes = state.to_bytes()?;
                so_far.hashes.push(state.state_hash()?);
                so_far.audit_leaves.clear();
                on_checkpoint(0, &bytes, &so_far)?;
                checkpoints.insert(0, bytes);
                0
            }
            n => {
                let done = n as u64 - 1;
                if done > self.config.steps || state.state_hash()? != so_far.hashes[n - 1] {
                    return Err(MlError::Checkpoint(format!(
                        "the state to resume from does not hash to h_{done} of the trace given"
                    )));
                }
                let roots = if self.audit { n - 1 } else { 0 };
                if so_far.audit_leaves.len() != roots {
                    return Err(MlError::Checkpoint(format!(
                        "the checkpoint after step {done} comes with {} audit leaves, not {roots}",
                        so_far.audit_leaves.len()
                    )));
                }
                done
            }
        };
        so_far
            .hashes
            .reserve(self.config.steps.saturating_sub(start) as usize);
        let mut device = DeviceState::upload(&self.ops, state);
        let mut host = state.clone();
        for step in start..self.config.steps {
            let (x, y) = self.batch(data, step);
            let mut kept = self.audit.then(Vec::new);
            let xd = self.ops.load(&x);
            mlp::step(
                &self.ops,
                &self.config.model,
                &mut device,
                &xd,
                &y,
                kept.as_mut(),
                Some(AUDITED_TENSOR),
            );
            if let Some(kept) = kept {
                so_far.audit_leaves.push(audit_leaf_of(&kept)?);
            }
            self.tamper(step, &mut device);
            host = device.download(&self.ops);
            let model_state = host.to_model_state()?;
            let done = step + 1;
            so_far.hashes.push(model_state.state_hash()?);
            self.report(done);
            if done % self.config.checkpoint_every == 0 || done == self.config.steps {
                if let Some(cell) = &self.loss {
                    let logits = self.ops.read(&mlp::forward(
                        &self.ops,
                        &self.config.model,
                        &device,
                        &xd,
                        x.rows,
                    ));
                    cell.store(
                        loss_micro(&logits, &y),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                }
                let bytes = model_state.to_canonical_bytes()?;
                on_checkpoint(done, &bytes, &so_far)?;
                checkpoints.insert(done, bytes);
            }
            debug!(target: "pedals::train", step = done, hash = %so_far.hashes[done as usize], "step");
        }
        Ok(TrainOutcome {
            hashes: so_far.hashes,
            audit_leaves: so_far.audit_leaves,
            final_state: host,
            checkpoints,
        })
    }

    /// [`Trainer::replay_step`], also returning the step's audit leaf (docs/commitments.md §8):
    /// what a validator that audits the step commits to, from the same one step.
    pub fn replay_step_audited(
        &self,
        data: &Dataset,
        state: &MlpState,
        step: u64,
    ) -> Result<(MlpState, B256), MlError> {
        let mut kept = Vec::new();
        let after = self.run_step(data, state, step, Some(&mut kept), Some(AUDITED_TENSOR))?;
        Ok((after, audit_leaf_of(&kept)?))
    }

    /// Step `step` from `state`, keeping what `trace` and `only` ask for (see `mlp::step`),
    /// with the debug-only falsification applied; returns the state after it.
    fn run_step(
        &self,
        data: &Dataset,
        state: &MlpState,
        step: u64,
        trace: Option<&mut Vec<TracedTensor>>,
        only: Option<&str>,
    ) -> Result<MlpState, MlError> {
        self.check_data(data)?;
        let mut s = DeviceState::upload(&self.ops, state);
        let (x, y) = self.batch(data, step);
        let x = self.ops.load(&x);
        mlp::step(&self.ops, &self.config.model, &mut s, &x, &y, trace, only);
        self.tamper(step, &mut s);
        Ok(s.download(&self.ops))
    }

    /// Recomputes step `step` (from the state after `step` steps) and returns the state after
    /// it: a validator compares its hash with `h_{step+1}`.
    pub fn replay_step(
        &self,
        data: &Dataset,
        state: &MlpState,
        step: u64,
    ) -> Result<MlpState, MlError> {
        self.run_step(data, state, step, None, None)
    }

    /// Step `step` op by op with every intermediate tensor kept, in execution order: the op
    /// trace a dispute narrows down.
    pub fn trace_step(
        &self,
        data: &Dataset,
        state: &MlpState,
        step: u64,
    ) -> Result<Vec<TracedTensor>, MlError> {
        self.check_data(data)?;
        let (x, _) = self.batch(data, step);
        let mut trace = vec![TracedTensor {
            name: "input".into(),
            value: x,
        }];
        self.run_step(data, state, step, Some(&mut trace), None)?;
        Ok(trace)
    }

    /// The exact logits (Q8) of every sample: one row per input row, one column per class.
    pub fn logits(&self, state: &MlpState, inputs: &Mat) -> Mat {
        let s = DeviceState::upload(&self.ops, state);
        let x = self.ops.load(inputs);
        self.ops.read(&mlp::forward(
            &self.ops,
            &self.config.model,
            &s,
            &x,
            inputs.rows,
        ))
    }

    /// Predicted class of every sample: the index of the largest logit, the lowest on a tie.
    pub fn predict(&self, state: &MlpState, inputs: &Mat) -> Vec<u32> {
        let logits = self.logits(state, inputs);
        logits.data.chunks(logits.cols).map(argmax).collect()
    }

    /// Share of `data` classified correctly, in `[0, 1]`.
    pub fn accuracy(&self, state: &MlpState, data: &Dataset) -> Result<f64, MlError> {
        self.check_data(data)?;
        let inputs = Mat::new(data.len(), data.features, data.inputs.clone());
        let predicted = self.predict(state, &inputs);
        let correct = predicted
            .iter()
            .zip(&data.labels)
            .filter(|(p, y)| p == y)
            .count();
        Ok(correct as f64 / data.len() as f64)
    }
}

/// The index of the largest value, the lowest on a tie: the predicted class of a logit row.
pub(crate) fn argmax(row: &[i32]) -> u32 {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::{Mat, loss_micro};

    #[test]
    fn the_reported_loss_is_the_mean_cross_entropy() {
        // Equal logits over four classes: ln 4.
        let even = Mat {
            rows: 2,
            cols: 4,
            data: vec![256; 8],
        };
        assert_eq!(loss_micro(&even, &[0, 3]), 1_386_294);
        // One sample sure of the right class (a margin of 40 in Q8 units is e^40), one
        // evenly unsure of two: (0 + ln 2) / 2.
        let mixed = Mat {
            rows: 2,
            cols: 2,
            data: vec![40 * 256, 0, 0, 0],
        };
        assert_eq!(loss_micro(&mixed, &[0, 1]), 346_574);
        assert_eq!(
            loss_micro(
                &Mat {
                    rows: 0,
                    cols: 2,
                    data: vec![]
                },
                &[]
            ),
            0
        );
    }
}
