//! Batch inference for language models: a prompts file (JSONL) and a model in, completions
//! out, committed chunk by chunk exactly as the market commits a batch-inference job's chunks,
//! so that a validator or the requester can re-run any chunk and compare bytes.
//!
//! ```text
//!  prompts  = one JSON object per line: {"prompt": "text"} or {"prompt_ids": [1, 2, 3]}
//!  seed_j   = u64_be(keccak256("pedals.lm.prompt" ‖ u64_be(seed) ‖ u64_be(j))[0..8])
//!  line_j   = {"index":j,"tokens":[…],"text":…,"finish":…} + "\n"   (serde_json, fields in that order)
//!  chunk i  = lines [i·c, min((i+1)·c, n)),  its bytes the lines concatenated
//!  h_0      = checkpoint_hash(stored model bytes);  h_(i+1) = keccak256(chunk i's bytes)
//!  result   = every line in order
//! ```

use alloy_primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};

use crate::error::LmError;
use crate::generate::{Finish, GenParams};
use crate::sample::Sampling;
use crate::tokenizer::Tokenizer;
use crate::weights::ExactModel;

/// One prompt of a prompts file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptLine {
    prompt: Option<String>,
    prompt_ids: Option<Vec<u32>>,
}

/// One completion line of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionLine {
    /// The prompt's index in the file.
    pub index: u64,
    /// The new tokens.
    pub tokens: Vec<u32>,
    /// Their text (with a tokenizer).
    pub text: Option<String>,
    /// Why generation ended.
    pub finish: Finish,
}

/// Reads a prompts file into token ids; a bad line names its number and what to write.
pub fn parse_prompts(jsonl: &[u8], tok: Option<&Tokenizer>) -> Result<Vec<Vec<u32>>, LmError> {
    let text = std::str::from_utf8(jsonl)
        .map_err(|_| LmError::Format("the prompts file is not UTF-8".into()))?;
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |why: String| LmError::Format(format!("prompts line {}: {why}", n + 1));
        let p: PromptLine = serde_json::from_str(line).map_err(|e| {
            bad(format!(
                "{e}; write {{\"prompt\": \"text\"}} or {{\"prompt_ids\": [1, 2]}}"
            ))
        })?;
        let ids = match (p.prompt, p.prompt_ids) {
            (Some(t), None) => tok
                .ok_or_else(|| bad("a text prompt needs the model's tokenizer".into()))?
                .encode(&t)?,
            (None, Some(ids)) => ids,
            _ => return Err(bad("give exactly one of `prompt` and `prompt_ids`".into())),
        };
        if ids.is_empty() {
            return Err(bad("the prompt is empty".into()));
        }
        out.push(ids);
    }
    if out.is_empty() {
        return Err(LmError::Format("the prompts file has no prompts".into()));
    }
    Ok(out)
}

/// The sampling seed of prompt `j`.
pub fn prompt_seed(seed: u64, j: u64) -> u64 {
    let mut msg = b"pedals.lm.prompt".to_vec();
    msg.extend_from_slice(&seed.to_be_bytes());
    msg.extend_from_slice(&j.to_be_bytes());
    u64::from_be_bytes(keccak256(&msg)[..8].try_into().unwrap_or([0; 8]))
}

/// Chunks of `chunk` prompts in `prompts`.
pub fn chunk_count(prompts: usize, chunk: usize) -> usize {
    prompts.div_ceil(chunk.max(1))
}

/// The committed bytes of chunk `index`.
pub fn run_chunk(
    model: &ExactModel,
    tok: Option<&Tokenizer>,
    prompts: &[Vec<u32>],
    params: &GenParams,
    chunk: usize,
    index: usize,
) -> Result<Vec<u8>, LmError> {
    let start = index * chunk.max(1);
    if start >= prompts.len() {
        return Err(LmError::Format(format!(
            "chunk {index} is past the {} prompts",
            prompts.len()
        )));
    }
    let mut out = Vec::new();
    for (j, prompt) in prompts.iter().enumerate().skip(start).take(chunk.max(1)) {
        let sampling = Sampling {
            seed: prompt_seed(params.sampling.seed, j as u64),
            ..params.sampling
        };
        let g = model.generate(
            prompt,
            &GenParams {
                sampling,
                ..params.clone()
            },
            tok,
        )?;
        let line = CompletionLine {
            index: j as u64,
            tokens: g.tokens,
            text: g.text,
            finish: g.finish,
        };
        out.extend(serde_json::to_vec(&line).map_err(|e| LmError::Format(e.to_string()))?);
        out.push(b'\n');
    }
    Ok(out)
}

/// Every chunk and the trace `h_0 .. h_N` it commits to.
pub fn run(
    model: &ExactModel,
    tok: Option<&Tokenizer>,
    prompts: &[Vec<u32>],
    params: &GenParams,
    chunk: usize,
) -> Result<(Vec<B256>, Vec<Vec<u8>>), LmError> {
    let mut hashes = vec![pedals_core::checkpoint_hash(&model.to_bytes()?)];
    let mut chunks = Vec::new();
    for i in 0..chunk_count(prompts.len(), chunk) {
        let bytes = run_chunk(model, tok, prompts, params, chunk, i)?;
        hashes.push(keccak256(&bytes));
        chunks.push(bytes);
    }
    Ok((hashes, chunks))
}

/// The trace a result blob commits to: split into chunks of `chunk` lines; fails when it does
/// not hold exactly `prompts` lines.
pub fn result_trace(
    result: &[u8],
    model_bytes: &[u8],
    prompts: usize,
    chunk: usize,
) -> Result<Vec<B256>, LmError> {
    let lines: Vec<&[u8]> = result.split_inclusive(|&b| b == b'\n').collect();
    if lines.len() != prompts || lines.iter().any(|l| l.last() != Some(&b'\n')) {
        return Err(LmError::Format(format!(
            "a result of {} lines for {prompts} prompts",
            lines.len()
        )));
    }
    let mut hashes = vec![pedals_core::checkpoint_hash(model_bytes)];
    hashes.extend(lines.chunks(chunk.max(1)).map(|c| keccak256(c.concat())));
    Ok(hashes)
}

/// The completion lines of a result blob.
pub fn completion_lines(result: &[u8]) -> Result<Vec<CompletionLine>, LmError> {
    result
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(n, l)| {
            serde_json::from_slice(l).map_err(|e| {
                LmError::Format(format!("completion line {} does not parse: {e}", n + 1))
            })
        })
        .collect()
}

/// Chunk `index`'s committed bytes in a result blob of chunks of `chunk` lines.
pub fn result_chunk(result: &[u8], chunk: usize, index: usize) -> Option<Vec<u8>> {
    let lines: Vec<&[u8]> = result.split_inclusive(|&b| b == b'\n').collect();
    lines.chunks(chunk.max(1)).nth(index).map(<[&[u8]]>::concat)
}
