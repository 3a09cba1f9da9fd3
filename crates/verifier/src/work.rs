//! The two kinds of job a validator checks: MLP/CNN training (`pedals_ml`, the game
//! `DisputeGame`) and fine-tuning of a language model, LoRA or full (`pedals_lm`, the game
//! `LmDisputeGame`, docs/protocol.md §9). Everything the daemon does with a job — open a served
//! state, re-execute a step, build the op trace of a step it disputes, play the game — goes
//! through the types here, so the daemon's rounds, journal and restarts are the same for both.

use std::sync::Arc;

use alloy::primitives::B256;
use pedals_chain::{GameKind, Market};
use pedals_core::{JobId, ModelState, parse_cid};
use pedals_dispute::game::{StepContext, Turn, challenge};
use pedals_dispute::lm::{LmStepContext, challenge_lm};
use pedals_lm::JobState;
use pedals_lm::{CanonicalSpec as _, FinetuneInputs, FinetuneSpec};
use pedals_ml::{Dataset, JobSpec, MlpState, Trainer, exact::CpuOps};
use pedals_p2p::Client;

use crate::VerifierError;

/// A job's spec and files, loaded and checked.
#[derive(Clone)]
pub(crate) enum Work {
    /// An MLP or CNN training job.
    Mlp {
        spec: JobSpec,
        dataset: Arc<Dataset>,
    },
    /// A fine-tuning job (LoRA or full).
    Ft {
        spec: FinetuneSpec,
        inputs: Arc<FinetuneInputs>,
    },
}

/// A state before a step, of the job's kind.
pub(crate) enum Before {
    Mlp(MlpState),
    Ft(JobState),
}

/// A step this validator disputes: what its side of the game is played from.
#[derive(Clone)]
pub(crate) enum Disputed {
    Mlp(Arc<StepContext>),
    Ft(Arc<LmStepContext>),
}

/// One re-executed step: this validator's hash of the state after it, the step's audit leaf
/// when asked for, and the disputed step when the hash is not the worker's.
pub(crate) struct Replay {
    pub(crate) mine: B256,
    pub(crate) leaf: Option<B256>,
    pub(crate) disputed: Option<Disputed>,
}

impl Disputed {
    /// The disputed step.
    pub(crate) fn step(&self) -> u64 {
        match self {
            Self::Mlp(c) => c.step,
            Self::Ft(c) => c.step,
        }
    }

    /// The canonical bytes of the state before the step (kept by the journal).
    pub(crate) fn state_bytes(&self) -> Result<Vec<u8>, VerifierError> {
        Ok(match self {
            Self::Mlp(c) => c.state.to_bytes()?,
            Self::Ft(c) => c.inputs.state.to_canonical_bytes()?,
        })
    }

    /// The market client playing this step's game.
    pub(crate) fn market(&self, market: &Market) -> Market {
        market.playing(match self {
            Self::Mlp(_) => GameKind::Mlp,
            Self::Ft(_) => GameKind::Lm,
        })
    }

    /// Makes the challenger's move the game calls for, if it is this side's turn.
    pub(crate) async fn challenge(
        &self,
        market: &Market,
        job_id: JobId,
    ) -> Result<Turn, VerifierError> {
        Ok(match self {
            Self::Mlp(c) => challenge(market, job_id, c).await?,
            Self::Ft(c) => challenge_lm(market, job_id, c).await?,
        })
    }
}

/// Why a job is not one to check.
pub(crate) const NOT_DISPUTABLE: &str = "not a disputable training or fine-tuning job";

/// Runs `f` on a rayon pool of `threads` threads: a fine-tuning step's parallel ops use the
/// validator's thread budget, as an MLP step's `CpuOps` does.
fn in_pool<T: Send>(
    threads: usize,
    f: impl FnOnce() -> Result<T, VerifierError> + Send,
) -> Result<T, VerifierError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| VerifierError::Job(format!("cannot start {threads} threads: {e}")))?
        .install(f)
}

fn other_kind() -> VerifierError {
    VerifierError::Job("a state of another kind of job than the one checked".into())
}

impl Work {
    /// The memory a challenged step's op trace takes (a fine-tuning job's; `None` for an MLP
    /// job, whose traces are small).
    pub(crate) fn op_trace_bytes(&self) -> Result<Option<u64>, VerifierError> {
        match self {
            Self::Ft { inputs, .. } => Ok(Some(inputs.op_trace_bytes()?)),
            Self::Mlp { .. } => Ok(None),
        }
    }

    /// Loads the job whose canonical spec is `spec_bytes`, fetching the files a re-execution
    /// reads over `net` (an MLP job's dataset; a fine-tuning job's model and dataset). `None`
    /// for a job no game can dispute (batch inference, of an MLP or a language model).
    pub(crate) async fn fetch(
        net: &Client,
        spec_bytes: &[u8],
    ) -> Result<Option<Self>, VerifierError> {
        if pedals_lm::FinetuneSpec::is_finetune(spec_bytes) {
            let spec = FinetuneSpec::from_canonical_bytes(spec_bytes)?;
            let (model, _) = net.fetch_blob(spec.model_cid()?).await?;
            let (dataset, _) = net.fetch_blob(spec.dataset_cid()?).await?;
            let loaded = spec.clone();
            // Parsing, tokenizing and hashing a model and its dataset is CPU work.
            let inputs = tokio::task::spawn_blocking(move || loaded.load(&model, &dataset))
                .await
                .map_err(|e| VerifierError::Job(format!("loading the job stopped: {e}")))??;
            let inputs = Arc::new(inputs);
            return Ok(Some(Self::Ft { spec, inputs }));
        }
        if pedals_lm::LmJobSpec::is_lm(spec_bytes) {
            return Ok(None);
        }
        let spec = JobSpec::from_canonical_bytes(spec_bytes)?;
        if spec.inference.is_some() || spec.dispute.is_none() {
            return Ok(None);
        }
        let (data_bytes, _) = net.fetch_blob(parse_cid(&spec.dataset)?).await?;
        let dataset = Arc::new(Dataset::from_canonical_bytes(&data_bytes)?);
        Ok(Some(Self::Mlp { spec, dataset }))
    }

