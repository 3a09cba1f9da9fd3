//! The job file: its fields, and how it is checked and turned into a spec, a model and
//! terms before anything is sent. docs/job-file.md documents every key;
//! `market-cli/tests/it/job_file.rs` keeps the two in step.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The smallest payment the market escrows (`ProtocolLimits.MIN_PAYMENT`, 1 gwei).
pub(super) const MIN_PAYMENT_WEI: u64 = 1_000_000_000;
/// The largest payment the market escrows, in ETH (`ProtocolLimits.MAX_PAYMENT`).
pub(super) const MAX_PAYMENT_ETH: u64 = 10_000_000;
/// The longest time from posting to the delivery deadline (`ProtocolLimits.MAX_JOB_DURATION`).
pub(super) const MAX_JOB_DURATION_SECS: u64 = 30 * 24 * 3600;
/// The shortest and the longest challenge window any market allows
/// (`ProtocolLimits.MIN_CHALLENGE_WINDOW`, `MAX_CHALLENGE_WINDOW`); a deployment's own
/// `minChallengeWindow..=maxChallengeWindow` may be narrower, and the post reverts outside it.
pub(super) const CHALLENGE_WINDOW_SECS: std::ops::RangeInclusive<u32> = 10..=7 * 24 * 3600;
/// The most steps a job may have: the market stores them in a `uint32`.
pub(super) const MAX_STEPS: u64 = u32::MAX as u64;
/// The most values (samples × features, or classes × features) a synthetic dataset may have:
/// 2^28 values are 512 MiB of canonical bytes, the largest blob a worker downloads by default.
pub(super) const MAX_SYNTHETIC_VALUES: usize = 1 << 28;

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
    #[serde(default, deserialize_with = "wei")]
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
    pub(super) conv: Option<ConvSection>,
}

/// `[model.conv]`: [`ConvConfig`] with unknown keys refused.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConvSection {
    pub(super) channels: usize,
    pub(super) height: usize,
    pub(super) width: usize,
    pub(super) kernel: usize,
    pub(super) stride: usize,
    pub(super) filters: usize,
}

impl ConvSection {
    /// The convolution, once its sizes are known to fit in a machine word: the model's own
    /// checks multiply them.
    fn config(self) -> eyre::Result<ConvConfig> {
        let c = ConvConfig {
            channels: self.channels,
            height: self.height,
            width: self.width,
            kernel: self.kernel,
            stride: self.stride,
            filters: self.filters,
        };
        let sides = [c.channels, c.height, c.width, c.kernel, c.stride, c.filters];
        if sides.contains(&0) || c.kernel > c.height || c.kernel > c.width {
            // MlpConfig::validate names what is wrong without multiplying.
            return Ok(c);
        }
        let out = |side: usize| (side - c.kernel) / c.stride + 1;
        let fits = c
            .channels
            .checked_mul(c.height)
            .and_then(|v| v.checked_mul(c.width));
        let fits = fits.and(
            c.channels
                .checked_mul(c.kernel)
                .and_then(|v| v.checked_mul(c.kernel)),
        );
        let fits = fits.and(
            out(c.height)
                .checked_mul(out(c.width))
                .and_then(|v| v.checked_mul(c.filters)),
        );
        eyre::ensure!(
            fits.is_some(),
            "[model.conv] is far too large: channels × height × width, channels × kernel² or \
             its outputs × filters overflow 64 bits"
        );
        Ok(c)
    }
}

/// `payment_wei`: a whole number of wei, as a TOML integer or a string of decimal digits (or
/// `0x` and hex digits) for amounts over 2^63.
fn wei<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<U256>, D::Error> {
    struct Wei;
    impl serde::de::Visitor<'_> for Wei {
        type Value = U256;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number of wei: an integer, or a string of decimal digits")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<U256, E> {
            u64::try_from(v)
                .map(U256::from)
                .map_err(|_| E::custom(format!("payment_wei = {v}: it cannot be negative")))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<U256, E> {
            Ok(U256::from(v))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<U256, E> {
            let (digits, radix) = match v.strip_prefix("0x") {
                Some(hex) => (hex, 16),
                None => (v, 10),
            };
            let wei = if !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix)) {
                U256::from_str_radix(digits, u64::from(radix)).ok()
            } else {
                None
            };
            wei.ok_or_else(|| {
                E::custom(format!(
                    "payment_wei = {v:?} is not a whole number of wei under 2^256: write \
                     digits only, like \"100000000000000000\""
                ))
            })
        }
    }
    d.deserialize_any(Wei).map(Some)
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

