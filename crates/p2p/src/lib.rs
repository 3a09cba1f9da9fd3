//! The Pedals network layer: one libp2p swarm per node that finds peers, spreads job and
//! capacity announcements, and moves blobs and checkpoints between nodes, verifying every byte
//! it receives.
//!
//! ```text
//!  Client (cloneable) ──bounded commands──► event loop (owns the Swarm) ──► events (bounded)
//!        ▲  replies on oneshot channels            │
//!        │                                         ├─ gossipsub  pedals/jobs/1, pedals/capacity/1
//!        │                                         │             (validated, peer-scored)
//!        │                                         ├─ kad        /pedals/kad/1  (who provides a CID)
//!        │                                         ├─ request-response /pedals/blob/1, /pedals/checkpoint/1,
//!        │                                         │             /pedals/blob-range/1 (chunks),
//!        │                                         │             /pedals/span/1 (split inference)
//!        │                                         ├─ identify, ping (round trip per peer)
//!        │                                         └─ TCP + noise + yamux, and QUIC
//!  ContentSource (the node's store) ◄── inbound requests, on the blocking pool, per-peer limits
//! ```
//!
//! Every blob received is checked against its CID and every checkpoint against the trace root
//! the worker posted on-chain before the caller sees it; what fails is dropped and counted.
//! Large blobs are downloaded in chunks, each checked against the blob's manifest as it
//! arrives, with resume and progress ([`Client::download_blob`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), pedals_p2p::P2pError> {
//! use std::sync::Arc;
//! use pedals_p2p::{MemorySource, NetConfig, start};
//!
//! let source = Arc::new(MemorySource::default());
//! let cid = source.insert_blob(b"a dataset".to_vec());
//! let node = start(libp2p::identity::Keypair::generate_ed25519(), NetConfig::default(), source).await?;
//! node.client.provide(cid).await?;
//! # Ok(()) }
//! ```

mod chunked;
mod config;
mod error;
mod gossip;
mod identity;
mod network;
mod protocol;
mod serve;
mod source;
mod span;
mod stats;
mod verify;

pub use chunked::{
    BlobManifest, DEFAULT_CHUNK_BYTES, DownloadOptions, Downloaded, MAX_CHUNK_BYTES,
    MIN_CHUNK_BYTES, Progress, ProgressFn,
};
pub use config::NetConfig;
pub use error::P2pError;
pub use gossip::{
    Announcement, CAPACITY_TOPIC, CapacityAnnouncement, JOBS_TOPIC, JobAnnouncement,
    MAX_GOSSIP_BYTES, PROGRESS_TOPIC, ProgressAnnouncement, SPANS_TOPIC, SpanAnnouncement,
    unix_now,
};
pub use identity::load_or_create_identity;
pub use libp2p::{Multiaddr, PeerId, gossipsub::IdentTopic, identity::Keypair};
pub use network::{Client, NetEvent, Network, PeerInfo, TraceClaim, VerifiedCheckpoint, start};
pub use protocol::{CheckpointOpening, Reply};
pub use source::{BlobRange, ContentSource, MemorySource, account_key};
pub use span::SpanService;
pub use stats::{NetStats, NetStatsSnapshot};
