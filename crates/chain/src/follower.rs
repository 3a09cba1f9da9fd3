//! The event follower: reads the market's and the stake manager's events block range by block
//! range, resumes from the cursor in the node's store, and notices reorgs.
//!
//! Each [`EventFollower::poll`] first checks that the stored cursor's block still has the
//! stored hash. If it does not, the chain was reorganized under the node: the cursor moves
//! back `rewind` blocks, a [`ChainEvent::Reorg`] is returned first, and the events of the
//! rewound blocks are delivered again from the new chain. Consumers apply events through the
//! job state machine, where a repeated event is a no-op and a stale one is refused, so a
//! second delivery is harmless. Events are read only up to `confirmations` blocks below the
//! head.

use std::sync::Arc;

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
    sol_types::SolEventInterface,
};
use pedals_store::{ChainCursor, Store};
use tracing::{debug, warn};

use crate::{ChainError, Deployment, JobMarket, StakeManager};

/// Where an event was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta {
    /// Block number.
    pub block: u64,
    /// Transaction hash.
    pub tx: B256,
    /// Index of the log in its block.
    pub log_index: u64,
}

/// One thing the follower saw.
#[derive(Debug, Clone)]
pub enum ChainEvent {
    /// An event of the job market.
    JobMarket(JobMarket::JobMarketEvents, EventMeta),
    /// An event of the stake manager.
    StakeManager(StakeManager::StakeManagerEvents, EventMeta),
    /// The block at the cursor was replaced; events from `from_block` on are delivered again
    /// as the new chain has them.
    Reorg {
        /// The first block delivered again.
        from_block: u64,
    },
}

/// The events of one poll and the cursor to commit once they are applied.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The events, in chain order (a [`ChainEvent::Reorg`] first, if there was one).
    pub events: Vec<ChainEvent>,
    /// The last block read, with its hash.
    pub cursor: Option<ChainCursor>,
}

/// The hash of the chain's genesis block: what tells one chain from another that reuses its
/// chain id and addresses (a devnet started again).
pub async fn genesis_hash(provider: &DynProvider) -> Result<B256, ChainError> {
    Ok(provider
        .get_block_by_number(BlockNumberOrTag::Number(0))
        .await?
        .ok_or(ChainError::MissingBlock(0))?
        .header
        .hash)
}

/// `Ok` when the genesis `now` is the `known` one, else [`ChainError::ChainReplaced`].
pub fn same_chain(known: B256, now: B256) -> Result<(), ChainError> {
    if known == now {
        return Ok(());
    }
    Err(ChainError::ChainReplaced {
        detail: format!("its genesis block was {known}, it is now {now}"),
    })
}

/// Follows the contracts of one deployment.
#[derive(Debug, Clone)]
pub struct EventFollower {
    provider: DynProvider,
    store: Arc<Store>,
    deployment: Deployment,
    /// Blocks below the head that are read (0: up to the head).
    pub confirmations: u64,
    /// Blocks per `eth_getLogs` request.
    pub max_range: u64,
    /// Blocks to step back when the cursor's block was replaced.
    pub rewind: u64,
    /// The first block to read when the store has no cursor.
    pub start_block: u64,
}

impl EventFollower {
    /// A follower of `deployment` that keeps its cursor in `store`.
    pub fn new(provider: DynProvider, store: Arc<Store>, deployment: Deployment) -> Self {
        Self {
            provider,
            store,
            deployment,
            confirmations: 0,
            max_range: 2_000,
            rewind: 64,
            start_block: 0,
        }
    }

    async fn block_hash(&self, number: u64) -> Result<Option<B256>, ChainError> {
        Ok(self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await?
            .map(|b| b.header.hash))
    }

