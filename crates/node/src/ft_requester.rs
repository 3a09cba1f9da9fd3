//! The requester's side of a fine-tuning job (`lm-finetune`): post the spec with the stored
//! model and the dataset, then fetch the final state, check it against the worker's commitment,
//! and re-execute sampled steps from the worker's own checkpoints to check them.

use std::time::Duration;

use pedals_chain::{JobMarket, TxOutcome};
use pedals_core::cid_from_bytes;
use pedals_lm::CanonicalSpec as _;
use pedals_lm::{FinetuneInputs, FinetuneSpec, JobState};
use pedals_p2p::TraceClaim;

use crate::{NodeError, PostTerms, Requester};

/// The files of a fine-tuning job, as the requester has them.
#[derive(Debug, Clone)]
pub struct FtJobFiles {
    /// The spec (its hash goes on-chain).
    pub spec: FinetuneSpec,
    /// The stored model's bytes.
    pub model: Vec<u8>,
    /// The dataset (JSONL).
    pub dataset: Vec<u8>,
}

impl FtJobFiles {
    /// Checks the files as a worker will before it claims.
    pub fn load(&self) -> Result<FinetuneInputs, NodeError> {
        Ok(self.spec.load(&self.model, &self.dataset)?)
    }
}

/// A fine-tuning job's final state, fetched and checked against the worker's commitment.
pub struct FtJobResult {
    /// The job's id.
    pub id: u64,
    /// The job's spec.
    pub spec: FinetuneSpec,
    /// What the worker committed.
    pub submitted: JobMarket::ResultSubmitted,
    /// The worker's account.
    pub worker: alloy::primitives::Address,
    /// The job's inputs, loaded here.
    pub inputs: std::sync::Arc<FinetuneInputs>,
    /// The final state.
    pub state: JobState,
}

/// What re-executing one step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepCheck {
    /// The step, run here from the worker's state before it, gives the state it committed.
    Matches,
    /// It gives another state: the worker's trace is wrong at this step.
    Differs,
    /// No node of the worker served the state before the step, verified against its trace.
    Unavailable(String),
}

impl Requester {
    /// Stores and provides the files, has the fine-tuning game admit the spec (no transaction
    /// when it was admitted before), then posts the job with `terms.payment` in escrow as an
    /// optimistic training job: any step can be challenged and narrowed to one element on-chain
    /// (docs/protocol.md §9). Every check that can fail runs before the first transaction.
    pub async fn post_ft(
        &self,
        files: &FtJobFiles,
        terms: &PostTerms,
    ) -> Result<(u64, TxOutcome), NodeError> {
        let inputs = files.load()?;
        let spec = &files.spec;
        let args = pedals_dispute::lm::lm_spec_args(spec, &inputs)
            .map_err(|e| NodeError::Job(e.to_string()))?;
        // Checked before any transaction: the game refuses a spec it could not adjudicate
        // (`Inadmissible` names the field), and must rebuild this very spec.
        let (hash, admitted) = self.market().finetune_admission(&args, spec.steps).await?;
        if hash != spec.spec_hash() {
            return Err(NodeError::Job(format!(
                "the fine-tuning game rebuilds the spec as {hash}, not {}: it cannot be \
                 disputed as written",
                spec.spec_hash()
            )));
        }
        self.check_funds(terms).await?;
        let posting = crate::requester::Posting {
            spec_hash: hash,
            spec: spec.to_canonical_bytes(),
            dataset: &files.dataset,
            model: &files.model,
            steps: spec.steps,
            verification: pedals_core::Verification::Optimistic,
        };
        let request = self.store_files(&posting).await?;
        if !admitted {
            let (_, tx) = self.market().admit_finetune_spec(args, spec.steps).await?;
            if let Some(tx) = tx {
                tracing::info!(target: "pedals::requester", tx = %tx.hash, spec = %hash, "spec admitted by the fine-tuning game");
            }
        }
        self.post_request(request, &posting, terms).await
    }

    /// The spec of job `id`, if it is a fine-tuning job.
    pub async fn ft_spec(
        &self,
        id: u64,
        patience: Duration,
    ) -> Result<Option<FinetuneSpec>, NodeError> {
        let (job, _) = self.job(id).await?;
        let bytes = self
            .blob(
                pedals_ml::JobSpec::cid_for_hash(&job.specHash),
                "spec",
                patience,
            )
            .await?;
        if !FinetuneSpec::is_finetune(&bytes) {
            return Ok(None);
        }
        Ok(Some(FinetuneSpec::from_canonical_bytes(&bytes)?))
    }

