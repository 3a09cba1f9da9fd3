//! The swarm, its event loop, and the [`Client`] handle that talks to it.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, gossipsub, identify,
    identity::Keypair,
    kad::{self, store::MemoryStore},
    multiaddr::Protocol,
    noise, ping,
    request_response::{self, ProtocolSupport, ResponseChannel},
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux,
};
use pedals_core::{B256, Cid, verify_cid};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::{
    ContentSource, NetStats, P2pError,
    chunked::{ManifestCache, RANGE_PROTOCOL, RangeCodec, RangeReply, RangeRequest},
    config::NetConfig,
    gossip::{
        self, Announcement, CAPACITY_TOPIC, JOBS_TOPIC, MAX_GOSSIP_BYTES, PROGRESS_TOPIC,
        SPANS_TOPIC,
    },
    protocol::{
        BLOB_PROTOCOL, BlobCodec, BlobRequest, CHECKPOINT_PROTOCOL, CheckpointCodec,
        CheckpointOpening, CheckpointRequest, Limits, Reply,
    },
    serve::{Payload, Pending, serve_reply, settle_outbound},
    span::{SpanCodec, SpanService},
    verify::verify_opening,
};

mod client;
mod spans;
mod swarm;

use swarm::{build_swarm, dial};

const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/pedals/kad/1");
const IDENTIFY_PROTOCOL: &str = "/pedals/id/1";

/// What the network tells the node.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    /// A valid announcement arrived on gossip.
    Announced {
        /// The peer that published it.
        from: Option<PeerId>,
        /// The announcement.
        announcement: Announcement,
    },
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its id.
    pub peer: PeerId,
    /// The last ping round trip, if one completed.
    pub rtt: Option<Duration>,
}

/// The job's on-chain commitment a checkpoint is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceClaim {
    /// The trace root posted with the result.
    pub root: B256,
    /// The number of steps posted with the result.
    pub steps: u64,
}

/// A checkpoint whose openings were verified against a [`TraceClaim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The state bytes after `step` steps.
    pub state: Vec<u8>,
    /// `h_step`, the state hash of `state`.
    pub hash: B256,
    /// `h_(step+1)`, the hash the worker committed for the next state (none for the last).
    pub next_hash: Option<B256>,
    /// The worker's path for step `step`'s audit leaf in its audit tree, unverified (only
    /// an auditor that computed the leaf can check it against the job's audit root).
    pub audit: Option<pedals_core::MerkleProof>,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
    blobs: request_response::Behaviour<BlobCodec>,
    checkpoints: request_response::Behaviour<CheckpointCodec>,
    ranges: request_response::Behaviour<RangeCodec>,
    spans: request_response::Behaviour<SpanCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

type Reply1<T> = oneshot::Sender<T>;

enum Command {
    ListenAddrs(Reply1<Vec<Multiaddr>>),
    Dial(Multiaddr, Reply1<Result<(), P2pError>>),
    Provide(Cid, Reply1<()>),
    FindProviders(Cid, Reply1<Vec<PeerId>>),
    Blob {
        peer: PeerId,
        cid: Cid,
        reply: Reply1<Result<Reply<Vec<u8>>, P2pError>>,
    },
    Checkpoint {
        peer: PeerId,
        request: CheckpointRequest,
        reply: Reply1<Result<Reply<CheckpointOpening>, P2pError>>,
    },
    Range {
        peer: PeerId,
        request: RangeRequest,
        reply: Reply1<Result<RangeReply, P2pError>>,
    },
    Span {
        peer: PeerId,
        request: Vec<u8>,
        reply: Reply1<Result<Reply<Vec<u8>>, P2pError>>,
    },
    ServeSpans(Arc<dyn SpanService>, Reply1<()>),
    Publish {
        topic: gossipsub::IdentTopic,
        data: Vec<u8>,
        reply: Reply1<Result<(), P2pError>>,
    },
    Peers(Reply1<Vec<PeerInfo>>),
    Shutdown,
}

/// A served request coming back from the blocking pool to the loop that owns the swarm.
enum Served {
    Blob(PeerId, ResponseChannel<Reply<Vec<u8>>>, Reply<Vec<u8>>),
    Checkpoint(
        PeerId,
        ResponseChannel<Reply<CheckpointOpening>>,
        Reply<CheckpointOpening>,
    ),
    Range(PeerId, ResponseChannel<RangeReply>, RangeReply),
    Span(PeerId, ResponseChannel<Reply<Vec<u8>>>, Reply<Vec<u8>>),
}

