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

    /// Up to `len` bytes of blob `cid` from `offset` (fewer at its end, none past it) with the
    /// blob's size, if this node has it: what chunked downloads are served from. The default
    /// cuts them out of [`ContentSource::blob`], which reads the whole blob for every range; a
    /// source that holds large blobs should read just the range (pedals-store's
    /// `Store::blob_range` does). The network layer checks the whole blob against its CID
    /// once, when it builds the blob's manifest, and the receiver checks every chunk.
    fn blob_range(&self, cid: &Cid, offset: u64, len: u32) -> Result<Option<BlobRange>, String> {
        Ok(self
            .blob(cid)?
            .map(|blob| BlobRange::slice(&blob, offset, len)))
    }

    /// The state of `job` after `step` steps with its trace openings, if this node worked on
    /// the job and can produce it.
    fn checkpoint(&self, job: u64, step: u64) -> Result<Option<CheckpointOpening>, String>;
}

/// A range of a blob's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRange {
    /// The whole blob's size in bytes.
    pub size: u64,
    /// The bytes of the range.
    pub bytes: Vec<u8>,
}

impl BlobRange {
    /// Up to `len` bytes of `blob` from `offset` (none when `offset` is past its end).
    pub fn slice(blob: &[u8], offset: u64, len: u32) -> Self {
        let size = blob.len() as u64;
        let start = offset.min(size);
        let end = start.saturating_add(u64::from(len)).min(size);
        // start ≤ end ≤ blob.len(), so both fit a usize.
        let (start, end) = (start as usize, end as usize);
        Self {
            size,
            bytes: blob[start..end].to_vec(),
        }
    }
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

    fn blob_range(&self, cid: &Cid, offset: u64, len: u32) -> Result<Option<BlobRange>, String> {
        let blob = self
            .blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(cid)
            .cloned();
        Ok(blob.map(|b| BlobRange::slice(&b, offset, len)))
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
