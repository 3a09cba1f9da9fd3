//! The market's fine-tuning job (`lm-finetune`): a stored model and a JSONL dataset, both
//! named by CID, fine-tuned with LoRA in exact mode under committed terms, one trace step per
//! optimizer step (the state after each step is its checkpoint, [`crate::train::LoraState`]).
//! The canonical bytes are [`CanonicalSpec`]'s; `"kind": "lm-finetune"` comes first.

use cid::Cid;
use pedals_core::parse_cid;
use serde::{Deserialize, Serialize};

use crate::error::LmError;
use crate::spec::CanonicalSpec;
use crate::tokenizer::Tokenizer;
use crate::train::{AdamConfig, Example, FineTune, LoraConfig, LoraState, Terms, data};
use crate::weights::ExactModel;

/// The spec's `kind`.
pub const KIND: &str = "lm-finetune";
/// Version of the spec format.
pub const VERSION: u32 = 1;

/// A fine-tuning job, every term in the units exact mode computes with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneSpec {
    /// [`KIND`].
    pub kind: String,
    /// [`VERSION`].
    pub version: u32,
    /// CIDv1 of the stored model's bytes.
    pub model: String,
    /// CIDv1 of the dataset (JSONL, [`data::parse_jsonl`]).
    pub dataset: String,
    /// Examples in the dataset.
    pub count: u64,
    /// LoRA rank.
    pub rank: u64,
    /// LoRA alpha.
    pub alpha: u64,
    /// Adapted projections (peft module names), sorted.
    pub targets: Vec<String>,
    /// Peak learning rate, Q32.
    pub lr_q32: u64,
    /// Final learning rate, Q32.
    pub lr_end_q32: u64,
    /// Adam's β1, Q30.
    pub beta1_q30: u64,
    /// Adam's β2, Q30.
    pub beta2_q30: u64,
    /// Adam's ε, Q32.
    pub eps_q32: u64,
    /// Warm-up steps.
    pub warmup: u64,
    /// Optimizer steps: the job's on-chain step count.
    pub steps: u64,
    /// Examples per step.
    pub batch: u64,
    /// Seed of the adapters and the batches.
    pub seed: u64,
}

