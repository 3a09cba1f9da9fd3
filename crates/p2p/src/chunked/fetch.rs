//! The downloading side of `/pedals/blob-range/1`: [`Client::download_blob`] and the single
//! requests it is made of.

use std::{
    collections::HashSet,
    path::Path,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use futures::StreamExt;
use libp2p::PeerId;
use pedals_core::Cid;
use tracing::{debug, info, warn};

use super::{
    BlobManifest, DownloadOptions, Downloaded, Progress, RangeReply, RangeRequest,
    part::{Part, PartFile, sha256},
};
use crate::{BlobRange, Client, P2pError};

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why one pass over the blob (with one manifest) stopped.
enum Stop {
    /// Every provider sent chunks that do not match the manifest: the manifest is the
    /// suspect. Try another peer's.
    ManifestSuspect,
    /// Give up with this error.
    Fail(P2pError),
}

impl From<P2pError> for Stop {
    fn from(e: P2pError) -> Self {
        Self::Fail(e)
    }
}

/// The providers of one pass, shared by the chunk requests in flight.
struct Providers {
    order: Vec<PeerId>,
    /// Peers that sent a chunk not matching the manifest (or a malformed reply).
    liars: HashSet<PeerId>,
    /// Peers that do not have the blob, cannot read it, or refuse our requests.
    gone: HashSet<PeerId>,
    /// Who delivered verified chunks.
    used: HashSet<PeerId>,
}

impl Providers {
    /// The provider for the `n`-th try of a chunk, among those still in play.
    fn pick(&self, n: usize) -> Option<PeerId> {
        let alive: Vec<_> = self
            .order
            .iter()
            .filter(|p| !self.liars.contains(p) && !self.gone.contains(p))
            .collect();
        (!alive.is_empty()).then(|| *alive[n % alive.len()])
    }
}

fn backoff(options: &DownloadOptions, attempt: u32) -> Duration {
    options
        .backoff
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BACKOFF)
}

impl Client {
    /// Sends one range-protocol request with a timeout; `what` names it in errors.
    async fn range_within(
        &self,
        peer: PeerId,
        request: RangeRequest,
        timeout: Duration,
        what: impl FnOnce() -> String,
    ) -> Result<RangeReply, P2pError> {
        match tokio::time::timeout(timeout, self.range(peer, request)).await {
            Ok(reply) => reply,
            Err(_) => Err(P2pError::Timeout {
                peer: peer.to_string(),
                what: what(),
                secs: timeout.as_secs(),
            }),
        }
    }

    /// Asks `peer` for the manifest of `cid` in chunks of `chunk_size` bytes. The manifest is
    /// checked for consistency (its size within this node's limit, one hash per chunk) but
    /// cannot be checked against the CID before the whole blob is there.
    pub async fn blob_manifest(
        &self,
        peer: PeerId,
        cid: Cid,
        chunk_size: u32,
    ) -> Result<BlobManifest, P2pError> {
        let request = RangeRequest::Manifest { cid, chunk_size };
        match self.range(peer, request).await? {
            RangeReply::Manifest(m) if m.chunk_size == chunk_size => Ok(m),
            other => Err(reply_error(peer, &cid, other)),
        }
    }

    /// Asks `peer` for `len` bytes of blob `cid` from `offset` (at most
    /// [`super::MAX_CHUNK_BYTES`]; fewer at the end of the blob). The bytes are not checked:
    /// [`Client::download_blob`] checks each chunk against the manifest.
    pub async fn blob_range(
        &self,
        peer: PeerId,
        cid: Cid,
        offset: u64,
        len: u32,
    ) -> Result<BlobRange, P2pError> {
        let request = RangeRequest::Bytes { cid, offset, len };
        match self.range(peer, request).await? {
            RangeReply::Bytes {
                size,
                offset: at,
                bytes,
            } if at == offset && bytes.len() as u64 <= u64::from(len) => {
                Ok(BlobRange { size, bytes })
            }
            other => Err(reply_error(peer, &cid, other)),
        }
    }

    /// Finds the providers of `cid` and downloads it into `dest` in verified chunks
    /// ([`Client::download_blob_from`]), nearest providers (by ping) first.
    pub async fn download_blob(
        &self,
        cid: Cid,
        dest: &Path,
        options: &DownloadOptions,
    ) -> Result<Downloaded, P2pError> {
        let providers = self.nearest_providers(cid).await?;
        self.download_blob_from(&providers, cid, dest, options)
            .await
    }

