//! The native side: the model in the form the circuit proves, the exact forward pass with every
//! intermediate value the circuit needs, and the Poseidon commitments (the same packing and
//! sponge the circuit computes).

use std::sync::OnceLock;

use ark_crypto_primitives::sponge::{
    CryptographicSponge,
    poseidon::{PoseidonConfig, PoseidonSponge, find_poseidon_ark_and_mds},
};
use ark_ff::PrimeField;
use pedals_ml::{
    MlpConfig, MlpState,
    exact::{ACT_MAX, BIAS_MAX, ExactOps, MAX_WIDTH, Mat, Reference, WQ_MAX},
};

use crate::{Fr, ZkError};

/// Poseidon over BN254: width 17 (rate 16, capacity 1), x⁵ S-box, 8 full and 68 partial rounds
/// (circomlib's round numbers for t = 17), constants from the reference Grain LFSR.
const RATE: usize = 16;
const FULL_ROUNDS: usize = 8;
const PARTIAL_ROUNDS: usize = 68;
const ALPHA: u64 = 5;

/// Domain tags: the first element each commitment absorbs.
pub(crate) const TAG_W: u64 = 1;
pub(crate) const TAG_X: u64 = 2;
pub(crate) const TAG_OUT: u64 = 3;
pub(crate) const TAG_JOB: u64 = 4;

/// Bits and offset of each packed kind: a value `v` is stored as `v + offset` in `bits` bits,
/// `floor(253 / bits)` of them little-endian in one field element.
pub(crate) const W_BITS: u32 = 13;
pub(crate) const W_OFFSET: i64 = WQ_MAX as i64;
pub(crate) const B_BITS: u32 = 20;
pub(crate) const B_OFFSET: i64 = BIAS_MAX as i64;
pub(crate) const A_BITS: u32 = 12;
pub(crate) const A_OFFSET: i64 = ACT_MAX as i64;

/// How many `bits`-bit fields one element holds.
pub(crate) const fn per_element(bits: u32) -> usize {
    (253 / bits) as usize
}

/// The Poseidon parameters every commitment uses (built once).
pub fn poseidon_config() -> &'static PoseidonConfig<Fr> {
    static CONFIG: OnceLock<PoseidonConfig<Fr>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let (ark, mds) = find_poseidon_ark_and_mds::<Fr>(
            u64::from(Fr::MODULUS_BIT_SIZE),
            RATE,
            FULL_ROUNDS as u64,
            PARTIAL_ROUNDS as u64,
            0,
        );
        PoseidonConfig::new(FULL_ROUNDS, PARTIAL_ROUNDS, ALPHA, mds, ark, RATE, 1)
    })
}

/// Packs `values` (each `v + offset` must fit `bits` bits) into field elements.
pub(crate) fn pack(values: &[i64], offset: i64, bits: u32) -> Vec<Fr> {
    values
        .chunks(per_element(bits))
        .map(|chunk| {
            let mut acc = Fr::from(0u64);
            let mut scale = Fr::from(1u64);
            let step = Fr::from(1u64 << bits);
            for &v in chunk {
                acc += scale * Fr::from((v + offset) as u64);
                scale *= step;
            }
            acc
        })
        .collect()
}

/// Poseidon of `header ‖ body`.
pub(crate) fn hash(header: &[u64], body: &[Fr]) -> Fr {
    let mut sponge = PoseidonSponge::<Fr>::new(poseidon_config());
    let header: Vec<Fr> = header.iter().map(|&h| Fr::from(h)).collect();
    sponge.absorb(&header);
    sponge.absorb(&body.to_vec());
    sponge.squeeze_field_elements::<Fr>(1)[0]
}

/// The fixed shape of a statement: the layer widths and the batch size. Keys are made per
/// shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Widths, inputs first: `[784, 32, 10]`.
    pub layers: Vec<usize>,
    /// Samples per proof.
    pub batch: usize,
}

impl Shape {
    /// Checks the shape against exact mode's bounds.
    pub fn validate(&self) -> Result<(), ZkError> {
        if self.layers.len() < 2 {
            return Err(ZkError::Unsupported(
                "an MLP needs at least one layer".into(),
            ));
        }
        if let Some(w) = self.layers.iter().find(|&&w| w == 0 || w > MAX_WIDTH) {
            return Err(ZkError::Unsupported(format!(
                "a layer of width {w}: widths are 1 to {MAX_WIDTH}"
            )));
        }
        if self.batch == 0 {
            return Err(ZkError::Unsupported("a batch of zero samples".into()));
        }
        Ok(())
    }