/// The dataset's source, its paths made relative to the job file's folder `dir`; a synthetic
/// dataset too large to make is refused here, before any memory is taken.
pub(super) fn dataset_source(source: DatasetSource, dir: &Path) -> eyre::Result<DatasetSource> {
    let at = |p: PathBuf| if p.is_absolute() { p } else { dir.join(p) };
    Ok(match source {
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
        synthetic @ DatasetSource::Synthetic {
            samples,
            features,
            classes,
            ..
        } => {
            let values = |n: usize| {
                n.checked_mul(features)
                    .filter(|&v| v <= MAX_SYNTHETIC_VALUES)
            };
            eyre::ensure!(
                values(samples).is_some() && values(classes as usize).is_some(),
                "[dataset] samples = {samples}, features = {features}, classes = {classes}: \
                 a synthetic dataset holds at most {MAX_SYNTHETIC_VALUES} values (samples × \
                 features, and classes × features)"
            );
            synthetic
        }
    })
}

impl JobFile {
    /// Parses a job file's text (nothing is checked beyond the keys and their types).
    pub(crate) fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Reads and parses a job file.
    pub(crate) fn read(path: &Path) -> eyre::Result<(Self, PathBuf)> {
        let text = std::fs::read_to_string(path)
            .wrap_err_with(|| format!("cannot read the job file {}", path.display()))?;
        let file = Self::parse(&text)
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
        let most = U256::from(MAX_PAYMENT_ETH) * U256::from(10u64).pow(U256::from(18u64));
        eyre::ensure!(
            (U256::from(MIN_PAYMENT_WEI)..=most).contains(&payment),
            "a payment of {payment} wei is outside what the market escrows: 1 gwei \
             ({MIN_PAYMENT_WEI} wei) to {MAX_PAYMENT_ETH} ETH"
        );
        eyre::ensure!(
            self.claim_within_secs >= 1,
            "claim_within_secs = 0: a worker needs at least a second to claim the job"
        );
        eyre::ensure!(
            self.deliver_within_secs > self.claim_within_secs,
            "deliver_within_secs ({}) must be later than claim_within_secs ({})",
            self.deliver_within_secs,
            self.claim_within_secs
        );
        eyre::ensure!(
            self.deliver_within_secs <= MAX_JOB_DURATION_SECS,
            "deliver_within_secs = {}: the market takes no job due more than 30 days \
             ({MAX_JOB_DURATION_SECS} s) after it is posted",
            self.deliver_within_secs
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
        let data = dataset_source(self.dataset, dir)?
            .load()
            .wrap_err("cannot load the job's dataset: check the [dataset] section")?
            .dataset;
        let (start, end) = (self.sample, self.sample.saturating_add(circuit.batch));
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

    /// A training job's steps, and what else only a training job must satisfy.
    fn training_steps(
        steps: Option<u64>,
        model_file: Option<&Path>,
        model: &MlpConfig,
    ) -> eyre::Result<u64> {
        eyre::ensure!(
            model_file.is_none(),
            "model_file is for batch inference ([inference]) and zk jobs; a training job \
             starts from a fresh model made from seed (leave model_file out)"
        );
        let steps = steps
            .context("a training job needs steps (or add [inference] to run a model instead)")?;
        eyre::ensure!(
            (1..=MAX_STEPS).contains(&steps),
            "steps = {steps}: a job has 1 to {MAX_STEPS} steps"
        );
        eyre::ensure!(
            model.depth() <= pedals_ml::dispute::MAX_DEPTH,
            "[model] has {} weight layers: the dispute game checks training jobs of at most {}",
            model.depth(),
            pedals_ml::dispute::MAX_DEPTH
        );
        Ok(steps)
    }

    /// Loads the data and builds the spec, model and terms; every problem is reported here,
    /// before anything is sent.
    pub(crate) fn prepare(self, dir: &Path) -> eyre::Result<Prepared> {
        let terms = self.terms()?;
        eyre::ensure!(
            CHALLENGE_WINDOW_SECS.contains(&terms.challenge_window),
            "challenge_window_secs = {}: it must be {} to {} seconds (7 days)",
            terms.challenge_window,
            CHALLENGE_WINDOW_SECS.start(),
            CHALLENGE_WINDOW_SECS.end()
        );
        let model = MlpConfig {
            layers: self.model.layers,
            conv: self.model.conv.map(ConvSection::config).transpose()?,
            batch: self.model.batch,
            lr_q12: q12("lr", self.model.lr)?,
            momentum_q12: q12("momentum", self.model.momentum)?,
        };
        model
            .validate()
            .wrap_err("[model] is not a model this market can train: fix its layers or batch")?;
        // Checked before the dataset is loaded, which can take a while.
        let steps = match self.inference {
            Some(_) => None,
            None => Some(Self::training_steps(
                self.steps,
                self.model_file.as_deref(),
                &model,
            )?),
        };
        let loaded = dataset_source(self.dataset, dir)?
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
        let steps = steps.context("a training job needs steps")?;
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

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