    /// Downloads blob `cid` from `providers` into `dest`, in chunks:
    ///
    /// 1. the manifest (size and sha2-256 of each chunk) comes from `<dest>.part.manifest` if
    ///    an earlier run left one, else from the first provider that sends one;
    /// 2. the chunks already in `<dest>.part` that match the manifest are kept;
    /// 3. the others are asked for, `options.parallel` at a time, spread over the providers;
    ///    a chunk that fails (timeout, lost connection, busy) is asked again of the next
    ///    provider after a pause that doubles each time, up to `options.attempts` times; a
    ///    chunk that does not match the manifest is dropped, counted (`bad_content`), and
    ///    its sender not asked again;
    /// 4. the whole file is checked against the CID and renamed to `dest`.
    ///
    /// A manifest that lies shows at step 4 (or when every provider's chunks disagree with
    /// it): the `.part` file is dropped and the next provider's manifest is used. When a
    /// chunk cannot be had, the error ([`P2pError::ChunkFailed`]) names every attempt's peer
    /// and the verified chunks stay in `<dest>.part` for the next run.
    pub async fn download_blob_from(
        &self,
        providers: &[PeerId],
        cid: Cid,
        dest: &Path,
        options: &DownloadOptions,
    ) -> Result<Downloaded, P2pError> {
        let part = Part::new(dest);
        let mut distrusted: HashSet<PeerId> = HashSet::new();
        let mut errors = Vec::new();
        loop {
            let candidates: Vec<PeerId> = providers
                .iter()
                .filter(|p| !distrusted.contains(p))
                .copied()
                .collect();
            if candidates.is_empty() {
                return Err(if providers.is_empty() {
                    P2pError::NoProviders {
                        cid: cid.to_string(),
                    }
                } else {
                    P2pError::AllProvidersFailed {
                        cid: cid.to_string(),
                        errors,
                        bad: distrusted.len(),
                    }
                });
            }
            let (manifest, from) = match part.load_manifest(&cid, options.chunk_size) {
                Some((m, from)) => (m, from.and_then(|f| f.parse::<PeerId>().ok())),
                None => {
                    let (m, from) = self
                        .first_manifest(&candidates, cid, options, &mut errors)
                        .await?;
                    part.save_manifest(&cid, &m, Some(from.to_string()))?;
                    (m, Some(from))
                }
            };
            match self.pass(&candidates, cid, &part, &manifest, options).await {
                Ok(mut done) => {
                    done.manifest_from = from;
                    info!(target: "pedals::p2p", %cid, size = done.size, resumed = done.resumed, "downloaded in chunks");
                    return Ok(done);
                }
                Err(Stop::Fail(e)) => return Err(e),
                Err(Stop::ManifestSuspect) => {
                    self.stats().count_bad_content();
                    let who = from.map_or("an earlier run".into(), |p| p.to_string());
                    warn!(target: "pedals::p2p", %cid, manifest_from = %who, "the manifest does not lead to the CID; dropping it and the .part file");
                    errors.push(format!(
                        "the manifest from {who} does not lead to {cid}; it was dropped"
                    ));
                    part.discard();
                    // A saved manifest of unknown origin is just dropped: a fresh one is fetched.
                    if let Some(peer) = from {
                        distrusted.insert(peer);
                    }
                }
            }
        }
    }

    /// The manifest of the first of `candidates` that sends one (each tried up to 3 times
    /// when busy or unreachable).
    async fn first_manifest(
        &self,
        candidates: &[PeerId],
        cid: Cid,
        options: &DownloadOptions,
        errors: &mut Vec<String>,
    ) -> Result<(BlobManifest, PeerId), P2pError> {
        for &peer in candidates {
            for attempt in 0..3 {
                let request = RangeRequest::Manifest {
                    cid,
                    chunk_size: options.chunk_size,
                };
                let what = || format!("the manifest of {cid}");
                let reply = self
                    .range_within(peer, request, options.request_timeout, what)
                    .await;
                let transient = match reply {
                    Ok(RangeReply::Manifest(m)) if m.chunk_size == options.chunk_size => {
                        debug!(target: "pedals::p2p", %peer, %cid, size = m.size, "manifest");
                        return Ok((m, peer));
                    }
                    Ok(other) => {
                        let busy = matches!(other, RangeReply::Busy);
                        errors.push(reply_error(peer, &cid, other).to_string());
                        busy
                    }
                    Err(P2pError::Stopped) => return Err(P2pError::Stopped),
                    Err(e) => {
                        errors.push(e.to_string());
                        true
                    }
                };
                if !transient {
                    break;
                }
                tokio::time::sleep(backoff(options, attempt)).await;
            }
        }
        Err(P2pError::AllProvidersFailed {
            cid: cid.to_string(),
            errors: std::mem::take(errors),
            bad: 0,
        })
    }