    /// The excess bits `K` of layer `l`'s requantization: enough for `|q| - 1024` of the largest
    /// accumulator the layer can reach (docs/zk.md, "Requantization").
    pub(crate) fn excess_bits(&self, l: usize) -> u32 {
        let n_in = self.layers[l] as i64;
        let max_acc = n_in * i64::from(ACT_MAX) * i64::from(WQ_MAX) + (i64::from(BIAS_MAX) << 4);
        let max_q = (max_acc + 2048) / 4096 + 1;
        let excess = (max_q - i64::from(ACT_MAX)).max(1);
        64 - (excess as u64).leading_zeros()
    }

    /// Output classes.
    pub fn classes(&self) -> usize {
        *self.layers.last().expect("validated")
    }
}

/// A model as the circuit proves it: the forward weights `wq = quantize_weights(W)` (Q12,
/// `|wq| ≤ 2048`) and the master biases (Q16, `|b| ≤ 2^18`), per layer, `in × out` row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkModel {
    /// Widths, inputs first.
    pub layers: Vec<usize>,
    /// Forward weights per layer.
    pub wq: Vec<Vec<i32>>,
    /// Biases per layer.
    pub b: Vec<Vec<i32>>,
}

impl ZkModel {
    /// The forward weights and biases of `state`, an MLP of `config` (no convolution).
    pub fn from_state(config: &MlpConfig, state: &MlpState) -> Result<Self, ZkError> {
        if config.conv.is_some() {
            return Err(ZkError::Unsupported(
                "convolutions: zk mode proves MLPs".into(),
            ));
        }
        let model = Self {
            layers: config.layers.clone(),
            wq: state
                .weights
                .iter()
                .map(|w| Reference.quantize_weights(w).data)
                .collect(),
            b: state.biases.iter().map(|b| b.data.clone()).collect(),
        };
        model.validate()?;
        Ok(model)
    }

    /// Checks sizes and ranges.
    pub fn validate(&self) -> Result<(), ZkError> {
        Shape {
            layers: self.layers.clone(),
            batch: 1,
        }
        .validate()?;
        let depth = self.layers.len() - 1;
        if self.wq.len() != depth || self.b.len() != depth {
            return Err(ZkError::Shape(format!(
                "{} weight and {} bias tensors for {depth} layers",
                self.wq.len(),
                self.b.len()
            )));
        }
        for l in 0..depth {
            let (n_in, n_out) = (self.layers[l], self.layers[l + 1]);
            if self.wq[l].len() != n_in * n_out || self.b[l].len() != n_out {
                return Err(ZkError::Shape(format!("layer {l}: wrong tensor sizes")));
            }
            if let Some(w) = self.wq[l].iter().find(|w| w.abs() > WQ_MAX) {
                return Err(ZkError::Range(format!(
                    "layer {l}: weight {w} beyond ±{WQ_MAX}"
                )));
            }
            if let Some(b) = self.b[l].iter().find(|b| b.abs() > BIAS_MAX) {
                return Err(ZkError::Range(format!(
                    "layer {l}: bias {b} beyond ±{BIAS_MAX}"
                )));
            }
        }
        Ok(())
    }

    /// `c_w`: Poseidon of `[1, L+1, n_0..n_L] ‖ W_0 ‖ b_0 ‖ W_1 ‖ b_1 ‖ …`, each tensor packed.
    pub fn commitment(&self) -> Fr {
        hash(&weights_header(&self.layers), &self.packed())
    }

    /// The packed tensors, in commitment order.
    pub(crate) fn packed(&self) -> Vec<Fr> {
        let mut body = Vec::new();
        for (w, b) in self.wq.iter().zip(&self.b) {
            let w: Vec<i64> = w.iter().map(|&v| i64::from(v)).collect();
            let b: Vec<i64> = b.iter().map(|&v| i64::from(v)).collect();
            body.extend(pack(&w, W_OFFSET, W_BITS));
            body.extend(pack(&b, B_OFFSET, B_BITS));
        }
        body
    }
}

pub(crate) fn weights_header(layers: &[usize]) -> Vec<u64> {
    let mut h = vec![TAG_W, layers.len() as u64];
    h.extend(layers.iter().map(|&n| n as u64));
    h
}

/// `c_x`: Poseidon of `[2, B, n_0] ‖ x`, the batch row-major, packed.
pub fn commit_inputs(inputs: &Mat) -> Result<Fr, ZkError> {
    check_activations("input", &inputs.data)?;
    let x: Vec<i64> = inputs.data.iter().map(|&v| i64::from(v)).collect();
    Ok(hash(
        &[TAG_X, inputs.rows as u64, inputs.cols as u64],
        &pack(&x, A_OFFSET, A_BITS),
    ))
}

/// `c_out`: Poseidon of `[3, B, classes] ‖ logits`, row-major, packed.
pub fn commit_outputs(logits: &Mat) -> Result<Fr, ZkError> {
    check_activations("logit", &logits.data)?;
    let y: Vec<i64> = logits.data.iter().map(|&v| i64::from(v)).collect();
    Ok(hash(
        &[TAG_OUT, logits.rows as u64, logits.cols as u64],
        &pack(&y, A_OFFSET, A_BITS),
    ))
}

