//! The float-mode trainer: exact mode's job (model, seed, steps, mini-batches) on burn `f32`
//! with autodiff.

use burn::tensor::{Device, Gradients, Tensor, TensorData, loss::cross_entropy_with_logits};
use tracing::debug;

use super::model::{FloatModel, FloatState};
use crate::{
    Dataset, INPUT_FRAC_BITS, MlError, TrainConfig, batch_indices,
    exact::{HYPER_FRAC_BITS, Mat},
};

/// Rows per forward pass when predicting a whole dataset.
const PREDICT_CHUNK: usize = 4096;

/// Trains and infers a float MLP on a burn device.
///
/// It takes exact mode's [`TrainConfig`] with the same bounds: widths, batch, learning rate
/// `lr_q12 / 4096`, momentum `momentum_q12 / 4096`, seed and steps mean the same thing, and
/// mini-batch `i` is [`batch_indices`]`(seed, i, batch, n)`. `checkpoint_every` is checked
/// but unused: float mode keeps no step trace.
#[derive(Debug, Clone)]
pub struct FloatTrainer {
    device: Device,
    config: TrainConfig,
    lr: f32,
    momentum: f32,
}

impl FloatTrainer {
    /// A trainer on `device` (with or without autodiff: a step turns it on for its own
    /// tensors); rejects a configuration outside exact mode's bounds, so that every float job
    /// has an exact twin.
    pub fn new(device: Device, config: TrainConfig) -> Result<Self, MlError> {
        config.model.validate()?;
        if config.checkpoint_every == 0 {
            return Err(MlError::Config(
                "checkpoint_every must be at least 1".into(),
            ));
        }
        let q = (1u32 << HYPER_FRAC_BITS) as f32;
        Ok(Self {
            device: device.without_autodiff(),
            lr: config.model.lr_q12 as f32 / q,
            momentum: config.model.momentum_q12 as f32 / q,
            config,
        })
    }