    /// One pass over the blob with one manifest: keeps the verified chunks of the `.part`
    /// file, fetches the others, checks the whole against the CID and renames it into place.
    async fn pass(
        &self,
        candidates: &[PeerId],
        cid: Cid,
        part: &Part,
        manifest: &BlobManifest,
        options: &DownloadOptions,
    ) -> Result<Downloaded, Stop> {
        let (file, existed) = part.open(manifest.size)?;
        let verified = if existed {
            let (file, manifest) = (file.clone(), manifest.clone());
            tokio::task::spawn_blocking(move || file.verified_chunks(&manifest))
                .await
                .map_err(|_| P2pError::Stopped)??
        } else {
            vec![false; manifest.chunks.len()]
        };
        let resumed: u64 = (0..manifest.chunks.len())
            .filter(|&i| verified[i])
            .map(|i| u64::from(manifest.chunk(i).1))
            .sum();
        let done = AtomicU64::new(resumed);
        let report = |done: u64| {
            if let Some(progress) = &options.progress {
                progress(Progress {
                    done,
                    total: manifest.size,
                    resumed,
                });
            }
        };
        report(resumed);
        if resumed > 0 {
            info!(target: "pedals::p2p", %cid, resumed, size = manifest.size, part = %part.path.display(), "resuming");
        }
        let providers = Mutex::new(Providers {
            order: candidates.to_vec(),
            liars: HashSet::new(),
            gone: HashSet::new(),
            used: HashSet::new(),
        });
        let missing: Vec<usize> = (0..manifest.chunks.len())
            .filter(|&i| !verified[i])
            .collect();
        let chunk = ChunkJob {
            client: self,
            cid,
            manifest,
            file: &file,
            options,
            providers: &providers,
        };
        let mut results = futures::stream::iter(missing)
            .map(|index| chunk.fetch(index))
            .buffer_unordered(options.parallel.max(1));
        while let Some(result) = results.next().await {
            match result {
                Ok(len) => report(done.fetch_add(u64::from(len), Relaxed) + u64::from(len)),
                Err(ChunkError::Suspect) => return Err(Stop::ManifestSuspect),
                Err(ChunkError::Fail(index, errors)) => {
                    return Err(Stop::Fail(P2pError::ChunkFailed {
                        cid: cid.to_string(),
                        index,
                        errors,
                        done: done.load(Relaxed),
                        total: manifest.size,
                        part: part.path.display().to_string(),
                    }));
                }
                Err(ChunkError::Stop(e)) => return Err(Stop::Fail(e)),
            }
        }
        drop(results);
        let whole = {
            let file = file.clone();
            tokio::task::spawn_blocking(move || file.matches(&cid))
                .await
                .map_err(|_| P2pError::Stopped)??
        };
        if !whole {
            return Err(Stop::ManifestSuspect);
        }
        drop(file);
        part.finish()?;
        let used = providers
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .used;
        Ok(Downloaded {
            size: manifest.size,
            resumed,
            fetched: manifest.size - resumed,
            manifest_from: None,
            providers: candidates
                .iter()
                .filter(|p| used.contains(p))
                .copied()
                .collect(),
        })
    }
}

/// Why one chunk could not be had.
enum ChunkError {
    /// Every provider left sent bytes that do not match the manifest.
    Suspect,
    /// The attempts ran out; one line per attempt.
    Fail(usize, Vec<String>),
    /// Stop everything (the network stopped, the `.part` file cannot be written).
    Stop(P2pError),
}

