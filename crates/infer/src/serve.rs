//! Putting a span server on the network: it answers `/pedals/span/1` and announces its span
//! on gossip every `every`, until the network stops.

use std::{sync::Arc, time::Duration};

use pedals_p2p::{Announcement, Client, P2pError};
use tracing::debug;

use crate::SpanServer;

/// A paid session idle this long is settled (its client left without closing it), and its
/// cache dropped: well within any withdrawal delay a deployment should have (1 day by default).
pub const SETTLE_IDLE: Duration = Duration::from_secs(30);

/// Serves `server` on `net` and announces it now and every `every` (announcements are how
/// clients find it; one that stops announcing is forgotten after a few periods); settles the
/// paid sessions whose clients went away. Returns when the network stops.
pub async fn serve(net: Client, server: Arc<SpanServer>, every: Duration) {
    if net.serve_spans(server.clone()).await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        let s = server.clone();
        let _ = tokio::task::spawn_blocking(move || s.settle_idle(SETTLE_IDLE)).await;
        if announce(&net, &server).await.is_err() {
            return;
        }
    }
}

/// Publishes `server`'s announcement with the node's addresses (at most 8); an error only
/// when the network has stopped.
pub(crate) async fn announce(net: &Client, server: &SpanServer) -> Result<(), P2pError> {
    let mut a = server.announcement();
    a.addrs = net
        .listen_addrs()
        .await
        .unwrap_or_default()
        .iter()
        .take(8)
        .map(ToString::to_string)
        .collect();
    match net.publish(&Announcement::Span(a)).await {
        Err(P2pError::Stopped) => Err(P2pError::Stopped),
        // No peer on the topic yet: normal at start.
        Err(e) => {
            debug!(target: "pedals::infer", error = %e, "span announcement not sent");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}