    /// A trainer on burn's CPU backend, flex.
    pub fn cpu(config: TrainConfig) -> Result<Self, MlError> {
        Self::new(Device::flex(), config)
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The device the model lives on (without autodiff).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The initial model of the job: [`FloatState::init`] on this trainer's device.
    pub fn init(&self) -> Result<FloatModel, MlError> {
        let state = FloatState::init(&self.config.model, self.config.seed)?;
        FloatModel::from_state(&self.config.model, &state, &self.device)
    }

    fn check_model(&self, model: &FloatModel) -> Result<(), MlError> {
        if model.config != self.config.model {
            return Err(MlError::Checkpoint(format!(
                "the model has layers {:?} and batch {}, the job {:?} and {}",
                model.config.layers,
                model.config.batch,
                self.config.model.layers,
                self.config.model.batch
            )));
        }
        Ok(())
    }

    fn check_data(&self, data: &Dataset) -> Result<(), MlError> {
        self.config.model.check_dataset(data)
    }

    /// Q8 inputs (`values.len() / features` rows) as real values `q / 256` on `device`.
    fn upload(values: &[i32], features: usize, device: &Device) -> Tensor<2> {
        let scale = 1.0 / (1u32 << INPUT_FRAC_BITS) as f32;
        let x: Vec<f32> = values.iter().map(|&q| q as f32 * scale).collect();
        Tensor::from_data(
            TensorData::new(x, [values.len() / features, features]),
            device,
        )
    }

    /// Trains `steps` steps from the job's initial model.
    pub fn train(&self, data: &Dataset) -> Result<FloatModel, MlError> {
        let mut model = self.init()?;
        self.train_steps(data, &mut model, 0..self.config.steps)?;
        Ok(model)
    }

    /// Runs steps `steps` (mini-batches by their index) on `model`: resume a job from a saved
    /// state, or replay a range of steps.
    pub fn train_steps(
        &self,
        data: &Dataset,
        model: &mut FloatModel,
        steps: std::ops::Range<u64>,
    ) -> Result<(), MlError> {
        self.check_data(data)?;
        self.check_model(model)?;
        for step in steps {
            self.step(data, model, step);
            debug!(target: "pedals::float", step = step + 1, "float step");
        }
        Ok(())
    }

    /// One step on mini-batch `step` of `data`.
    fn step(&self, data: &Dataset, model: &mut FloatModel, step: u64) {
        let m = &self.config.model;
        let idx = batch_indices(self.config.seed, step, m.batch, data.len());
        let mut q = Vec::with_capacity(m.batch * m.inputs());
        let mut labels = Vec::with_capacity(m.batch);
        for &i in &idx {
            let (features, label) = data.sample(i);
            q.extend_from_slice(features);
            labels.push(label);
        }
        self.step_inner(model, &q, &labels);
    }

    /// One training step on the batch `x` (`batch × inputs`, Q8, as exact mode's
    /// [`Session::step`](crate::Session::step) takes it) with `labels`: what a benchmark times.
    pub fn step_batch(
        &self,
        model: &mut FloatModel,
        x: &Mat,
        labels: &[u32],
    ) -> Result<(), MlError> {
        self.check_model(model)?;
        let m = &self.config.model;
        if x.rows != m.batch || x.cols != m.inputs() || labels.len() != x.rows {
            return Err(MlError::DatasetMismatch(format!(
                "a batch must be {} × {} with one label per row, got {} × {} and {} labels",
                m.batch,
                m.inputs(),
                x.rows,
                x.cols,
                labels.len()
            )));
        }
        if let Some(&y) = labels.iter().find(|&&y| y as usize >= m.classes()) {
            return Err(MlError::DatasetMismatch(format!(
                "label {y} is not below the model's {} classes",
                m.classes()
            )));
        }
        self.step_inner(model, &x.data, labels);
        Ok(())
    }

    /// Forward on the autodiff device, mean softmax cross-entropy, backward, then SGD with
    /// momentum outside the graph (`v = μ·v + g; w = w − lr·v`).
    fn step_inner(&self, model: &mut FloatModel, q: &[i32], labels: &[u32]) {
        let m = &self.config.model;
        let ad = self.device.clone().autodiff();
        let x = Self::upload(q, m.inputs(), &ad);
        let classes = m.classes();
        let mut target = vec![0.0f32; m.batch * classes];
        for (row, &y) in labels.iter().enumerate() {
            target[row * classes + y as usize] = 1.0;
        }
        let target = Tensor::<2>::from_data(TensorData::new(target, [m.batch, classes]), &ad);

        let leaf = |t: &Tensor<2>| t.clone().autodiff().require_grad();
        let w: Vec<Tensor<2>> = model.w.iter().map(leaf).collect();
        let b: Vec<Tensor<2>> = model.b.iter().map(leaf).collect();
        let logits = FloatModel::forward_with(m, &w, &b, x);
        let loss = cross_entropy_with_logits(logits, target);
        let mut grads = loss.backward();

        for l in 0..m.depth() {
            self.update(&mut model.w[l], &mut model.vw[l], &w[l], &mut grads);
            self.update(&mut model.b[l], &mut model.vb[l], &b[l], &mut grads);
        }
    }

    /// SGD with momentum for one parameter `p` with velocity `v`, from the gradient of `leaf`.
    fn update(
        &self,
        p: &mut Tensor<2>,
        v: &mut Tensor<2>,
        leaf: &Tensor<2>,
        grads: &mut Gradients,
    ) {
        let g = leaf
            .grad_remove(grads)
            .expect("every parameter requires grad and takes part in the loss");
        *v = v.clone().mul_scalar(self.momentum) + g;
        *p = p.clone() - v.clone().mul_scalar(self.lr);
    }

    /// Predicted class of every row of `inputs` (`samples × inputs`, Q8, as exact mode's
    /// [`Trainer::predict`](crate::Trainer::predict) takes them): the index of the largest
    /// logit, the lowest on a tie.
    pub fn predict(&self, model: &FloatModel, inputs: &Mat) -> Result<Vec<u32>, MlError> {
        self.check_model(model)?;
        let features = self.config.model.inputs();
        if inputs.cols != features || inputs.data.len() != inputs.rows * inputs.cols {
            return Err(MlError::DatasetMismatch(format!(
                "inputs are {}×{} but the model takes {features} features",
                inputs.rows, inputs.cols
            )));
        }
        let classes = self.config.model.classes();
        let mut out = Vec::with_capacity(inputs.rows);
        for chunk in inputs.data.chunks(PREDICT_CHUNK * features) {
            let x = Self::upload(chunk, features, &self.device);
            let logits = FloatModel::forward_with(&model.config, &model.w, &model.b, x).into_data();
            let values: Vec<f32> = logits.iter::<f32>().collect();
            out.extend(values.chunks(classes).map(|row| {
                let mut best = 0;
                for (j, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = j;
                    }
                }
                best as u32
            }));
        }
        Ok(out)
    }

    /// Share of `data` classified correctly, in `[0, 1]`.
    pub fn accuracy(&self, model: &FloatModel, data: &Dataset) -> Result<f64, MlError> {
        self.check_data(data)?;
        let inputs = Mat::new(data.len(), data.features, data.inputs.clone());
        let predicted = self.predict(model, &inputs)?;
        let correct = predicted
            .iter()
            .zip(&data.labels)
            .filter(|(p, y)| p == y)
            .count();
        Ok(correct as f64 / data.len() as f64)
    }
}
