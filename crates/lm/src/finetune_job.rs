//! The market's fine-tuning job (`lm-finetune`): a stored model and a JSONL dataset, both
//! named by CID, fine-tuned in exact mode under committed terms, with LoRA or every weight
//! trained ([`Method`]), one trace step per optimizer step (the state after each step is its
//! checkpoint, [`JobState`]).
//! The canonical bytes are [`CanonicalSpec`]'s; `"kind": "lm-finetune"` comes first.

use cid::Cid;
use pedals_core::parse_cid;
use serde::{Deserialize, Serialize};

use crate::error::LmError;
use crate::spec::CanonicalSpec;
use crate::tokenizer::Tokenizer;
use crate::train::{
    AdamConfig, Example, FineTune, FullState, FullTune, LoraConfig, LoraState, Terms, data,
};
use crate::weights::ExactModel;

/// The spec's `kind`.
pub const KIND: &str = "lm-finetune";
/// Version of the spec format (2: the dispute roots; 3: the method).
pub const VERSION: u32 = 3;

/// What a fine-tune trains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Rank-`r` adapters on chosen projections; the model frozen.
    #[default]
    Lora,
    /// Every weight of a small model (docs/exact-ops.md "Full fine-tuning"); no adapter terms.
    Full,
}

/// A model's shape in a fine-tuning spec: what the step program (docs/protocol.md §9) is built
/// from, so that a referee needs the spec alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    /// `llama` or `gpt2`.
    pub family: crate::config::Family,
    /// Vocabulary size.
    pub vocab: u64,
    /// Residual width.
    pub hidden: u64,
    /// Blocks.
    pub layers: u64,
    /// Query heads.
    pub heads: u64,
    /// Key/value heads.
    pub kv_heads: u64,
    /// Head width.
    pub head_dim: u64,
    /// MLP width.
    pub intermediate: u64,
    /// Context length.
    pub context: u64,
    /// The norms' ε, Q40.
    pub eps_q40: i64,
    /// The head is the token embedding.
    pub tied: bool,
    /// Query, key and value biases.
    pub qkv_bias: bool,
    /// Attention output bias.
    pub out_bias: bool,
    /// MLP biases.
    pub mlp_bias: bool,
}

impl Arch {
    /// The shape of a model of config `c`.
    pub fn of(c: &crate::config::LmConfig) -> Self {
        Self {
            family: c.family,
            vocab: c.vocab as u64,
            hidden: c.hidden as u64,
            layers: c.layers as u64,
            heads: c.heads as u64,
            kv_heads: c.kv_heads as u64,
            head_dim: c.head_dim as u64,
            intermediate: c.intermediate as u64,
            context: c.context as u64,
            eps_q40: c.eps_q40(),
            tied: c.tied,
            qkv_bias: c.qkv_bias,
            out_bias: c.out_bias,
            mlp_bias: c.mlp_bias,
        }
    }
}

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
    /// The model's shape, as the step program and its referee need it.
    pub arch: Arch,
    /// What is trained.
    pub method: Method,
    /// LoRA rank (0 in a full fine-tune).
    pub rank: u64,
    /// LoRA alpha (0 in a full fine-tune).
    pub alpha: u64,
    /// Adapted projections (peft module names), sorted (none in a full fine-tune).
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
    /// The state hash of the model commitment ([`crate::dispute::model_state`]), `0x`-hex: the
    /// root a dispute opens the frozen model's rows against.
    pub model_root: String,
    /// The Merkle root of the examples' data rows `[prompt, tokens…]` (their row hashes, in
    /// dataset order), `0x`-hex: the root a dispute opens an example against.
    pub data_root: String,
    /// `h_0`: the state hash of the initial state (adapters, or a full fine-tune's masters),
    /// `0x`-hex.
    pub init_hash: String,
}

impl FinetuneSpec {
    /// The spec of fine-tuning `model` (a stored model's bytes) on `dataset` (JSONL) under
    /// `terms`: the files' CIDs, the example count and the dispute roots computed from them.
    pub fn new(model: &[u8], dataset: &[u8], terms: &Terms) -> Result<Self, LmError> {
        Self::with_method(model, dataset, terms, Method::Lora)
    }

