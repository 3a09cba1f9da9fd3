//! `/pedals/blob-range/1`: a blob's manifest (its size and the sha2-256 of each chunk) and
//! byte ranges of it, framed by hand like `/pedals/blob/1`; every length is checked against
//! a limit before anything is allocated for it.
//!
//! ```text
//! /pedals/blob-range/1  request   u8 kind | u8 len | CID bytes (≤ 64)
//!                                   kind 0 (manifest): u32 chunk size
//!                                   kind 1 (bytes):    u64 offset | u32 length
//!                       response  u8 tag
//!                                   tag 0 (manifest): u64 size | u32 chunk size | u32 n
//!                                                     | n × 32-byte sha2-256
//!                                   tag 5 (bytes):    u64 size | u64 offset | u32 len | bytes
//!                                   tag 4 (refused):  u16 len | UTF-8 reason
//! tags: 0 manifest, 1 not found, 2 busy, 3 failed, 4 refused (a bad request), 5 bytes
//! ```

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};
use pedals_core::{B256, Cid, cid_from_bytes};
use serde::{Deserialize, Serialize};

use crate::protocol::{Limits, MAX_CID_BYTES, invalid, read_bytes, read_u8, read_u64};

/// The range protocol's name.
pub(crate) const RANGE_PROTOCOL: StreamProtocol = StreamProtocol::new("/pedals/blob-range/1");

/// The largest chunk a node asks for or serves, in bytes.
pub const MAX_CHUNK_BYTES: u32 = 4 << 20;
/// The smallest chunk size a manifest may be asked for (bounds a manifest's length).
pub const MIN_CHUNK_BYTES: u32 = 16 << 10;
/// The most chunks a manifest may list (2 MiB of hashes).
pub(crate) const MAX_MANIFEST_CHUNKS: u64 = 1 << 16;
const MAX_REASON: usize = 256;

const TAG_MANIFEST: u8 = 0;
const TAG_NOT_FOUND: u8 = 1;
const TAG_BUSY: u8 = 2;
const TAG_FAILED: u8 = 3;
const TAG_REFUSED: u8 = 4;
const TAG_BYTES: u8 = 5;

const KIND_MANIFEST: u8 = 0;
const KIND_BYTES: u8 = 1;

/// A blob cut into chunks of `chunk_size` bytes (the last one shorter), with the sha2-256 of
/// each: what lets a download check every chunk as it arrives. The blob as a whole is still
/// checked against its CID at the end, which catches a manifest that lies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlobManifest {
    /// The blob's size in bytes.
    pub size: u64,
    /// The size of every chunk but the last.
    pub chunk_size: u32,
    /// The sha2-256 of each chunk, in order.
    pub chunks: Vec<B256>,
}

impl BlobManifest {
    /// How many chunks of `chunk_size` a blob of `size` bytes has (none when it is empty).
    pub fn chunk_count(size: u64, chunk_size: u32) -> u64 {
        size.div_ceil(u64::from(chunk_size.max(1)))
    }

    /// Chunk `index`'s offset and length.
    pub fn chunk(&self, index: usize) -> (u64, u32) {
        let offset = index as u64 * u64::from(self.chunk_size);
        let len = (self.size.saturating_sub(offset)).min(u64::from(self.chunk_size));
        // len ≤ chunk_size, a u32.
        (offset, u32::try_from(len).unwrap_or(self.chunk_size))
    }

    /// Checks that the manifest is well formed and within `max_size`.
    pub(crate) fn check(&self, max_size: u64) -> Result<(), String> {
        if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&self.chunk_size) {
            return Err(format!("a chunk size of {} bytes", self.chunk_size));
        }
        if self.size > max_size {
            return Err(format!(
                "a blob of {} bytes, over this node's limit of {max_size}",
                self.size
            ));
        }
        let expected = Self::chunk_count(self.size, self.chunk_size);
        if self.chunks.len() as u64 != expected {
            return Err(format!(
                "{} chunk hashes for {} bytes in chunks of {} (expected {expected})",
                self.chunks.len(),
                self.size,
                self.chunk_size
            ));
        }
        Ok(())
    }
}

