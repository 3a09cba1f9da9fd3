//! Building the swarm: transports, the behaviour and its settings, and dialing.

use super::*;

pub(super) fn build_swarm(
    keypair: Keypair,
    config: &NetConfig,
) -> Result<Swarm<Behaviour>, P2pError> {
    let start = |e: &dyn std::fmt::Display| P2pError::Start(e.to_string());
    let limits = Limits {
        max_blob_bytes: config.max_blob_bytes,
        max_checkpoint_bytes: config.max_checkpoint_bytes,
    };
    let heartbeat = config.gossip_heartbeat;
    let span_bytes = config.max_span_bytes;
    let request_timeout = config.request_timeout;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| start(&e))?
        .with_quic()
        // Names in multiaddrs (/dns4/worker-0.pedals-worker/tcp/4001), as in a Kubernetes
        // headless Service, resolved with the system's resolver configuration.
        .with_dns()
        .map_err(|e| start(&e))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let gossip_config = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(heartbeat)
                .validation_mode(gossipsub::ValidationMode::Strict)
                .validate_messages()
                .max_transmit_size(MAX_GOSSIP_BYTES + 512)
                .build()?;
            let mut gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )?;
            gossipsub.with_peer_score(score_params(), gossipsub::PeerScoreThresholds::default())?;
            for topic in [JOBS_TOPIC, CAPACITY_TOPIC, PROGRESS_TOPIC, SPANS_TOPIC] {
                gossipsub.subscribe(&gossipsub::IdentTopic::new(topic))?;
            }
            let mut kad_config = kad::Config::new(KAD_PROTOCOL);
            kad_config.set_query_timeout(Duration::from_secs(10));

            let mut kad =
                kad::Behaviour::with_config(peer_id, MemoryStore::new(peer_id), kad_config);
            // Serve kad queries without waiting for a confirmed external address: on a LAN
            // or loopback there is none, and provider records must still spread.
            kad.set_mode(Some(kad::Mode::Server));
            let rr_config = request_response::Config::default()
                .with_request_timeout(request_timeout)
                .with_max_concurrent_streams(64);
            Ok(Behaviour {
                gossipsub,
                kad,
                blobs: request_response::Behaviour::with_codec(
                    BlobCodec(limits),
                    [(BLOB_PROTOCOL, ProtocolSupport::Full)],
                    rr_config.clone(),
                ),
                checkpoints: request_response::Behaviour::with_codec(
                    CheckpointCodec(limits),
                    [(CHECKPOINT_PROTOCOL, ProtocolSupport::Full)],
                    rr_config.clone(),
                ),
                ranges: request_response::Behaviour::with_codec(
                    RangeCodec(limits),
                    [(RANGE_PROTOCOL, ProtocolSupport::Full)],
                    rr_config.clone(),
                ),
                spans: request_response::Behaviour::with_codec(
                    SpanCodec(span_bytes),
                    [(crate::span::SPAN_PROTOCOL, ProtocolSupport::Full)],
                    rr_config,
                ),
                identify: identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                        .with_agent_version(format!("pedals/{}", env!("CARGO_PKG_VERSION"))),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
            })
        })
        .map_err(|e| start(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    Ok(swarm)
}

/// Peer scoring: invalid messages cost a lot (one is enough to be graylisted), first
/// deliveries earn a little; delivery-rate penalties stay off because announcements are rare.
fn score_params() -> gossipsub::PeerScoreParams {
    let mut params = gossipsub::PeerScoreParams::default();
    for topic in [JOBS_TOPIC, CAPACITY_TOPIC, PROGRESS_TOPIC, SPANS_TOPIC] {
        params.topics.insert(
            gossipsub::IdentTopic::new(topic).hash(),
            gossipsub::TopicScoreParams {
                topic_weight: 1.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: -100.0,
                invalid_message_deliveries_decay: 0.5,
                ..Default::default()
            },
        );
    }
    params
}

pub(super) fn dial(swarm: &mut Swarm<Behaviour>, addr: Multiaddr) -> Result<(), P2pError> {
    if let Some(Protocol::P2p(peer)) = addr.iter().last() {
        let mut transport_addr = addr.clone();
        transport_addr.pop();
        swarm.behaviour_mut().kad.add_address(&peer, transport_addr);
    }
    swarm.dial(addr.clone()).map_err(|e| P2pError::Dial {
        addr,
        reason: e.to_string(),
    })
}
