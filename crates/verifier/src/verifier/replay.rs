//! Re-execution: a sampled step fetched from the worker, replayed on the blocking pool and
//! compared with the worker's claim; a state that is no state of the model blames the step
//! before it.

use std::sync::Arc;

use alloy::primitives::B256;
use pedals_ml::{MlpState, Trainer, exact::CpuOps};
use pedals_p2p::PeerId;
use tracing::warn;

use super::{JobCheck, Replayed, Verifier};
use crate::{VerifierError, game::StepContext};

impl Verifier {
    /// The verified checkpoint of `step` from the worker: from the peer its signed progress
    /// came from, then from the providers of its account's key and of its result.
    pub(super) async fn fetch(
        &self,
        id: u64,
        check: &JobCheck,
        step: u64,
    ) -> Option<pedals_p2p::VerifiedCheckpoint> {
        let own = self
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&check.worker)
            .copied();
        let mut peers: Vec<PeerId> = own.into_iter().collect();
        peers.extend(check.providers.iter().filter(|p| Some(**p) != own));
        for peer in peers {
            match self.net.fetch_checkpoint(peer, id, step, check.claim).await {
                Ok(o) => return Some(o),
                Err(e) => {
                    warn!(target: "pedals::validator", job = id, step, %peer, error = %e, "checkpoint not served")
                }
            }
        }
        None
    }

    /// `h_step` is committed but no state of the job's model, so the step that led to it is
    /// wrong: queue step `step - 1` to be checked first; for step 0 (the trace does not start
    /// from the spec's model), challenge step 0 from the initial model at once.
    pub(super) async fn blame_step_before(
        &self,
        check: &mut JobCheck,
        step: u64,
    ) -> Result<(), VerifierError> {
        if step > 0 {
            check.pending.push_front(step - 1);
            return Ok(());
        }
        let init = check.init_state()?;
        if let Replayed::Mismatch(ctx, mine) = self.replay(check, 0, init, B256::ZERO).await? {
            check.to_challenge = Some((ctx, mine));
        }
        Ok(())
    }

    /// Re-executes `step` from `before` and compares the result with the worker's `claimed`.
    /// The work (seconds of CPU for a large model) runs on the blocking pool, so that the
    /// health endpoint and the network keep answering meanwhile.
    pub(super) async fn replay(
        &self,
        check: &JobCheck,
        step: u64,
        before: MlpState,
        claimed: B256,
    ) -> Result<Replayed, VerifierError> {
        let spec = check.spec.clone();
        let dataset = check.dataset.clone();
        let threads = self.config.threads;
        // To audit, the same one step also yields the step's audit leaf.
        let audit = check.audit_root.is_some();
        let (mine, leaf, ctx) = tokio::task::spawn_blocking(move || {
            let trainer = Trainer::new(CpuOps::new(threads), spec.train.clone())?;
            let (after, leaf) = if audit {
                let (after, leaf) = trainer.replay_step_audited(&dataset, &before, step)?;
                (after, Some(leaf))
            } else {
                (trainer.replay_step(&dataset, &before, step)?, None)
            };
            let mine = after.state_hash()?;
            if mine == claimed {
                return Ok::<_, VerifierError>((mine, leaf, None));
            }
            let trace = trainer.op_trace(&dataset, &before, step)?;
            let ctx = StepContext::new(spec, dataset, step, before, trace)?;
            Ok((mine, None, Some(ctx)))
        })
        .await
        .map_err(|e| VerifierError::Job(format!("the re-execution stopped: {e}")))??;
        self.stats.steps_checked.inc();
        // A step re-executed is a sign of life, though the round goes on.
        self.stats.health.round_ok();
        let Some(ctx) = ctx else {
            return Ok(Replayed::Reproduced(leaf));
        };
        self.stats.mismatches.inc();
        warn!(target: "pedals::validator", step, worker = %claimed, recomputed = %mine, "step does not reproduce: challenging");
        Ok(Replayed::Mismatch(Arc::new(ctx), mine))
    }
}
