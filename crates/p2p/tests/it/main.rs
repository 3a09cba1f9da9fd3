//! pedals-p2p integration tests: real swarms on loopback.

mod blobs;
mod checkpoints;
mod chunks;
mod gossip;

use std::{sync::Arc, time::Duration};

use pedals_p2p::{Client, ContentSource, Keypair, Multiaddr, NetConfig, Network, start};

/// Starts a node serving from `source`, bootstrapping from `bootstrap`.
pub(crate) async fn node(source: Arc<dyn ContentSource>, bootstrap: &[Multiaddr]) -> Network {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let config = NetConfig {
        bootstrap: bootstrap.to_vec(),
        gossip_heartbeat: Duration::from_millis(100),
        request_timeout: Duration::from_secs(30),
        ..NetConfig::default()
    };
    start(Keypair::generate_ed25519(), config, source)
        .await
        .expect("node starts")
}

/// The node's TCP address, with its peer id.
pub(crate) async fn tcp_addr(client: &Client) -> Multiaddr {
    address(client, "/tcp/").await
}

/// The node's QUIC address, with its peer id.
pub(crate) async fn quic_addr(client: &Client) -> Multiaddr {
    address(client, "/quic-v1").await
}

async fn address(client: &Client, kind: &str) -> Multiaddr {
    client
        .listen_addrs()
        .await
        .expect("addresses")
        .into_iter()
        .find(|a| a.to_string().contains(kind))
        .expect("listening on that transport")
}

/// Waits until `client` has at least `n` peers.
pub(crate) async fn wait_for_peers(client: &Client, n: usize) {
    within(20, async {
        while client.peers().await.expect("peers").len() < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Runs `f`, failing the test if it takes more than `secs` seconds.
pub(crate) async fn within<T>(secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("did not finish within {secs} s"))
}

/// Deterministic pseudo-random bytes.
pub(crate) fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
