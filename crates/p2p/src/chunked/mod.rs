//! Large blobs in verified chunks: `/pedals/blob-range/1` serves a blob's manifest (its size
//! and the sha2-256 of each chunk) and byte ranges of it; [`crate::Client::download_blob`]
//! fetches the chunks from every provider, a few at a time, checks each against the manifest
//! as it arrives, writes it into `<dest>.part`, and resumes from there when run again. The
//! whole file is checked against the CID before it is renamed into place, which also catches
//! a manifest that lies.

mod fetch;
mod part;
mod protocol;
mod serve;

use std::{fmt, sync::Arc, time::Duration};

use libp2p::PeerId;

pub use protocol::{BlobManifest, MAX_CHUNK_BYTES, MIN_CHUNK_BYTES};
pub(crate) use protocol::{RANGE_PROTOCOL, RangeCodec, RangeReply, RangeRequest};
pub(crate) use serve::{ManifestCache, serve};

/// The chunk size downloads use unless told otherwise.
pub const DEFAULT_CHUNK_BYTES: u32 = 4 << 20;

/// How far a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes verified so far, those found in the `.part` file at the start included.
    pub done: u64,
    /// The blob's size.
    pub total: u64,
    /// Bytes that were already in the `.part` file (verified) when the download started.
    pub resumed: u64,
}

/// The callback that hears a download's [`Progress`].
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// How a download runs.
#[derive(Clone)]
pub struct DownloadOptions {
    /// The chunk size, [`MIN_CHUNK_BYTES`]..=[`MAX_CHUNK_BYTES`].
    pub chunk_size: u32,
    /// How many chunk requests are in flight at once, over all providers. Providers serve 4
    /// requests per peer at once by default (`NetConfig::max_inbound_per_peer`).
    pub parallel: usize,
    /// How long one request (a chunk, or the manifest) may take before it is retried.
    pub request_timeout: Duration,
    /// How many times one chunk is asked for (from the next provider each time) before the
    /// download gives up; the verified chunks stay in the `.part` file.
    pub attempts: u32,
    /// The first pause after a failed request; it doubles with each retry, up to 5 s.
    pub backoff: Duration,
    /// Called after every verified chunk (and once at the start).
    pub progress: Option<ProgressFn>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_BYTES,
            parallel: 4,
            request_timeout: Duration::from_secs(60),
            attempts: 6,
            backoff: Duration::from_millis(200),
            progress: None,
        }
    }
}

impl fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("chunk_size", &self.chunk_size)
            .field("parallel", &self.parallel)
            .field("request_timeout", &self.request_timeout)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// A finished download: the file is in place and matches the CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The blob's size.
    pub size: u64,
    /// Bytes that were already in the `.part` file (verified) and not fetched again.
    pub resumed: u64,
    /// Bytes fetched and verified in this run.
    pub fetched: u64,
    /// The peer whose manifest was used (when resumed, as recorded in the `.part` sidecar).
    pub manifest_from: Option<PeerId>,
    /// The peers that delivered chunks.
    pub providers: Vec<PeerId>,
}
