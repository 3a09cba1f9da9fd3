//! The node's network configuration.

use std::time::Duration;

use libp2p::Multiaddr;

/// How a node joins the network and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Addresses to listen on. The default is TCP and QUIC on loopback, on ports the system
    /// picks; a provider that serves the internet listens on `0.0.0.0`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start, each `/ip4/…/tcp/…/p2p/<peer id>` (or QUIC).
    pub bootstrap: Vec<Multiaddr>,
    /// The largest blob this node downloads, in bytes.
    pub max_blob_bytes: u64,
    /// The largest checkpoint state this node downloads, in bytes.
    pub max_checkpoint_bytes: u64,
    /// The largest span request or reply (split-model inference) this node sends or takes,
    /// in bytes: a prefill's hidden states are `tokens × hidden × 4` bytes.
    pub max_span_bytes: u64,
    /// How long one request may take, transfer included.
    pub request_timeout: Duration,
    /// How many of one peer's requests this node serves at once; more get "busy".
    pub max_inbound_per_peer: usize,
    /// How many requests, from all peers together, this node serves at once; more get
    /// "busy" (a bound on the memory and CPU that serving takes, whatever the peer count).
    pub max_inbound_total: usize,
    /// The capacity of the command queue and of the event queue.
    pub queue: usize,
    /// The gossipsub heartbeat.
    pub gossip_heartbeat: Duration,
    /// How long a connection with nothing to do stays open.
    pub idle_timeout: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"),
                "/ip4/127.0.0.1/udp/0/quic-v1"
                    .parse()
                    .expect("valid multiaddr"),
            ],
            bootstrap: Vec::new(),
            max_blob_bytes: 512 << 20,
            max_checkpoint_bytes: 64 << 20,
            max_span_bytes: 64 << 20,
            request_timeout: Duration::from_secs(120),
            max_inbound_per_peer: 4,
            max_inbound_total: 32,
            queue: 64,
            gossip_heartbeat: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(60),
        }
    }
}
