//! Spot checks: a server that returns well-formed but wrong activations changes the tokens
//! of a client that trusts it; a client that re-executes its answers catches it at the first
//! one it checks, bans it, fails over, and generates exactly the local tokens.

use std::{sync::Arc, time::Duration};

use pedals_core::cid_of;
use pedals_infer::{RemoteModel, SpanServer, wire};
use pedals_lm::{ExactModel, GenParams, Sampling};
use pedals_p2p::{Announcement, PeerId, SpanService};

use crate::swarm::{model, node, remote, server};

/// Runs blocks 1..3 honestly, then returns every value negated: still in range, still whole
/// rows, and wrong.
struct Liar(SpanServer);

impl SpanService for Liar {
    fn call(&self, peer: PeerId, request: Vec<u8>) -> Vec<u8> {
        let answer = self.0.handle(peer, &request);
        let Ok((reply, Some(mut out))) = wire::decode::<wire::Reply>(&answer) else {
            return answer;
        };
        for v in &mut out.rows {
            *v = -*v;
        }
        wire::encode(&reply, Some(&out))
    }
}

async fn client(m: &ExactModel, boot: &[pedals_p2p::Multiaddr]) -> RemoteModel {
    remote(m, node(boot).await, Duration::from_secs(10))
}

async fn known(remote: &RemoteModel, n: usize) {
    let directory = remote.chain.directory.clone();
    tokio::time::timeout(Duration::from_secs(30), async {
        while directory.lock().expect("lock").live().len() < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("servers announced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checking_client_catches_a_lying_server_and_keeps_the_local_tokens() {
    let m = model();
    let cid = cid_of(&m.to_bytes().expect("bytes"));
    let params = GenParams {
        max_tokens: 12,
        sampling: Sampling::new(0.7, 0, 1.0, 5).expect("sampling"),
        stop: Vec::new(),
    };
    let prompt = vec![4u32, 8, 15, 16];
    let local = m.generate(&prompt, &params, None).expect("local");

    let seed = node(&[]).await;
    let boot = seed.client.listen_addrs().await.expect("addrs");
    let _first = server(&m, 0..1, &boot).await;
    let _last = server(&m, 3..4, &boot).await;
    let liar_net = node(&boot).await;
    let liar = Arc::new(Liar(
        SpanServer::new(m.clone(), cid, 1..3, 64 << 20).expect("span"),
    ));
    liar_net
        .client
        .serve_spans(liar.clone())
        .await
        .expect("serves");
    let announcer = liar_net.client.clone();
    let mut announcement = liar.0.announcement();
    announcement.addrs = (liar_net.client.listen_addrs().await.expect("addrs"))
        .iter()
        .map(ToString::to_string)
        .collect();
    tokio::spawn(async move {
        loop {
            let mut a = announcement.clone();
            a.announced_at = pedals_p2p::unix_now();
            let _ = announcer.publish(&Announcement::Span(a)).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    // A client that trusts its servers gets the liar's tokens.
    let trusting = client(&m, &boot).await;
    known(&trusting, 3).await;
    let rt = tokio::runtime::Handle::current();
    let (r, p, pr) = (trusting.clone(), prompt.clone(), params.clone());
    let fooled = tokio::task::spawn_blocking(move || r.generate(&rt, &p, &pr, |_, _| true))
        .await
        .expect("joins")
        .expect("generates");
    assert_ne!(
        fooled.generation.tokens, local.tokens,
        "the lie changes the tokens"
    );

    // A client that checks every answer: the liar is caught at its first answer, banned and
    // replaced by the honest server that starts meanwhile; the tokens are the local ones.
    let checking = client(&m, &boot)
        .await
        .with_spot_checks(Arc::new(m.clone()), 1.0);
    known(&checking, 3).await;
    let rt = tokio::runtime::Handle::current();
    let (r, p, pr) = (checking.clone(), prompt.clone(), params.clone());
    let generation = tokio::task::spawn_blocking(move || r.generate(&rt, &p, &pr, |_, _| true));
    let _honest = server(&m, 1..3, &boot).await;
    let got = generation.await.expect("joins").expect("generates");
    assert_eq!(got.generation.tokens, local.tokens);
    assert_eq!(got.failovers.len(), 1, "{:?}", got.failovers);
    assert_eq!(got.failovers[0].0, liar_net.client.peer_id().to_string());
    assert!(
        got.failovers[0].1.contains("caught lying"),
        "{:?}",
        got.failovers
    );
    // Every answer of the session was re-executed: the prompt's and each decoding step's (one
    // per token kept but the last, unless an end-of-sequence token ended it), on each of the
    // three servers of the chain, plus the liar's one.
    let n = local.tokens.len() as u64;
    let steps = if local.finish == pedals_lm::Finish::Length {
        n - 1
    } else {
        n
    };
    let answers = 3 * (1 + steps) + 1;
    assert_eq!(got.checks, answers);
    let live = checking.chain.directory.lock().expect("lock").live().len();
    assert_eq!(live, 3, "the liar is out of the routes");
}
