//! What a node serves: the [`ContentSource`] it is started with.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use pedals_core::{Cid, cid_of};

use crate::CheckpointOpening;

/// Where a node finds what peers ask it for. Calls are made on tokio's blocking pool, so an
/// implementation may read files or a database.
pub trait ContentSource: Send + Sync + 'static {
    /// The bytes of the blob `cid`, if this node has it. The network layer does not check
    /// them: a source must only return bytes that match (pedals-store checks on every read).
    fn blob(&self, cid: &Cid) -> Result<Option<Vec<u8>>, String>;

    /// The state of `job` after `step` steps with its trace openings, if this node worked on
    /// the job and can produce it.
    fn checkpoint(&self, job: u64, step: u64) -> Result<Option<CheckpointOpening>, String>;
}

/// Blobs and checkpoints held in memory: for a node that serves a few files it was handed
/// (and for tests and benchmarks).
#[derive(Debug, Default)]
pub struct MemorySource {
    blobs: Mutex<HashMap<Cid, std::sync::Arc<Vec<u8>>>>,
    checkpoints: Mutex<HashMap<(u64, u64), CheckpointOpening>>,
}

impl MemorySource {
    /// Adds a blob; returns its CID.
    pub fn insert_blob(&self, bytes: Vec<u8>) -> Cid {
        let cid = cid_of(&bytes);
        self.blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cid, std::sync::Arc::new(bytes));
        cid
    }

    /// Adds the opening of checkpoint `step` of `job`.
    pub fn insert_checkpoint(&self, job: u64, step: u64, opening: CheckpointOpening) {
        self.checkpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((job, step), opening);
    }
}

impl ContentSource for MemorySource {
    fn blob(&self, cid: &Cid) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(cid)
            .map(|b| b.as_ref().clone()))
    }

    fn checkpoint(&self, job: u64, step: u64) -> Result<Option<CheckpointOpening>, String> {
        Ok(self
            .checkpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(job, step))
            .cloned())
    }
}

/// The DHT key a node provides for the account it works for, so that anyone can find the node
/// of an account (a validator looking for the worker of a job, even when nobody provides the
/// worker's result): the CID of `"pedals/account/" ‖ address`. Anyone can provide it, which
/// costs nothing: whatever a node serves is verified against the chain's commitments anyway.
pub fn account_key(account: alloy_primitives::Address) -> pedals_core::Cid {
    let mut bytes = b"pedals/account/".to_vec();
    bytes.extend_from_slice(account.as_slice());
    pedals_core::cid_of(&bytes)
}