    /// [`Self::new`] for a fine-tune by `method`: a full fine-tune ignores the LoRA terms.
    pub fn with_method(
        model: &[u8],
        dataset: &[u8],
        terms: &Terms,
        method: Method,
    ) -> Result<Self, LmError> {
        let ft = match method {
            Method::Lora => terms.fine_tune()?,
            Method::Full => terms.full_tune()?.base(),
        };
        let lora = method == Method::Lora;
        let exact = ExactModel::from_bytes(model)?;
        let spec = Self {
            kind: KIND.into(),
            version: VERSION,
            model: pedals_core::cid_of(model).to_string(),
            dataset: pedals_core::cid_of(dataset).to_string(),
            count: 0,
            arch: Arch::of(&exact.config),
            method,
            rank: if lora { ft.lora.rank as u64 } else { 0 },
            alpha: if lora { terms.alpha as u64 } else { 0 },
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
            model_root: String::new(),
            data_root: String::new(),
            init_hash: String::new(),
        };
        let inputs = spec.open(exact, dataset)?;
        let (m, d, h) = inputs.roots()?;
        let mut spec = spec;
        spec.count = inputs.examples.len() as u64;
        (spec.model_root, spec.data_root, spec.init_hash) =
            (m.to_string(), d.to_string(), h.to_string());
        spec.validate()?;
        Ok(spec)
    }

    /// Whether `bytes` claim to be a spec of this kind (`"kind":"lm-finetune"` first).
    pub fn is_finetune(bytes: &[u8]) -> bool {
        bytes.starts_with(format!("{{\"kind\":\"{KIND}\"").as_bytes())
    }

