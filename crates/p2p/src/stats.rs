//! Counters of what a node served and received, for its metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters kept by the event loop; read them with [`NetStats::snapshot`].
#[derive(Debug, Default)]
pub struct NetStats {
    peers: AtomicU64,
    blobs_served: AtomicU64,
    checkpoints_served: AtomicU64,
    chunks_served: AtomicU64,
    bytes_served: AtomicU64,
    bytes_received: AtomicU64,
    requests_refused: AtomicU64,
    bad_content: AtomicU64,
    gossip_rejected: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStatsSnapshot {
    /// Peers connected now.
    pub peers: u64,
    /// Blobs sent to peers.
    pub blobs_served: u64,
    /// Checkpoints sent to peers.
    pub checkpoints_served: u64,
    /// Chunks of blobs (`/pedals/blob-range/1` byte ranges) sent to peers.
    pub chunks_served: u64,
    /// Bytes of blobs, chunks and checkpoints sent to peers.
    pub bytes_served: u64,
    /// Bytes of blobs, chunks and checkpoints received from peers (before verification).
    pub bytes_received: u64,
    /// Requests answered "busy" because the peer was at its limit.
    pub requests_refused: u64,
    /// Blobs and checkpoints received that failed verification and were dropped.
    pub bad_content: u64,
    /// Gossip messages refused by validation.
    pub gossip_rejected: u64,
}

impl NetStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> NetStatsSnapshot {
        NetStatsSnapshot {
            peers: self.peers.load(Relaxed),
            blobs_served: self.blobs_served.load(Relaxed),
            checkpoints_served: self.checkpoints_served.load(Relaxed),
            chunks_served: self.chunks_served.load(Relaxed),
            bytes_served: self.bytes_served.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            requests_refused: self.requests_refused.load(Relaxed),
            bad_content: self.bad_content.load(Relaxed),
            gossip_rejected: self.gossip_rejected.load(Relaxed),
        }
    }

    pub(crate) fn set_peers(&self, n: usize) {
        self.peers.store(n as u64, Relaxed);
    }

    pub(crate) fn count_blob_served(&self, bytes: usize) {
        self.blobs_served.fetch_add(1, Relaxed);
        self.bytes_served.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn count_checkpoint_served(&self, bytes: usize) {
        self.checkpoints_served.fetch_add(1, Relaxed);
        self.bytes_served.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn count_chunk_served(&self, bytes: usize) {
        self.chunks_served.fetch_add(1, Relaxed);
        self.bytes_served.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn count_received(&self, bytes: usize) {
        self.bytes_received.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn count_refused(&self) {
        self.requests_refused.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_bad_content(&self) {
        self.bad_content.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_gossip_rejected(&self) {
        self.gossip_rejected.fetch_add(1, Relaxed);
    }
}
