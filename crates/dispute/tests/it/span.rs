//! Whole span disputes on anvil (docs/split-inference.md, "Disputes"), between Rust players, on
//! the deployment of the project's own script: a span server signs the receipt of its answer
//! over a session's prefix (the tiny Llama's last block), a client that re-executed the span
//! opens a dispute and both sides play every move with `pedals_dispute::span`. A server that
//! returned a wrong output is slashed through the stake manager, to the wei; a challenger that
//! was wrong pays the server its bond.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use pedals_chain::{Market, Phase, model_key};
use pedals_dispute::game::Turn;
use pedals_dispute::span::{
    SpanContext, challenge_span, defend_span, open_span_dispute, sign_receipt,
};
use pedals_lm::dispute::{OpKind, OpTrace};
use pedals_lm::{ExactModel, KvCache};

use crate::World;

fn model() -> ExactModel {
    model_of(None)
}

/// The tiny Llama at 8 bits, its context widened to `context` positions when given (its
/// rotary table follows the config).
fn model_of(context: Option<usize>) -> ExactModel {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../lm/tests/fixtures/llama-tiny");
    let mut ckpt = pedals_lm::Checkpoint::load_hf(&dir).expect("fixture");
    if let Some(n) = context {
        ckpt.config.context = n;
        let mut hf: serde_json::Value = serde_json::from_str(&ckpt.hf_config).expect("config");
        hf["max_position_embeddings"] = n.into();
        ckpt.hf_config = hf.to_string();
    }
    pedals_lm::quantize(&ckpt, 8).expect("model")
}

/// The honest context of the model's last block over a 12-token session: its input is what
/// the blocks before it made of the tokens.
fn honest(model: &ExactModel) -> SpanContext {
    session(model, 12)
}

/// The honest context of the model's last block over an `n`-token session.
fn session(model: &ExactModel, n: u32) -> SpanContext {
    let tokens: Vec<u32> = (0..n).map(|i| (3 + 17 * i) % 384).collect();
    let layers = model.blocks.len();
    let mut front = KvCache::for_blocks(0..layers - 1);
    let embedded = model.embed_tokens(&tokens, 0).expect("embed");
    let input = model.run_span(&mut front, &embedded).expect("front").rows;
    SpanContext::new(model, layers - 1..layers, &input).expect("context")
}

/// A context whose output (the last op) has one element changed: what a lying server returned.
fn lying(ctx: &SpanContext) -> SpanContext {
    let mut liar = ctx.clone();
    let k = ctx.trace.tensors.len();
    let mut outputs = ctx.trace.tensors.clone();
    outputs[k - 1][7] += 1000;
    liar.trace = OpTrace::run_from(&ctx.inputs, outputs).expect("lie");
    liar
}

/// Plays both sides until the dispute is decided; returns the moves.
async fn play(
    server: &Market,
    server_ctx: &SpanContext,
    challenger: &Market,
    challenger_ctx: &SpanContext,
    id: u64,
) -> Vec<(&'static str, u64)> {
    let mut moves = Vec::new();
    for _ in 0..7 {
        if let Turn::Moved(m, tx) = defend_span(server, id, server_ctx).await.expect("defend") {
            moves.push((m, tx.gas_used));
        }
        match challenge_span(challenger, id, challenger_ctx)
            .await
            .expect("challenge")
        {
            Turn::Moved(m, tx) => moves.push((m, tx.gas_used)),
            Turn::NoGame => break,
            Turn::Waiting => {}
        }
    }
    let phase = server.span_game_of(id).await.expect("game").phase;
    assert_eq!(phase, Phase::None, "decided after {moves:?}");
    moves
}

