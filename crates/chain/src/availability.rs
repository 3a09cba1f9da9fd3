//! Data availability (docs/protocol.md §7): demanding that the state after one step be
//! published on-chain, the calls that publish it, reading it back from the events, and
//! claiming the worker's collateral when it was not published in time.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    sol_types::SolCall,
};
use pedals_core::JobId;
use pedals_core::{RowRun, StateEntry};

use pedals_store::Action;

use crate::{ChainError, DataAvailability, IDataAvailability, IJobMarket, Market, TxOutcome};

/// A state published on-chain for a demand, as read back from the market's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedState {
    /// The demanded step.
    pub step: u64,
    /// `h_step`, proven in the job's trace root.
    pub state_hash: B256,
    /// `h_{step+1}`, proven too (zero for the last step).
    pub next_hash: B256,
    /// The entries, three words per tensor in name order.
    pub entries: Vec<B256>,
    /// Every run published so far: tensor, first row, rows as i32 LE bytes.
    pub runs: Vec<(usize, u64, Vec<u8>)>,
    /// Whether the demand was met (every row is in `runs`).
    pub complete: bool,
}

/// The flat entry words `DataAvailability.openState` and `publishRows` take.
pub fn entry_words(entries: &[StateEntry]) -> Vec<B256> {
    entries
        .iter()
        .flat_map(|e| [e.name_hash, e.shape_hash, e.root])
        .collect()
}

/// The calldata of `DataAvailability.publishBlob`.
pub fn publish_blob_input(job_id: JobId, blob: &[u8], proof: &[B256]) -> Bytes {
    let job_id = job_id.to_u256();
    DataAvailability::publishBlobCall {
        jobId: job_id,
        blob: Bytes::from(blob.to_vec()),
        proof: proof.to_vec(),
    }
    .abi_encode()
    .into()
}

/// The calldata of `DataAvailability.openState`.
pub fn open_state_input(
    job_id: JobId,
    entries: &[StateEntry],
    proof: &[B256],
    next: Option<(B256, &[B256])>,
) -> Bytes {
    let job_id = job_id.to_u256();
    let (next_hash, next_proof) = next.unwrap_or((B256::ZERO, &[]));
    DataAvailability::openStateCall {
        jobId: job_id,
        entries: entry_words(entries),
        proof: proof.to_vec(),
        nextStateHash: next_hash,
        nextProof: next_proof.to_vec(),
    }
    .abi_encode()
    .into()
}

/// The calldata of `DataAvailability.publishRows` for `runs`.
pub fn publish_rows_input(job_id: JobId, entries: &[StateEntry], runs: &[RowRun]) -> Bytes {
    let job_id = job_id.to_u256();
    DataAvailability::publishRowsCall {
        jobId: job_id,
        entries: entry_words(entries),
        runs: runs
            .iter()
            .map(|r| IDataAvailability::RowRun {
                dims: r.dims.clone(),
                log2Rows: r.log2_rows,
                data: Bytes::from(r.data.clone()),
                proof: r.proof.clone(),
            })
            .collect(),
    }
    .abi_encode()
    .into()
}

impl Market {
    /// The market's data-availability contract, where demanded states are published.
    pub fn data_availability(
        &self,
    ) -> DataAvailability::DataAvailabilityInstance<alloy::providers::DynProvider> {
        DataAvailability::new(self.deployment().data_availability, self.provider().clone())
    }

