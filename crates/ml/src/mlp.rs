//! The exact-mode models, an MLP with an optional convolution in front (a small CNN):
//! configuration, state, one training step as an ordered op list, and inference.

use alloy_primitives::{B256, keccak256};
use pedals_core::{ModelState, StateTensor};
use serde::{Deserialize, Serialize};

use crate::{
    MlError,
    exact::{BIAS_MAX, ConvConfig, ExactOps, HYPER_MAX, MAX_BATCH, MAX_WIDTH, Mat, W_MASTER_MAX},
};

/// An exact-mode model and its optimizer: `layers = [inputs, hidden…, classes]`, ReLU between
/// layers, softmax cross-entropy loss, SGD with momentum. With `conv`, a convolution (and
/// ReLU) runs first and the dense layers take its output: the model is a small CNN, and
/// `layers[0]` must be `conv.features()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Widths of the dense layers, input first, classes last.
    pub layers: Vec<usize>,
    /// A convolution in front of the dense layers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConvConfig>,
    /// Samples per step; a power of two up to [`MAX_BATCH`].
    pub batch: usize,
    /// Learning rate in Q12 (4096 = 1.0).
    pub lr_q12: i32,
    /// Momentum in Q12 (4096 = 1.0).
    pub momentum_q12: i32,
}

impl MlpConfig {
    /// Checks every bound exact mode relies on, before any work starts.
    pub fn validate(&self) -> Result<(), MlError> {
        let bad = |m: String| Err(MlError::Config(m));
        if self.layers.len() < 2 {
            return bad("an MLP needs at least an input and an output width".into());
        }
        if let Some(w) = self.layers.iter().find(|&&w| w == 0 || w > MAX_WIDTH) {
            return bad(format!(
                "layer width {w} is outside 1..={MAX_WIDTH}, the widest layer whose dot products \
                 cannot overflow i32"
            ));
        }
        if *self.layers.last().unwrap_or(&0) < 2 {
            return bad("the last layer must have at least 2 classes".into());
        }
        if !self.batch.is_power_of_two() || self.batch > MAX_BATCH {
            return bad(format!(
                "batch {} must be a power of two up to {MAX_BATCH}",
                self.batch
            ));
        }
        if let Some(conv) = &self.conv {
            conv.check().or_else(bad)?;
            if conv.patch() > MAX_WIDTH {
                return bad(format!(
                    "a convolution patch of {} values (channels × kernel²) is over {MAX_WIDTH}, \
                     the longest dot product that cannot overflow i32",
                    conv.patch()
                ));
            }
            if self.layers[0] != conv.features() {
                return bad(format!(
                    "the convolution gives {} features per sample ({} positions × {} \
                     filters) but the first dense layer takes {}",
                    conv.features(),
                    conv.positions(),
                    conv.filters,
                    self.layers[0]
                ));
            }
            if self.batch * conv.positions() > MAX_BATCH {
                return bad(format!(
                    "batch {} × {} positions is over {MAX_BATCH}: the convolution's weight \
                     gradient sums over every position of every sample; use a smaller batch \
                     or a larger stride",
                    self.batch,
                    conv.positions()
                ));
            }
        }
        for (name, v) in [
            ("learning rate", self.lr_q12),
            ("momentum", self.momentum_q12),
        ] {
            if !(0..=HYPER_MAX).contains(&v) {
                return bad(format!(
                    "{name} {v} is outside 0..={HYPER_MAX} (Q12: 4096 is 1.0)"
                ));
            }
        }
        Ok(())
    }

    /// Checks that `data` fits this model: feature count, classes, non-empty, valid.
    pub fn check_dataset(&self, data: &crate::Dataset) -> Result<(), MlError> {
        if data.features != self.inputs() {
            return Err(MlError::DatasetMismatch(format!(
                "samples have {} features but the model takes {}",
                data.features,
                self.inputs()
            )));
        }
        if data.classes as usize > self.classes() {
            return Err(MlError::DatasetMismatch(format!(
                "the dataset has {} classes but the model outputs {}",
                data.classes,
                self.classes()
            )));
        }
        if data.is_empty() {
            return Err(MlError::DatasetMismatch("the dataset is empty".into()));
        }
        data.validate()?;
        Ok(())
    }

    /// Inputs per sample.
    pub fn inputs(&self) -> usize {
        self.conv.map_or(self.layers[0], |c| c.inputs())
    }

