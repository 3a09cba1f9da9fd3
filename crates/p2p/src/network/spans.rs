//! Split-model inference over `/pedals/span/1`: inbound requests handed to the node's
//! [`SpanService`], and the client's calls.

use super::*;

impl EventLoop {
    pub(super) fn on_span_event(
        &mut self,
        event: request_response::Event<Vec<u8>, Reply<Vec<u8>>>,
    ) {
        use request_response::{Event, Message};
        let (peer, request, channel) = match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => (peer, request, channel),
            other => return settle_outbound(&mut self.pending_spans, &self.stats, other, "span"),
        };
        let Some(service) = self.span_service.clone() else {
            let _ = (self.swarm.behaviour_mut().spans).send_response(channel, Reply::NotFound);
            return;
        };
        if !self.admit(peer) {
            let _ = (self.swarm.behaviour_mut().spans).send_response(channel, Reply::Busy);
            return;
        }
        let served = self.served_tx.clone();
        tokio::spawn(async move {
            let answer = tokio::task::spawn_blocking(move || service.call(peer, request)).await;
            let reply = match answer {
                Ok(bytes) => Reply::Found(bytes),
                Err(error) => {
                    warn!(target: "pedals::p2p", %peer, %error, "the span service panicked");
                    Reply::Failed
                }
            };
            let _ = served.send(Served::Span(peer, channel, reply)).await;
        });
    }
}

impl Client {
    /// Answers `/pedals/span/1` requests with `service` from now on (before this, or on a
    /// node that never calls it, peers are told that this node serves no spans).
    pub async fn serve_spans(&self, service: Arc<dyn SpanService>) -> Result<(), P2pError> {
        self.call(|reply| Command::ServeSpans(service, reply)).await
    }

    /// Sends one span request to `peer` and returns its answer's bytes.
    pub async fn span_call(&self, peer: PeerId, request: Vec<u8>) -> Result<Vec<u8>, P2pError> {
        let reply = self
            .call(|reply| Command::Span {
                peer,
                request,
                reply,
            })
            .await??;
        let peer = peer.to_string();
        match reply {
            Reply::Found(bytes) => Ok(bytes),
            Reply::NotFound => Err(P2pError::NotFound {
                peer,
                what: "a span server".into(),
            }),
            Reply::Busy => Err(P2pError::Busy { peer }),
            Reply::Failed => Err(P2pError::PeerFailed {
                peer,
                what: "a span request".into(),
            }),
        }
    }
}
