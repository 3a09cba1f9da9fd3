//! The job file a requester writes: its fields, and how it is checked and turned into a spec,
//! a model, a dataset and terms before anything is sent (the requester's side of the market;
//! `pedals job post` only reads the file and prints the plan). docs/job-file.md documents every
//! key; `market-cli/tests/it/job_file.rs` keeps the two in step.

use std::path::{Path, PathBuf};

use alloy::primitives::U256;
use pedals_core::cid_of;
use pedals_ml::{
    Dataset, DatasetSource, JobSpec, MlpConfig, MlpState, TrainConfig, exact::ConvConfig,
};
use serde::Deserialize;

use crate::{JobFiles, PostTerms, ZkFiles};

/// Why a job file cannot be posted: one line that names the key and says what to write
/// instead (with the cause of a failed read or load after a colon).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobFileError(String);

/// Fails with the message when the condition does not hold.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(JobFileError(format!($($msg)+)));
        }
    };
}

/// Fails with the message.
macro_rules! bail {
    ($($msg:tt)+) => {
        return Err(JobFileError(format!($($msg)+)))
    };
}

/// `error: its cause: its cause…`, the way a person reads a chain of errors on one line.
fn flatten(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    out
}

/// `what: error: its cause…`.
fn chain(what: &str, e: &(dyn std::error::Error + 'static)) -> String {
    format!("{what}: {}", flatten(e))
}

/// Says what failed, before the cause.
trait Context<T> {
    fn wrap_err(self, what: &str) -> Result<T, JobFileError>;
    fn wrap_err_with(self, what: impl FnOnce() -> String) -> Result<T, JobFileError>;
}

impl<T, E: std::error::Error + 'static> Context<T> for Result<T, E> {
    fn wrap_err(self, what: &str) -> Result<T, JobFileError> {
        self.map_err(|e| JobFileError(chain(what, &e)))
    }
    fn wrap_err_with(self, what: impl FnOnce() -> String) -> Result<T, JobFileError> {
        self.map_err(|e| JobFileError(chain(&what(), &e)))
    }
}

/// Turns a missing value into the message.
trait Expect<T> {
    fn context(self, what: &str) -> Result<T, JobFileError>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, JobFileError>;
}

impl<T> Expect<T> for Option<T> {
    fn context(self, what: &str) -> Result<T, JobFileError> {
        self.ok_or_else(|| JobFileError(what.to_owned()))
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, JobFileError> {
        self.ok_or_else(|| JobFileError(what()))
    }
}

macro_rules! from_errors {
    ($($t:ty),+) => {$(
        impl From<$t> for JobFileError {
            fn from(e: $t) -> Self {
                Self(flatten(&e))
            }
        }
    )+};
}

from_errors!(
    pedals_ml::MlError,
    pedals_ml::DataError,
    pedals_core::CoreError,
    crate::NodeError
);

/// How a job's result is verified (`verification` in the job file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerificationMode {
    /// Re-execution by validators during a challenge window.
    Optimistic,
    /// A Groth16 proof, verified on-chain when the result is submitted.
    Zk,
}

/// The smallest payment the market escrows (`ProtocolLimits.MIN_PAYMENT`, 1 gwei).
pub const MIN_PAYMENT_WEI: u64 = 1_000_000_000;
/// The largest payment the market escrows, in ETH (`ProtocolLimits.MAX_PAYMENT`).
pub const MAX_PAYMENT_ETH: u64 = 10_000_000;
/// The longest time from posting to the delivery deadline (`ProtocolLimits.MAX_JOB_DURATION`).
pub const MAX_JOB_DURATION_SECS: u64 = 30 * 24 * 3600;
/// The shortest and the longest challenge window any market allows
/// (`ProtocolLimits.MIN_CHALLENGE_WINDOW`, `MAX_CHALLENGE_WINDOW`); a deployment's own
/// `minChallengeWindow..=maxChallengeWindow` may be narrower, and the post reverts outside it.
pub const CHALLENGE_WINDOW_SECS: std::ops::RangeInclusive<u32> = 10..=7 * 24 * 3600;
/// The most steps a job may have: the market stores them in a `uint32`.
pub const MAX_STEPS: u64 = u32::MAX as u64;
/// The most values (samples × features, or classes × features) a synthetic dataset may have:
/// 2^28 values are 512 MiB of canonical bytes, the largest blob a worker downloads by default.
pub const MAX_SYNTHETIC_VALUES: usize = 1 << 28;

