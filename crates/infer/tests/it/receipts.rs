//! Receipts (docs/split-inference.md, "Disputes"): servers that stake sign each answer's
//! receipt; a client checks it against the rows it holds, refuses a server that signs none,
//! and hands the receipt of an answer its spot check contradicts to the disputer, with the
//! input rows the receipt commits to, which the lying server itself can still produce. The
//! signatures here are a test scheme (the chain's EIP-712 ones are tested on anvil).

use std::{
    ops::Range,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy_primitives::{Address, B256, Bytes, keccak256};
use pedals_core::{cid_of, hash_row, merkle_root};
use pedals_infer::{
    Disputer, Evidence, InferError, ReceiptSigner, ReceiptVerifier, RemoteModel, SpanServer,
    WireReceipt, serve,
};
use pedals_lm::{Activations, ExactModel, GenParams, KvCache, Sampling};

use crate::swarm::{model, node, remote};

const KEY: B256 = B256::repeat_byte(7);

/// Signs as `who`: the digest of the receipt's fields, then the address.
struct TestSigner(Address);

fn digest(r: &WireReceipt, who: Address) -> B256 {
    let mut b = Vec::new();
    b.extend_from_slice(r.model.as_slice());
    for v in [r.start, r.end, r.positions] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(r.input.as_slice());
    b.extend_from_slice(r.output.as_slice());
    b.extend_from_slice(&r.issued_at.to_be_bytes());
    b.extend_from_slice(who.as_slice());
    keccak256(b)
}

impl ReceiptSigner for TestSigner {
    fn model_key(&self) -> B256 {
        KEY
    }
    fn sign(&self, r: &WireReceipt) -> Result<Bytes, String> {
        let mut sig = digest(r, self.0).to_vec();
        sig.extend_from_slice(self.0.as_slice());
        Ok(sig.into())
    }
}

/// Checks the test scheme; the accounts in `unstaked` have nothing at stake.
#[derive(Default)]
struct TestVerifier {
    unstaked: Vec<Address>,
}

impl ReceiptVerifier for TestVerifier {
    fn model_key(&self) -> B256 {
        KEY
    }
    fn signer(&self, r: &WireReceipt) -> Option<Address> {
        let s = r.signature.as_ref();
        let who = Address::from_slice(s.get(32..52)?);
        (s.len() == 52 && s[..32] == digest(r, who)[..]).then_some(who)
    }
    fn staked(&self, server: Address) -> pedals_infer::StakeCheck<'_> {
        let unstaked = self.unstaked.contains(&server);
        Box::pin(async move {
            if unstaked {
                Err("has nothing at stake".to_string())
            } else {
                Ok(())
            }
        })
    }
}

#[derive(Default)]
struct Collect(Mutex<Vec<Evidence>>);

impl Disputer for Collect {
    fn dispute(&self, evidence: Evidence) {
        self.0.lock().expect("lock").push(evidence);
    }
}

struct Staked {
    _net: pedals_p2p::Network,
    span: Arc<SpanServer>,
}

