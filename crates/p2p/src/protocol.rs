//! The two request-response wire protocols: blobs by CID and checkpoints with their trace
//! openings.
//!
//! Both frame their messages by hand so that a blob of tens of megabytes goes over the stream
//! as raw bytes (no serde pass over it), and every length is checked against a limit before
//! anything is allocated for it.
//!
//! ```text
//! /pedals/blob/1        request   u8 len | CID bytes (≤ 64)
//!                       response  u8 tag | (tag 0: u64 len | bytes)
//! /pedals/checkpoint/1  request   u64 job | u64 step               (big-endian)
//!                       response  u8 tag | (tag 0: u32 len | JSON opening header
//!                                                | u64 len | state bytes)
//! tags: 0 found, 1 not found, 2 busy (the peer's request limit), 3 failed (its store failed)
//! ```
//!
//! Large blobs go in verified chunks over `/pedals/blob-range/1` instead ([`crate::chunked`]).

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};
use pedals_core::{B256, Cid, MerkleProof, cid_from_bytes};
use serde::{Deserialize, Serialize};

/// The blob protocol's name.
pub(crate) const BLOB_PROTOCOL: StreamProtocol = StreamProtocol::new("/pedals/blob/1");
/// The checkpoint protocol's name.
pub(crate) const CHECKPOINT_PROTOCOL: StreamProtocol = StreamProtocol::new("/pedals/checkpoint/1");

pub(crate) const MAX_CID_BYTES: usize = 64;
const MAX_OPENING_HEADER: u32 = 64 * 1024;
/// Reads are grown in steps of this size, so a peer that announces a large length but sends
/// little costs little memory.
const READ_CHUNK: u64 = 1 << 20;

const TAG_FOUND: u8 = 0;
const TAG_NOT_FOUND: u8 = 1;
const TAG_BUSY: u8 = 2;
const TAG_FAILED: u8 = 3;

/// A request for the bytes of one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobRequest {
    /// The blob's CID.
    pub(crate) cid: Cid,
}

/// A request for the state of `job` after `step` steps with its trace openings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckpointRequest {
    /// The job id on-chain.
    pub(crate) job: u64,
    /// The number of steps done: 0 is the initial state `h_0`.
    pub(crate) step: u64,
}

/// A checkpoint with the openings of its hash (and, unless it is the last one, of the next
/// state's hash) against the job's trace root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointOpening {
    /// The canonical state bytes after `step` steps; `h_step` is their checkpoint hash.
    pub state: Vec<u8>,
    /// The inclusion proof of `h_step`.
    pub proof: MerkleProof,
    /// `h_(step+1)` and its inclusion proof, for every step but the last.
    pub next: Option<(B256, MerkleProof)>,
    /// For an audited job, the path of step `step`'s audit leaf in the job's audit tree:
    /// the siblings only, never the leaf, which an auditor must compute by re-executing the
    /// step (docs/protocol.md, paid auditing).
    pub audit: Option<MerkleProof>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OpeningHeader {
    proof: MerkleProof,
    next: Option<(B256, MerkleProof)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit: Option<MerkleProof>,
}

/// What a peer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    /// The content.
    Found(T),
    /// The peer does not have it.
    NotFound,
    /// The peer is serving as many of our requests as it allows; try again later.
    Busy,
    /// The peer's store failed to read it.
    Failed,
}

impl<T> Reply<T> {
    fn tag(&self) -> u8 {
        match self {
            Self::Found(_) => TAG_FOUND,
            Self::NotFound => TAG_NOT_FOUND,
            Self::Busy => TAG_BUSY,
            Self::Failed => TAG_FAILED,
        }
    }

    fn from_tag(tag: u8) -> io::Result<Option<Self>> {
        match tag {
            TAG_FOUND => Ok(None),
            TAG_NOT_FOUND => Ok(Some(Self::NotFound)),
            TAG_BUSY => Ok(Some(Self::Busy)),
            TAG_FAILED => Ok(Some(Self::Failed)),
            other => Err(invalid(format!("unknown reply tag {other}"))),
        }
    }
}

pub(crate) fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

pub(crate) async fn read_u8<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u8> {
    let mut b = [0u8; 1];
    io.read_exact(&mut b).await?;
    Ok(b[0])
}

pub(crate) async fn read_u64<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u64> {
    let mut b = [0u8; 8];
    io.read_exact(&mut b).await?;
    Ok(u64::from_be_bytes(b))
}

