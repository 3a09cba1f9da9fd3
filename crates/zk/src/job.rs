//! What a zk job is made of, as the requester and the worker both derive it: the circuits this
//! build knows (by their number in the market's registry), the model and input batch of a job
//! read from the files it posts by CID, and the logits blob the worker returns.

use pedals_ml::{Dataset, MlpConfig, MlpState, exact::Mat};

use crate::{Fr, Shape, ZkError, ZkModel, commit_inputs, commit_job, commit_outputs};

/// A zk circuit: a model architecture and a batch size, registered in the market under `id`
/// with the verifier generated from its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Circuit {
    /// Its number in the market's registry (`registerZkCircuit`).
    pub id: u8,
    /// A name for people: `mlp-784-32-10-b1`.
    pub name: &'static str,
    /// Layer widths, inputs first.
    pub layers: &'static [usize],
    /// Samples per proof.
    pub batch: usize,
}

impl Circuit {
    /// Its shape, for setup and proving.
    pub fn shape(&self) -> Shape {
        Shape {
            layers: self.layers.to_vec(),
            batch: self.batch,
        }
    }
}

/// The circuits this build knows. The devnet registers circuit 1 with the committed
/// `MnistMlpVerifier`; circuit 2 is the small circuit of the tests (`SmallMlpVerifier`). Both
/// use keys from [`crate::DEVNET_SEED`], so neither may be registered where value is at stake.
pub const CIRCUITS: &[Circuit] = &[
    Circuit {
        id: 1,
        name: "mlp-784-32-10-b1",
        layers: &[784, 32, 10],
        batch: 1,
    },
    Circuit {
        id: 2,
        name: "mlp-8-6-4-b2",
        layers: &[8, 6, 4],
        batch: 2,
    },
];

/// The known circuit numbered `id`.
pub fn circuit(id: u8) -> Option<&'static Circuit> {
    CIRCUITS.iter().find(|c| c.id == id)
}

/// The known circuit that proves `layers` at `batch`.
pub fn circuit_for(layers: &[usize], batch: usize) -> Option<&'static Circuit> {
    CIRCUITS
        .iter()
        .find(|c| c.layers == layers && c.batch == batch)
}

/// A zk job's statement inputs: the model and the input batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkJob {
    /// The model, as the circuit reads it.
    pub model: ZkModel,
    /// The input batch, `batch × layers[0]`, Q8.
    pub inputs: Mat,
}

impl ZkJob {
    /// Reads a job's files for `circuit`: the model state (the canonical checkpoint bytes of an
    /// MLP of the circuit's layers) and a dataset of exactly the circuit's batch of samples.
    pub fn from_files(circuit: &Circuit, model: &[u8], dataset: &Dataset) -> Result<Self, ZkError> {
        let config = MlpConfig {
            layers: circuit.layers.to_vec(),
            conv: None,
            batch: 1,
            lr_q12: 0,
            momentum_q12: 0,
        };
        let state = MlpState::from_bytes(&config, model).map_err(|e| {
            ZkError::Shape(format!(
                "the model is not an MLP {:?} checkpoint: {e}",
                circuit.layers
            ))
        })?;
        if dataset.len() != circuit.batch || dataset.features != circuit.layers[0] {
            return Err(ZkError::Shape(format!(
                "circuit {} proves {} samples of {} features; the input has {} of {}",
                circuit.name,
                circuit.batch,
                circuit.layers[0],
                dataset.len(),
                dataset.features
            )));
        }
        Ok(Self {
            model: ZkModel::from_state(&config, &state)?,
            inputs: Mat::new(dataset.len(), dataset.features, dataset.inputs.clone()),
        })
    }

    /// `c_job = H(4, c_w, c_x)`, the job's on-chain spec hash.
    pub fn commitment(&self) -> Result<Fr, ZkError> {
        Ok(commit_job(
            self.model.commitment(),
            commit_inputs(&self.inputs)?,
        ))
    }
}

/// The logits blob a worker returns: every logit (Q8) as `i32` little-endian, row by row, the
/// encoding of a batch-inference chunk.
pub fn logits_bytes(logits: &Mat) -> Vec<u8> {
    logits.data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Reads a logits blob of `rows × cols` and returns it with its commitment `c_out`.
pub fn logits_from_bytes(bytes: &[u8], rows: usize, cols: usize) -> Result<(Mat, Fr), ZkError> {
    if bytes.len() != rows * cols * 4 {
        return Err(ZkError::Shape(format!(
            "a logits blob of {rows}×{cols} must have {} bytes, not {}",
            rows * cols * 4,
            bytes.len()
        )));
    }
    let data = bytes
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let logits = Mat::new(rows, cols, data);
    let c_out = commit_outputs(&logits)?;
    Ok((logits, c_out))
}