async fn balance(m: &Market, who: Address) -> U256 {
    m.provider().get_balance(who).await.expect("balance")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_span_server_that_returned_a_wrong_output_is_slashed_and_an_honest_one_keeps_its_stake() {
    let w = World::start().await;
    let model = model();
    let truth = honest(&model);
    let liar = lying(&truth);
    let key = w.signer(2);
    let (server, client) = (&w.worker, &w.validator);
    let stake = U256::from(10u64).pow(U256::from(18));
    server.stake(stake).await.expect("stake");
    let domain = server.receipt_domain();

    // The receipt's model key is the contract's.
    let game = server.span_dispute_game();
    let on_chain = game
        .modelKey(truth.arch.clone(), truth.model_root)
        .call()
        .await
        .expect("modelKey");
    assert_eq!(on_chain, model_key(&truth.arch, truth.model_root));

    // The lying server signs the receipt of its wrong output; the client, which re-executed
    // the span from the same input, sees the output differ and disputes it.
    let now = pedals_chain::chain_time(server.provider())
        .await
        .expect("time");
    let (receipt, sig) = sign_receipt(server, &liar, &key, now).expect("sign");
    assert_eq!(receipt.signer(&domain, &sig), Some(server.sender()));
    assert_ne!(
        receipt.output,
        truth.receipt(now).output,
        "the lie reaches the output"
    );
    assert_eq!(receipt.input, truth.receipt(now).input, "the same input");
    let bond = client.span_dispute_bond().await.expect("bond");
    let slash = game.slashAmount().call().await.expect("slash");
    let id = open_span_dispute(client, &truth, &receipt, &sig)
        .await
        .expect("open");
    let moves = play(server, &liar, client, &truth, id).await;
    eprintln!("lying server: {moves:?}");
    let settled = client
        .span_settlement(id)
        .await
        .expect("events")
        .expect("settled");
    assert!(settled.server_lost);
    assert_eq!(settled.slashed, slash);
    let account = server.stake_of(server.sender()).await.expect("stake");
    assert_eq!(
        U256::from(account.staked),
        stake - slash,
        "slashed to the wei"
    );
    let reward = slash / U256::from(2);
    assert_eq!(
        client.span_owed(client.sender()).await.expect("owed"),
        bond + reward
    );
    let before = balance(client, client.sender()).await;
    let tx = client.span_withdraw().await.expect("withdraw");
    let fee = U256::from(tx.gas_used) * U256::from(tx.effective_gas_price);
    assert_eq!(
        balance(client, client.sender()).await,
        before + bond + reward - fee,
        "the bond back and half the slash, to the wei"
    );
    // The same receipt cannot be convicted twice.
    let again = open_span_dispute(&w.requester, &truth, &receipt, &sig).await;
    assert!(
        again.is_err_and(|e| e.to_string().contains("AlreadyConvicted")),
        "a convicted receipt is closed"
    );

    // An honest server's receipt, disputed by a client whose own re-execution was wrong: the
    // server commits the honest trace, the referee agrees with it, and the bond is the server's.
    let (receipt, sig) = sign_receipt(server, &truth, &key, now).expect("sign");
    let id = open_span_dispute(client, &liar, &receipt, &sig)
        .await
        .expect("open");
    let moves = play(server, &truth, client, &liar, id).await;
    eprintln!("honest server: {moves:?}");
    let settled = client
        .span_settlement(id)
        .await
        .expect("events")
        .expect("settled");
    assert!(!settled.server_lost);
    let account = server.stake_of(server.sender()).await.expect("stake");
    assert_eq!(
        U256::from(account.staked),
        stake - slash,
        "not slashed again"
    );
    assert_eq!(server.span_owed(server.sender()).await.expect("owed"), bond);
}

/// An output of more than 1 024 rows is opened by chunks of rows in a span dispute too
/// (docs/protocol.md §3): the tiny Llama with a context of 512 over a 300-token session has 1 200
/// score rows in its last block (300 positions, 4 heads); a server that changed one score of
/// the second chunk of rows is narrowed to it in five moves a side and slashed.
#[tokio::test(flavor = "multi_thread")]
async fn a_span_output_of_many_rows_is_opened_by_chunks_of_rows() {
    let w = World::start().await;
    let model = model_of(Some(512));
    let truth = session(&model, 300);
    let ops = &truth.inputs.program.ops;
    let score = ops
        .iter()
        .position(|o| o.kind == OpKind::Score)
        .expect("the scores");
    assert_eq!(ops[score].rows, 300 * 4);
    let mut liar = truth.clone();
    let mut outputs = truth.trace.tensors[..=score].to_vec();
    outputs[score][1100 * ops[score].cols + 3] += 1000;
    liar.trace = OpTrace::run_from(&liar.inputs, outputs).expect("lie");
    let (server, client) = (&w.worker, &w.validator);
    let stake = U256::from(10u64).pow(U256::from(18));
    server.stake(stake).await.expect("stake");
    let now = pedals_chain::chain_time(server.provider())
        .await
        .expect("time");
    let (receipt, sig) = sign_receipt(server, &liar, &w.signer(2), now).expect("sign");
    assert_ne!(
        receipt.output,
        truth.receipt(now).output,
        "the lie reaches the output"
    );
    let id = open_span_dispute(client, &truth, &receipt, &sig)
        .await
        .expect("open");
    let moves = play(server, &liar, client, &truth, id).await;
    eprintln!("span scores of 1 200 rows: {moves:?}");
    let names: Vec<&str> = moves.iter().map(|m| m.0).collect();
    assert!(
        names.contains(&"pickRowChunk") && names.contains(&"revealRowChunk"),
        "{names:?}"
    );
    let settled = client
        .span_settlement(id)
        .await
        .expect("events")
        .expect("settled");
    assert!(settled.server_lost, "the server lost");
    let account = server.stake_of(server.sender()).await.expect("stake");
    assert_eq!(
        U256::from(account.staked),
        stake - settled.slashed,
        "slashed to the wei"
    );
}
