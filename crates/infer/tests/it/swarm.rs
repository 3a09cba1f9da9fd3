//! A model split over span servers on loopback generates what one process generates, token
//! for token, and goes on with the same tokens when a server of the chain goes away.

use std::{path::Path, sync::Arc, time::Duration};

use pedals_core::cid_of;
use pedals_infer::{RemoteModel, SpanServer, follow, serve};
use pedals_lm::{Checkpoint, ExactModel, GenParams, Sampling, quantize};
use pedals_p2p::{Keypair, MemorySource, Multiaddr, NetConfig, Network, start};

pub(crate) fn model() -> ExactModel {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lm/tests/fixtures/llama-tiny");
    let m = quantize(&Checkpoint::load_hf(&dir).expect("fixture"), 8).expect("quantizes");
    let deep = m.repeat_blocks(4).expect("repeats");
    ExactModel::from_bytes(&deep.to_bytes().expect("serializes")).expect("round-trips")
}

pub(crate) async fn node(bootstrap: &[Multiaddr]) -> Network {
    let config = NetConfig {
        bootstrap: bootstrap.to_vec(),
        gossip_heartbeat: Duration::from_millis(100),
        request_timeout: Duration::from_secs(20),
        ..NetConfig::default()
    };
    start(
        Keypair::generate_ed25519(),
        config,
        Arc::new(MemorySource::default()),
    )
    .await
    .expect("node starts")
}

/// A client of `m` over the node `net`, following its servers' announcements; a request
/// waits up to `wait` for blocks nobody serves.
pub(crate) fn remote(m: &ExactModel, net: Network, wait: Duration) -> RemoteModel {
    let cid = cid_of(&m.to_bytes().expect("bytes"));
    let remote = RemoteModel::new(
        m.clone(),
        cid,
        net.client.clone(),
        Duration::from_secs(10),
        wait,
    )
    .expect("remote");
    let Network { events, .. } = net;
    tokio::spawn(follow(
        remote.chain.net.clone(),
        events,
        remote.chain.directory.clone(),
    ));
    remote
}

pub(crate) struct Server {
    net: Network,
    span: Arc<SpanServer>,
}

pub(crate) async fn server(
    m: &ExactModel,
    blocks: std::ops::Range<usize>,
    boot: &[Multiaddr],
) -> Server {
    let cid = cid_of(&m.to_bytes().expect("bytes"));
    let span = Arc::new(SpanServer::new(m.clone(), cid, blocks, 64 << 20).expect("span"));
    let net = node(boot).await;
    tokio::spawn(serve(
        net.client.clone(),
        span.clone(),
        Duration::from_millis(200),
    ));
    Server { net, span }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_span_servers_generates_the_local_tokens_and_survives_a_lost_server() {
    let m = model();
    let params = GenParams {
        max_tokens: 24,
        sampling: Sampling::new(0.8, 40, 0.95, 7).expect("sampling"),
        stop: Vec::new(),
    };
    let prompt: Vec<u32> = vec![1, 17, 42, 99, 5];
    let local = m.generate(&prompt, &params, None).expect("local");

    let client = node(&[]).await;
    let boot = client.client.listen_addrs().await.expect("addrs");
    let servers = [
        server(&m, 0..1, &boot).await,
        server(&m, 1..3, &boot).await,
        server(&m, 1..3, &boot).await,
        server(&m, 3..4, &boot).await,
    ];
    let remote = remote(&m, client, Duration::from_secs(15));

    // The whole chain, undisturbed.
    let rt = tokio::runtime::Handle::current();
    let (r, p, pr) = (remote.clone(), prompt.clone(), params.clone());
    let got = tokio::task::spawn_blocking(move || r.generate(&rt, &p, &pr, |_, _| true))
        .await
        .expect("joins")
        .expect("generates");
    assert_eq!(got.generation.tokens, local.tokens);
    assert!(got.failovers.is_empty(), "{:?}", got.failovers);

    // A middle server goes away after the fourth token: the chain replays the session's
    // prefix on the other one and the tokens do not change.
    let middle: Vec<(Arc<SpanServer>, pedals_p2p::Client)> = servers[1..3]
        .iter()
        .map(|s| (s.span.clone(), s.net.client.clone()))
        .collect();
    let before: Vec<u64> = middle.iter().map(|(s, _)| s.served_tokens()).collect();
    let rt = tokio::runtime::Handle::current();
    let (r, p, pr) = (remote.clone(), prompt.clone(), params.clone());
    let got = tokio::task::spawn_blocking(move || {
        let mut killed = false;
        r.generate(&rt, &p, &pr, |tokens, _| {
            if tokens.len() == 4 && !killed {
                let (_, net) = middle
                    .iter()
                    .zip(&before)
                    .find(|((s, _), b)| s.served_tokens() > **b)
                    .map(|(m, _)| m)
                    .expect("one middle server is in the chain");
                rt.block_on(net.shutdown());
                killed = true;
            }
            true
        })
    })
    .await
    .expect("joins")
    .expect("generates through the failover");
    assert_eq!(got.generation.tokens, local.tokens);
    assert_eq!(got.failovers.len(), 1, "{:?}", got.failovers);
}
