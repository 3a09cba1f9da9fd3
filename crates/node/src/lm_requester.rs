//! The requester's side of a language-model batch job (`lm-generate`): post the spec with the
//! stored model and the prompts file, then fetch the completions, check them against the
//! trace the worker posted, and re-run any chunk to compare its bytes.

use pedals_lm::CanonicalSpec as _;
use std::time::Duration;

use pedals_chain::{JobMarket, TxOutcome};
use pedals_core::{TraceCommitment, cid_from_bytes};
use pedals_lm::{LmJobInputs, LmJobSpec, batch::CompletionLine};

use crate::{MAX_BLOB_BYTES, NodeError, PostTerms, Requester};

/// The files of a language-model batch job, as the requester has them.
#[derive(Debug, Clone)]
pub struct LmJobFiles {
    /// The spec (its hash goes on-chain).
    pub spec: LmJobSpec,
    /// The stored model's bytes.
    pub model: Vec<u8>,
    /// The prompts file (JSONL).
    pub prompts: Vec<u8>,
}

impl LmJobFiles {
    /// Checks the files as a worker will before it claims: the CIDs, every prompt against
    /// the model's tokenizer and context, a chunk's size against what a demand publishes.
    pub fn load(&self) -> Result<LmJobInputs, NodeError> {
        Ok(self.spec.load(&self.model, &self.prompts, MAX_BLOB_BYTES)?)
    }
}

/// A language-model job's completions, fetched and checked against the worker's commitment.
#[derive(Debug, Clone)]
pub struct LmJobResult {
    /// The job's spec.
    pub spec: LmJobSpec,
    /// What the worker committed.
    pub submitted: JobMarket::ResultSubmitted,
    /// The completions: one JSON line per prompt, in order.
    pub completions: Vec<u8>,
}

impl LmJobResult {
    /// The completion lines.
    pub fn lines(&self) -> Result<Vec<CompletionLine>, NodeError> {
        Ok(pedals_lm::batch::completion_lines(&self.completions)?)
    }

    /// Chunk `index`'s committed bytes.
    pub fn chunk(&self, index: u64) -> Option<Vec<u8>> {
        pedals_lm::batch::result_chunk(
            &self.completions,
            self.spec.chunk as usize,
            usize::try_from(index).ok()?,
        )
    }
}

impl Requester {
    /// Whether job `id`'s spec (fetched if need be) is a language-model job's.
    pub async fn is_lm_job(&self, id: u64, patience: Duration) -> Result<bool, NodeError> {
        let (job, _) = self.job(id).await?;
        let spec = self
            .blob(
                pedals_ml::JobSpec::cid_for_hash(&job.specHash),
                "spec",
                patience,
            )
            .await?;
        Ok(LmJobSpec::is_lm(&spec))
    }

    /// The job `id`, what its worker submitted, and its spec's bytes (fetched, waiting up to
    /// `patience` for a provider, if this node lacks them).
    pub(crate) async fn submitted_with_spec(
        &self,
        id: u64,
        patience: Duration,
    ) -> Result<
        (
            pedals_chain::IJobMarket::Job,
            JobMarket::ResultSubmitted,
            Vec<u8>,
        ),
        NodeError,
    > {
        let (job, status) = self.job(id).await?;
        let submitted = self
            .market()
            .submitted_result(pedals_core::JobId(id))
            .await?
            .ok_or_else(|| {
                NodeError::Job(format!("job {id} has no result yet (it is {status:?})"))
            })?;
        let spec = self
            .blob(
                pedals_ml::JobSpec::cid_for_hash(&job.specHash),
                "spec",
                patience,
            )
            .await?;
        Ok((job, submitted, spec))
    }

    /// Stores and provides the files, then posts the job as a batch-inference job with
    /// `terms.payment` in escrow. Every check that can fail runs before the transaction.
    pub async fn post_lm(
        &self,
        files: &LmJobFiles,
        terms: &PostTerms,
    ) -> Result<(u64, TxOutcome), NodeError> {
        files.load()?;
        let spec = &files.spec;
        self.post_lm_kind(
            (spec.spec_hash(), spec.to_canonical_bytes()),
            (&files.prompts, &files.model),
            spec.steps,
            terms,
        )
        .await
    }

    /// The completions of job `id`: fetched (waiting up to `patience` for a provider) and
    /// checked to rebuild the trace the worker posted, `h_0` from the model.
    pub async fn lm_result(&self, id: u64, patience: Duration) -> Result<LmJobResult, NodeError> {
        let (_, submitted, spec_bytes) = self.submitted_with_spec(id, patience).await?;
        let spec = LmJobSpec::from_canonical_bytes(&spec_bytes)?;
        let result_cid = cid_from_bytes(&submitted.resultCid)
            .map_err(|e| NodeError::Job(format!("the posted result CID is invalid: {e}")))?;
        let completions = self.blob(result_cid, "result", patience).await?;
        let model = self.blob(spec.model_cid()?, "model", patience).await?;
        let hashes = pedals_lm::batch::result_trace(
            &completions,
            &model,
            spec.count as usize,
            spec.chunk as usize,
        )?;
        let trace = TraceCommitment::new(hashes)
            .map_err(|e| NodeError::Job(format!("the result's trace: {e}")))?;
        if trace.root() != submitted.traceRoot || trace.final_hash() != submitted.finalStateHash {
            return Err(NodeError::Job(format!(
                "the result {result_cid} does not rebuild the trace the worker posted"
            )));
        }
        Ok(LmJobResult {
            spec,
            submitted,
            completions,
        })
    }

    /// Re-runs chunks `chunks` of a result here (the model and prompts fetched if this node
    /// lacks them, waiting up to `patience`) and compares their bytes with the worker's;
    /// returns each chunk with whether it matched. The result was checked against the trace,
    /// so a chunk that matches is the one the worker committed to.
    pub async fn recheck_lm(
        &self,
        result: &LmJobResult,
        chunks: Vec<u64>,
        patience: Duration,
    ) -> Result<Vec<(u64, bool)>, NodeError> {
        let spec = result.spec.clone();
        let model = self.blob(spec.model_cid()?, "model", patience).await?;
        let prompts = self.blob(spec.prompts_cid()?, "prompts", patience).await?;
        let theirs: Vec<Option<Vec<u8>>> = chunks.iter().map(|&c| result.chunk(c)).collect();
        tokio::task::spawn_blocking(move || {
            let inputs = spec.load(&model, &prompts, u64::MAX)?;
            chunks
                .into_iter()
                .zip(theirs)
                .map(|(c, theirs)| {
                    let ours = inputs.run_chunk(&spec, c)?;
                    Ok((c, theirs.as_deref() == Some(ours.as_slice())))
                })
                .collect()
        })
        .await
        .map_err(|e| NodeError::Job(e.to_string()))?
    }
}
