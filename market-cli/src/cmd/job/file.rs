//! The job file: its fields, and how it is checked and turned into a spec, a model and
//! terms before anything is sent.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The job file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobFile {
    #[serde(default)]
    pub(super) verification: Option<VerificationMode>,
    /// A zk job: the first sample of the dataset its batch starts at.
    #[serde(default)]
    pub(super) sample: usize,
    #[serde(default)]
    pub(super) steps: Option<u64>,
    #[serde(default)]
    pub(super) model_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) inference: Option<InferenceSection>,
    #[serde(default)]
    pub(super) checkpoint_every: Option<u64>,
    #[serde(default)]
    pub(super) seed: u64,
    #[serde(default)]
    pub(super) payment_eth: Option<String>,
    #[serde(default)]
    pub(super) payment_wei: Option<U256>,
    #[serde(default = "default_claim_within")]
    pub(super) claim_within_secs: u64,
    #[serde(default = "default_deliver_within")]
    pub(super) deliver_within_secs: u64,
    #[serde(default = "default_window")]
    pub(super) challenge_window_secs: u32,
    #[serde(default)]
    pub(super) holdout: usize,
    #[serde(default)]
    pub(super) shuffle_seed: Option<u64>,
    pub(super) model: ModelSection,
    pub(super) dataset: DatasetSource,
}