/// What fetching one chunk needs.
struct ChunkJob<'a> {
    client: &'a Client,
    cid: Cid,
    manifest: &'a BlobManifest,
    file: &'a PartFile,
    options: &'a DownloadOptions,
    providers: &'a Mutex<Providers>,
}

impl ChunkJob<'_> {
    fn providers(&self) -> std::sync::MutexGuard<'_, Providers> {
        self.providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetches, verifies and writes chunk `index`; returns its length.
    async fn fetch(&self, index: usize) -> Result<u32, ChunkError> {
        let cid = self.cid;
        let (offset, len) = self.manifest.chunk(index);
        let expected = self.manifest.chunks[index];
        let mut errors = Vec::new();
        for attempt in 0..self.options.attempts.max(1) {
            let picked = self.providers().pick(index + attempt as usize);
            let Some(peer) = picked else {
                let providers = self.providers();
                return Err(
                    if providers.gone.is_empty() && !providers.liars.is_empty() {
                        ChunkError::Suspect
                    } else {
                        errors.push("no provider left to ask".into());
                        ChunkError::Fail(index, errors)
                    },
                );
            };
            let request = RangeRequest::Bytes { cid, offset, len };
            let what = || format!("chunk {index} of {cid}");
            let reply = self
                .client
                .range_within(peer, request, self.options.request_timeout, what)
                .await;
            let bytes = match reply {
                Ok(RangeReply::Bytes {
                    size,
                    offset: at,
                    bytes,
                }) if size == self.manifest.size && at == offset => bytes,
                Ok(RangeReply::Busy) => {
                    errors.push(format!("{peer} was busy"));
                    tokio::time::sleep(backoff(self.options, attempt)).await;
                    continue;
                }
                Ok(
                    reply @ (RangeReply::NotFound | RangeReply::Failed | RangeReply::Refused(_)),
                ) => {
                    errors.push(reply_error(peer, &cid, reply).to_string());
                    self.providers().gone.insert(peer);
                    continue;
                }
                Ok(_) => {
                    errors.push(format!(
                        "{peer} answered chunk {index} of {cid} with something else"
                    ));
                    self.providers().liars.insert(peer);
                    continue;
                }
                Err(P2pError::Stopped) => return Err(ChunkError::Stop(P2pError::Stopped)),
                Err(e) => {
                    debug!(target: "pedals::p2p", %peer, %cid, index, attempt, error = %e, "chunk request failed");
                    errors.push(e.to_string());
                    tokio::time::sleep(backoff(self.options, attempt)).await;
                    continue;
                }
            };
            let file = self.file.clone();
            let checked = tokio::task::spawn_blocking(move || {
                if bytes.len() as u64 != u64::from(len) {
                    return Ok(Err(format!("{} bytes instead of {len}", bytes.len())));
                }
                if sha256(&bytes) != expected {
                    return Ok(Err("its sha2-256 differs".to_string()));
                }
                file.write_at(offset, &bytes).map(Ok)
            })
            .await
            .map_err(|_| ChunkError::Stop(P2pError::Stopped))?
            .map_err(ChunkError::Stop)?;
            match checked {
                Ok(()) => {
                    self.providers().used.insert(peer);
                    return Ok(len);
                }
                Err(reason) => {
                    self.client.stats().count_bad_content();
                    let e = P2pError::BadChunk {
                        peer: peer.to_string(),
                        cid: cid.to_string(),
                        index,
                        reason,
                    };
                    warn!(target: "pedals::p2p", error = %e, "a chunk was refused");
                    errors.push(e.to_string());
                    self.providers().liars.insert(peer);
                }
            }
        }
        Err(ChunkError::Fail(index, errors))
    }
}

/// The error for a reply that is not what was asked for.
fn reply_error(peer: PeerId, cid: &Cid, reply: RangeReply) -> P2pError {
    let peer = peer.to_string();
    let what = format!("blob {cid}");
    match reply {
        RangeReply::NotFound => P2pError::NotFound { peer, what },
        RangeReply::Busy => P2pError::Busy { peer },
        RangeReply::Failed => P2pError::PeerFailed { peer, what },
        RangeReply::Refused(reason) => P2pError::Refused { peer, reason },
        RangeReply::Manifest(_) | RangeReply::Bytes { .. } => P2pError::Request {
            peer,
            reason: format!("it answered with something else than what was asked for {what}"),
        },
    }
}
