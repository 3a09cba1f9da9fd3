use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use pedals_core::{Cid, cid_of};
use pedals_p2p::{CheckpointOpening, ContentSource, MemorySource, Multiaddr, P2pError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{bytes, node, quic_addr, tcp_addr, wait_for_peers, within};

const MB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_find_a_provider_through_the_dht_and_download_tens_of_megabytes() {
    let hub = node(Arc::new(MemorySource::default()), &[]).await;
    let hub_addr = tcp_addr(&hub.client).await;
    let holder_source = Arc::new(MemorySource::default());
    let blob = bytes(40 * MB, 1);
    let cid = holder_source.insert_blob(blob.clone());
    let holder = node(holder_source, std::slice::from_ref(&hub_addr)).await;
    let fetcher = node(Arc::new(MemorySource::default()), &[hub_addr]).await;
    wait_for_peers(&holder.client, 1).await;
    wait_for_peers(&fetcher.client, 1).await;
    holder.client.provide(cid).await.expect("provide");

    // The fetcher knows only the hub; kad leads it to the holder.
    let (got, from) = within(60, async {
        loop {
            match fetcher.client.fetch_blob(cid).await {
                Ok(found) => break found,
                Err(P2pError::NoProviders { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("fetch failed: {e}"),
            }
        }
    })
    .await;
    assert_eq!(from, holder.client.peer_id());
    assert!(got == blob, "the bytes differ");
    let served = holder.client.stats().snapshot();
    assert_eq!(served.blobs_served, 1);
    assert_eq!(served.bytes_served, blob.len() as u64);
    assert_eq!(
        fetcher.client.stats().snapshot().bytes_received,
        blob.len() as u64
    );
    assert!(
        fetcher
            .client
            .peers()
            .await
            .expect("peers")
            .iter()
            .any(|p| p.peer == from),
        "the fetcher is connected to the holder"
    );

    // A CID nobody has is reported as such, with what to check.
    let missing = cid_of(b"nobody has this");
    let err = within(30, fetcher.client.fetch_blob(missing))
        .await
        .expect_err("nobody provides it");
    assert!(matches!(err, P2pError::NoProviders { .. }), "{err}");
    assert!(err.to_string().contains("bootstrap peer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_moves_over_quic_too() {
    let source = Arc::new(MemorySource::default());
    let blob = bytes(8 * MB, 2);
    let cid = source.insert_blob(blob.clone());
    let holder = node(source, &[]).await;
    let fetcher = node(Arc::new(MemorySource::default()), &[]).await;
    let addr = quic_addr(&holder.client).await;
    fetcher.client.dial(addr).await.expect("dial over QUIC");
    wait_for_peers(&fetcher.client, 1).await;
    let got = within(
        60,
        fetcher.client.fetch_blob_from(holder.client.peer_id(), cid),
    )
    .await
    .expect("fetched over QUIC");
    assert!(got == blob);
    let err = within(
        30,
        fetcher
            .client
            .fetch_blob_from(holder.client.peer_id(), cid_of(b"absent")),
    )
    .await
    .expect_err("not there");
    assert!(matches!(err, P2pError::NotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_bootstraps_from_a_dns_name() {
    let source = Arc::new(MemorySource::default());
    let blob = bytes(MB, 3);
    let cid = source.insert_blob(blob.clone());
    let holder = node(source, &[]).await;
    holder.client.provide(cid).await.expect("provide");
    // /ip4/127.0.0.1/tcp/<port>/p2p/<id> as /dns4/localhost/tcp/<port>/p2p/<id>, the form a
    // Kubernetes headless Service name takes.
    let ip = tcp_addr(&holder.client).await.to_string();
    let by_name: Multiaddr = ip
        .replace("/ip4/127.0.0.1/", "/dns4/localhost/")
        .parse()
        .expect("multiaddr");
    assert!(by_name.to_string().starts_with("/dns4/localhost/tcp/"));
    let fetcher = node(Arc::new(MemorySource::default()), &[by_name]).await;
    wait_for_peers(&fetcher.client, 1).await;
    let (got, from) = within(30, fetcher.client.fetch_blob(cid))
        .await
        .expect("found through the DHT of the peer it dialed by name");
    assert!(got == blob);
    assert_eq!(from, holder.client.peer_id());
}

/// Serves the wrong bytes for one CID: what a cheating or broken peer does.
#[derive(Default)]
struct LyingSource {
    claims: Option<Cid>,
}

impl ContentSource for LyingSource {
    fn blob(&self, cid: &Cid) -> Result<Option<Vec<u8>>, String> {
        Ok((Some(*cid) == self.claims).then(|| bytes(MB, 99)))
    }

    fn checkpoint(&self, _: u64, _: u64) -> Result<Option<CheckpointOpening>, String> {
        Ok(None)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_blob_is_dropped_and_an_honest_provider_is_used() {
    let blob = bytes(2 * MB, 3);
    let cid = cid_of(&blob);
    let liar = node(Arc::new(LyingSource { claims: Some(cid) }), &[]).await;
    let liar_addr = tcp_addr(&liar.client).await;
    let fetcher = node(
        Arc::new(MemorySource::default()),
        std::slice::from_ref(&liar_addr),
    )
    .await;
    wait_for_peers(&fetcher.client, 1).await;

    let err = within(
        30,
        fetcher.client.fetch_blob_from(liar.client.peer_id(), cid),
    )
    .await
    .expect_err("the liar's bytes do not match");
    assert!(matches!(err, P2pError::BadBlob { .. }), "{err}");
    assert_eq!(fetcher.client.stats().snapshot().bad_content, 1);

    // With an honest provider on the network too, fetch_blob gets the right bytes whichever
    // it asks first.
    let honest_source = Arc::new(MemorySource::default());
    honest_source.insert_blob(blob.clone());
    let honest = node(honest_source, &[liar_addr]).await;
    wait_for_peers(&honest.client, 1).await;
    liar.client.provide(cid).await.expect("provide");
    honest.client.provide(cid).await.expect("provide");
    let (got, from) = within(60, async {
        loop {
            let found = fetcher.client.find_providers(cid).await.expect("query");
            if found.len() == 2 {
                match fetcher.client.fetch_blob(cid).await {
                    Ok(fetched) => break fetched,
                    // fetch_blob's own provider query can end having heard only the liar
                    // (kad answers in whatever order peers reply): ask again.
                    Err(P2pError::AllProvidersFailed { bad, .. }) if bad >= 1 => {}
                    Err(e) => panic!("an honest copy: {e}"),
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(from, honest.client.peer_id());
    assert!(got == blob);
}

/// A TCP relay that forwards a connection until `limit` bytes went from the upstream to the
/// client, then cuts it: a peer that vanishes in the middle of a transfer.
async fn cutting_relay(upstream: SocketAddr, limit: u64) -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let relayed = Arc::new(AtomicU64::new(0));
    let counter = relayed.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(upstream).await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let (mut in_read, mut in_write) = inbound.into_split();
                let (mut out_read, mut out_write) = outbound.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut in_read, &mut out_write).await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                while counter.load(Ordering::SeqCst) < limit {
                    match out_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if in_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            counter.fetch_add(n as u64, Ordering::SeqCst);
                        }
                    }
                }
                up.abort(); // both halves drop: the connection is gone mid-stream
            });
        }
    });
    (port, relayed)
}

fn tcp_socket(addr: &Multiaddr) -> SocketAddr {
    use pedals_p2p::Multiaddr as M;
    let mut ip = None;
    let mut port = None;
    for p in M::iter(addr) {
        match p {
            libp2p::multiaddr::Protocol::Ip4(a) => ip = Some(a),
            libp2p::multiaddr::Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    SocketAddr::from((ip.expect("ip4"), port.expect("tcp")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_vanishes_mid_transfer_fails_the_request_and_another_serves_it() {
    let blob = bytes(32 * MB, 4);
    let vanishing_source = Arc::new(MemorySource::default());
    let cid = vanishing_source.insert_blob(blob.clone());
    let vanishing = node(vanishing_source, &[]).await;
    let (relay_port, relayed) = cutting_relay(
        tcp_socket(&tcp_addr(&vanishing.client).await),
        4 * MB as u64,
    )
    .await;
    let via_relay: Multiaddr = format!(
        "/ip4/127.0.0.1/tcp/{relay_port}/p2p/{}",
        vanishing.client.peer_id()
    )
    .parse()
    .expect("multiaddr");
    // The fetcher listens on TCP only, so every connection to it goes through the relay.
    let fetcher = pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        pedals_p2p::NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")],
            ..pedals_p2p::NetConfig::default()
        },
        Arc::new(MemorySource::default()),
    )
    .await
    .expect("fetcher");
    fetcher.client.dial(via_relay).await.expect("dial");
    wait_for_peers(&fetcher.client, 1).await;

    let err = within(
        30,
        fetcher
            .client
            .fetch_blob_from(vanishing.client.peer_id(), cid),
    )
    .await
    .expect_err("the connection was cut mid-transfer");
    assert!(matches!(err, P2pError::Request { .. }), "{err}");
    let cut_at = relayed.load(Ordering::SeqCst);
    assert!(
        (4 * MB as u64..blob.len() as u64).contains(&cut_at),
        "cut after {cut_at} bytes"
    );
    vanishing.client.shutdown().await;

    // The fetcher is still healthy: another provider serves the same blob.
    let backup_source = Arc::new(MemorySource::default());
    backup_source.insert_blob(blob.clone());
    let backup = node(backup_source, &[]).await;
    fetcher
        .client
        .dial(tcp_addr(&backup.client).await)
        .await
        .expect("dial");
    let got = within(
        60,
        fetcher.client.fetch_blob_from(backup.client.peer_id(), cid),
    )
    .await
    .expect("the backup serves it");
    assert!(got == blob);
}

/// A source that takes its time, so that requests overlap.
struct SlowSource(MemorySource);

impl ContentSource for SlowSource {
    fn blob(&self, cid: &Cid) -> Result<Option<Vec<u8>>, String> {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        self.0.blob(cid)
    }

    fn checkpoint(&self, job: u64, step: u64) -> Result<Option<CheckpointOpening>, String> {
        self.0.checkpoint(job, step)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_its_request_limit_is_told_busy() {
    let inner = MemorySource::default();
    let cid = inner.insert_blob(bytes(MB, 5));
    let source = Arc::new(SlowSource(inner));
    let holder = pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        pedals_p2p::NetConfig {
            max_inbound_per_peer: 1,
            ..pedals_p2p::NetConfig::default()
        },
        source,
    )
    .await
    .expect("holder");
    let fetcher = node(
        Arc::new(MemorySource::default()),
        &[tcp_addr(&holder.client).await],
    )
    .await;
    wait_for_peers(&fetcher.client, 1).await;
    let peer = holder.client.peer_id();
    let results = within(
        60,
        futures::future::join_all((0..4).map(|_| fetcher.client.fetch_blob_from(peer, cid))),
    )
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(P2pError::Busy { .. })))
        .count();
    assert_eq!(
        (ok, busy),
        (1, 3),
        "one served, the others told busy: {results:?}"
    );
    assert_eq!(
        holder.client.stats().snapshot().requests_refused,
        busy as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_its_total_request_limit_tells_every_peer_busy() {
    let inner = MemorySource::default();
    let cid = inner.insert_blob(bytes(MB, 6));
    let holder = pedals_p2p::start(
        pedals_p2p::Keypair::generate_ed25519(),
        pedals_p2p::NetConfig {
            max_inbound_total: 1,
            ..pedals_p2p::NetConfig::default()
        },
        Arc::new(SlowSource(inner)),
    )
    .await
    .expect("holder");
    let addr = tcp_addr(&holder.client).await;
    let a = node(
        Arc::new(MemorySource::default()),
        std::slice::from_ref(&addr),
    )
    .await;
    let b = node(Arc::new(MemorySource::default()), &[addr]).await;
    wait_for_peers(&holder.client, 2).await;
    let peer = holder.client.peer_id();
    let (ra, rb) = within(
        60,
        futures::future::join(
            a.client.fetch_blob_from(peer, cid),
            b.client.fetch_blob_from(peer, cid),
        ),
    )
    .await;
    let busy = [&ra, &rb]
        .iter()
        .filter(|r| matches!(r, Err(P2pError::Busy { .. })))
        .count();
    assert_eq!(
        (usize::from(ra.is_ok()) + usize::from(rb.is_ok()), busy),
        (1, 1),
        "one peer served, the other told busy: {ra:?} {rb:?}"
    );
}