    /// The final state of fine-tuning job `id`: fetched (waiting up to `patience` for a
    /// provider), with the model and dataset, and checked to hash to the final state hash the
    /// worker posted.
    pub async fn ft_result(&self, id: u64, patience: Duration) -> Result<FtJobResult, NodeError> {
        let (job, submitted, spec) = self.submitted_with_spec(id, patience).await?;
        if !FinetuneSpec::is_finetune(&spec) {
            return Err(NodeError::Job(format!("job {id} is not a fine-tuning job")));
        }
        let spec = FinetuneSpec::from_canonical_bytes(&spec)?;
        let result_cid = cid_from_bytes(&submitted.resultCid)
            .map_err(|e| NodeError::Job(format!("the posted result CID is invalid: {e}")))?;
        let bytes = self.blob(result_cid, "result", patience).await?;
        if pedals_core::checkpoint_hash(&bytes) != submitted.finalStateHash {
            return Err(NodeError::Job(format!(
                "the result {result_cid} is not the final state the worker posted"
            )));
        }
        let model = self.blob(spec.model_cid()?, "model", patience).await?;
        let dataset = self.blob(spec.dataset_cid()?, "dataset", patience).await?;
        let s = spec.clone();
        let (inputs, state) = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
            let inputs = s.load(&model, &dataset)?;
            let state = inputs.state_from(&bytes)?;
            Ok((inputs, state))
        })
        .await
        .map_err(|e| NodeError::Job(e.to_string()))??;
        Ok(FtJobResult {
            id,
            spec,
            submitted,
            worker: job.worker,
            inputs: std::sync::Arc::new(inputs),
            state,
        })
    }

    /// Re-executes steps `steps` (1-based: step `s` takes the state after `s − 1` steps to
    /// the state after `s`) of a result: the state before each is fetched from the worker's
    /// node and verified against the trace root it posted, the step is run here, and the state
    /// hash it gives is compared with the one the worker committed for the state after it.
    /// The first entry, step 0, checks the worker's first state against the spec's initial
    /// state.
    pub async fn recheck_ft(
        &self,
        result: &FtJobResult,
        steps: &[u64],
    ) -> Result<Vec<(u64, StepCheck)>, NodeError> {
        let net = self.net.as_ref().ok_or_else(|| {
            NodeError::Job("re-executing steps needs the network: start the node with peers".into())
        })?;
        let claim = TraceClaim {
            root: result.submitted.traceRoot,
            steps: result.spec.steps,
        };
        let mut peers = net
            .find_providers(pedals_p2p::account_key(result.worker))
            .await
            .unwrap_or_default();
        if let Ok(cid) = cid_from_bytes(&result.submitted.resultCid) {
            for p in net.find_providers(cid).await.unwrap_or_default() {
                if !peers.contains(&p) {
                    peers.push(p);
                }
            }
        }
        // Step 0 is the start: the worker's first state must be the spec's initial state.
        let mut out = Vec::with_capacity(steps.len() + 1);
        for s in std::iter::once(0).chain(steps.iter().copied()) {
            let at = s.saturating_sub(1);
            let mut opened = None;
            let mut why = Vec::new();
            for &peer in &peers {
                match net.fetch_checkpoint(peer, result.id, at, claim).await {
                    Ok(c) => {
                        opened = Some(c);
                        break;
                    }
                    Err(e) => why.push(format!("{peer}: {e}")),
                }
            }
            let Some(before) = opened else {
                let reason = if peers.is_empty() {
                    "no node of the worker was found".to_owned()
                } else {
                    why.join("; ")
                };
                out.push((s, StepCheck::Unavailable(reason)));
                continue;
            };
            let inputs = result.inputs.clone();
            let state = before.state;
            let (ours, theirs) = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
                let hash = |st: &JobState| -> Result<_, NodeError> {
                    Ok(pedals_core::checkpoint_hash(&inputs.state_bytes(st)?))
                };
                if s == 0 {
                    return Ok((
                        Some(hash(&inputs.initial()?)?),
                        Some(pedals_core::checkpoint_hash(&state)),
                    ));
                }
                let mut st = inputs.state_from(&state)?;
                // A state that says it is at another step would run another step's batch.
                if st.step() != at {
                    return Ok((None, before.next_hash));
                }
                inputs.step(&mut st);
                Ok((Some(hash(&st)?), before.next_hash))
            })
            .await
            .map_err(|e| NodeError::Job(e.to_string()))??;
            let check = if ours.is_some() && ours == theirs {
                StepCheck::Matches
            } else {
                StepCheck::Differs
            };
            out.push((s, check));
        }
        Ok(out)
    }
}