    /// The run in exact units (a full fine-tune's: its optimizer, batches and seed, with no
    /// adapters).
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
        let batch = usize::try_from(self.batch).unwrap_or(usize::MAX);
        if self.method == Method::Full {
            let full = FullTune {
                adam,
                batch,
                seed: self.seed,
            };
            return Ok(full.base());
        }
        Ok(FineTune {
            lora: LoraConfig::new(self.rank as usize, self.alpha as usize, &targets)?,
            adam,
            batch,
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
    /// the model, and the dispute roots against the files. Run by the requester before it
    /// posts and by a worker before it claims.
    pub fn load(&self, model: &[u8], dataset: &[u8]) -> Result<FinetuneInputs, LmError> {
        self.validate()?;
        crate::spec::named_by(model, &self.model_cid()?, "model")?;
        crate::spec::named_by(dataset, &self.dataset_cid()?, "dataset")?;
        let inputs = self.open(ExactModel::from_bytes(model)?, dataset)?;
        if inputs.examples.len() as u64 != self.count {
            return Err(LmError::Format(format!(
                "the spec names {} examples but the dataset holds {}",
                self.count,
                inputs.examples.len()
            )));
        }
        if Arch::of(&inputs.model.config) != self.arch {
            return Err(LmError::Format(
                "the spec's arch is not the model's shape: a dispute would build another step \
                 program; do not post or claim this job"
                    .into(),
            ));
        }
        let (m, d, h) = inputs.roots()?;
        for (what, ours, theirs) in [
            ("model root", m, &self.model_root),
            ("data root", d, &self.data_root),
            ("initial state hash", h, &self.init_hash),
        ] {
            if ours.to_string() != *theirs {
                return Err(LmError::Format(format!(
                    "the spec's {what} {theirs} is not the files' ({ours}): a dispute would open \
                     rows of other tensors; do not post or claim this job"
                )));
            }
        }
        Ok(inputs)
    }

    /// The files parsed and checked against the terms, without the spec's count and roots.
    fn open(&self, model: ExactModel, dataset: &[u8]) -> Result<FinetuneInputs, LmError> {
        let tok = Tokenizer::from_bytes(model.tokenizer.as_deref().ok_or_else(|| {
            LmError::Format("the model has no tokenizer: a JSONL dataset needs one".into())
        })?)?;
        let text = std::str::from_utf8(dataset)
            .map_err(|e| LmError::Dataset(format!("not UTF-8 text: {e}")))?;
        let examples = data::parse_jsonl(text, &tok, model.config.context)?;
        let run = self.fine_tune()?;
        run.check(&model, &examples)?;
        if self.method == Method::Full {
            crate::dispute::full_admissible(&model.config)?;
        }
        Ok(FinetuneInputs {
            model,
            examples,
            run,
            method: self.method,
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
        if self.method == Method::Full
            && (self.rank != 0 || self.alpha != 0 || !self.targets.is_empty())
        {
            return bad(
                "a full fine-tune has no rank, alpha or targets: set them to 0 and []".into(),
            );
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
        for (what, v) in [
            ("model_root", &self.model_root),
            ("data_root", &self.data_root),
            ("init_hash", &self.init_hash),
        ] {
            let ok = v
                .parse::<alloy_primitives::B256>()
                .is_ok_and(|h| h.to_string() == *v);
            if !ok {
                return bad(format!(
                    "{what} {v:?} is not a 0x-prefixed 32-byte hex hash"
                ));
            }
        }
        Ok(())
    }
}

/// A fine-tuning job's inputs, loaded and checked.
pub struct FinetuneInputs {
    /// The frozen model (a full fine-tune's starting weights).
    pub model: ExactModel,
    /// The tokenized examples.
    pub examples: Vec<Example>,
    /// The run: LoRA's, or a full fine-tune's optimizer, batches and seed with no adapters.
    pub run: FineTune,
    /// What is trained.
    pub method: Method,
}

/// A fine-tuning job's state: the adapters, or every weight's masters, with their moments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// A LoRA fine-tune's.
    Lora(LoraState),
    /// A full fine-tune's.
    Full(FullState),
}

impl JobState {
    /// Optimizer steps taken.
    pub fn step(&self) -> u64 {
        match self {
            Self::Lora(s) => s.step,
            Self::Full(s) => s.step,
        }
    }
}

impl FinetuneInputs {
    /// A full fine-tune's terms.
    fn full(&self) -> FullTune {
        FullTune {
            adam: self.run.adam,
            batch: self.run.batch,
            seed: self.run.seed,
        }
    }

    /// The state before step 0.
    pub fn initial(&self) -> Result<JobState, LmError> {
        Ok(match self.method {
            Method::Lora => JobState::Lora(self.run.init(&self.model)),
            Method::Full => JobState::Full(FullState::init(&self.model)?),
        })
    }

    /// Runs the next step of `state` (its `step` field says which).
    pub fn step(&self, state: &mut JobState) {
        match state {
            JobState::Lora(s) => {
                self.run.step(&self.model, s, &self.examples);
            }
            JobState::Full(s) => {
                self.full().step(&self.model, s, &self.examples);
            }
        }
    }

    /// The state's tensors, as its state hash commits them.
    pub fn model_state(&self, state: &JobState) -> Result<pedals_core::ModelState, LmError> {
        match state {
            JobState::Lora(s) => s.to_model_state(&self.model.config, &self.run.lora),
            JobState::Full(s) => s.to_model_state(&self.model.config),
        }
    }

    /// Canonical bytes of a state of this job.
    pub fn state_bytes(&self, state: &JobState) -> Result<Vec<u8>, LmError> {
        self.model_state(state)?
            .to_canonical_bytes()
            .map_err(|e| LmError::Format(e.to_string()))
    }

    /// The state hash of a state of this job.
    pub fn state_hash(&self, state: &JobState) -> Result<alloy_primitives::B256, LmError> {
        self.model_state(state)?
            .state_hash()
            .map_err(|e| LmError::Format(e.to_string()))
    }

    /// What the op trace of the step that `state` is at is a function of.
    pub fn step_inputs(&self, state: &JobState) -> Result<crate::dispute::StepInputs, LmError> {
        use crate::dispute::StepInputs;
        match state {
            JobState::Lora(s) => StepInputs::new(&self.model, &self.run, s, &self.examples),
            JobState::Full(s) => StepInputs::full(&self.model, &self.full(), s, &self.examples),
        }
    }

    /// The dispute roots of these files: the model commitment's state hash, the Merkle root of
    /// the examples' data rows, and the initial state's hash.
    pub fn roots(
        &self,
    ) -> Result<
        (
            alloy_primitives::B256,
            alloy_primitives::B256,
            alloy_primitives::B256,
        ),
        LmError,
    > {
        let core = |e: pedals_core::CoreError| LmError::Format(e.to_string());
        let model = crate::dispute::model_state(&self.model)?
            .state_hash()
            .map_err(core)?;
        let rows: Vec<alloy_primitives::B256> = self
            .examples
            .iter()
            .map(|e| pedals_core::hash_row(&crate::dispute::data_row(e)))
            .collect();
        let data = pedals_core::merkle_root(&rows).map_err(core)?;
        let init = self.state_hash(&self.initial()?)?;
        Ok((model, data, init))
    }

    /// Bytes of the op trace of a challenged step at its largest, every slot of the batch an
    /// example as long as the dataset's longest: what a worker or a validator holds in memory
    /// to play the game over a step of this job.
    pub fn op_trace_bytes(&self) -> Result<u64, LmError> {
        let longest = self.examples.iter().map(|e| e.tokens.len()).max();
        let lens = vec![longest.unwrap_or(2); self.run.batch];
        let (c, n) = (&self.model.config, self.examples.len());
        let program = match self.method {
            Method::Lora => crate::dispute::program(c, &self.run.lora, &lens, n)?,
            Method::Full => crate::dispute::program_full(c, &lens, n)?,
        };
        Ok(program.trace_bytes())
    }

    /// A state of this job from its canonical bytes.
    pub fn state_from(&self, bytes: &[u8]) -> Result<JobState, LmError> {
        let c = &self.model.config;
        Ok(match self.method {
            Method::Lora => JobState::Lora(LoraState::from_bytes(bytes, c, &self.run.lora)?),
            Method::Full => JobState::Full(FullState::from_bytes(bytes, c)?),
        })
    }
}

/// What a worker or a validator lets a challenged step's op trace take by default: half of
/// this machine's memory (`MemTotal` of `/proc/meminfo`), or 8 GiB where that cannot be read.
pub fn default_trace_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib << 9)
        })
        .unwrap_or(8 << 30)
}