/// A cloneable handle to a running network node. Every method sends a command over a bounded
/// queue to the event loop that owns the swarm and waits for its reply.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    stats: Arc<NetStats>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// A started node: its client, its events, and the task running it.
#[derive(Debug)]
pub struct Network {
    /// The handle to give to the rest of the node.
    pub client: Client,
    /// Announcements and other events, in arrival order (bounded: when the node does not keep
    /// up, the oldest are kept and new ones dropped with a warning).
    pub events: mpsc::Receiver<NetEvent>,
    /// The event loop; it ends on [`Client::shutdown`] or when every client is dropped.
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts a node with identity `keypair` serving from `source`: builds the swarm, waits until
/// it listens on every address of `config.listen`, dials the bootstrap peers, and spawns the
/// event loop on the current tokio runtime.
pub async fn start(
    keypair: Keypair,
    config: NetConfig,
    source: Arc<dyn ContentSource>,
) -> Result<Network, P2pError> {
    let mut swarm = build_swarm(keypair, &config)?;
    let peer_id = *swarm.local_peer_id();
    let mut pending = HashSet::new();
    for addr in &config.listen {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| P2pError::Start(format!("cannot listen on {addr}: {e}")))?;
        pending.insert(id);
    }
    let wait = async {
        while !pending.is_empty() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr {
                    listener_id,
                    address,
                } => {
                    debug!(target: "pedals::p2p", %address, "listening");
                    pending.remove(&listener_id);
                }
                SwarmEvent::ListenerClosed {
                    addresses, reason, ..
                } => {
                    return Err(P2pError::Start(format!(
                        "listener on {addresses:?} closed: {reason:?}"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| P2pError::Start("no listen address within 10 s".into()))??;
    for addr in &config.bootstrap {
        dial(&mut swarm, addr.clone())?;
    }
    if config.bootstrap.is_empty() {
        info!(target: "pedals::p2p", "no bootstrap peers: this node joins the network when a peer dials it");
    }
    let (commands, command_rx) = mpsc::channel(config.queue.max(1));
    let (event_tx, events) = mpsc::channel(config.queue.max(1));
    let (served_tx, served_rx) = mpsc::channel(config.queue.max(1));
    let stats = Arc::new(NetStats::default());
    info!(target: "pedals::p2p", %peer_id, addrs = ?swarm.listeners().collect::<Vec<_>>(), "network started");
    let event_loop = EventLoop {
        swarm,
        commands: command_rx,
        events: event_tx,
        served_tx,
        served_rx,
        source,
        stats: stats.clone(),
        max_inbound_per_peer: config.max_inbound_per_peer.max(1),
        max_inbound_total: config.max_inbound_total.max(1),
        inbound: HashMap::new(),
        pending_blobs: HashMap::new(),
        pending_checkpoints: HashMap::new(),
        pending_ranges: HashMap::new(),
        span_service: None,
        pending_spans: HashMap::new(),
        manifests: Arc::default(),
        pending_providers: HashMap::new(),
        rtt: HashMap::new(),
        dropped: (0, None),
        provided: HashSet::new(),
        reprovide_due: false,
    };
    let task = tokio::spawn(event_loop.run());
    Ok(Network {
        client: Client {
            commands,
            peer_id,
            stats,
        },
        events,
        task,
    })
}

fn record_key(cid: &Cid) -> kad::RecordKey {
    kad::RecordKey::new(&cid.to_bytes())
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    served_tx: mpsc::Sender<Served>,
    served_rx: mpsc::Receiver<Served>,
    source: Arc<dyn ContentSource>,
    stats: Arc<NetStats>,
    max_inbound_per_peer: usize,
    max_inbound_total: usize,
    inbound: HashMap<PeerId, usize>,
    pending_blobs: Pending<Reply<Vec<u8>>>,
    pending_checkpoints: Pending<Reply<CheckpointOpening>>,
    pending_ranges: Pending<RangeReply>,
    span_service: Option<Arc<dyn SpanService>>,
    pending_spans: Pending<Reply<Vec<u8>>>,
    manifests: Arc<ManifestCache>,
    pending_providers: HashMap<kad::QueryId, (Reply1<Vec<PeerId>>, HashSet<PeerId>)>,
    rtt: HashMap<PeerId, Duration>,
    provided: HashSet<kad::RecordKey>,
    reprovide_due: bool,
    /// Announcements dropped because the node's reader is behind, and when that was last
    /// logged: one line a minute says how many, not one line per announcement.
    dropped: (u64, Option<std::time::Instant>),
}

impl EventLoop {
    async fn run(mut self) {
        let mut reprovide = tokio::time::interval(Duration::from_secs(1));
        reprovide.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                Some(served) = self.served_rx.recv() => self.on_served(served),
                _ = reprovide.tick() => self.reprovide(),
            }
        }
        info!(target: "pedals::p2p", peer_id = %self.swarm.local_peer_id(), "network stopped");
    }

    /// Re-announces every provided CID after new peers joined the routing table, so that a
    /// peer that arrives after a blob was announced can still find it.
    fn reprovide(&mut self) {
        if !std::mem::take(&mut self.reprovide_due) {
            return;
        }
        for key in self.provided.clone() {
            if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
                warn!(target: "pedals::p2p", error = %e, "cannot re-announce a provided blob");
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let behaviour = self.swarm.behaviour_mut();
        match command {
            Command::ListenAddrs(reply) => {
                let peer = *self.swarm.local_peer_id();
                let addrs = self
                    .swarm
                    .listeners()
                    .map(|a| a.clone().with(Protocol::P2p(peer)))
                    .collect();
                let _ = reply.send(addrs);
            }
            Command::Dial(addr, reply) => {
                let _ = reply.send(dial(&mut self.swarm, addr));
            }
            Command::Provide(cid, reply) => {
                let key = record_key(&cid);
                if let Err(e) = behaviour.kad.start_providing(key.clone()) {
                    warn!(target: "pedals::p2p", %cid, error = %e, "cannot announce a blob");
                }
                self.provided.insert(key);
                let _ = reply.send(());
            }
            Command::FindProviders(cid, reply) => {
                let id = behaviour.kad.get_providers(record_key(&cid));
                self.pending_providers.insert(id, (reply, HashSet::new()));
            }
            Command::Blob { peer, cid, reply } => {
                let id = behaviour.blobs.send_request(&peer, BlobRequest { cid });
                self.pending_blobs.insert(id, reply);
            }
            Command::Checkpoint {
                peer,
                request,
                reply,
            } => {
                let id = behaviour.checkpoints.send_request(&peer, request);
                self.pending_checkpoints.insert(id, reply);
            }
            Command::Range {
                peer,
                request,
                reply,
            } => {
                let id = behaviour.ranges.send_request(&peer, request);
                self.pending_ranges.insert(id, reply);
            }
            Command::Span {
                peer,
                request,
                reply,
            } => {
                let id = behaviour.spans.send_request(&peer, request);
                self.pending_spans.insert(id, reply);
            }
            Command::ServeSpans(service, reply) => {
                self.span_service = Some(service);
                let _ = reply.send(());
            }
            Command::Publish { topic, data, reply } => {
                let result = behaviour
                    .gossipsub
                    .publish(topic, data)
                    .map(|_| ())
                    .map_err(|e| P2pError::Publish(e.to_string()));
                let _ = reply.send(result);
            }
            Command::Peers(reply) => {
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|p| PeerInfo {
                        peer: *p,
                        rtt: self.rtt.get(p).copied(),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Shutdown => {}
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour(event),
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                debug!(target: "pedals::p2p", peer = %peer_id, "connected");
                self.stats.set_peers(self.swarm.connected_peers().count());
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established == 0 {
                    debug!(target: "pedals::p2p", peer = %peer_id, "disconnected");
                    self.rtt.remove(&peer_id);
                }
                self.stats.set_peers(self.swarm.connected_peers().count());
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(target: "pedals::p2p", peer = ?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }

    fn on_behaviour(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let (acceptance, result) =
                    gossip::validate(message.topic.as_str(), &message.data, gossip::unix_now());
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
                match result {
                    Ok(announcement) => {
                        let event = NetEvent::Announced {
                            from: message.source,
                            announcement,
                        };
                        if self.events.try_send(event).is_err() {
                            self.dropped.0 += 1;
                            let due = self
                                .dropped
                                .1
                                .is_none_or(|at| at.elapsed() >= Duration::from_secs(60));
                            if due {
                                warn!(target: "pedals::p2p", dropped = self.dropped.0, "event queue full: announcements dropped since the last such line (the node reads its events too slowly)");
                                self.dropped = (0, Some(std::time::Instant::now()));
                            }
                        }
                    }
                    Err(reason) => {
                        self.stats.count_gossip_rejected();
                        debug!(target: "pedals::p2p", from = %propagation_source, %reason, "gossip message refused");
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            }) => self.on_query(id, result, step.last),
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                is_new_peer: true, ..
            }) => {
                self.reprovide_due = !self.provided.is_empty();
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })
                if info.protocols.contains(&KAD_PROTOCOL) =>
            {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                self.rtt.insert(peer, rtt);
            }
            BehaviourEvent::Blobs(event) => self.on_blob_event(event),
            BehaviourEvent::Checkpoints(event) => self.on_checkpoint_event(event),
            BehaviourEvent::Ranges(event) => self.on_range_event(event),
            BehaviourEvent::Spans(event) => self.on_span_event(event),
            _ => {}
        }
    }

    fn on_query(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        if let kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
            providers,
            ..
        })) = result
            && let Some((_, found)) = self.pending_providers.get_mut(&id)
        {
            // Dial new providers while the query still holds their addresses (kad hands them
            // to the dialer only during the query), so the download that follows can start.
            let local = *self.swarm.local_peer_id();
            for peer in &providers {
                if *peer != local && !self.swarm.is_connected(peer) {
                    let _ = self.swarm.dial(*peer);
                }
            }
            found.extend(providers);
        }
        if last && let Some((reply, mut found)) = self.pending_providers.remove(&id) {
            found.remove(self.swarm.local_peer_id());
            let _ = reply.send(found.into_iter().collect());
        }
    }