/// `c_job`: Poseidon of `[4] ‖ c_w ‖ c_x`, the one commitment a zk job posts on-chain for its
/// model and input batch.
pub fn commit_job(weights: Fr, inputs: Fr) -> Fr {
    let mut sponge = PoseidonSponge::<Fr>::new(poseidon_config());
    sponge.absorb(&vec![Fr::from(TAG_JOB), weights, inputs]);
    sponge.squeeze_field_elements::<Fr>(1)[0]
}

fn check_activations(what: &str, data: &[i32]) -> Result<(), ZkError> {
    match data.iter().find(|v| v.abs() > ACT_MAX) {
        Some(v) => Err(ZkError::Range(format!("{what} {v} beyond ±{ACT_MAX}"))),
        None => Ok(()),
    }
}

/// The three commitments of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitments {
    /// `c_w`, the model.
    pub weights: Fr,
    /// `c_x`, the input batch.
    pub inputs: Fr,
    /// `c_out`, the logits.
    pub outputs: Fr,
}

impl Commitments {
    /// `c_job = H(4, c_w, c_x)`, what the job posts and the proof's first public input.
    pub fn job(&self) -> Fr {
        commit_job(self.weights, self.inputs)
    }
}

/// One neuron's requantization: `t = acc + 2048 = 4096·q + r`, `y = clamp(q, 1024)`,
/// `f = max(|q| - 1024, 0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Neuron {
    pub(crate) r: u64,
    pub(crate) y: i64,
    pub(crate) f: u64,
}

/// The exact forward pass with every value the circuit witnesses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The logits, `batch × classes`, as `Trainer::logits` returns them.
    pub logits: Mat,
    /// Per layer, per sample, per output: the neuron.
    pub(crate) neurons: Vec<Vec<Vec<Neuron>>>,
    /// Per layer, per sample: the layer's inputs (the batch, then ReLU outputs).
    pub(crate) acts: Vec<Vec<Vec<i64>>>,
}

/// Runs `model` on `inputs` exactly as `pedals_ml` does (docs/exact-ops.md: `linear`, then
/// `relu` between layers), keeping what the circuit needs.
pub fn forward(model: &ZkModel, inputs: &Mat) -> Result<Forward, ZkError> {
    model.validate()?;
    if inputs.cols != model.layers[0] {
        return Err(ZkError::Shape(format!(
            "{} input features for a model of {}",
            inputs.cols, model.layers[0]
        )));
    }
    check_activations("input", &inputs.data)?;
    let depth = model.layers.len() - 1;
    let mut acts: Vec<Vec<Vec<i64>>> = Vec::with_capacity(depth);
    let mut neurons = Vec::with_capacity(depth);
    let mut current: Vec<Vec<i64>> = inputs
        .data
        .chunks(inputs.cols)
        .map(|row| row.iter().map(|&v| i64::from(v)).collect())
        .collect();
    for l in 0..depth {
        let (n_in, n_out) = (model.layers[l], model.layers[l + 1]);
        let mut layer = Vec::with_capacity(current.len());
        let mut next = Vec::with_capacity(current.len());
        for a in &current {
            let mut row = Vec::with_capacity(n_out);
            let mut out = Vec::with_capacity(n_out);
            for j in 0..n_out {
                let mut acc: i64 = (0..n_in)
                    .map(|k| a[k] * i64::from(model.wq[l][k * n_out + j]))
                    .sum();
                acc += i64::from(model.b[l][j]) << 4;
                let t = acc + 2048;
                let q = t.div_euclid(4096);
                let r = t.rem_euclid(4096) as u64;
                let m = i64::from(ACT_MAX);
                let y = q.clamp(-m, m);
                let f = (q.abs() - m).max(0) as u64;
                row.push(Neuron { r, y, f });
                out.push(if l + 1 < depth { y.max(0) } else { y });
            }
            layer.push(row);
            next.push(out);
        }
        neurons.push(layer);
        acts.push(std::mem::replace(&mut current, next));
    }
    let classes = model.layers[depth];
    let logits = Mat::new(
        current.len(),
        classes,
        current.iter().flatten().map(|&v| v as i32).collect(),
    );
    Ok(Forward {
        logits,
        neurons,
        acts,
    })
}

/// The little-endian bits of `value` (its low `k`).
pub(crate) fn bits_of(value: u64, k: u32) -> Vec<bool> {
    (0..k).map(|i| (value >> i) & 1 == 1).collect()
}

/// `value` as a field element (it may be negative).
pub(crate) fn field(value: i64) -> Fr {
    if value >= 0 {
        Fr::from(value as u64)
    } else {
        -Fr::from(value.unsigned_abs())
    }
}
