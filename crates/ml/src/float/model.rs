//! The float-mode MLP: parameters and momentum buffers as burn `f32` tensors on a device, and
//! their host copy.

use std::fmt;

use alloy_primitives::{B256, keccak256};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::{
    MlError, MlpConfig, MlpState,
    exact::{MASTER_FRAC_BITS, Mat},
};

/// A row-major `f32` matrix on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatMat {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows × cols` values, row-major.
    pub data: Vec<f32>,
}

impl FloatMat {
    /// A matrix from its values.
    ///
    /// # Panics
    ///
    /// If `data.len() != rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), rows * cols, "a {rows}×{cols} matrix");
        Self { rows, cols, data }
    }

    /// The value of the fixed-point matrix `m` whose entries have `frac_bits` fractional bits
    /// (exact for every `|v| < 2^24`).
    pub fn from_fixed(m: &Mat, frac_bits: u32) -> Self {
        let scale = 1.0 / (1u64 << frac_bits) as f32;
        Self::new(
            m.rows,
            m.cols,
            m.data.iter().map(|&v| v as f32 * scale).collect(),
        )
    }

    fn upload(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.data.clone(), [self.rows, self.cols]),
            device,
        )
    }

    fn download(t: &Tensor<2>) -> Self {
        let [rows, cols] = t.dims();
        let data = t.clone().into_data();
        let values = data
            .as_slice::<f32>()
            .map(<[f32]>::to_vec)
            .unwrap_or_else(|_| data.iter::<f32>().collect());
        Self::new(rows, cols, values)
    }
}

/// The parameters and momentum buffers of a float MLP, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatState {
    /// Weights per layer, `in × out`.
    pub weights: Vec<FloatMat>,
    /// Biases per layer, `1 × out`.
    pub biases: Vec<FloatMat>,
    /// Weight velocities.
    pub weight_velocity: Vec<FloatMat>,
    /// Bias velocities.
    pub bias_velocity: Vec<FloatMat>,
}

impl FloatState {
    /// The value of an exact-mode state (Q16 master weights, biases and velocities).
    pub fn from_exact(state: &MlpState) -> Self {
        let conv = |v: &[Mat]| {
            v.iter()
                .map(|m| FloatMat::from_fixed(m, MASTER_FRAC_BITS))
                .collect()
        };
        Self {
            weights: conv(&state.weights),
            biases: conv(&state.biases),
            weight_velocity: conv(&state.weight_velocity),
            bias_velocity: conv(&state.bias_velocity),
        }
    }

    /// The initial state of job seed `seed`: exact mode's initial state
    /// ([`MlpState::init`], Glorot uniform in `±√(6/(in+out))`), converted without rounding.
    pub fn init(config: &MlpConfig, seed: u64) -> Result<Self, MlError> {
        Ok(Self::from_exact(&MlpState::init(config, seed)?))
    }

    /// Every tensor in the order `l<l>.weight`, `l<l>.bias`, `l<l>.weight.velocity`,
    /// `l<l>.bias.velocity` per layer.
    fn tensors(&self) -> impl Iterator<Item = &FloatMat> {
        (0..self.weights.len()).flat_map(move |l| {
            [
                &self.weights[l],
                &self.biases[l],
                &self.weight_velocity[l],
                &self.bias_velocity[l],
            ]
        })
    }

    /// `keccak256("pedals.float.v1" ‖ per tensor: u32_be(rows) ‖ u32_be(cols) ‖ f32 bits as
    /// u32_be…)`, tensors in the order of exact mode's state. Two runs agree on it only on the
    /// same backend with the same reduction order: a redundancy check, never a commitment.
    pub fn state_hash(&self) -> B256 {
        let mut buf = b"pedals.float.v1".to_vec();
        for m in self.tensors() {
            buf.extend_from_slice(&(m.rows as u32).to_be_bytes());
            buf.extend_from_slice(&(m.cols as u32).to_be_bytes());
            for v in &m.data {
                buf.extend_from_slice(&v.to_bits().to_be_bytes());
            }
        }
        keccak256(&buf)
    }

    /// The largest absolute difference between two states of the same shape (`None` when the
    /// shapes differ, or when a value is NaN): the tolerance check between two devices.
    pub fn max_abs_diff(&self, other: &FloatState) -> Option<f32> {
        if self.weights.len() != other.weights.len() {
            return None;
        }
        let mut max = 0.0f32;
        for (a, b) in self.tensors().zip(other.tensors()) {
            if (a.rows, a.cols) != (b.rows, b.cols) {
                return None;
            }
            for (x, y) in a.data.iter().zip(&b.data) {
                let d = (x - y).abs();
                if d.is_nan() {
                    return None;
                }
                max = max.max(d);
            }
        }
        Some(max)
    }
}

