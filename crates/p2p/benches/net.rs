//! Network benchmarks on loopback, side by side with plain TCP:
//!
//! - blob transfer: one node downloads a blob from another (noise + yamux over TCP, and QUIC),
//!   CID verification included, against the same bytes copied over a bare TCP socket;
//! - gossip delivery: 20 nodes, each dialing up to 3 others, one announcement at a time from
//!   a random node; the latency from publish to arrival at every other node;
//! - chunked download: a blob of `--chunked-mb` MiB (512 by default, the largest a node
//!   downloads) in verified 4 MiB chunks into a file, manifest and final CID check included.
//!
//! `cargo bench -p pedals-p2p --bench net -- [--mb N] [--rounds N] [--nodes N] [--messages N]
//! [--chunked-mb N] [--chunked-only]`; `cargo test --workspace --bench net -- --chunked-only
//! --chunked-mb 512` runs the chunked download in a debug build.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, U256};
use pedals_core::cid_of;
use pedals_p2p::{
    Announcement, Client, DownloadOptions, JobAnnouncement, Keypair, MemorySource, Multiaddr,
    NetConfig, NetEvent, Network, start, unix_now,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Args {
    mb: usize,
    chunked_mb: usize,
    chunked_only: bool,
    rounds: usize,
    nodes: usize,
    messages: usize,
}

fn args() -> Args {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` (CI) runs the binary without
    // it, and then a small smoke run checks that it works without spending CI's time.
    let full = std::env::args().any(|a| a == "--bench");
    let mut args = if full {
        Args {
            mb: 128,
            chunked_mb: 512,
            chunked_only: false,
            rounds: 3,
            nodes: 20,
            messages: 50,
        }
    } else {
        Args {
            mb: 4,
            chunked_mb: 8,
            chunked_only: false,
            rounds: 1,
            nodes: 4,
            messages: 3,
        }
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--chunked-only" {
            args.chunked_only = true;
            continue;
        }
        let mut value = || {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--mb" => args.mb = value(),
            "--chunked-mb" => args.chunked_mb = value(),
            "--rounds" => args.rounds = value(),
            "--nodes" => args.nodes = value(),
            "--messages" => args.messages = value(),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn config(listen: &str) -> NetConfig {
    NetConfig {
        listen: vec![listen.parse().expect("multiaddr")],
        gossip_heartbeat: Duration::from_millis(200),
        ..NetConfig::default()
    }
}

async fn addr(client: &Client) -> Multiaddr {
    client.listen_addrs().await.expect("addrs")[0].clone()
}

async fn wait_for_peers(client: &Client, n: usize) {
    while client.peers().await.expect("peers").len() < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn mb_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
}

async fn libp2p_transfer(listen: &str, blob: &[u8], rounds: usize) -> Vec<f64> {
    let source = Arc::new(MemorySource::default());
    let cid = source.insert_blob(blob.to_vec());
    let holder = start(Keypair::generate_ed25519(), config(listen), source)
        .await
        .expect("holder");
    let fetcher = start(
        Keypair::generate_ed25519(),
        config(listen),
        Arc::new(MemorySource::default()),
    )
    .await
    .expect("fetcher");
    fetcher
        .client
        .dial(addr(&holder.client).await)
        .await
        .expect("dial");
    wait_for_peers(&fetcher.client, 1).await;
    let peer = holder.client.peer_id();
    let mut rates = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let got = fetcher
            .client
            .fetch_blob_from(peer, cid)
            .await
            .expect("fetch");
        rates.push(mb_per_s(got.len(), t.elapsed()));
    }
    holder.client.shutdown().await;
    fetcher.client.shutdown().await;
    rates
}

/// The ceiling: the same bytes over a bare loopback TCP socket, no encryption or framing.
async fn raw_tcp_transfer(blob: &[u8], rounds: usize) -> Vec<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let data = Arc::new(blob.to_vec());
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let data = data.clone();
            tokio::spawn(async move {
                let _ = socket.write_all(&data).await;
            });
        }
    });
    let mut rates = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut got = Vec::with_capacity(blob.len());
        socket.read_to_end(&mut got).await.expect("read");
        assert_eq!(got.len(), blob.len());
        rates.push(mb_per_s(got.len(), t.elapsed()));
    }
    server.abort();
    rates
}

fn summary(rates: &[f64]) -> String {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    format!(
        "median {:7.1} MB/s  (min {:.1}, max {:.1})",
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1]
    )
}

fn announcement(job_id: u64) -> Announcement {
    let cid = cid_of(b"bench").to_string();
    Announcement::Job(JobAnnouncement {
        chain_id: 31337,
        market: Address::ZERO,
        job_id,
        spec_cid: cid.clone(),
        dataset_cid: cid.clone(),
        model_cid: cid,
        steps: 1,
        payment_wei: U256::ZERO,
        announced_at: unix_now(),
    })
}

async fn gossip_latency(nodes: usize, messages: usize) -> Vec<Duration> {
    let mut network: Vec<Network> = Vec::new();
    let mut seed = 0x9E37_79B9u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for i in 0..nodes {
        let mut bootstrap = Vec::new();
        for _ in 0..i.min(3) {
            bootstrap.push(addr(&network[next(i)].client).await);
        }
        bootstrap.dedup();
        let node = start(
            Keypair::generate_ed25519(),
            NetConfig {
                bootstrap,
                ..config("/ip4/127.0.0.1/tcp/0")
            },
            Arc::new(MemorySource::default()),
        )
        .await
        .expect("node");
        network.push(node);
    }
    // Let the meshes form (a few heartbeats).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut receivers = Vec::new();
    let (arrivals_tx, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for (i, node) in network.into_iter().enumerate() {
        clients.push(node.client);
        let mut events = node.events;
        let tx = arrivals_tx.clone();
        receivers.push(tokio::spawn(async move {
            while let Some(NetEvent::Announced {
                announcement: Announcement::Job(job),
                ..
            }) = events.recv().await
            {
                let _ = tx.send((i, job.job_id, Instant::now()));
            }
        }));
    }
    let mut sent: HashMap<u64, (usize, Instant)> = HashMap::new();
    for id in 0..messages as u64 {
        let from = next(nodes);
        let t = Instant::now();
        clients[from]
            .publish(&announcement(id))
            .await
            .expect("publish");
        sent.insert(id, (from, t));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::new();
    let mut delivered: HashMap<u64, usize> = HashMap::new();
    while let Ok((node, id, at)) = arrivals.try_recv() {
        let (from, t) = sent[&id];
        if node != from {
            latencies.push(at - t);
            *delivered.entry(id).or_default() += 1;
        }
    }
    let complete = delivered.values().filter(|&&n| n == nodes - 1).count();
    println!(
        "gossip: {complete}/{messages} announcements reached all {} other nodes",
        nodes - 1
    );
    for client in &clients {
        client.shutdown().await;
    }
    latencies
}

/// Downloads `mb` MiB in verified chunks over TCP; prints and returns the time taken.
async fn chunked_download(mb: usize) -> Duration {
    let blob = pattern(mb << 20);
    let source = Arc::new(MemorySource::default());
    let cid = source.insert_blob(blob);
    let holder = start(
        Keypair::generate_ed25519(),
        config("/ip4/127.0.0.1/tcp/0"),
        source,
    )
    .await
    .expect("holder");
    let fetcher = start(
        Keypair::generate_ed25519(),
        config("/ip4/127.0.0.1/tcp/0"),
        Arc::new(MemorySource::default()),
    )
    .await
    .expect("fetcher");
    fetcher
        .client
        .dial(addr(&holder.client).await)
        .await
        .expect("dial");
    wait_for_peers(&fetcher.client, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("blob");
    let t = Instant::now();
    let done = fetcher
        .client
        .download_blob_from(
            &[holder.client.peer_id()],
            cid,
            &dest,
            &DownloadOptions::default(),
        )
        .await
        .expect("download");
    let elapsed = t.elapsed();
    assert_eq!(done.size, (mb << 20) as u64);
    println!(
        "chunked download, {mb} MiB in 4 MiB chunks to a file, TCP, manifest and CID checked: \
         {:.1} s, {:.1} MB/s",
        elapsed.as_secs_f64(),
        mb_per_s(mb << 20, elapsed)
    );
    holder.client.shutdown().await;
    fetcher.client.shutdown().await;
    elapsed
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    if args.chunked_only {
        chunked_download(args.chunked_mb).await;
        return;
    }
    let blob = pattern(args.mb << 20);
    println!(
        "blob transfer, {} MiB, {} rounds, loopback, CID verified:",
        args.mb, args.rounds
    );
    let tcp = libp2p_transfer("/ip4/127.0.0.1/tcp/0", &blob, args.rounds).await;
    println!("  libp2p TCP+noise+yamux  {}", summary(&tcp));
    let quic = libp2p_transfer("/ip4/127.0.0.1/udp/0/quic-v1", &blob, args.rounds).await;
    println!("  libp2p QUIC             {}", summary(&quic));
    let raw = raw_tcp_transfer(&blob, args.rounds).await;
    println!("  bare TCP (ceiling)      {}", summary(&raw));
    drop(blob);

    let mut latencies = gossip_latency(args.nodes, args.messages).await;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "gossip latency, {} nodes, {} deliveries: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        args.nodes,
        latencies.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    chunked_download(args.chunked_mb).await;
}