    /// Output classes.
    pub fn classes(&self) -> usize {
        self.layers[self.layers.len() - 1]
    }

    /// `log2(batch)`.
    pub fn log2_batch(&self) -> u32 {
        self.batch.trailing_zeros()
    }

    /// Number of weight layers, the convolution included.
    pub fn depth(&self) -> usize {
        self.layers.len() - 1 + usize::from(self.conv.is_some())
    }

    /// `(rows, cols)` of every weight matrix, in layer order: `patch × filters` for the
    /// convolution, then `layers[l] × layers[l + 1]`.
    pub fn weight_shapes(&self) -> Vec<(usize, usize)> {
        let conv = self.conv.iter().map(|c| (c.patch(), c.filters));
        conv.chain(self.layers.windows(2).map(|w| (w[0], w[1])))
            .collect()
    }
}

/// Parameters and optimizer state, on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlpState {
    /// Master weights per layer, `in × out`, Q16.
    pub weights: Vec<Mat>,
    /// Master biases per layer, `1 × out`, Q16.
    pub biases: Vec<Mat>,
    /// Weight velocities, Q16.
    pub weight_velocity: Vec<Mat>,
    /// Bias velocities, Q16.
    pub bias_velocity: Vec<Mat>,
}

fn word(tag: &[u8], a: u64, b: u64, c: u64) -> u64 {
    let mut buf = Vec::with_capacity(tag.len() + 24);
    buf.extend_from_slice(tag);
    buf.extend_from_slice(&a.to_be_bytes());
    buf.extend_from_slice(&b.to_be_bytes());
    buf.extend_from_slice(&c.to_be_bytes());
    let h = keccak256(&buf);
    u64::from_be_bytes(h[..8].try_into().unwrap_or([0; 8]))
}

fn isqrt(n: u64) -> u64 {
    let mut x = (n as f64).sqrt() as u64;
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

impl MlpState {
    fn empty() -> Self {
        Self {
            weights: vec![],
            biases: vec![],
            weight_velocity: vec![],
            bias_velocity: vec![],
        }
    }

    /// The initial state of job seed `seed`: weights uniform in `±floor(√(6/(in+out))·2^16)`
    /// (Glorot, with `(in, out)` the weight's shape: `(patch, filters)` for a convolution), drawn as `keccak256("pedals.init" ‖ seed ‖ layer ‖ index)` mod `2·lim+1`
    /// minus `lim` (big-endian u64 words, first 8 bytes of the hash); biases and velocities 0.
    pub fn init(config: &MlpConfig, seed: u64) -> Result<Self, MlError> {
        config.validate()?;
        let mut s = Self::empty();
        for (l, (fan_in, fan_out)) in config.weight_shapes().into_iter().enumerate() {
            let limit = isqrt((6u64 << 32) / (fan_in + fan_out) as u64).min(W_MASTER_MAX as u64);
            let span = 2 * limit + 1;
            let data = (0..fan_in * fan_out)
                .map(|i| {
                    (word(b"pedals.init", seed, l as u64, i as u64) % span) as i64 - limit as i64
                })
                .map(|v| v as i32)
                .collect();
            s.weights.push(Mat::new(fan_in, fan_out, data));
            s.biases.push(Mat::zeros(1, fan_out));
            s.weight_velocity.push(Mat::zeros(fan_in, fan_out));
            s.bias_velocity.push(Mat::zeros(1, fan_out));
        }
        Ok(s)
    }

    /// The state as named tensors, for canonical bytes and the state hash.
    pub fn to_model_state(&self) -> Result<ModelState, MlError> {
        let mut tensors = Vec::with_capacity(self.weights.len() * 4);
        let dims = |m: &Mat| vec![m.rows as u32, m.cols as u32];
        for l in 0..self.weights.len() {
            for (suffix, m) in [
                ("weight", &self.weights[l]),
                ("bias", &self.biases[l]),
                ("weight.velocity", &self.weight_velocity[l]),
                ("bias.velocity", &self.bias_velocity[l]),
            ] {
                tensors.push(StateTensor::new(
                    format!("l{l}.{suffix}"),
                    dims(m),
                    m.data.clone(),
                )?);
            }
        }
        Ok(ModelState::new(tensors)?)
    }

    /// The state hash (docs/commitments.md §3).
    pub fn state_hash(&self) -> Result<B256, MlError> {
        Ok(self.to_model_state()?.state_hash()?)
    }

    /// The canonical bytes, the checkpoint format.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MlError> {
        Ok(self.to_model_state()?.to_canonical_bytes()?)
    }

    /// Reads a checkpoint of a model with `config`.
    pub fn from_bytes(config: &MlpConfig, bytes: &[u8]) -> Result<Self, MlError> {
        let state = ModelState::from_canonical_bytes(bytes)?;
        let mut s = Self::empty();
        for (l, (i, o)) in config.weight_shapes().into_iter().enumerate() {
            let get = |suffix: &str, rows: usize, cols: usize| -> Result<Mat, MlError> {
                let name = format!("l{l}.{suffix}");
                let t = state
                    .tensor(&name)
                    .ok_or_else(|| MlError::Checkpoint(format!("tensor {name} is missing")))?;
                if t.shape != [rows as u32, cols as u32] {
                    return Err(MlError::Checkpoint(format!(
                        "tensor {name} has shape {:?}, expected [{rows}, {cols}]",
                        t.shape
                    )));
                }
                Ok(Mat::new(rows, cols, t.data.clone()))
            };
            s.weights.push(get("weight", i, o)?);
            s.biases.push(get("bias", 1, o)?);
            s.weight_velocity.push(get("weight.velocity", i, o)?);
            s.bias_velocity.push(get("bias.velocity", 1, o)?);
        }
        if state.tensors.len() != config.depth() * 4 {
            return Err(MlError::Checkpoint(format!(
                "{} tensors, expected {}",
                state.tensors.len(),
                config.depth() * 4
            )));
        }
        Ok(s)
    }
}