/// A request on the range protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// The blob's manifest for chunks of `chunk_size` bytes.
    Manifest {
        /// The blob.
        cid: Cid,
        /// The chunk size asked for.
        chunk_size: u32,
    },
    /// `len` bytes of the blob from `offset`.
    Bytes {
        /// The blob.
        cid: Cid,
        /// Where the range starts.
        offset: u64,
        /// How many bytes (the server refuses more than [`MAX_CHUNK_BYTES`]).
        len: u32,
    },
}

impl RangeRequest {
    pub(crate) fn cid(&self) -> &Cid {
        match self {
            Self::Manifest { cid, .. } | Self::Bytes { cid, .. } => cid,
        }
    }
}

/// What a peer answered on the range protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeReply {
    /// The manifest asked for.
    Manifest(BlobManifest),
    /// The bytes asked for.
    Bytes {
        /// The blob's size.
        size: u64,
        /// Where they start.
        offset: u64,
        /// The bytes (fewer than asked only at the end of the blob).
        bytes: Vec<u8>,
    },
    /// The peer does not have the blob.
    NotFound,
    /// The peer is at its request limit.
    Busy,
    /// The peer's store failed.
    Failed,
    /// The request was malformed or out of bounds; the reason says why.
    Refused(String),
}

/// [`request_response::Codec`] for `/pedals/blob-range/1`.
#[derive(Debug, Clone)]
pub(crate) struct RangeCodec(pub(crate) Limits);