/// Reads exactly `len` bytes (already checked against a limit), growing the buffer as the
/// bytes arrive rather than trusting `len` up front. Each step is a zeroed allocation and one
/// `read_exact`: no per-byte loop, so it stays fast in a debug build whichever crate's
/// optimization level its generic code ends up compiled at.
pub(crate) async fn read_bytes<T: AsyncRead + Unpin>(io: &mut T, len: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        // step ≤ READ_CHUNK, 1 MiB.
        let step = left.min(READ_CHUNK) as usize;
        let mut piece = vec![0u8; step];
        io.read_exact(&mut piece).await.map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the peer announced {len} bytes but sent fewer than {}",
                        len - left + step as u64
                    ),
                )
            } else {
                e
            }
        })?;
        if out.is_empty() {
            out = piece;
        } else {
            out.extend_from_slice(&piece);
        }
        left -= step as u64;
    }
    Ok(out)
}

pub(crate) async fn read_sized<T: AsyncRead + Unpin>(
    io: &mut T,
    max: u64,
    what: &str,
) -> io::Result<Vec<u8>> {
    let len = read_u64(io).await?;
    if len > max {
        return Err(invalid(format!(
            "the peer announced a {what} of {len} bytes, over this node's limit of {max}"
        )));
    }
    read_bytes(io, len).await
}

/// Reads a reply whose content is bytes (`u8 tag | (tag 0: u64 len | bytes)`), at most `max`.
pub(crate) async fn read_bytes_reply<T: AsyncRead + Unpin>(
    io: &mut T,
    max: u64,
    what: &str,
) -> io::Result<Reply<Vec<u8>>> {
    if let Some(reply) = Reply::from_tag(read_u8(io).await?)? {
        return Ok(reply);
    }
    Ok(Reply::Found(read_sized(io, max, what).await?))
}

/// Writes a reply whose content is bytes, and closes the stream.
pub(crate) async fn write_bytes_reply<T: AsyncWrite + Unpin>(
    io: &mut T,
    res: Reply<Vec<u8>>,
) -> io::Result<()> {
    io.write_all(&[res.tag()]).await?;
    if let Reply::Found(bytes) = res {
        io.write_all(&(bytes.len() as u64).to_be_bytes()).await?;
        io.write_all(&bytes).await?;
    }
    io.close().await
}

/// The codec of both protocols, with the node's size limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The largest blob this node accepts.
    pub(crate) max_blob_bytes: u64,
    /// The largest checkpoint state this node accepts.
    pub(crate) max_checkpoint_bytes: u64,
}

/// [`request_response::Codec`] for `/pedals/blob/1`.
#[derive(Debug, Clone)]
pub(crate) struct BlobCodec(pub(crate) Limits);

impl request_response::Codec for BlobCodec {
    type Protocol = StreamProtocol;
    type Request = BlobRequest;
    type Response = Reply<Vec<u8>>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<BlobRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = usize::from(read_u8(io).await?);
        if len > MAX_CID_BYTES {
            return Err(invalid(format!("a CID of {len} bytes")));
        }
        let mut bytes = vec![0u8; len];
        io.read_exact(&mut bytes).await?;
        let cid = cid_from_bytes(&bytes).map_err(|e| invalid(e.to_string()))?;
        Ok(BlobRequest { cid })
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Reply<Vec<u8>>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_bytes_reply(io, self.0.max_blob_bytes, "blob").await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: BlobRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = req.cid.to_bytes();
        let len = u8::try_from(bytes.len()).map_err(|_| invalid("CID too long".into()))?;
        io.write_all(&[len]).await?;
        io.write_all(&bytes).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Reply<Vec<u8>>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_bytes_reply(io, res).await
    }
}

/// [`request_response::Codec`] for `/pedals/checkpoint/1`.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointCodec(pub(crate) Limits);

impl request_response::Codec for CheckpointCodec {
    type Protocol = StreamProtocol;
    type Request = CheckpointRequest;
    type Response = Reply<CheckpointOpening>;