async fn staked(
    m: &ExactModel,
    blocks: Range<usize>,
    boot: &[pedals_p2p::Multiaddr],
    who: u8,
    lie: bool,
) -> Staked {
    let cid = cid_of(&m.to_bytes().expect("bytes"));
    let mut s = SpanServer::new(m.clone(), cid, blocks, 64 << 20)
        .expect("span")
        .with_receipts(Arc::new(TestSigner(Address::repeat_byte(who))));
    if lie {
        s = s.with_lie_after(0);
    }
    let span = Arc::new(s);
    let net = node(boot).await;
    tokio::spawn(serve(
        net.client.clone(),
        span.clone(),
        Duration::from_millis(200),
    ));
    Staked { _net: net, span }
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

fn params() -> GenParams {
    GenParams {
        max_tokens: 8,
        sampling: Sampling::new(0.0, 0, 1.0, 1).expect("sampling"),
        stop: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contradicted_receipt_reaches_the_disputer_with_the_rows_it_commits_to() {
    let m = model();
    let prompt = vec![4u32, 8, 15, 16];
    let local = m.generate(&prompt, &params(), None).expect("local");
    let seed = node(&[]).await;
    let boot = seed.client.listen_addrs().await.expect("addrs");
    let _first = staked(&m, 0..1, &boot, 1, false).await;
    let _last = staked(&m, 3..4, &boot, 3, false).await;
    let liar = staked(&m, 1..3, &boot, 9, true).await;
    let disputes = Arc::new(Collect::default());
    let client = remote(&m, node(&boot).await, Duration::from_secs(10))
        .with_spot_checks(Arc::new(m.clone()), 1.0)
        .with_disputes(Arc::new(TestVerifier::default()), disputes.clone());
    known(&client, 3).await;
    let rt = tokio::runtime::Handle::current();
    let (r, p) = (client.clone(), prompt.clone());
    let generation =
        tokio::task::spawn_blocking(move || r.generate(&rt, &p, &params(), |_, _| true));
    let _honest = staked(&m, 1..3, &boot, 2, false).await;
    let got = generation.await.expect("joins").expect("generates");
    assert_eq!(got.generation.tokens, local.tokens, "the local tokens");
    assert_eq!(got.failovers.len(), 1, "only the liar: {:?}", got.failovers);

    let evidence = disputes.0.lock().expect("lock").clone();
    assert_eq!(evidence.len(), 1, "one contradicted receipt");
    let e = &evidence[0];
    let d = m.config.hidden;
    assert_eq!(e.server, Address::repeat_byte(9), "the liar's account");
    assert_eq!(e.blocks, 1..3);
    assert_eq!(e.receipt.positions as usize * d, e.input.len());
    let hashes: Vec<B256> = e.input.chunks(d).map(hash_row).collect();
    assert_eq!(e.receipt.input, merkle_root(&hashes).expect("root"));
    // Re-executed, the input gives another output than the receipt's: the lie is provable.
    let mut cache = KvCache::for_blocks(1..3);
    let honest = m
        .run_span(
            &mut cache,
            &Activations {
                start: 0,
                rows: e.input.clone(),
            },
        )
        .expect("runs");
    let hashes: Vec<B256> = honest.rows.chunks(d).map(hash_row).collect();
    assert_ne!(e.receipt.output, merkle_root(&hashes).expect("root"));
    // And the liar can still name the rows its receipt committed to, to defend it (or not).
    let positions = e.receipt.positions as usize;
    assert_eq!(
        liar.span.prefix(&(1..3), positions, e.receipt.input),
        Some(e.input.clone())
    );
    assert_eq!(liar.span.prefix(&(1..3), positions, B256::ZERO), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asks_for_receipts_refuses_servers_that_sign_none_or_stake_nothing() {
    let m = model();
    let seed = node(&[]).await;
    let boot = seed.client.listen_addrs().await.expect("addrs");
    let _server = crate::swarm::server(&m, 0..4, &boot).await;
    let _unstaked = staked(&m, 0..4, &boot, 5, false).await;
    let verifier = TestVerifier {
        unstaked: vec![Address::repeat_byte(5)],
    };
    let client = remote(&m, node(&boot).await, Duration::from_secs(1))
        .with_disputes(Arc::new(verifier), Arc::new(Collect::default()));
    known(&client, 2).await;
    let rt = tokio::runtime::Handle::current();
    let r = client.clone();
    let err =
        tokio::task::spawn_blocking(move || r.generate(&rt, &[1, 2, 3], &params(), |_, _| true))
            .await
            .expect("joins")
            .expect_err("no server signs receipts");
    assert!(matches!(err, InferError::Exhausted { .. }), "{err}");
    assert!(err.to_string().contains("receipt is missing"), "{err}");
    assert!(err.to_string().contains("has nothing at stake"), "{err}");
}

#[test]
fn a_restarted_server_still_has_the_rows_its_receipts_commit_to() {
    use pedals_infer::wire::{self, Reply, Request};
    let m = model();
    let cid = cid_of(&m.to_bytes().expect("bytes"));
    let dir = tempfile::tempdir().expect("tempdir");
    let day = Duration::from_secs(86_400);
    let serving = |keep: Duration| {
        SpanServer::new(m.clone(), cid, 0..2, 64 << 20)
            .expect("span")
            .with_receipts(Arc::new(TestSigner(Address::repeat_byte(4))))
            .with_row_files(dir.path(), keep)
            .expect("row files")
    };
    let server = serving(day);
    let peer = pedals_p2p::PeerId::random();
    let mut receipt = None;
    let mut sent = Vec::new();
    for (start, tokens) in [(0, vec![1u32, 2, 3]), (3, vec![4])] {
        let acts = m.embed_tokens(&tokens, start).expect("embed");
        sent.extend_from_slice(&acts.rows);
        let req = Request::Forward {
            session: 1,
            model: cid.to_string(),
            start: 0,
            end: 2,
            voucher: None,
        };
        let answer = server.handle(peer, &wire::encode(&req, Some(&acts)));
        match wire::decode::<Reply>(&answer).expect("decodes") {
            (Reply::Output { receipt: r, .. }, Some(_)) => receipt = r,
            other => panic!("{other:?}"),
        }
    }
    let receipt = receipt.expect("a receipt");
    assert_eq!(receipt.positions, 4);
    drop(server);
    // A new process over the same folder finds the rows the receipt commits to.
    let restarted = serving(day);
    assert_eq!(
        restarted.prefix(&(0..2), 4, receipt.input),
        Some(sent.clone())
    );
    let d = m.config.hidden;
    let first: Vec<B256> = sent[..3 * d].chunks(d).map(hash_row).collect();
    let root = merkle_root(&first).expect("root");
    assert_eq!(
        restarted.prefix(&(0..2), 3, root),
        Some(sent[..3 * d].to_vec())
    );
    assert_eq!(
        restarted.prefix(&(0..1), 4, receipt.input),
        None,
        "other blocks"
    );
    drop(restarted);
    // Past the receipt window and two clocks, the rows are let go.
    let pruned = serving(Duration::ZERO);
    assert_eq!(pruned.prefix(&(0..2), 4, receipt.input), None);
}