    /// Takes an inbound request if the peer and the node are under their limits; `false`
    /// means "answer busy".
    fn admit(&mut self, peer: PeerId) -> bool {
        let total: usize = self.inbound.values().sum();
        let n = self.inbound.entry(peer).or_default();
        if *n >= self.max_inbound_per_peer || total >= self.max_inbound_total {
            self.stats.count_refused();
            return false;
        }
        *n += 1;
        true
    }

    fn release(&mut self, peer: &PeerId) {
        if let Some(n) = self.inbound.get_mut(peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.inbound.remove(peer);
            }
        }
    }

    fn on_blob_event(&mut self, event: request_response::Event<BlobRequest, Reply<Vec<u8>>>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                if !self.admit(peer) {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .blobs
                        .send_response(channel, Reply::Busy);
                    return;
                }
                let source = self.source.clone();
                let served = self.served_tx.clone();
                tokio::spawn(async move {
                    let cid = request.cid;
                    let found = tokio::task::spawn_blocking(move || source.blob(&cid)).await;
                    let reply = serve_reply(found, || format!("blob {}", request.cid));
                    let _ = served.send(Served::Blob(peer, channel, reply)).await;
                });
            }
            other => settle_outbound(&mut self.pending_blobs, &self.stats, other, "blob"),
        }
    }

    fn on_checkpoint_event(
        &mut self,
        event: request_response::Event<CheckpointRequest, Reply<CheckpointOpening>>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                if !self.admit(peer) {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .checkpoints
                        .send_response(channel, Reply::Busy);
                    return;
                }
                let source = self.source.clone();
                let served = self.served_tx.clone();
                tokio::spawn(async move {
                    let CheckpointRequest { job, step } = request;
                    let found =
                        tokio::task::spawn_blocking(move || source.checkpoint(job, step)).await;
                    let reply = serve_reply(found, || format!("checkpoint {step} of job {job}"));
                    let _ = served.send(Served::Checkpoint(peer, channel, reply)).await;
                });
            }
            other => settle_outbound(
                &mut self.pending_checkpoints,
                &self.stats,
                other,
                "checkpoint",
            ),
        }
    }

    fn on_range_event(&mut self, event: request_response::Event<RangeRequest, RangeReply>) {
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
            other => return settle_outbound(&mut self.pending_ranges, &self.stats, other, "range"),
        };
        if !self.admit(peer) {
            let _ = (self.swarm.behaviour_mut().ranges).send_response(channel, RangeReply::Busy);
            return;
        }
        let (source, cache) = (self.source.clone(), self.manifests.clone());
        let served = self.served_tx.clone();
        tokio::spawn(async move {
            let serve = move || crate::chunked::serve(source.as_ref(), &cache, request);
            let reply = tokio::task::spawn_blocking(serve)
                .await
                .unwrap_or(RangeReply::Failed);
            let _ = served.send(Served::Range(peer, channel, reply)).await;
        });
    }

    fn on_served(&mut self, served: Served) {
        let behaviour = self.swarm.behaviour_mut();
        match served {
            Served::Blob(peer, channel, reply) => {
                if let Reply::Found(bytes) = &reply {
                    self.stats.count_blob_served(bytes.size());
                }
                let _ = behaviour.blobs.send_response(channel, reply);
                self.release(&peer);
            }
            Served::Checkpoint(peer, channel, reply) => {
                if let Reply::Found(opening) = &reply {
                    self.stats.count_checkpoint_served(opening.size());
                }
                let _ = behaviour.checkpoints.send_response(channel, reply);
                self.release(&peer);
            }
            Served::Range(peer, channel, reply) => {
                if let RangeReply::Bytes { bytes, .. } = &reply {
                    self.stats.count_chunk_served(bytes.len());
                }
                let _ = behaviour.ranges.send_response(channel, reply);
                self.release(&peer);
            }
            Served::Span(peer, channel, reply) => {
                let _ = behaviour.spans.send_response(channel, reply);
                self.release(&peer);
            }
        }
    }
}
