//! `/pedals/span/1`: the request-response protocol of split-model inference. The network
//! layer only moves bytes: a node that serves spans registers a [`SpanService`] (the
//! inference crate's server) and every inbound request is handed to it on the blocking pool;
//! what the bytes mean is the service's business (docs/split-inference.md, "On the wire").
//!
//! ```text
//! /pedals/span/1  request   u64 len | bytes                       (big-endian length)
//!                 response  u8 tag | (tag 0: u64 len | bytes)
//! tags: 0 answered, 1 this node serves no spans, 2 busy, 3 failed (the service panicked)
//! ```

use std::io;

use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use libp2p::{PeerId, StreamProtocol, request_response};

use crate::protocol::{Reply, read_bytes_reply, read_sized, write_bytes_reply};

/// The span protocol's name.
pub(crate) const SPAN_PROTOCOL: StreamProtocol = StreamProtocol::new("/pedals/span/1");

/// What a node that serves spans answers requests with. Calls run on tokio's blocking pool,
/// one per inbound request, within the node's inbound limits.
pub trait SpanService: Send + Sync + 'static {
    /// Answers `request` from `peer`.
    fn call(&self, peer: PeerId, request: Vec<u8>) -> Vec<u8>;
}

/// [`request_response::Codec`] for `/pedals/span/1`, with the largest message accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanCodec(pub(crate) u64);

impl request_response::Codec for SpanCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Reply<Vec<u8>>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_sized(io, self.0, "span request").await
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Reply<Vec<u8>>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_bytes_reply(io, self.0, "span reply").await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&(req.len() as u64).to_be_bytes()).await?;
        io.write_all(&req).await?;
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
