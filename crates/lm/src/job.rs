//! The market's language-model batch job (`lm-generate`): a stored model and a prompts file,
//! both named by CID, run with committed generation parameters, chunk by chunk (see
//! [`crate::batch`] for the bytes each chunk commits to).
//!
//! The spec's canonical bytes are its compact JSON (fields in declaration order, integers and
//! strings only); their sha2-256 digest is the job's on-chain `specHash`, exactly as for the
//! MLP job spec. The field `"kind": "lm-generate"` comes first and the MLP spec has no such
//! field, so neither kind of spec parses as the other.

use alloy_primitives::B256;
use cid::Cid;
use pedals_core::parse_cid;
use serde::{Deserialize, Serialize};

use crate::batch;
use crate::error::LmError;
use crate::generate::GenParams;
use crate::sample::Sampling;
pub use crate::spec::CanonicalSpec;
use crate::tokenizer::Tokenizer;
use crate::weights::ExactModel;

/// The spec's `kind`.
pub const KIND: &str = "lm-generate";
/// Version of the spec format.
pub const VERSION: u32 = 1;
/// The most prompts one chunk may hold.
pub const MAX_CHUNK: u64 = 1024;
/// The most new tokens per prompt a job may ask for.
pub const MAX_TOKENS: u64 = 1 << 16;

/// A batch-generation job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmJobSpec {
    /// [`KIND`].
    pub kind: String,
    /// [`VERSION`].
    pub version: u32,
    /// CIDv1 of the stored model's bytes (docs/exact-ops.md "Stored form").
    pub model: String,
    /// CIDv1 of the prompts file (JSONL, [`batch::parse_prompts`]).
    pub prompts: String,
    /// Prompts in the file.
    pub count: u64,
    /// Prompts per chunk (the last may be shorter); one chunk is one step of the trace.
    pub chunk: u64,
    /// Chunks: `ceil(count / chunk)`, the job's on-chain step count.
    pub steps: u64,
    /// New tokens per prompt at most.
    pub max_tokens: u64,
    /// Sampling temperature in Q16 (0: greedy).
    pub temperature_q16: u32,
    /// Keep only the `top_k` most likely tokens (0: all).
    pub top_k: u64,
    /// Top-p in Q16 (65536: all).
    pub top_p_q16: u32,
    /// The job's seed; prompt `j` samples with [`batch::prompt_seed`]`(seed, j)`.
    pub seed: u64,
    /// Stop sequences (need the model's tokenizer).
    pub stop: Vec<String>,
}

