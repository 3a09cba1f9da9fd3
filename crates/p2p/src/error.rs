use libp2p::Multiaddr;

/// The network layer's errors.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// The network task is gone (the node is shutting down, or it failed).
    #[error("the network task has stopped; restart the node")]
    Stopped,
    /// The swarm could not be built or could not listen.
    #[error("cannot start the network: {0}")]
    Start(String),
    /// The node identity file could not be read or written.
    #[error("{0}")]
    Identity(String),
    /// A multiaddr could not be dialed.
    #[error("cannot dial {addr}: {reason}; check the address and that the peer is running")]
    Dial {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// No peer announces the blob.
    #[error(
        "no peer provides {cid}; check that the node holding it (the requester's, for a job's \
         inputs) is running and that this node has a bootstrap peer"
    )]
    NoProviders {
        /// The CID looked for.
        cid: String,
    },
    /// The request to a peer failed on the way (dial, timeout, connection closed).
    #[error("the request to {peer} failed: {reason}")]
    Request {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The peer does not have what was asked for.
    #[error("{peer} does not have {what}")]
    NotFound {
        /// The peer.
        peer: String,
        /// What was asked for.
        what: String,
    },
    /// The peer is at its request limit.
    #[error("{peer} is busy serving our other requests; try again shortly")]
    Busy {
        /// The peer.
        peer: String,
    },
    /// The peer's store failed.
    #[error("{peer} could not read {what} from its store")]
    PeerFailed {
        /// The peer.
        peer: String,
        /// What was asked for.
        what: String,
    },
    /// A peer sent bytes that do not match the CID asked for. They were dropped.
    #[error("{peer} sent bytes for {cid} that do not match it ({reason}); they were dropped")]
    BadBlob {
        /// The peer.
        peer: String,
        /// The CID asked for.
        cid: String,
        /// What did not match.
        reason: String,
    },
    /// A peer sent a checkpoint whose openings do not lead to the trace root.
    #[error(
        "{peer} sent checkpoint {step} of job {job} with an invalid opening ({reason}); it was \
         dropped"
    )]
    BadCheckpoint {
        /// The peer.
        peer: String,
        /// The job.
        job: u64,
        /// The step.
        step: u64,
        /// What did not verify.
        reason: String,
    },
    /// Every provider of a blob failed.
    #[error("no provider of {cid} delivered it: {}", .errors.join("; "))]
    AllProvidersFailed {
        /// The CID.
        cid: String,
        /// One line per provider tried.
        errors: Vec<String>,
        /// How many of them sent bytes that do not match the CID.
        bad: usize,
    },
    /// A peer did not answer in time.
    #[error("{peer} did not deliver {what} within {secs} s")]
    Timeout {
        /// The peer.
        peer: String,
        /// What was asked for.
        what: String,
        /// The time allowed, in seconds.
        secs: u64,
    },
    /// A peer refused a request as malformed or out of bounds.
    #[error("{peer} refused the request: {reason}")]
    Refused {
        /// The peer.
        peer: String,
        /// Its reason.
        reason: String,
    },
    /// A peer sent a chunk that does not match the blob's manifest. It was dropped and the
    /// peer is not asked again during this download.
    #[error(
        "{peer} sent chunk {index} of {cid} that does not match its manifest ({reason}); it was dropped"
    )]
    BadChunk {
        /// The peer.
        peer: String,
        /// The blob.
        cid: String,
        /// The chunk's index.
        index: usize,
        /// What did not match.
        reason: String,
    },
    /// A chunk could not be had from any provider in the attempts allowed. The verified
    /// chunks are kept in the `.part` file.
    #[error(
        "cannot fetch chunk {index} of {cid}: {}; the {done} of {total} bytes verified so far are kept in {part}: run the command again to resume from there",
        .errors.join("; ")
    )]
    ChunkFailed {
        /// The blob.
        cid: String,
        /// The chunk's index.
        index: usize,
        /// One line per attempt, each naming its peer.
        errors: Vec<String>,
        /// Bytes verified and kept.
        done: u64,
        /// The blob's size.
        total: u64,
        /// The `.part` file.
        part: String,
    },
    /// A download's `.part` file or its sidecar could not be written or read.
    #[error("cannot use {path}: {reason}; check the disk and the folder's permissions")]
    PartFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Publishing on gossip failed.
    #[error("cannot publish the announcement: {0}")]
    Publish(String),
}