/// A float MLP on a burn device: weights, biases and their momentum buffers as `f32` tensors
/// without autodiff (a training step attaches autodiff to its own copies).
#[derive(Clone)]
pub struct FloatModel {
    pub(crate) config: MlpConfig,
    pub(crate) w: Vec<Tensor<2>>,
    pub(crate) b: Vec<Tensor<2>>,
    pub(crate) vw: Vec<Tensor<2>>,
    pub(crate) vb: Vec<Tensor<2>>,
}

impl fmt::Debug for FloatModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FloatModel")
            .field("layers", &self.config.layers)
            .field("device", &self.w.first().map(Tensor::device))
            .finish()
    }
}

impl FloatModel {
    /// Uploads `state` (a state of a model with `config`) to `device`.
    pub fn from_state(
        config: &MlpConfig,
        state: &FloatState,
        device: &Device,
    ) -> Result<Self, MlError> {
        config.validate()?;
        let depth = config.depth();
        let lens = [
            state.weights.len(),
            state.biases.len(),
            state.weight_velocity.len(),
            state.bias_velocity.len(),
        ];
        if lens.iter().any(|&n| n != depth) {
            return Err(MlError::Checkpoint(format!(
                "the state has {lens:?} tensors per kind, expected {depth} layers"
            )));
        }
        for (l, (i, o)) in config.weight_shapes().into_iter().enumerate() {
            for (name, m, rows) in [
                ("weight", &state.weights[l], i),
                ("bias", &state.biases[l], 1),
                ("weight.velocity", &state.weight_velocity[l], i),
                ("bias.velocity", &state.bias_velocity[l], 1),
            ] {
                if (m.rows, m.cols) != (rows, o) || m.data.len() != rows * o {
                    return Err(MlError::Checkpoint(format!(
                        "tensor l{l}.{name} is {}×{}, expected {rows}×{o}",
                        m.rows, m.cols
                    )));
                }
            }
        }
        let device = device.clone().without_autodiff();
        let up = |v: &[FloatMat]| v.iter().map(|m| m.upload(&device)).collect();
        Ok(Self {
            config: config.clone(),
            w: up(&state.weights),
            b: up(&state.biases),
            vw: up(&state.weight_velocity),
            vb: up(&state.bias_velocity),
        })
    }

    /// The model's configuration.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// Reads the state back to the host (waits for the device).
    pub fn state(&self) -> FloatState {
        let down = |v: &[Tensor<2>]| v.iter().map(FloatMat::download).collect();
        FloatState {
            weights: down(&self.w),
            biases: down(&self.b),
            weight_velocity: down(&self.vw),
            bias_velocity: down(&self.vb),
        }
    }

    /// [`FloatState::state_hash`] of the current state.
    pub fn state_hash(&self) -> B256 {
        self.state().state_hash()
    }

    /// Logits of `x` (`samples × inputs`, real values): ReLU between layers, none after the
    /// last. A convolution runs as in exact mode: the same `im2col` gather, a product with the
    /// `patch × filters` weight, ReLU, and a reshape to one row per sample, so that float and
    /// exact weights mean the same thing. Works on autodiff and plain tensors alike.
    pub(crate) fn forward_with(
        config: &MlpConfig,
        w: &[Tensor<2>],
        b: &[Tensor<2>],
        x: Tensor<2>,
    ) -> Tensor<2> {
        let depth = w.len();
        let [samples, inputs] = x.dims();
        let mut a = match &config.conv {
            Some(conv) => {
                let index: Vec<i32> = conv
                    .gather_indices(samples)
                    .into_iter()
                    .map(|i| i32::try_from(i).expect("input index beyond i32"))
                    .collect();
                let len = index.len();
                let index = Tensor::<1, Int>::from_data(TensorData::new(index, [len]), &x.device());
                x.reshape([samples * inputs])
                    .select(0, index)
                    .reshape([samples * conv.positions(), conv.patch()])
            }
            None => x,
        };
        for l in 0..depth {
            a = a.matmul(w[l].clone()) + b[l].clone();
            if l + 1 < depth {
                a = burn::tensor::activation::relu(a);
                if let (0, Some(conv)) = (l, &config.conv) {
                    a = a.reshape([samples, conv.features()]);
                }
            }
        }
        a
    }
}