/// One named intermediate tensor of a step, in execution order: the op trace that disputes
/// open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedTensor {
    /// `"<index>:<op>:<name>"`, e.g. `"3:linear:a1"`.
    pub name: String,
    /// The tensor.
    pub value: Mat,
}

/// The state on a device.
pub(crate) struct DeviceState<O: ExactOps> {
    pub(crate) w: Vec<O::T>,
    pub(crate) b: Vec<O::T>,
    pub(crate) vw: Vec<O::T>,
    pub(crate) vb: Vec<O::T>,
}

impl<O: ExactOps> DeviceState<O> {
    pub(crate) fn upload(ops: &O, s: &MlpState) -> Self {
        let up = |v: &[Mat]| v.iter().map(|m| ops.load(m)).collect();
        Self {
            w: up(&s.weights),
            b: up(&s.biases),
            vw: up(&s.weight_velocity),
            vb: up(&s.bias_velocity),
        }
    }

    pub(crate) fn download(&self, ops: &O) -> MlpState {
        let down = |v: &[O::T]| v.iter().map(|t| ops.read(t)).collect();
        MlpState {
            weights: down(&self.w),
            biases: down(&self.b),
            weight_velocity: down(&self.vw),
            bias_velocity: down(&self.vb),
        }
    }
}

/// Records tensors when a trace is wanted (only the one named `only`, when set).
struct Recorder<'a, O: ExactOps> {
    ops: &'a O,
    out: Option<&'a mut Vec<TracedTensor>>,
    only: Option<&'a str>,
}

impl<O: ExactOps> Recorder<'_, O> {
    fn keep(&mut self, op: &str, name: String, t: &O::T) {
        if self.only.is_some_and(|only| only != name) {
            return;
        }
        if let Some(out) = self.out.as_deref_mut() {
            let index = out.len();
            out.push(TracedTensor {
                name: format!("{index}:{op}:{name}"),
                value: self.ops.read(t),
            });
        }
    }
}