    async fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<CheckpointRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let job = read_u64(io).await?;
        let step = read_u64(io).await?;
        Ok(CheckpointRequest { job, step })
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Reply<CheckpointOpening>>
    where
        T: AsyncRead + Unpin + Send,
    {
        if let Some(reply) = Reply::from_tag(read_u8(io).await?)? {
            return Ok(reply);
        }
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len);
        if len > MAX_OPENING_HEADER {
            return Err(invalid(format!("an opening header of {len} bytes")));
        }
        let header = read_bytes(io, u64::from(len)).await?;
        let header: OpeningHeader =
            serde_json::from_slice(&header).map_err(|e| invalid(e.to_string()))?;
        let state = read_sized(io, self.0.max_checkpoint_bytes, "checkpoint").await?;
        Ok(Reply::Found(CheckpointOpening {
            state,
            proof: header.proof,
            next: header.next,
            audit: header.audit,
        }))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: CheckpointRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req.job.to_be_bytes()).await?;
        io.write_all(&req.step.to_be_bytes()).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Reply<CheckpointOpening>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&[res.tag()]).await?;
        if let Reply::Found(opening) = res {
            let header = serde_json::to_vec(&OpeningHeader {
                proof: opening.proof,
                next: opening.next,
                audit: opening.audit,
            })
            .map_err(|e| invalid(e.to_string()))?;
            let len = u32::try_from(header.len())
                .ok()
                .filter(|&l| l <= MAX_OPENING_HEADER)
                .ok_or_else(|| invalid("opening header too large".into()))?;
            io.write_all(&len.to_be_bytes()).await?;
            io.write_all(&header).await?;
            io.write_all(&(opening.state.len() as u64).to_be_bytes())
                .await?;
            io.write_all(&opening.state).await?;
        }
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use futures::{executor::block_on, io::Cursor};
    use libp2p::request_response::Codec;
    use pedals_core::cid_of;

    use super::*;

    const LIMITS: Limits = Limits {
        max_blob_bytes: 1024,
        max_checkpoint_bytes: 1024,
    };

    fn round_trip_blob(reply: Reply<Vec<u8>>) -> io::Result<Reply<Vec<u8>>> {
        block_on(async {
            let mut codec = BlobCodec(LIMITS);
            let mut buf = Cursor::new(Vec::new());
            codec
                .write_response(&BLOB_PROTOCOL, &mut buf, reply)
                .await?;
            buf.set_position(0);
            codec.read_response(&BLOB_PROTOCOL, &mut buf).await
        })
    }

    #[test]
    fn blob_replies_round_trip() {
        for reply in [
            Reply::Found(vec![1, 2, 3]),
            Reply::Found(vec![]),
            Reply::NotFound,
            Reply::Busy,
            Reply::Failed,
        ] {
            assert_eq!(round_trip_blob(reply.clone()).expect("round trip"), reply);
        }
    }

    #[test]
    fn blob_over_the_limit_is_refused_before_reading() {
        let err = round_trip_blob(Reply::Found(vec![0; 1025])).expect_err("over the limit");
        assert!(err.to_string().contains("over this node's limit"), "{err}");
    }

    #[test]
    fn truncated_blob_is_an_error() {
        let err = block_on(async {
            let mut frame = vec![TAG_FOUND];
            frame.extend_from_slice(&100u64.to_be_bytes());
            frame.extend_from_slice(&[7; 10]);
            BlobCodec(LIMITS)
                .read_response(&BLOB_PROTOCOL, &mut Cursor::new(frame))
                .await
        })
        .expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn blob_request_round_trips_and_rejects_garbage() {
        block_on(async {
            let mut codec = BlobCodec(LIMITS);
            let cid = cid_of(b"hello");
            let mut buf = Cursor::new(Vec::new());
            codec
                .write_request(&BLOB_PROTOCOL, &mut buf, BlobRequest { cid })
                .await
                .expect("write");
            buf.set_position(0);
            let req = codec
                .read_request(&BLOB_PROTOCOL, &mut buf)
                .await
                .expect("read");
            assert_eq!(req.cid, cid);
            let garbage = vec![4u8, 1, 2, 3, 4];
            assert!(
                codec
                    .read_request(&BLOB_PROTOCOL, &mut Cursor::new(garbage))
                    .await
                    .is_err()
            );
        });
    }

    #[test]
    fn checkpoint_opening_round_trips() {
        block_on(async {
            let mut codec = CheckpointCodec(LIMITS);
            let proof = MerkleProof {
                index: 3,
                leaf_count: 5,
                siblings: vec![B256::repeat_byte(1); 3],
            };
            let opening = CheckpointOpening {
                state: vec![9; 100],
                proof: proof.clone(),
                next: Some((B256::repeat_byte(2), proof.clone())),
                audit: Some(proof),
            };
            let mut buf = Cursor::new(Vec::new());
            codec
                .write_response(
                    &CHECKPOINT_PROTOCOL,
                    &mut buf,
                    Reply::Found(opening.clone()),
                )
                .await
                .expect("write");
            buf.set_position(0);
            let back = codec
                .read_response(&CHECKPOINT_PROTOCOL, &mut buf)
                .await
                .expect("read");
            assert_eq!(back, Reply::Found(opening));
        });
    }
}
