//! A staked span server defends its receipts, with a real process on a devnet
//! (docs/split-inference.md, "Disputes"): a client gets a signed receipt from a staked
//! `pedals provider serve`, then disputes it as a client whose own re-execution was wrong
//! would. The daemon finds the dispute, rebuilds the trace from the rows it kept and the model
//! in its store, plays every move, wins, keeps its stake and withdraws the challenger's bond.

use std::{sync::Arc, time::Duration};

use alloy::primitives::{Signature, U256};
use pedals_chain::{Phase, SpanReceipt};
use pedals_dispute::{
    game::Turn,
    span::{SpanContext, challenge_span, open_span_dispute},
};
use pedals_infer::wire::{self, Reply, Request};
use pedals_lm::{ExactModel, dispute::OpTrace};
use pedals_p2p::{Keypair, MemorySource, NetConfig, PeerId, start};

use crate::{
    daemon_dir, dev_market, free_port,
    swarm::{model_file, serve},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staked_server_defends_an_honest_receipt_and_takes_the_bond() {
    let devnet = pedals_chain::Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let dir = daemon_dir(&devnet, &[(5, "server.json")]);
    let d = dir.path();
    let rpc = devnet.endpoint().to_string();
    let (client, server) = (dev_market(&devnet, 3).await, dev_market(&devnet, 5).await);
    let stake = U256::from(10u64).pow(U256::from(18));
    server.stake(stake).await.expect("stake");
    let bond = client
        .span_dispute_game()
        .bond()
        .call()
        .await
        .expect("bond");

    let (file, cid) = model_file(d);
    let seed = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let mut args: Vec<String> = ["--model", file.to_str().expect("utf-8"), "--blocks", "0..4"]
        .iter()
        .map(|s| s.to_string())
        .chain(["--listen".to_string(), seed.clone()])
        .collect();
    args.extend(crate::chain_args(&rpc, d, "server.json"));
    let (_daemon, line) = serve(
        d,
        "server",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let peer: PeerId = line
        .trim()
        .rsplit(' ')
        .next()
        .expect("peer")
        .parse()
        .expect("peer id");

    // A client on the network asks for blocks 0..4 of a 12-token session and gets a receipt.
    let net = start(
        Keypair::generate_ed25519(),
        NetConfig {
            bootstrap: vec![seed.parse().expect("addr")],
            ..NetConfig::default()
        },
        Arc::new(MemorySource::default()),
    )
    .await
    .expect("node");
    let model = ExactModel::from_bytes(&std::fs::read(&file).expect("model")).expect("model");
    let tokens: Vec<u32> = (0..12).map(|i| 3 + 17 * i).collect();
    let input = model.embed_tokens(&tokens, 0).expect("embed");
    let request = Request::Forward {
        session: 1,
        model: cid,
        start: 0,
        end: 4,
        voucher: None,
    };
    let mut answer = None;
    for _ in 0..100 {
        match net
            .client
            .span_call(peer, wire::encode(&request, Some(&input)))
            .await
        {
            Ok(bytes) => {
                answer = Some(bytes);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let (reply, _) = wire::decode::<Reply>(&answer.expect("the server answers")).expect("reply");
    let Reply::Output {
        receipt: Some(r), ..
    } = reply
    else {
        panic!("no receipt: {reply:?}")
    };
    let receipt = SpanReceipt {
        model: r.model,
        start: r.start,
        end: r.end,
        positions: r.positions,
        input: r.input,
        output: r.output,
        issuedAt: r.issued_at,
    };
    let signature = Signature::try_from(r.signature.as_ref()).expect("signature");

    // The client's re-execution is wrong in one element of the output; it disputes.
    let truth = SpanContext::new(&model, 0..4, &input.rows).expect("context");
    assert_eq!(truth.receipt(r.issued_at), receipt, "an honest receipt");
    let mut wrong = truth.clone();
    let mut outputs = truth.trace.tensors.clone();
    let k = outputs.len();
    outputs[k - 1][7] += 1000;
    wrong.trace = OpTrace::run_from(&truth.inputs, outputs).expect("wrong");
    let id = open_span_dispute(&client, &wrong, &receipt, &signature)
        .await
        .expect("opens");

    // The client plays its side; the daemon plays the server's.
    let mut moves = 0;
    for _ in 0..240 {
        match challenge_span(&client, id, &wrong).await.expect("moves") {
            Turn::NoGame => break,
            Turn::Moved(..) => moves += 1,
            Turn::Waiting => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    assert_eq!(
        client.span_game_of(id).await.expect("game").phase,
        Phase::None,
        "decided after {moves} challenger moves"
    );
    let settled = client
        .span_settlement(id)
        .await
        .expect("events")
        .expect("settled");
    assert!(!settled.server_lost, "the honest server won");
    let account = server.stake_of(server.sender()).await.expect("stake");
    assert_eq!(U256::from(account.staked), stake, "not slashed");
    // The game owed the winner the challenger's bond; the daemon withdraws it.
    let mut owed = bond;
    for _ in 0..60 {
        owed = server.span_owed(server.sender()).await.expect("owed");
        if owed.is_zero() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(owed.is_zero(), "the daemon withdrew the bond");
    net.client.shutdown().await;
}
