//! What a client and a server do with bad input: a server that answers with malformed
//! activations is replaced, blocks nobody serves are named, and a server refuses what does not
//! continue a session, leaves the model or is not its span, and keeps the session as it was.

use std::{sync::Arc, time::Duration};

use pedals_core::cid_of;
use pedals_infer::{
    InferError, SpanServer,
    wire::{self, Refusal, Reply, Request},
};
use pedals_lm::{Activations, GenParams, Sampling};
use pedals_p2p::{Announcement, PeerId, SpanService};

use crate::swarm::{model, node, remote, server};

/// A server of blocks 1..3 that announces itself as the fastest and corrupts what it returns.
struct Corrupt(SpanServer);

impl SpanService for Corrupt {
    fn call(&self, peer: PeerId, request: Vec<u8>) -> Vec<u8> {
        let answer = self.0.handle(peer, &request);
        let Ok((reply, Some(mut out))) = wire::decode::<Reply>(&answer) else {
            return answer;
        };
        out.rows[0] = 1 << 30;
        wire::encode(&reply, Some(&out))
    }
}

fn params() -> GenParams {
    GenParams {
        max_tokens: 12,
        sampling: Sampling::new(0.7, 0, 1.0, 11).expect("sampling"),
        stop: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_returning_malformed_activations_is_replaced_and_missing_blocks_are_named() {
    let m = model();
    let cid = cid_of(&m.to_bytes().expect("bytes"));
    let prompt = vec![3u32, 9, 27];
    let local = m.generate(&prompt, &params(), None).expect("local");
    let client = node(&[]).await;
    let boot = client.client.listen_addrs().await.expect("addrs");
    let first = server(&m, 0..1, &boot).await;
    let remote = remote(&m, client, Duration::from_secs(2));

    // Only block 0 is served: the error names the rest, after the wait.
    let rt = tokio::runtime::Handle::current();
    let r = remote.clone();
    let err = tokio::task::spawn_blocking(move || r.generate(&rt, &prompt, &params(), |_, _| true))
        .await
        .expect("joins")
        .expect_err("no route");
    match &err {
        InferError::NoRoute { missing, .. } => assert_eq!(missing, "1..4", "{err}"),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("pedals provider serve"), "{err}");

    // A corrupting server that claims to be the fastest, and honest ones.
    let bad_net = node(&boot).await;
    let bad = Arc::new(Corrupt(
        SpanServer::new(m.clone(), cid, 1..3, 64 << 20).expect("span"),
    ));
    bad_net
        .client
        .serve_spans(bad.clone())
        .await
        .expect("serves");
    let mut a = bad.0.announcement();
    a.tokens_per_second = 1e9;
    let announcer = bad_net.client.clone();
    tokio::spawn(async move {
        loop {
            a.announced_at = pedals_p2p::unix_now();
            let _ = announcer.publish(&Announcement::Span(a.clone())).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let _last = server(&m, 3..4, &boot).await;
    // The corrupt server is the only one of blocks 1..3 when generation starts (the route is
    // taken then); the honest one starts beside it, and the failover waits for it.
    let directory = remote.chain.directory.clone();
    tokio::time::timeout(Duration::from_secs(30), async {
        while directory.lock().expect("lock").live().len() < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("three servers announced");
    let rt = tokio::runtime::Handle::current();
    let (r, p) = (remote.clone(), vec![3u32, 9, 27]);
    let generation =
        tokio::task::spawn_blocking(move || r.generate(&rt, &p, &params(), |_, _| true));
    let _honest = server(&m, 1..3, &boot).await;
    let got = generation
        .await
        .expect("joins")
        .expect("generates around the corrupt server");
    assert_eq!(got.generation.tokens, local.tokens);
    assert_eq!(got.failovers.len(), 1, "{:?}", got.failovers);
    assert_eq!(got.failovers[0].0, bad_net.client.peer_id().to_string());
    assert!(
        got.failovers[0].1.contains("malformed"),
        "{:?}",
        got.failovers
    );
    drop(first);
}

fn forward(
    s: &SpanServer,
    peer: PeerId,
    session: u64,
    blocks: (u32, u32),
    a: &Activations,
) -> Reply {
    forward_rows(s, peer, session, blocks, a).0
}

/// `peer`'s request of blocks `blocks` in its session `session`, with rows `a`: the reply and
/// the rows that came with it.
pub(crate) fn forward_rows(
    s: &SpanServer,
    peer: PeerId,
    session: u64,
    blocks: (u32, u32),
    a: &Activations,
) -> (Reply, Option<Activations>) {
    let req = Request::Forward {
        session,
        model: s.announcement().model_cid,
        start: blocks.0,
        end: blocks.1,
        voucher: None,
    };
    wire::decode::<Reply>(&s.handle(peer, &wire::encode(&req, Some(a)))).expect("decodes")
}

/// A refusal's code and position to resend from.
pub(crate) fn code(r: &Reply) -> (Refusal, Option<u64>) {
    match r {
        Reply::Refused {
            code, resend_from, ..
        } => (*code, *resend_from),
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn a_span_server_refuses_what_does_not_continue_a_session_and_keeps_it() {
    let m = model();
    let cid = cid_of(&m.to_bytes().expect("bytes"));
    let s = SpanServer::new(m.clone(), cid, 1..3, 64 << 20).expect("span");
    let peer = PeerId::random();
    let d = m.config.hidden;
    let rows = |start: usize, n: usize| Activations {
        start,
        rows: (0..n * d).map(|i| (i % 97) as i32 - 48).collect(),
    };
    // An unknown session that does not start at 0: resend from 0.
    assert_eq!(
        code(&forward(&s, peer, 1, (1, 3), &rows(5, 1))),
        (Refusal::Gap, Some(0))
    );
    assert!(matches!(
        forward(&s, peer, 1, (1, 3), &rows(0, 3)),
        Reply::Output {
            cached: 3,
            receipt: None
        }
    ));
    // A gap: resend from 3; a value no span produces; half a row: refused, session kept.
    assert_eq!(
        code(&forward(&s, peer, 1, (1, 3), &rows(4, 1))),
        (Refusal::Gap, Some(3))
    );
    let mut huge = rows(3, 1);
    huge.rows[0] = 1 << 30;
    assert_eq!(
        code(&forward(&s, peer, 1, (1, 3), &huge)).0,
        Refusal::BadInput
    );
    let mut half = rows(3, 1);
    half.rows.pop();
    assert_eq!(
        code(&forward(&s, peer, 1, (1, 3), &half)).0,
        Refusal::BadInput
    );
    assert!(matches!(
        forward(&s, peer, 1, (1, 3), &rows(3, 1)),
        Reply::Output {
            cached: 4,
            receipt: None
        }
    ));
    // Another peer's session of the same number is its own.
    assert_eq!(
        code(&forward(&s, PeerId::random(), 1, (1, 3), &rows(4, 1))),
        (Refusal::Gap, Some(0))
    );
    // Blocks outside the span, past the context, a message that does not decode.
    assert_eq!(
        code(&forward(&s, peer, 2, (0, 2), &rows(0, 1))).0,
        Refusal::NotServed
    );
    let ctx = m.config.context;
    assert_eq!(
        code(&forward(&s, peer, 3, (1, 3), &rows(0, ctx + 1))).0,
        Refusal::BadInput
    );
    let garbage = wire::decode::<Reply>(&s.handle(peer, b"\0\0\0\x02{]"))
        .expect("decodes")
        .0;
    assert_eq!(code(&garbage).0, Refusal::BadInput);
    // Closing frees the session.
    let closed = s.handle(
        peer,
        &wire::encode(
            &Request::Close {
                session: 1,
                voucher: None,
            },
            None,
        ),
    );
    assert_eq!(
        wire::decode::<Reply>(&closed).expect("decodes").0,
        Reply::Closed
    );
    assert_eq!(
        code(&forward(&s, peer, 1, (1, 3), &rows(4, 1))),
        (Refusal::Gap, Some(0))
    );
}

/// Takes requests and answers nothing for 5 s (a peer gone silent, not gone).
struct Silent(SpanServer);

impl SpanService for Silent {
    fn call(&self, peer: PeerId, request: Vec<u8>) -> Vec<u8> {
        std::thread::sleep(Duration::from_secs(5));
        self.0.handle(peer, &request)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_answer_is_replaced_after_the_answer_timeout() {
    let m = model();
    let cid = cid_of(&m.to_bytes().expect("bytes"));
    let prompt = vec![2u32, 7, 1];
    let local = m.generate(&prompt, &params(), None).expect("local");
    let client = node(&[]).await;
    let boot = client.client.listen_addrs().await.expect("addrs");
    let mut remote = remote(&m, client, Duration::from_secs(10));
    remote.chain.answer_timeout = Duration::from_secs(1);
    let _ends = [server(&m, 0..1, &boot).await, server(&m, 3..4, &boot).await];
    let silent_net = node(&boot).await;
    let silent = Arc::new(Silent(
        SpanServer::new(m.clone(), cid, 1..3, 64 << 20).expect("span"),
    ));
    silent_net
        .client
        .serve_spans(silent.clone())
        .await
        .expect("serves");
    let announcer = silent_net.client.clone();
    let announcement = silent.0.announcement();
    tokio::spawn(async move {
        loop {
            let mut a = announcement.clone();
            a.announced_at = pedals_p2p::unix_now();
            let _ = announcer.publish(&Announcement::Span(a)).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // Only the silent server serves 1..3 when generation starts; an honest one joins.
    let directory = remote.chain.directory.clone();
    tokio::time::timeout(Duration::from_secs(30), async {
        while directory.lock().expect("lock").live().len() < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("three servers announced");
    let rt = tokio::runtime::Handle::current();
    let r = remote.clone();
    let generation =
        tokio::task::spawn_blocking(move || r.generate(&rt, &prompt, &params(), |_, _| true));
    let _honest = server(&m, 1..3, &boot).await;
    let got = generation
        .await
        .expect("joins")
        .expect("generates around the silent server");
    assert_eq!(got.generation.tokens, local.tokens);
    assert_eq!(got.failovers.len(), 1, "{:?}", got.failovers);
    assert_eq!(got.failovers[0].0, silent_net.client.peer_id().to_string());
    assert!(
        got.failovers[0].1.contains("no answer within"),
        "{:?}",
        got.failovers
    );
}
