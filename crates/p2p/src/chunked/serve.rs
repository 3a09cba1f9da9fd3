//! Serving `/pedals/blob-range/1`: byte ranges from the [`ContentSource`], and manifests built
//! once per blob and chunk size (reading the blob range by range, checking it against its CID
//! on the way) and kept in a small cache.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

use pedals_core::{B256, Cid, cid_from_digest};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use super::protocol::{
    BlobManifest, MAX_CHUNK_BYTES, MAX_MANIFEST_CHUNKS, MIN_CHUNK_BYTES, RangeReply, RangeRequest,
};
use crate::ContentSource;

/// How many manifests a node keeps (a 512 MiB blob in 4 MiB chunks: 4 KiB each).
const CACHED_MANIFESTS: usize = 16;

/// A blob and a chunk size.
type ManifestKey = (Cid, u32);

/// The manifests built lately, by blob and chunk size, oldest first.
#[derive(Debug, Default)]
pub(crate) struct ManifestCache {
    entries: Mutex<VecDeque<(ManifestKey, Arc<BlobManifest>)>>,
}

impl ManifestCache {
    fn get(&self, key: &ManifestKey) -> Option<Arc<BlobManifest>> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, m)| m.clone())
    }

    fn insert(&self, key: ManifestKey, manifest: Arc<BlobManifest>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|(k, _)| *k != key);
        if entries.len() >= CACHED_MANIFESTS {
            entries.pop_front();
        }
        entries.push_back((key, manifest));
    }
}

/// Answers one range request (on the blocking pool): a bad request is refused with a reason,
/// never a panic.
pub(crate) fn serve(
    source: &dyn ContentSource,
    cache: &ManifestCache,
    request: RangeRequest,
) -> RangeReply {
    let result = match request {
        RangeRequest::Manifest { cid, chunk_size } => manifest(source, cache, &cid, chunk_size),
        RangeRequest::Bytes { cid, offset, len } => bytes(source, &cid, offset, len),
    };
    result.unwrap_or_else(|error| {
        warn!(target: "pedals::p2p", %error, "the content source failed to serve a range");
        RangeReply::Failed
    })
}

fn bytes(
    source: &dyn ContentSource,
    cid: &Cid,
    offset: u64,
    len: u32,
) -> Result<RangeReply, String> {
    if len > MAX_CHUNK_BYTES {
        return Ok(RangeReply::Refused(format!(
            "a range of {len} bytes; at most {MAX_CHUNK_BYTES} per request"
        )));
    }
    let Some(range) = source.blob_range(cid, offset, len)? else {
        return Ok(RangeReply::NotFound);
    };
    if offset > range.size || (offset == range.size && len > 0) {
        return Ok(RangeReply::Refused(format!(
            "offset {offset} is beyond the blob's {} bytes",
            range.size
        )));
    }
    let expected = (range.size - offset).min(u64::from(len));
    if range.bytes.len() as u64 != expected {
        return Err(format!(
            "the source returned {} bytes of {cid} at offset {offset} instead of {expected}",
            range.bytes.len()
        ));
    }
    Ok(RangeReply::Bytes {
        size: range.size,
        offset,
        bytes: range.bytes,
    })
}

fn manifest(
    source: &dyn ContentSource,
    cache: &ManifestCache,
    cid: &Cid,
    chunk_size: u32,
) -> Result<RangeReply, String> {
    if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&chunk_size) {
        return Ok(RangeReply::Refused(format!(
            "a chunk size of {chunk_size} bytes; it must be {MIN_CHUNK_BYTES}..={MAX_CHUNK_BYTES}"
        )));
    }
    let key = (*cid, chunk_size);
    if let Some(m) = cache.get(&key) {
        return Ok(RangeReply::Manifest(m.as_ref().clone()));
    }
    let Some(first) = source.blob_range(cid, 0, chunk_size)? else {
        return Ok(RangeReply::NotFound);
    };
    let size = first.size;
    let count = BlobManifest::chunk_count(size, chunk_size);
    if count > MAX_MANIFEST_CHUNKS {
        return Ok(RangeReply::Refused(format!(
            "{cid} has {size} bytes: {count} chunks of {chunk_size} bytes, over \
             {MAX_MANIFEST_CHUNKS}; ask for larger chunks"
        )));
    }
    let mut whole = Sha256::new();
    let mut chunks = Vec::with_capacity(count as usize);
    let mut next = Some(first);
    for index in 0..count {
        let offset = index * u64::from(chunk_size);
        let range = match next.take() {
            Some(range) => range,
            None => source
                .blob_range(cid, offset, chunk_size)?
                .ok_or_else(|| format!("{cid} went away while its manifest was built"))?,
        };
        let expected = (size - offset).min(u64::from(chunk_size));
        if range.size != size || range.bytes.len() as u64 != expected {
            return Err(format!(
                "the source returned {} bytes of {cid} at offset {offset} instead of {expected}",
                range.bytes.len()
            ));
        }
        whole.update(&range.bytes);
        chunks.push(B256::from(<[u8; 32]>::from(Sha256::digest(&range.bytes))));
    }
    let digest = B256::from(<[u8; 32]>::from(whole.finalize()));
    if cid_from_digest(&digest) != *cid {
        return Err(format!(
            "the stored bytes of {cid} do not match it: delete the blob and fetch it again"
        ));
    }
    let manifest = Arc::new(BlobManifest {
        size,
        chunk_size,
        chunks,
    });
    debug!(target: "pedals::p2p", %cid, size, chunk_size, "manifest built");
    cache.insert(key, manifest.clone());
    Ok(RangeReply::Manifest(manifest.as_ref().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemorySource;

    #[test]
    fn bad_requests_are_refused_and_a_manifest_covers_the_blob() {
        let source = MemorySource::default();
        let blob: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let cid = source.insert_blob(blob.clone());
        let cache = ManifestCache::default();
        let serve = |r| serve(&source, &cache, r);
        assert!(matches!(
            serve(RangeRequest::Bytes { cid, offset: 100_001, len: 10 }),
            RangeReply::Refused(r) if r.contains("beyond")
        ));
        assert!(matches!(
            serve(RangeRequest::Bytes { cid, offset: 0, len: u32::MAX }),
            RangeReply::Refused(r) if r.contains("at most")
        ));
        assert!(matches!(
            serve(RangeRequest::Manifest { cid, chunk_size: 1 }),
            RangeReply::Refused(_)
        ));
        assert_eq!(
            serve(RangeRequest::Bytes {
                cid,
                offset: 99_990,
                len: 100
            }),
            RangeReply::Bytes {
                size: 100_000,
                offset: 99_990,
                bytes: blob[99_990..].to_vec()
            }
        );
        let RangeReply::Manifest(m) = serve(RangeRequest::Manifest {
            cid,
            chunk_size: MIN_CHUNK_BYTES,
        }) else {
            panic!("a manifest");
        };
        assert_eq!((m.size, m.chunks.len()), (100_000, 7));
        assert_eq!(
            m.chunks[6].0,
            <[u8; 32]>::from(Sha256::digest(&blob[6 * 16384..]))
        );
        assert!(cache.get(&(cid, MIN_CHUNK_BYTES)).is_some());
        let absent = pedals_core::cid_of(b"absent");
        assert_eq!(
            serve(RangeRequest::Manifest {
                cid: absent,
                chunk_size: MIN_CHUNK_BYTES
            }),
            RangeReply::NotFound
        );
    }
}