/// The job file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// How the result is verified (`verification`; optimistic when left out).
    #[serde(default)]
    pub verification: Option<VerificationMode>,
    /// A zk job: the first sample of the dataset its batch starts at.
    #[serde(default)]
    pub(crate) sample: usize,
    #[serde(default)]
    pub(crate) steps: Option<u64>,
    #[serde(default)]
    pub(crate) model_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) inference: Option<InferenceSection>,
    #[serde(default)]
    pub(crate) checkpoint_every: Option<u64>,
    #[serde(default)]
    pub(crate) seed: u64,
    #[serde(default)]
    pub(crate) payment_eth: Option<String>,
    #[serde(default, deserialize_with = "wei")]
    pub(crate) payment_wei: Option<U256>,
    #[serde(default = "default_claim_within")]
    pub(crate) claim_within_secs: u64,
    #[serde(default = "default_deliver_within")]
    pub(crate) deliver_within_secs: u64,
    #[serde(default = "default_window")]
    pub(crate) challenge_window_secs: u32,
    #[serde(default)]
    pub(crate) holdout: usize,
    #[serde(default)]
    pub(crate) shuffle_seed: Option<u64>,
    #[serde(default)]
    pub(crate) model: Option<ModelSection>,
    #[serde(default)]
    pub(crate) dataset: Option<DatasetSource>,
    /// A language-model batch job ([`lm::GenerateSection`]) instead of `[model]` and
    /// `[dataset]`.
    #[serde(default)]
    pub(crate) generate: Option<lm::GenerateSection>,
    /// A fine-tuning job ([`ft::FinetuneSection`]) instead of `[model]` and `[dataset]`.
    #[serde(default)]
    pub(crate) finetune: Option<ft::FinetuneSection>,
}

pub(crate) fn default_claim_within() -> u64 {
    600
}
pub(crate) fn default_deliver_within() -> u64 {
    3600
}
pub(crate) fn default_window() -> u32 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InferenceSection {
    pub(crate) chunk: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelSection {
    pub(crate) layers: Vec<usize>,
    pub(crate) batch: usize,
    #[serde(default)]
    pub(crate) lr: f64,
    #[serde(default)]
    pub(crate) momentum: f64,
    #[serde(default)]
    pub(crate) conv: Option<ConvSection>,
}

/// `[model.conv]`: [`ConvConfig`] with unknown keys refused.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConvSection {
    pub(crate) channels: usize,
    pub(crate) height: usize,
    pub(crate) width: usize,
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
    pub(crate) filters: usize,
}