impl request_response::Codec for RangeCodec {
    type Protocol = StreamProtocol;
    type Request = RangeRequest;
    type Response = RangeReply;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RangeRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let kind = read_u8(io).await?;
        let len = usize::from(read_u8(io).await?);
        if len > MAX_CID_BYTES {
            return Err(invalid(format!("a CID of {len} bytes")));
        }
        let mut bytes = vec![0u8; len];
        io.read_exact(&mut bytes).await?;
        let cid = cid_from_bytes(&bytes).map_err(|e| invalid(e.to_string()))?;
        match kind {
            KIND_MANIFEST => Ok(RangeRequest::Manifest {
                cid,
                chunk_size: read_u32(io).await?,
            }),
            KIND_BYTES => Ok(RangeRequest::Bytes {
                cid,
                offset: read_u64(io).await?,
                len: read_u32(io).await?,
            }),
            other => Err(invalid(format!("unknown range request kind {other}"))),
        }
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RangeReply>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_u8(io).await? {
            TAG_MANIFEST => {
                let size = read_u64(io).await?;
                let chunk_size = read_u32(io).await?;
                let n = u64::from(read_u32(io).await?);
                let expected = BlobManifest::chunk_count(size, chunk_size);
                if n > MAX_MANIFEST_CHUNKS || n != expected || size > self.0.max_blob_bytes {
                    return Err(invalid(format!(
                        "a manifest of {n} chunks of {chunk_size} bytes for a blob of {size} \
                         bytes (this node takes at most {} bytes)",
                        self.0.max_blob_bytes
                    )));
                }
                let hashes = read_bytes(io, n * 32).await?;
                let manifest = BlobManifest {
                    size,
                    chunk_size,
                    chunks: hashes.chunks_exact(32).map(B256::from_slice).collect(),
                };
                manifest
                    .check(self.0.max_blob_bytes)
                    .map_err(|e| invalid(format!("a bad manifest: {e}")))?;
                Ok(RangeReply::Manifest(manifest))
            }
            TAG_BYTES => {
                let size = read_u64(io).await?;
                let offset = read_u64(io).await?;
                let len = read_u32(io).await?;
                if len > MAX_CHUNK_BYTES || size > self.0.max_blob_bytes {
                    return Err(invalid(format!(
                        "a range of {len} bytes of a blob of {size}, over this node's limits"
                    )));
                }
                let bytes = read_bytes(io, u64::from(len)).await?;
                Ok(RangeReply::Bytes {
                    size,
                    offset,
                    bytes,
                })
            }
            TAG_NOT_FOUND => Ok(RangeReply::NotFound),
            TAG_BUSY => Ok(RangeReply::Busy),
            TAG_FAILED => Ok(RangeReply::Failed),
            TAG_REFUSED => {
                let mut len = [0u8; 2];
                io.read_exact(&mut len).await?;
                let len = u16::from_be_bytes(len);
                if usize::from(len) > MAX_REASON {
                    return Err(invalid(format!("a refusal reason of {len} bytes")));
                }
                let reason = read_bytes(io, u64::from(len)).await?;
                Ok(RangeReply::Refused(
                    String::from_utf8_lossy(&reason).into_owned(),
                ))
            }
            other => Err(invalid(format!("unknown range reply tag {other}"))),
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: RangeRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = req.cid().to_bytes();
        let len = u8::try_from(bytes.len()).map_err(|_| invalid("CID too long".into()))?;
        let kind = match req {
            RangeRequest::Manifest { .. } => KIND_MANIFEST,
            RangeRequest::Bytes { .. } => KIND_BYTES,
        };
        io.write_all(&[kind, len]).await?;
        io.write_all(&bytes).await?;
        match req {
            RangeRequest::Manifest { chunk_size, .. } => {
                io.write_all(&chunk_size.to_be_bytes()).await?;
            }
            RangeRequest::Bytes { offset, len, .. } => {
                io.write_all(&offset.to_be_bytes()).await?;
                io.write_all(&len.to_be_bytes()).await?;
            }
        }
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: RangeReply,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match res {
            RangeReply::Manifest(m) => {
                let n = u32::try_from(m.chunks.len())
                    .map_err(|_| invalid("a manifest of too many chunks".into()))?;
                io.write_all(&[TAG_MANIFEST]).await?;
                io.write_all(&m.size.to_be_bytes()).await?;
                io.write_all(&m.chunk_size.to_be_bytes()).await?;
                io.write_all(&n.to_be_bytes()).await?;
                let hashes: Vec<u8> = m.chunks.iter().flat_map(|h| h.0).collect();
                io.write_all(&hashes).await?;
            }
            RangeReply::Bytes {
                size,
                offset,
                bytes,
            } => {
                let len =
                    u32::try_from(bytes.len()).map_err(|_| invalid("a range over 4 GiB".into()))?;
                io.write_all(&[TAG_BYTES]).await?;
                io.write_all(&size.to_be_bytes()).await?;
                io.write_all(&offset.to_be_bytes()).await?;
                io.write_all(&len.to_be_bytes()).await?;
                io.write_all(&bytes).await?;
            }
            RangeReply::NotFound => io.write_all(&[TAG_NOT_FOUND]).await?,
            RangeReply::Busy => io.write_all(&[TAG_BUSY]).await?,
            RangeReply::Failed => io.write_all(&[TAG_FAILED]).await?,
            RangeReply::Refused(reason) => {
                let mut end = reason.len().min(MAX_REASON);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                let reason = &reason.as_bytes()[..end];
                io.write_all(&[TAG_REFUSED]).await?;
                io.write_all(&(reason.len() as u16).to_be_bytes()).await?;
                io.write_all(reason).await?;
            }
        }
        io.close().await
    }
}

