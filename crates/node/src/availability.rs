//! The worker's side of data availability (docs/protocol.md §7): when someone demands that
//! the state after a step of one of its jobs be published on-chain, the worker opens it
//! (its tensors' entries, proven in its trace) and publishes its rows, a bounded batch per
//! transaction (`WorkerConfig::publish_bytes_per_tx`), until the demand is met. A batch-inference chunk's outputs, whose leaf is the
//! hash of a blob, go out in one `publishBlob`.
//!
//! Every part goes through the sender with a write-ahead intent (`Action::Publish`). The next
//! part is built from the demand's cursor on-chain, and the previous part's intent is retired
//! only once it is mined, so a restarted worker re-broadcasts what it signed and never sends a
//! part twice.

use alloy::primitives::{B256, Bytes};
use pedals_chain::{ChainError, open_state_input, publish_blob_input, publish_rows_input};
use pedals_core::{ModelState, Publication as Plan};
use pedals_p2p::ContentSource;
use pedals_store::Action;
use tracing::{info, warn};

use crate::{NodeError, StoreSource, Worker, call};

/// A state ready to publish: its opening and its runs.
#[derive(Debug)]
pub(crate) struct Publication {
    step: u64,
    kind: Kind,
    proof: Vec<B256>,
    next: Option<(B256, Vec<B256>)>,
}

#[derive(Debug)]
enum Kind {
    State(Box<Plan>),
    Blob(Vec<u8>),
}

impl Publication {
    /// The publication of the state after `step` of job `id`, from what this node serves.
    fn build(source: &StoreSource, id: u64, step: u64) -> Result<Self, NodeError> {
        let opening = source
            .checkpoint(id, step)
            .map_err(NodeError::Job)?
            .ok_or_else(|| {
                NodeError::Job(format!(
                    "job {id} has no checkpoint after step {step} to publish"
                ))
            })?;
        let kind = match ModelState::from_canonical_bytes(&opening.state) {
            Ok(state) => Kind::State(Box::new(
                Plan::new(&state).map_err(|e| NodeError::Job(e.to_string()))?,
            )),
            Err(_) => Kind::Blob(opening.state),
        };
        Ok(Self {
            step,
            kind,
            proof: opening.proof.siblings,
            next: opening.next.map(|(h, p)| (h, p.siblings)),
        })
    }

    /// The calldata of the next part, given the demand's cursor; `None` once nothing is left.
    fn next_part(
        &self,
        job_id: pedals_core::JobId,
        opened: bool,
        tensor: u64,
        row: u64,
        budget: usize,
    ) -> Option<Bytes> {
        match &self.kind {
            Kind::Blob(blob) => Some(publish_blob_input(job_id, blob, &self.proof)),
            Kind::State(plan) if !opened => Some(open_state_input(
                job_id,
                plan.entries(),
                &self.proof,
                self.next.as_ref().map(|(h, p)| (*h, p.as_slice())),
            )),
            Kind::State(plan) => {
                // From wherever the cursor is: anyone may have published parts before.
                let runs = plan.runs_from(tensor as usize, row, budget);
                (!runs.is_empty()).then(|| publish_rows_input(job_id, plan.entries(), &runs))
            }
        }
    }
}

impl Worker {
    /// Sends the next part of the state demanded from job `id` (one transaction per round,
    /// so a worker on a slow uplink or a busy chain goes at its own pace; the demand's
    /// deadline is hours away). A part that reverts is built again next round.
    pub(crate) async fn publish_demanded(&self, id: u64) -> Result<(), NodeError> {
        #[cfg(debug_assertions)]
        if self.config.withhold {
            warn!(target: "pedals::node", job = id, "withholding the demanded state (debug switch)");
            return Ok(());
        }
        let job_id = pedals_core::JobId(id);
        // A part signed before a crash goes out first; a mined one is retired.
        if let Some(intent) = self.store.intent(id, Action::Publish)? {
            if intent.state.is_open() {
                let outcome = self.sender.drive(intent).await;
                self.store.retire_intent(id, Action::Publish)?;
                match outcome {
                    Ok(_) => return Ok(()),
                    Err(e @ (ChainError::TxReverted(_) | ChainError::TxDropped { .. })) => {
                        warn!(target: "pedals::node", job = id, error = %e, "a publication part failed; building it again");
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                self.store.retire_intent(id, Action::Publish)?;
            }
        }
        let demand = self.market.demand(job_id).await?;
        if demand.demander.is_zero() {
            self.publications
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Ok(());
        }
        let step = u64::from(demand.step);
        let publication = self.publication(id, step).await?;
        let cursor = self.market.publication_cursor(job_id).await?;
        // A cursor left by an earlier demand on the job starts afresh.
        let (opened, tensor, row) = if cursor.demandOpenedAt == demand.openedAt {
            (cursor.stateHash != B256::ZERO, cursor.tensor, cursor.row)
        } else {
            (false, 0, 0)
        };
        let Some(input) = publication.next_part(
            job_id,
            opened,
            u64::from(tensor),
            u64::from(row),
            self.config.publish_bytes_per_tx,
        ) else {
            return Err(NodeError::Job(format!(
                "the demand on job {id} is at tensor {tensor} row {row}, which this node's \
                 publication of step {step} does not have"
            )));
        };
        // To the publisher the demand was made with (the admin may have set another since).
        let tx = call(demand.publisher, input.to_vec());
        let intent = self.sender.prepare(id, Action::Publish, tx).await?;
        let outcome = self.sender.drive(intent).await;
        self.store.retire_intent(id, Action::Publish)?;
        match outcome {
            Ok(o) => {
                info!(target: "pedals::node", job = id, step, tx = %o.hash, gas = o.gas_used, "published a part of the demanded state")
            }
            Err(e @ (ChainError::TxReverted(_) | ChainError::TxDropped { .. })) => {
                warn!(target: "pedals::node", job = id, step, error = %e, "a publication part failed; trying again next round");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// The publication of step `step` of job `id`, built once per demand (the state may need
    /// replaying from the nearest checkpoint).
    async fn publication(
        &self,
        id: u64,
        step: u64,
    ) -> Result<std::sync::Arc<Publication>, NodeError> {
        if let Some(p) = self
            .publications
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .filter(|p| p.step == step)
        {
            return Ok(p.clone());
        }
        let source = self.store_source();
        let built = tokio::task::spawn_blocking(move || Publication::build(&source, id, step))
            .await
            .map_err(|e| NodeError::Job(format!("building the publication: {e}")))??;
        let built = std::sync::Arc::new(built);
        self.publications
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, built.clone());
        Ok(built)
    }
}