impl FinetuneSpec {
    /// The spec of fine-tuning `model` (its stored bytes' CID) on `dataset` of `count` examples
    /// under `terms`.
    pub fn new(model: &Cid, dataset: &Cid, count: u64, terms: &Terms) -> Result<Self, LmError> {
        let ft = terms.fine_tune()?;
        let spec = Self {
            kind: KIND.into(),
            version: VERSION,
            model: model.to_string(),
            dataset: dataset.to_string(),
            count,
            rank: ft.lora.rank as u64,
            alpha: terms.alpha as u64,
            targets: ft
                .lora
                .targets
                .iter()
                .map(|t| t.name().to_owned())
                .collect(),
            lr_q32: ft.adam.lr as u64,
            lr_end_q32: ft.adam.lr_end as u64,
            beta1_q30: ft.adam.beta1 as u64,
            beta2_q30: ft.adam.beta2 as u64,
            eps_q32: ft.adam.eps as u64,
            warmup: ft.adam.warmup,
            steps: ft.adam.steps,
            batch: ft.batch as u64,
            seed: ft.seed,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Whether `bytes` claim to be a spec of this kind (`"kind":"lm-finetune"` first).
    pub fn is_finetune(bytes: &[u8]) -> bool {
        bytes.starts_with(format!("{{\"kind\":\"{KIND}\"").as_bytes())
    }

    /// The run in exact units.
    pub fn fine_tune(&self) -> Result<FineTune, LmError> {
        let targets: Vec<&str> = self.targets.iter().map(String::as_str).collect();
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let adam = AdamConfig {
            lr: int(self.lr_q32),
            lr_end: int(self.lr_end_q32),
            beta1: int(self.beta1_q30),
            beta2: int(self.beta2_q30),
            eps: int(self.eps_q32),
            warmup: self.warmup,
            steps: self.steps,
        };
        adam.validate()?;
        Ok(FineTune {
            lora: LoraConfig::new(self.rank as usize, self.alpha as usize, &targets)?,
            adam,
            batch: usize::try_from(self.batch).unwrap_or(usize::MAX),
            seed: self.seed,
        })
    }

    /// The model's CID.
    pub fn model_cid(&self) -> Result<Cid, LmError> {
        parse_cid(&self.model).map_err(|e| LmError::Format(format!("model CID: {e}")))
    }

    /// The dataset's CID.
    pub fn dataset_cid(&self) -> Result<Cid, LmError> {
        parse_cid(&self.dataset).map_err(|e| LmError::Format(format!("dataset CID: {e}")))
    }

    /// Loads and checks a job's files against this spec: the model's and the dataset's bytes
    /// against their CIDs, every example tokenized and within the context, the terms against
    /// the model. Run by the requester before it posts and by a worker before it claims.
    pub fn load(&self, model: &[u8], dataset: &[u8]) -> Result<FinetuneInputs, LmError> {
        self.validate()?;
        crate::spec::named_by(model, &self.model_cid()?, "model")?;
        crate::spec::named_by(dataset, &self.dataset_cid()?, "dataset")?;
        let model = ExactModel::from_bytes(model)?;
        let tok = Tokenizer::from_bytes(model.tokenizer.as_deref().ok_or_else(|| {
            LmError::Format("the model has no tokenizer: a JSONL dataset needs one".into())
        })?)?;
        let text = std::str::from_utf8(dataset)
            .map_err(|e| LmError::Dataset(format!("not UTF-8 text: {e}")))?;
        let examples = data::parse_jsonl(text, &tok, model.config.context)?;
        if examples.len() as u64 != self.count {
            return Err(LmError::Format(format!(
                "the spec names {} examples but the dataset holds {}",
                self.count,
                examples.len()
            )));
        }
        let run = self.fine_tune()?;
        run.check(&model, &examples)?;
        Ok(FinetuneInputs {
            model,
            examples,
            run,
        })
    }
}

impl CanonicalSpec for FinetuneSpec {
    const WHAT: &'static str = "fine-tuning job spec";

    fn validate(&self) -> Result<(), LmError> {
        let bad = |m: String| Err(LmError::Format(m));
        if self.kind != KIND {
            return bad(format!("a job spec of kind {:?}, not {KIND:?}", self.kind));
        }
        if self.version != VERSION {
            return bad(format!(
                "fine-tuning spec version {} is not {VERSION}: upgrade Pedals to run this job",
                self.version
            ));
        }
        if self.count == 0 {
            return bad("the dataset has no examples".into());
        }
        if self.steps > u64::from(u32::MAX) {
            return bad(format!("{} steps: a job has at most 2^32 - 1", self.steps));
        }
        let run = self.fine_tune()?;
        let sorted: Vec<&str> = run.lora.targets.iter().map(|t| t.name()).collect();
        if sorted != self.targets.iter().map(String::as_str).collect::<Vec<_>>() {
            return bad("targets must be sorted in peft's order without repeats".into());
        }
        if !(1..=1024).contains(&self.batch) {
            return bad(format!("batch {} is outside 1..=1024", self.batch));
        }
        self.model_cid()?;
        self.dataset_cid()?;
        Ok(())
    }
}

/// A fine-tuning job's inputs, loaded and checked.
pub struct FinetuneInputs {
    /// The frozen model.
    pub model: ExactModel,
    /// The tokenized examples.
    pub examples: Vec<Example>,
    /// The run.
    pub run: FineTune,
}

impl FinetuneInputs {
    /// The state before step 0.
    pub fn initial(&self) -> LoraState {
        self.run.init(&self.model)
    }

    /// Runs the next step of `state` (its `step` field says which).
    pub fn step(&self, state: &mut LoraState) {
        self.run.step(&self.model, state, &self.examples);
    }

    /// Canonical bytes of a state of this job.
    pub fn state_bytes(&self, state: &LoraState) -> Result<Vec<u8>, LmError> {
        state.to_bytes(&self.model.config, &self.run.lora)
    }

    /// A state of this job from its canonical bytes.
    pub fn state_from(&self, bytes: &[u8]) -> Result<LoraState, LmError> {
        LoraState::from_bytes(bytes, &self.model.config, &self.run.lora)
    }
}