async fn read_u32<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u32> {
    let mut b = [0u8; 4];
    io.read_exact(&mut b).await?;
    Ok(u32::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use futures::{executor::block_on, io::Cursor};
    use libp2p::request_response::Codec;
    use pedals_core::cid_of;

    use super::*;

    const LIMITS: Limits = Limits {
        max_blob_bytes: 1 << 30,
        max_checkpoint_bytes: 1024,
    };

    fn round_trip(reply: RangeReply) -> io::Result<RangeReply> {
        block_on(async {
            let mut codec = RangeCodec(LIMITS);
            let mut buf = Cursor::new(Vec::new());
            codec
                .write_response(&RANGE_PROTOCOL, &mut buf, reply)
                .await?;
            buf.set_position(0);
            codec.read_response(&RANGE_PROTOCOL, &mut buf).await
        })
    }

    #[test]
    fn replies_round_trip() {
        let manifest = BlobManifest {
            size: 40_000,
            chunk_size: MIN_CHUNK_BYTES,
            chunks: vec![B256::repeat_byte(1), B256::repeat_byte(2), B256::ZERO],
        };
        for reply in [
            RangeReply::Manifest(manifest),
            RangeReply::Bytes {
                size: 10,
                offset: 3,
                bytes: vec![1, 2, 3],
            },
            RangeReply::NotFound,
            RangeReply::Busy,
            RangeReply::Failed,
            RangeReply::Refused("offset 12 is beyond the blob's 10 bytes".into()),
        ] {
            assert_eq!(round_trip(reply.clone()).expect("round trip"), reply);
        }
    }

    #[test]
    fn a_manifest_that_does_not_add_up_is_refused_before_reading_its_hashes() {
        let lying = BlobManifest {
            size: 1 << 29,
            chunk_size: MIN_CHUNK_BYTES,
            chunks: vec![B256::ZERO; 3],
        };
        let err = round_trip(RangeReply::Manifest(lying)).expect_err("count mismatch");
        assert!(err.to_string().contains("a manifest of 3 chunks"), "{err}");
        let huge = BlobManifest {
            size: 1 << 40,
            chunk_size: MAX_CHUNK_BYTES,
            chunks: Vec::new(),
        };
        assert!(round_trip(RangeReply::Manifest(huge)).is_err());
    }

    #[test]
    fn an_oversized_range_is_refused_before_reading() {
        let frame = block_on(async {
            let mut frame = vec![TAG_BYTES];
            frame.extend_from_slice(&100u64.to_be_bytes());
            frame.extend_from_slice(&0u64.to_be_bytes());
            frame.extend_from_slice(&u32::MAX.to_be_bytes());
            RangeCodec(LIMITS)
                .read_response(&RANGE_PROTOCOL, &mut Cursor::new(frame))
                .await
        });
        let err = frame.expect_err("too long");
        assert!(err.to_string().contains("over this node's limits"), "{err}");
    }

    #[test]
    fn requests_round_trip_and_garbage_is_an_error() {
        block_on(async {
            let mut codec = RangeCodec(LIMITS);
            let cid = cid_of(b"hello");
            for req in [
                RangeRequest::Manifest {
                    cid,
                    chunk_size: 1 << 20,
                },
                RangeRequest::Bytes {
                    cid,
                    offset: u64::MAX,
                    len: u32::MAX,
                },
            ] {
                let mut buf = Cursor::new(Vec::new());
                codec
                    .write_request(&RANGE_PROTOCOL, &mut buf, req.clone())
                    .await
                    .expect("write");
                buf.set_position(0);
                let back = codec
                    .read_request(&RANGE_PROTOCOL, &mut buf)
                    .await
                    .expect("read");
                assert_eq!(back, req);
            }
            for garbage in [vec![7u8, 0], vec![0u8, 200], vec![1u8, 4, 1, 2, 3, 4]] {
                assert!(
                    codec
                        .read_request(&RANGE_PROTOCOL, &mut Cursor::new(garbage))
                        .await
                        .is_err()
                );
            }
        });
    }

    #[test]
    fn chunks_cover_the_blob() {
        let m = BlobManifest {
            size: 2 * u64::from(MIN_CHUNK_BYTES) + 5,
            chunk_size: MIN_CHUNK_BYTES,
            chunks: vec![B256::ZERO; 3],
        };
        assert!(m.check(1 << 30).is_ok());
        assert_eq!(m.chunk(0), (0, MIN_CHUNK_BYTES));
        assert_eq!(m.chunk(2), (2 * u64::from(MIN_CHUNK_BYTES), 5));
        assert_eq!(BlobManifest::chunk_count(0, MIN_CHUNK_BYTES), 0);
    }
}