    /// Checks that the endpoint's chain is the one the store's records are of, by the hash of
    /// its genesis block, which the first call records. A chain with another genesis (a devnet
    /// started again, an endpoint pointed elsewhere) is [`ChainError::ChainReplaced`]: nothing
    /// the store holds (jobs, cursor, signed transactions) means anything there.
    pub async fn check_chain(&self) -> Result<(), ChainError> {
        let genesis = genesis_hash(&self.provider).await?;
        match self.store.genesis()? {
            None => Ok(self.store.set_genesis(genesis)?),
            Some(known) => same_chain(known, genesis),
        }
    }

    /// Reads every new event up to the confirmed head, in chain order. The cursor does not
    /// move until the caller has applied the events and calls [`EventFollower::commit`], so a
    /// crash in between delivers them again rather than losing them.
    ///
    /// A replaced cursor block is a reorg, unless the chain itself was replaced (see
    /// [`EventFollower::check_chain`]) or the head is below the block the rewind would resume
    /// from: then the poll fails with [`ChainError::ChainReplaced`] every time, rather than
    /// reporting the same reorg forever.
    pub async fn poll(&self) -> Result<Batch, ChainError> {
        let mut events = Vec::new();
        let mut from = match self.store.cursor()? {
            None => {
                self.check_chain().await?;
                self.start_block
            }
            Some(cursor) => {
                if self.block_hash(cursor.block).await? == Some(cursor.hash) {
                    cursor.block + 1
                } else {
                    self.check_chain().await?;
                    let from_block = cursor
                        .block
                        .saturating_sub(self.rewind)
                        .max(self.start_block);
                    warn!(target: "pedals::chain", block = cursor.block, from_block, "reorg: the cursor's block was replaced");
                    events.push(ChainEvent::Reorg { from_block });
                    from_block
                }
            }
        };
        let head = self
            .provider
            .get_block_number()
            .await?
            .saturating_sub(self.confirmations);
        if head < from {
            if events.is_empty() {
                let cursor = self.store.cursor()?;
                return Ok(Batch { events, cursor });
            }
            // A reorg deeper than the rewind: the chain is far shorter than the node's records.
            let cursor = self.store.cursor()?.map_or(0, |c| c.block);
            return Err(ChainError::ChainReplaced {
                detail: format!(
                    "its head is block {head}, but this node had processed block {cursor}"
                ),
            });
        }
        while from <= head {
            let to = (from + self.max_range - 1).min(head);
            let filter = Filter::new()
                .address(vec![
                    self.deployment.job_market,
                    self.deployment.stake_manager,
                ])
                .from_block(from)
                .to_block(to);
            let logs = self.provider.get_logs(&filter).await?;
            for log in &logs {
                if let Some(event) = self.decode(log) {
                    events.push(event);
                }
            }
            debug!(target: "pedals::chain", from, to, logs = logs.len(), "followed");
            from = to + 1;
        }
        let hash = self
            .block_hash(head)
            .await?
            .ok_or(ChainError::MissingBlock(head))?;
        Ok(Batch {
            events,
            cursor: Some(ChainCursor { block: head, hash }),
        })
    }

    /// Records that `batch`'s events are applied: the next poll starts after its last block.
    pub fn commit(&self, batch: &Batch) -> Result<(), ChainError> {
        if let Some(cursor) = batch.cursor {
            self.store.set_cursor(cursor)?;
        }
        Ok(())
    }

    fn decode(&self, log: &Log) -> Option<ChainEvent> {
        let meta = EventMeta {
            block: log.block_number.unwrap_or_default(),
            tx: log.transaction_hash.unwrap_or_default(),
            log_index: log.log_index.unwrap_or_default(),
        };
        let address: Address = log.address();
        if address == self.deployment.job_market {
            JobMarket::JobMarketEvents::decode_log(&log.inner)
                .ok()
                .map(|e| ChainEvent::JobMarket(e.data, meta))
        } else if address == self.deployment.stake_manager {
            StakeManager::StakeManagerEvents::decode_log(&log.inner)
                .ok()
                .map(|e| ChainEvent::StakeManager(e.data, meta))
        } else {
            None
        }
    }
}