impl ConvSection {
    /// The convolution, once its sizes are known to fit in a machine word: the model's own
    /// checks multiply them.
    fn config(self) -> Result<ConvConfig, JobFileError> {
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
        ensure!(
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
pub struct Prepared {
    /// The spec, the dataset and the initial model, as posted.
    pub files: JobFiles,
    /// The payment and the deadlines.
    pub terms: PostTerms,
    /// The samples kept back to score the result (`holdout`), never sent.
    pub holdout: Option<Dataset>,
}

/// A fraction in Q12, or why not.
pub(crate) fn q12(name: &str, x: f64) -> Result<i32, JobFileError> {
    ensure!(
        x.is_finite() && (0.0..=1.0).contains(&x),
        "model.{name} = {x}: it must be between 0 and 1"
    );
    Ok((x * 4096.0).round() as i32)
}

/// The dataset's source, its paths made relative to the job file's folder `dir`; a synthetic
/// dataset too large to make is refused here, before any memory is taken.
pub(crate) fn dataset_source(
    source: DatasetSource,
    dir: &Path,
) -> Result<DatasetSource, JobFileError> {
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
            ensure!(
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
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Reads and parses a job file.
    pub fn read(path: &Path) -> Result<(Self, PathBuf), JobFileError> {
        let text = std::fs::read_to_string(path)
            .wrap_err_with(|| format!("cannot read the job file {}", path.display()))?;
        let file = Self::parse(&text)
            .wrap_err_with(|| format!("the job file {} is invalid", path.display()))?;
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Ok((file, dir))
    }

    /// Whether this is a language-model batch job (`[generate]`).
    pub fn is_lm(&self) -> bool {
        self.generate.is_some()
    }

    /// `[model]` and `[dataset]`, which an MLP job (`what`) needs; taken out of the file.
    fn model_and_data(
        &mut self,
        what: &str,
    ) -> Result<(ModelSection, DatasetSource), JobFileError> {
        ensure!(
            self.generate.is_none(),
            "[generate] is a language-model job: it takes no [model] or [dataset]"
        );
        ensure!(
            self.finetune.is_none(),
            "[finetune] is a fine-tuning job: it takes no [model] or [dataset]"
        );
        let model = self
            .model
            .take()
            .with_context(|| format!("{what} job needs a [model] section"))?;
        let dataset = self
            .dataset
            .take()
            .with_context(|| format!("{what} job needs a [dataset] section"))?;
        Ok((model, dataset))
    }

    /// The payment and deadlines of a job with a challenge window, checked against the
    /// window any market allows.
    pub(crate) fn optimistic_terms(&self) -> Result<PostTerms, JobFileError> {
        let terms = self.terms()?;
        ensure!(
            CHALLENGE_WINDOW_SECS.contains(&terms.challenge_window),
            "challenge_window_secs = {}: it must be {} to {} seconds (7 days)",
            terms.challenge_window,
            CHALLENGE_WINDOW_SECS.start(),
            CHALLENGE_WINDOW_SECS.end()
        );
        Ok(terms)
    }

    /// The payment and deadlines.
    pub fn terms(&self) -> Result<PostTerms, JobFileError> {
        let payment = match (&self.payment_eth, self.payment_wei) {
            (Some(eth), None) => pedals_chain::human::parse_eth(eth).wrap_err("payment_eth")?,
            (None, Some(wei)) => wei,
            _ => bail!("set exactly one of payment_eth and payment_wei"),
        };
        ensure!(payment > U256::ZERO, "the payment must be more than zero");
        let most = U256::from(MAX_PAYMENT_ETH) * U256::from(10u64).pow(U256::from(18u64));
        ensure!(
            (U256::from(MIN_PAYMENT_WEI)..=most).contains(&payment),
            "a payment of {payment} wei is outside what the market escrows: 1 gwei \
             ({MIN_PAYMENT_WEI} wei) to {MAX_PAYMENT_ETH} ETH"
        );
        ensure!(
            self.claim_within_secs >= 1,
            "claim_within_secs = 0: a worker needs at least a second to claim the job"
        );
        ensure!(
            self.deliver_within_secs > self.claim_within_secs,
            "deliver_within_secs ({}) must be later than claim_within_secs ({})",
            self.deliver_within_secs,
            self.claim_within_secs
        );
        ensure!(
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
    pub fn prepare_zk(mut self, dir: &Path) -> Result<(ZkFiles, PostTerms), JobFileError> {
        let terms = PostTerms {
            challenge_window: 0,
            ..self.terms()?
        };
        let (model, dataset) = self.model_and_data("a zk")?;
        let circuit = pedals_zk::circuit_for(&model.layers, model.batch).with_context(|| {
            format!(
                "zk mode proves only these circuits: {}; [model] layers {:?} at batch {} is \
                     none of them",
                pedals_zk::CIRCUITS
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", "),
                model.layers,
                model.batch
            )
        })?;
        let config = MlpConfig {
            layers: model.layers.clone(),
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
        let data = dataset_source(dataset, dir)?
            .load()
            .wrap_err("cannot load the job's dataset: check the [dataset] section")?
            .dataset;
        let (start, end) = (self.sample, self.sample.saturating_add(circuit.batch));
        ensure!(
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
    ) -> Result<u64, JobFileError> {
        ensure!(
            model_file.is_none(),
            "model_file is for batch inference ([inference]) and zk jobs; a training job \
             starts from a fresh model made from seed (leave model_file out)"
        );
        let steps = steps
            .context("a training job needs steps (or add [inference] to run a model instead)")?;
        ensure!(
            (1..=MAX_STEPS).contains(&steps),
            "steps = {steps}: a job has 1 to {MAX_STEPS} steps"
        );
        ensure!(
            model.depth() <= pedals_ml::dispute::MAX_DEPTH,
            "[model] has {} weight layers: the dispute game checks training jobs of at most {}",
            model.depth(),
            pedals_ml::dispute::MAX_DEPTH
        );
        Ok(steps)
    }

    /// Loads the data and builds the spec, model and terms; every problem is reported here,
    /// before anything is sent.
    pub fn prepare(mut self, dir: &Path) -> Result<Prepared, JobFileError> {
        let terms = self.optimistic_terms()?;
        let (section, dataset) = self.model_and_data("a training or batch-inference")?;
        let model = MlpConfig {
            layers: section.layers,
            conv: section.conv.map(ConvSection::config).transpose()?,
            batch: section.batch,
            lr_q12: q12("lr", section.lr)?,
            momentum_q12: q12("momentum", section.momentum)?,
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
        let loaded = dataset_source(dataset, dir)?
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
                ensure!(
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
            ensure!(
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

pub mod ft;
pub mod lm;
#[cfg(test)]
mod tests;