pub(super) fn default_claim_within() -> u64 {
    600
}
pub(super) fn default_deliver_within() -> u64 {
    3600
}
pub(super) fn default_window() -> u32 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InferenceSection {
    pub(super) chunk: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelSection {
    pub(super) layers: Vec<usize>,
    pub(super) batch: usize,
    #[serde(default)]
    pub(super) lr: f64,
    #[serde(default)]
    pub(super) momentum: f64,
    #[serde(default)]
    pub(super) conv: Option<ConvConfig>,
}

/// What a job file turns into.
pub(crate) struct Prepared {
    pub(crate) files: JobFiles,
    pub(crate) terms: PostTerms,
    pub(crate) holdout: Option<Dataset>,
}

/// A fraction in Q12, or why not.
pub(super) fn q12(name: &str, x: f64) -> eyre::Result<i32> {
    eyre::ensure!(
        x.is_finite() && (0.0..=1.0).contains(&x),
        "model.{name} = {x}: it must be between 0 and 1"
    );
    Ok((x * 4096.0).round() as i32)
}

/// Makes dataset paths relative to the job file's folder.
pub(super) fn rebase(source: DatasetSource, dir: &Path) -> DatasetSource {
    let at = |p: PathBuf| if p.is_absolute() { p } else { dir.join(p) };
    match source {
        DatasetSource::Idx {
            images,
            labels,
            classes,
        } => DatasetSource::Idx {
            images: at(images),
            labels: at(labels),
            classes,
        },
        DatasetSource::Csv {
            path,
            label_column,
            classes,
        } => DatasetSource::Csv {
            path: at(path),
            label_column,
            classes,
        },
        DatasetSource::MnistPackage { dir: d } => DatasetSource::MnistPackage { dir: at(d) },
        DatasetSource::Canonical { path } => DatasetSource::Canonical { path: at(path) },
        other @ DatasetSource::Synthetic { .. } => other,
    }
}

impl JobFile {
    /// Reads and parses a job file.
    pub(crate) fn read(path: &Path) -> eyre::Result<(Self, PathBuf)> {
        let text = std::fs::read_to_string(path)
            .wrap_err_with(|| format!("cannot read the job file {}", path.display()))?;
        let file: Self = toml::from_str(&text)
            .wrap_err_with(|| format!("the job file {} is invalid", path.display()))?;
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Ok((file, dir))
    }

    /// The payment and deadlines.
    pub(super) fn terms(&self) -> eyre::Result<PostTerms> {
        let payment = match (&self.payment_eth, self.payment_wei) {
            (Some(eth), None) => super::super::parse_eth(eth).wrap_err("payment_eth")?,
            (None, Some(wei)) => wei,
            _ => eyre::bail!("set exactly one of payment_eth and payment_wei"),
        };
        eyre::ensure!(payment > U256::ZERO, "the payment must be more than zero");
        eyre::ensure!(
            self.deliver_within_secs > self.claim_within_secs,
            "deliver_within_secs ({}) must be later than claim_within_secs ({})",
            self.deliver_within_secs,
            self.claim_within_secs
        );
        let terms = PostTerms {
            payment,
            claim_within: self.claim_within_secs,
            deliver_within: self.deliver_within_secs,
            challenge_window: self.challenge_window_secs,
        };
        Ok(terms)
    }

    /// A zk job's files: the model (`model_file`, or a fresh model from `seed` to try the
    /// flow) and `[model] batch` samples of the dataset from `sample` on, for the known
    /// circuit of `[model] layers` at that batch.
    pub(crate) fn prepare_zk(self, dir: &Path) -> eyre::Result<(ZkFiles, PostTerms)> {
        let terms = PostTerms {
            challenge_window: 0,
            ..self.terms()?
        };
        let circuit =
            pedals_zk::circuit_for(&self.model.layers, self.model.batch).with_context(|| {
                format!(
                    "zk mode proves only these circuits: {}; [model] layers {:?} at batch {} is \
                     none of them",
                    pedals_zk::CIRCUITS
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.model.layers,
                    self.model.batch
                )
            })?;
        let config = MlpConfig {
            layers: self.model.layers.clone(),
            conv: None,
            batch: 1,
            lr_q12: 0,
            momentum_q12: 0,
        };
        let model = match &self.model_file {
            Some(p) => {
                let path = if p.is_absolute() {
                    p.clone()
                } else {
                    dir.join(p)
                };
                std::fs::read(&path)
                    .wrap_err_with(|| format!("cannot read the model file {}", path.display()))?
            }
            None => MlpState::init(&config, self.seed)?.to_bytes()?,
        };
        let data = rebase(self.dataset, dir)
            .load()
            .wrap_err("cannot load the job's dataset: check the [dataset] section")?
            .dataset;
        let (start, end) = (self.sample, self.sample + circuit.batch);
        eyre::ensure!(
            end <= data.len(),
            "sample = {} and a batch of {} need {end} samples; the dataset has {}",
            self.sample,
            circuit.batch,
            data.len()
        );
        let batch = Dataset {
            name: format!("{} [{start}..{end}]", data.name),
            features: data.features,
            classes: data.classes,
            inputs: data.inputs[start * data.features..end * data.features].to_vec(),
            labels: data.labels[start..end].to_vec(),
        };
        let files = ZkFiles {
            circuit,
            model,
            dataset: batch.to_canonical_bytes()?,
        };
        files
            .commitment()
            .wrap_err("the model or the samples do not fit the circuit")?;
        Ok((files, terms))
    }

    /// Loads the data and builds the spec, model and terms; every problem is reported here,
    /// before anything is sent.
    pub(crate) fn prepare(self, dir: &Path) -> eyre::Result<Prepared> {
        let terms = self.terms()?;
        let model = MlpConfig {
            layers: self.model.layers,
            conv: self.model.conv,
            batch: self.model.batch,
            lr_q12: q12("lr", self.model.lr)?,
            momentum_q12: q12("momentum", self.model.momentum)?,
        };
        model
            .validate()
            .wrap_err("[model] is not a model this market can train: fix its layers or batch")?;
        let loaded = rebase(self.dataset, dir)
            .load()
            .wrap_err("cannot load the job's dataset: check the [dataset] section")?;
        let mut data = loaded.dataset;
        if let Some(seed) = self.shuffle_seed {
            data = data.shuffled(seed);
        }
        if let Some(inference) = self.inference {
            let path = self
                .model_file
                .map(|p| if p.is_absolute() { p } else { dir.join(p) })
                .context("a batch-inference job needs model_file: the model state to run")?;
            let state = std::fs::read(&path)
                .wrap_err_with(|| format!("cannot read the model file {}", path.display()))?;
            MlpState::from_bytes(&model, &state).wrap_err_with(|| {
                format!(
                    "{} is not a model state for [model] layers {:?}",
                    path.display(),
                    model.layers
                )
            })?;
            model
                .check_dataset(&data)
                .wrap_err("the model does not fit the dataset: check [model] layers")?;
            let dataset = data.to_canonical_bytes()?;
            let spec = JobSpec::inference(
                model,
                data.len(),
                inference.chunk,
                &cid_of(&dataset),
                &cid_of(&state),
            )
            .wrap_err("the job is not valid: check [inference] chunk and [model]")?;
            if let Some(steps) = self.steps {
                eyre::ensure!(
                    steps == spec.train.steps,
                    "steps = {steps}, but {} samples in chunks of {} make {} (leave steps out)",
                    data.len(),
                    inference.chunk,
                    spec.train.steps
                );
            }
            let files = JobFiles {
                spec,
                dataset,
                model: state,
            };
            files.validate()?;
            return Ok(Prepared {
                files,
                terms,
                holdout: None,
            });
        }
        let steps = self
            .steps
            .context("a training job needs steps (or add [inference] to run a model instead)")?;
        let train = TrainConfig {
            model,
            seed: self.seed,
            steps,
            checkpoint_every: self.checkpoint_every.unwrap_or_else(|| (steps / 10).max(1)),
        };
        let holdout = if self.holdout > 0 {
            eyre::ensure!(
                self.holdout < data.len(),
                "holdout = {} but the dataset has only {} samples",
                self.holdout,
                data.len()
            );
            let (train_part, test) = data.split(self.holdout);
            data = train_part;
            Some(test)
        } else {
            None
        };
        train
            .model
            .check_dataset(&data)
            .wrap_err("the model does not fit the dataset: check [model] layers")?;
        let dataset = data.to_canonical_bytes()?;
        let model = MlpState::init(&train.model, train.seed)?.to_bytes()?;
        let spec = JobSpec::new(train, &data, &model)
            .wrap_err("the job is not valid: check steps, checkpoint_every and [model]")?;
        let files = JobFiles {
            spec,
            dataset,
            model,
        };
        files.validate()?;
        Ok(Prepared {
            files,
            terms,
            holdout,
        })
    }
}