    /// How far the publication for `job_id`'s open demand got (all zero before any part), on
    /// the publisher the demand was made with.
    pub async fn publication_cursor(
        &self,
        job_id: JobId,
    ) -> Result<IDataAvailability::Cursor, ChainError> {
        let publisher = self.demand(job_id).await?.publisher;
        let job_id = job_id.to_u256();
        let publisher = if publisher.is_zero() {
            self.deployment().data_availability
        } else {
            publisher
        };
        DataAvailability::new(publisher, self.provider().clone())
            .cursorOf(job_id)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// Demands, with `bond` (the market's challenge bond), that the state after `step` of a
    /// submitted job be published on-chain.
    pub async fn demand_data(
        &self,
        job_id: JobId,
        step: u64,
        bond: U256,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let market = self.job_market();
        let call = market.demandData(job_id, U256::from(step)).value(bond);
        self.transact(job_id, Action::Demand, call).await
    }

    /// The open challenge of `job_id` (zero fields when there is none).
    pub async fn challenge_of(&self, job_id: JobId) -> Result<IJobMarket::Challenge, ChainError> {
        let job_id = job_id.to_u256();
        self.job_market()
            .getChallenge(job_id)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The open demand of `job_id` (a zero demander when there is none).
    pub async fn demand(&self, job_id: JobId) -> Result<IJobMarket::DataDemand, ChainError> {
        let job_id = job_id.to_u256();
        self.job_market()
            .getDemand(job_id)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// Settles an unmet demand after its deadline: the worker loses its collateral.
    pub async fn claim_unavailable(&self, job_id: JobId) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let market = self.job_market();
        let call = market.claimUnavailable(job_id);
        self.transact(job_id, Action::ClaimUnavailable, call).await
    }

    /// Every demand made of `job_id`: `(demander, step, block)`, oldest first.
    pub async fn demands(&self, job_id: JobId) -> Result<Vec<(Address, u64, u64)>, ChainError> {
        let job_id = job_id.to_u256();
        let events = self
            .job_market()
            .DataDemanded_filter()
            .topic1(job_id)
            .from_block(self.deployment().deployment_block)
            .query()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(events
            .into_iter()
            .map(|(e, log)| {
                (
                    e.demander,
                    e.step.saturating_to(),
                    log.block_number.unwrap_or_default(),
                )
            })
            .collect())
    }

    /// What has been published for the latest demand of `job_id` at `step`, if its state
    /// was opened: only the parts between that demand's opening and its end (a later demand
    /// of the same job, or one met in the same block, is not mixed in).
    pub async fn published_state(
        &self,
        job_id: JobId,
        step: u64,
    ) -> Result<Option<PublishedState>, ChainError> {
        let job_id = job_id.to_u256();
        let market = self.job_market();
        let publisher = self.data_availability();
        let from = self.deployment().deployment_block;
        let pos = |log: &alloy::rpc::types::Log| {
            (
                log.block_number.unwrap_or_default(),
                log.log_index.unwrap_or_default(),
            )
        };
        let demanded = market
            .DataDemanded_filter()
            .topic1(job_id)
            .from_block(from)
            .query()
            .await
            .map_err(ChainError::from_contract)?;
        let Some(start) = demanded
            .iter()
            .rev()
            .find(|(e, _)| e.step == U256::from(step))
            .map(|(_, log)| pos(log))
        else {
            return Ok(None);
        };
        let after = |log: &alloy::rpc::types::Log| pos(log) > start;
        let opened = publisher
            .StateOpened_filter()
            .topic1(job_id)
            .from_block(start.0)
            .query()
            .await
            .map_err(ChainError::from_contract)?;
        let Some((opened, _)) = opened.into_iter().find(|(_, log)| after(log)) else {
            return Ok(None);
        };
        // The demand ends with the first DataPublished after it (the next demand comes later).
        let end = market
            .DataPublished_filter()
            .topic1(job_id)
            .from_block(start.0)
            .query()
            .await
            .map_err(ChainError::from_contract)?
            .into_iter()
            .map(|(_, log)| pos(&log))
            .find(|p| *p > start);
        let rows = publisher
            .StateRowsPublished_filter()
            .topic1(job_id)
            .from_block(start.0)
            .query()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(Some(PublishedState {
            step,
            state_hash: opened.stateHash,
            next_hash: opened.nextStateHash,
            entries: opened.entries,
            runs: rows
                .into_iter()
                .filter(|(_, log)| after(log) && end.is_none_or(|end| pos(log) < end))
                .map(|(e, _)| {
                    (
                        e.tensor.saturating_to(),
                        e.firstRow.saturating_to(),
                        e.rows.to_vec(),
                    )
                })
                .collect(),
            complete: end.is_some(),
        }))
    }
}
