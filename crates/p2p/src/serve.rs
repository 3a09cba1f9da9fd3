//! Settling request-response events: replies to the callers waiting for them, and what a
//! content source said turned into the reply to send.

use std::collections::HashMap;

use libp2p::request_response::{self, OutboundRequestId};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::{
    NetStats, P2pError,
    chunked::RangeReply,
    protocol::{CheckpointOpening, Reply},
};

/// The callers waiting for the replies to outbound requests.
pub(crate) type Pending<R> = HashMap<OutboundRequestId, oneshot::Sender<Result<R, P2pError>>>;

/// What a reply carries, in bytes, for the counters.
pub(crate) trait Payload {
    fn size(&self) -> usize;
}

impl Payload for Vec<u8> {
    fn size(&self) -> usize {
        self.len()
    }
}

impl Payload for CheckpointOpening {
    fn size(&self) -> usize {
        self.state.len()
    }
}

impl<T: Payload> Payload for Reply<T> {
    fn size(&self) -> usize {
        match self {
            Reply::Found(content) => content.size(),
            _ => 0,
        }
    }
}

impl Payload for RangeReply {
    fn size(&self) -> usize {
        match self {
            RangeReply::Bytes { bytes, .. } => bytes.len(),
            _ => 0,
        }
    }
}

/// Every request-response event but an inbound request: hands a response, or the failure of
/// an outbound request, to the caller waiting for it; logs a failure to serve.
pub(crate) fn settle_outbound<Req, R: Payload>(
    pending: &mut Pending<R>,
    stats: &NetStats,
    event: request_response::Event<Req, R>,
    what: &str,
) {
    use request_response::{Event, Message};
    match event {
        Event::Message {
            message:
                Message::Response {
                    request_id,
                    response,
                },
            ..
        } => {
            let size = response.size();
            if size > 0 {
                stats.count_received(size);
            }
            if let Some(reply) = pending.remove(&request_id) {
                let _ = reply.send(Ok(response));
            }
        }
        Event::OutboundFailure {
            peer,
            request_id,
            error,
            ..
        } => {
            if let Some(reply) = pending.remove(&request_id) {
                let _ = reply.send(Err(P2pError::Request {
                    peer: peer.to_string(),
                    reason: error.to_string(),
                }));
            }
        }
        Event::InboundFailure { peer, error, .. } => {
            debug!(target: "pedals::p2p", %peer, %error, what, "serving failed");
        }
        Event::Message {
            message: Message::Request { .. },
            ..
        }
        | Event::ResponseSent { .. } => {}
    }
}

/// Turns what the source said (on the blocking pool) into the reply to send.
pub(crate) fn serve_reply<T>(
    found: Result<Result<Option<T>, String>, tokio::task::JoinError>,
    what: impl FnOnce() -> String,
) -> Reply<T> {
    match found {
        Ok(Ok(Some(content))) => Reply::Found(content),
        Ok(Ok(None)) => Reply::NotFound,
        Ok(Err(error)) => {
            warn!(target: "pedals::p2p", what = %what(), %error, "the content source failed");
            Reply::Failed
        }
        Err(error) => {
            warn!(target: "pedals::p2p", what = %what(), %error, "the content source panicked");
            Reply::Failed
        }
    }
}