impl LmJobSpec {
    /// A spec for `model` (its stored bytes' CID) over the prompts file `prompts` of `count`
    /// prompts, `chunk` per chunk, generated with `params`.
    pub fn new(
        model: &Cid,
        prompts: &Cid,
        count: u64,
        chunk: u64,
        params: &GenParams,
    ) -> Result<Self, LmError> {
        let spec = Self {
            kind: KIND.into(),
            version: VERSION,
            model: model.to_string(),
            prompts: prompts.to_string(),
            count,
            chunk,
            steps: count.div_ceil(chunk.max(1)),
            max_tokens: params.max_tokens as u64,
            temperature_q16: params.sampling.temperature_q16,
            top_k: params.sampling.top_k as u64,
            top_p_q16: params.sampling.top_p_q16,
            seed: params.sampling.seed,
            stop: params.stop.clone(),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Whether `bytes` claim to be a spec of this kind (a `"kind":"lm-generate"` field first),
    /// without checking the rest: an MLP spec starts with `{"version":`.
    pub fn is_lm(bytes: &[u8]) -> bool {
        bytes.starts_with(format!("{{\"kind\":\"{KIND}\"").as_bytes())
    }

    /// Checks the kind, version, sizes, parameters and CIDs.
    pub fn validate(&self) -> Result<(), LmError> {
        CanonicalSpec::validate(self)
    }
}

impl CanonicalSpec for LmJobSpec {
    const WHAT: &'static str = "lm job spec";

    fn validate(&self) -> Result<(), LmError> {
        let bad = |m: String| Err(LmError::Format(m));
        if self.kind != KIND {
            return bad(format!("a job spec of kind {:?}, not {KIND:?}", self.kind));
        }
        if self.version != VERSION {
            return bad(format!(
                "lm job spec version {} is not {VERSION}: upgrade Pedals to run this job",
                self.version
            ));
        }
        if !(1..=MAX_CHUNK).contains(&self.chunk) {
            return bad(format!(
                "a chunk of {} prompts: it must be 1 to {MAX_CHUNK}",
                self.chunk
            ));
        }
        if self.count == 0 || self.steps != self.count.div_ceil(self.chunk) {
            return bad(format!(
                "{} prompts in chunks of {} are not {} chunks",
                self.count, self.chunk, self.steps
            ));
        }
        if self.steps > u64::from(u32::MAX) {
            return bad(format!("{} chunks: a job has at most 2^32 - 1", self.steps));
        }
        if !(1..=MAX_TOKENS).contains(&self.max_tokens) {
            return bad(format!(
                "max_tokens = {}: it must be 1 to {MAX_TOKENS}",
                self.max_tokens
            ));
        }
        if self.top_p_q16 == 0 || self.top_p_q16 > 1 << 16 {
            return bad(format!(
                "top_p_q16 = {} is outside 1..=65536",
                self.top_p_q16
            ));
        }
        if self.stop.iter().any(String::is_empty) {
            return bad("a stop sequence is empty".into());
        }
        self.model_cid()?;
        self.prompts_cid()?;
        Ok(())
    }
}

impl LmJobSpec {
    /// The generation parameters.
    pub fn params(&self) -> GenParams {
        GenParams {
            max_tokens: self.max_tokens as usize,
            sampling: Sampling {
                temperature_q16: self.temperature_q16,
                top_k: self.top_k as usize,
                top_p_q16: self.top_p_q16,
                seed: self.seed,
            },
            stop: self.stop.clone(),
        }
    }

    /// The model's CID.
    pub fn model_cid(&self) -> Result<Cid, LmError> {
        parse_cid(&self.model).map_err(|e| LmError::Format(format!("model CID: {e}")))
    }

    /// The prompts file's CID.
    pub fn prompts_cid(&self) -> Result<Cid, LmError> {
        parse_cid(&self.prompts).map_err(|e| LmError::Format(format!("prompts CID: {e}")))
    }

    /// Loads and checks a job's files against this spec: the model (its stored bytes) and
    /// the prompts, tokenized with the model's tokenizer; every prompt must leave room for
    /// `max_tokens` in the context. `max_chunk_bytes` bounds one chunk's committed bytes (a
    /// demanded chunk goes on-chain in one transaction). Run by the requester before it
    /// posts and by a worker before it claims.
    pub fn load(
        &self,
        model: &[u8],
        prompts: &[u8],
        max_chunk_bytes: u64,
    ) -> Result<LmJobInputs, LmError> {
        self.validate()?;
        crate::spec::named_by(model, &self.model_cid()?, "model")?;
        crate::spec::named_by(prompts, &self.prompts_cid()?, "prompts")?;
        let exact = ExactModel::from_bytes(model)?;
        let tokenizer = exact
            .tokenizer
            .as_deref()
            .map(Tokenizer::from_bytes)
            .transpose()?;
        if !self.stop.is_empty() && tokenizer.is_none() {
            return Err(LmError::Format(
                "stop sequences need the model's tokenizer, and this model has none".into(),
            ));
        }
        let ids = batch::parse_prompts(prompts, tokenizer.as_ref())?;
        if ids.len() as u64 != self.count {
            return Err(LmError::Format(format!(
                "the spec names {} prompts but the file holds {}",
                self.count,
                ids.len()
            )));
        }
        // A token the model does not have would fail the run after the claim.
        for (j, p) in ids.iter().enumerate() {
            exact
                .check_tokens(p, 0)
                .map_err(|e| LmError::Format(format!("prompt {j}: {e}; fix the prompts file")))?;
        }
        let context = exact.config.context as u64;
        if let Some((j, p)) = ids
            .iter()
            .enumerate()
            .find(|(_, p)| p.len() as u64 + self.max_tokens > context)
        {
            return Err(LmError::Format(format!(
                "prompt {j} has {} tokens: with max_tokens = {} it does not fit the model's \
                 context of {context}; shorten it or ask for fewer tokens",
                p.len(),
                self.max_tokens
            )));
        }
        let per_token = tokenizer.as_ref().map_or(0, Tokenizer::max_token_bytes) as u64;
        let bound = chunk_bytes_bound(self.chunk, self.max_tokens, per_token);
        if bound > max_chunk_bytes {
            return Err(LmError::Format(format!(
                "a chunk's completions may take up to {bound} bytes, more than the \
                 {max_chunk_bytes} that one transaction publishes if the chunk is demanded; ask \
                 for smaller chunks or fewer max_tokens"
            )));
        }
        Ok(LmJobInputs {
            model: exact,
            model_bytes_hash: pedals_core::checkpoint_hash(model),
            tokenizer,
            prompts: ids,
        })
    }
}

/// The most bytes one chunk's lines can take: per line, 96 bytes of JSON around the values,
/// and per new token its id (10 digits and a comma) and its text (each byte of a token's
/// string escaped as `\u00XX` at worst, 6 bytes; a lossy decode's U+FFFD is 3).
pub fn chunk_bytes_bound(chunk: u64, max_tokens: u64, max_token_bytes: u64) -> u64 {
    let per_token = 11 + 6 * max_token_bytes;
    chunk.saturating_mul(96u64.saturating_add(max_tokens.saturating_mul(per_token)))
}

/// A job's inputs, loaded and checked.
pub struct LmJobInputs {
    /// The model.
    pub model: ExactModel,
    /// `h_0`: the checkpoint hash of the stored model's bytes.
    pub model_bytes_hash: B256,
    /// Its tokenizer, when it has one.
    pub tokenizer: Option<Tokenizer>,
    /// Every prompt's token ids.
    pub prompts: Vec<Vec<u32>>,
}

impl LmJobInputs {
    /// The committed bytes of chunk `index`.
    pub fn run_chunk(&self, spec: &LmJobSpec, index: u64) -> Result<Vec<u8>, LmError> {
        batch::run_chunk(
            &self.model,
            self.tokenizer.as_ref(),
            &self.prompts,
            &spec.params(),
            spec.chunk as usize,
            index as usize,
        )
    }
}