/// One training step, the fixed op order of exact mode: quantize every weight; with a
/// convolution, `im2col` of the input; forward (`linear`, `relu` between layers, and after the
/// convolution a `reshape` from one row per position to one row per sample);
/// `softmax_xent_grad`; backward from the last layer (`weight_grad`, `bias_grad`, then
/// `input_grad` and `relu_backward` below it, and the `reshape` back before the convolution's
/// gradients); then per layer `momentum` and `descend` for the weight, then for the bias. With
/// `trace`, every intermediate tensor is read back and kept in that order, or only the one
/// named `only` (engine name, such as `gb0`) when one is given: what an audit reads of a step
/// without copying the rest.
pub(crate) fn step<O: ExactOps>(
    ops: &O,
    config: &MlpConfig,
    state: &mut DeviceState<O>,
    x: &O::T,
    labels: &[u32],
    trace: Option<&mut Vec<TracedTensor>>,
    only: Option<&str>,
) {
    let mut rec = Recorder {
        ops,
        out: trace,
        only,
    };
    let depth = config.depth();
    let wq: Vec<O::T> = (0..depth)
        .map(|l| {
            let t = ops.quantize_weights(&state.w[l]);
            rec.keep("quantize_weights", format!("wq{l}"), &t);
            t
        })
        .collect();
    let samples = labels.len();
    // acts[0] = the first layer's input; acts[l + 1] = output of layer l (after ReLU except
    // the last, and after the reshape that follows a convolution).
    let first = match &config.conv {
        Some(conv) => {
            let cols = ops.im2col(x, conv);
            rec.keep("im2col", "cols".into(), &cols);
            cols
        }
        None => x.clone(),
    };
    let mut acts = vec![first];
    for l in 0..depth {
        let mut a = ops.linear(&acts[l], &wq[l], &state.b[l]);
        rec.keep("linear", format!("z{}", l + 1), &a);
        if l + 1 < depth {
            a = ops.relu(&a);
            rec.keep("relu", format!("a{}", l + 1), &a);
            if let (0, Some(conv)) = (l, &config.conv) {
                a = ops.reshape(&a, samples, conv.features());
                rec.keep("reshape", "a1.flat".into(), &a);
            }
        }
        acts.push(a);
    }
    let mut d = ops.softmax_xent_grad(&acts[depth], labels);
    rec.keep("softmax_xent_grad", format!("d{depth}"), &d);
    let log2b = config.log2_batch();
    let mut grads_w = vec![None; depth];
    let mut grads_b = vec![None; depth];
    for l in (0..depth).rev() {
        let gw = ops.weight_grad(&acts[l], &d, log2b);
        rec.keep("weight_grad", format!("gw{l}"), &gw);
        let gb = ops.bias_grad(&d, log2b);
        rec.keep("bias_grad", format!("gb{l}"), &gb);
        grads_w[l] = Some(gw);
        grads_b[l] = Some(gb);
        if l > 0 {
            let below = ops.input_grad(&d, &wq[l]);
            rec.keep("input_grad", format!("e{l}"), &below);
            d = ops.relu_backward(&below, &acts[l]);
            rec.keep("relu_backward", format!("d{l}"), &d);
            if let (1, Some(conv)) = (l, &config.conv) {
                d = ops.reshape(&d, samples * conv.positions(), conv.filters);
                rec.keep("reshape", "d1.positions".into(), &d);
            }
        }
    }
    for l in 0..depth {
        let (Some(gw), Some(gb)) = (grads_w[l].take(), grads_b[l].take()) else {
            unreachable!("every layer has gradients");
        };
        state.vw[l] = ops.momentum(&state.vw[l], &gw, config.momentum_q12);
        rec.keep("momentum", format!("vw{l}"), &state.vw[l]);
        state.w[l] = ops.descend(&state.w[l], &state.vw[l], config.lr_q12, W_MASTER_MAX);
        rec.keep("descend", format!("w{l}"), &state.w[l]);
        state.vb[l] = ops.momentum(&state.vb[l], &gb, config.momentum_q12);
        rec.keep("momentum", format!("vb{l}"), &state.vb[l]);
        state.b[l] = ops.descend(&state.b[l], &state.vb[l], config.lr_q12, BIAS_MAX);
        rec.keep("descend", format!("b{l}"), &state.b[l]);
    }
}

/// Logits of `samples` inputs `x` (`samples × inputs`, Q8): the forward half of a step,
/// without ReLU after the last layer.
pub(crate) fn forward<O: ExactOps>(
    ops: &O,
    config: &MlpConfig,
    state: &DeviceState<O>,
    x: &O::T,
    samples: usize,
) -> O::T {
    let depth = state.w.len();
    let mut a = match &config.conv {
        Some(conv) => ops.im2col(x, conv),
        None => x.clone(),
    };
    for l in 0..depth {
        let wq = ops.quantize_weights(&state.w[l]);
        a = ops.linear(&a, &wq, &state.b[l]);
        if l + 1 < depth {
            a = ops.relu(&a);
            if let (0, Some(conv)) = (l, &config.conv) {
                a = ops.reshape(&a, samples, conv.features());
            }
        }
    }
    a
}