    /// The job's initial state as a template of every state's names and shapes: an MLP job's
    /// posted model (fetched over `net`), a fine-tuning job's initial state.
    pub(crate) async fn template(&self, net: &Client) -> Result<ModelState, VerifierError> {
        Ok(match self {
            Self::Mlp { spec, .. } => {
                let (model_bytes, _) = net.fetch_blob(parse_cid(&spec.model)?).await?;
                ModelState::from_canonical_bytes(&model_bytes)?
            }
            Self::Ft { inputs, .. } => {
                ModelState::from_canonical_bytes(&inputs.state_bytes(&inputs.initial()?)?)?
            }
        })
    }

    /// Whether the validator audits the job's steps (MLP jobs only: fine-tuning steps have no
    /// audit leaf).
    pub(crate) fn audits(&self) -> bool {
        matches!(self, Self::Mlp { .. })
    }

    /// The state before `step` from its canonical bytes; `None` when they are no state of the
    /// job's model (other tensors or shapes, or, for fine-tuning, a state at another step):
    /// then the step that led to them is wrong.
    pub(crate) fn open(&self, step: u64, bytes: &[u8]) -> Option<Before> {
        match self {
            Self::Mlp { spec, .. } => MlpState::from_bytes(&spec.train.model, bytes)
                .ok()
                .map(Before::Mlp),
            Self::Ft { inputs, .. } => inputs
                .state_from(bytes)
                .ok()
                .filter(|s| s.step() == step)
                .map(Before::Ft),
        }
    }

    /// The job's initial state: the posted model's (`template`), or the spec's.
    pub(crate) fn initial(&self, template: &ModelState) -> Result<Before, VerifierError> {
        Ok(match self {
            Self::Mlp { spec, .. } => Before::Mlp(MlpState::from_bytes(
                &spec.train.model,
                &template.to_canonical_bytes()?,
            )?),
            Self::Ft { inputs, .. } => Before::Ft(inputs.initial()?),
        })
    }

    /// Re-executes `step` from `before` (CPU work: run it on the blocking pool) and compares
    /// the state it gives with the worker's `claimed` hash; the op trace is built only for a
    /// step that differs.
    pub(crate) fn replay(
        &self,
        threads: usize,
        audit: bool,
        step: u64,
        before: Before,
        claimed: B256,
    ) -> Result<Replay, VerifierError> {
        match (self, before) {
            (Self::Mlp { spec, dataset }, Before::Mlp(before)) => {
                let trainer = Trainer::new(CpuOps::new(threads), spec.train.clone())?;
                let (after, leaf) = if audit {
                    let (after, leaf) = trainer.replay_step_audited(dataset, &before, step)?;
                    (after, Some(leaf))
                } else {
                    (trainer.replay_step(dataset, &before, step)?, None)
                };
                let mine = after.state_hash()?;
                if mine == claimed {
                    return Ok(Replay {
                        mine,
                        leaf,
                        disputed: None,
                    });
                }
                let trace = trainer.op_trace(dataset, &before, step)?;
                let ctx = StepContext::new(spec.clone(), dataset.clone(), step, before, trace)?;
                Ok(Replay {
                    mine,
                    leaf: None,
                    disputed: Some(Disputed::Mlp(Arc::new(ctx))),
                })
            }
            (Self::Ft { spec, inputs }, Before::Ft(before)) => in_pool(threads, || {
                let mut after = before.clone();
                inputs.step(&mut after);
                let mine = inputs.state_hash(&after)?;
                let disputed = (mine != claimed)
                    .then(|| LmStepContext::new(spec.clone(), inputs.clone(), &before))
                    .transpose()?
                    .map(|c| Disputed::Ft(Arc::new(c)));
                Ok(Replay {
                    mine,
                    leaf: None,
                    disputed,
                })
            }),
            _ => Err(other_kind()),
        }
    }

    /// The disputed `step` from the state before it (after a restart, from the journal's
    /// bytes): the op trace is a re-execution, run it on the blocking pool.
    pub(crate) fn disputed(
        &self,
        threads: usize,
        step: u64,
        before: Before,
    ) -> Result<Disputed, VerifierError> {
        match (self, before) {
            (Self::Mlp { spec, dataset }, Before::Mlp(state)) => {
                let trainer = Trainer::new(CpuOps::new(threads), spec.train.clone())?;
                let trace = trainer.op_trace(dataset, &state, step)?;
                let ctx = StepContext::new(spec.clone(), dataset.clone(), step, state, trace)?;
                Ok(Disputed::Mlp(Arc::new(ctx)))
            }
            (Self::Ft { spec, inputs }, Before::Ft(state)) => in_pool(threads, || {
                Ok(Disputed::Ft(Arc::new(LmStepContext::new(
                    spec.clone(),
                    inputs.clone(),
                    &state,
                )?)))
            }),
            _ => Err(other_kind()),
        }
    }
}
