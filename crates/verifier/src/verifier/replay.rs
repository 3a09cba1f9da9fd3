//! Re-execution: a sampled step fetched from the worker, replayed on the blocking pool and
//! compared with the worker's claim; a state that is no state of the model blames the step
//! before it.

use alloy::primitives::B256;
use pedals_p2p::PeerId;
use tracing::warn;

use super::{JobCheck, Replayed, Verifier};
use crate::VerifierError;
use crate::work::{Before, Replay};

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
    /// from the spec's model), challenge step 0 from the initial state at once.
    pub(super) async fn blame_step_before(
        &self,
        check: &mut JobCheck,
        step: u64,
    ) -> Result<(), VerifierError> {
        if step > 0 {
            check.pending.push_front(step - 1);
            return Ok(());
        }
        let init = check.work.initial(&check.template)?;
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
        before: Before,
        claimed: B256,
    ) -> Result<Replayed, VerifierError> {
        let work = check.work.clone();
        let threads = self.config.threads;
        // To audit, the same one step also yields the step's audit leaf.
        let audit = check.audit_root.is_some();
        let Replay {
            mine,
            leaf,
            disputed,
        } = tokio::task::spawn_blocking(move || work.replay(threads, audit, step, before, claimed))
            .await
            .map_err(|e| VerifierError::Job(format!("the re-execution stopped: {e}")))??;
        self.stats.steps_checked.inc();
        // A step re-executed is a sign of life, though the round goes on.
        self.stats.health.round_ok();
        let Some(ctx) = disputed else {
            return Ok(Replayed::Reproduced(leaf));
        };
        self.stats.mismatches.inc();
        warn!(target: "pedals::validator", step, worker = %claimed, recomputed = %mine, "step does not reproduce: challenging");
        Ok(Replayed::Mismatch(ctx, mine))
    }
}
