//! A worker whose moves come from a contract: it names a defender contract (a watchtower's, a
//! smart account) and every move is that contract's call, inside a transaction whose calldata
//! is the contract's own. A challenger that read the revealed row hashes and row from the
//! transaction's calldata could not follow, and would lose by its clock to a worker that lied;
//! the players read them from the game's events. The worker's moves are exactly those that
//! `defend` makes, taken back and relayed through the contract, each followed by more blocks
//! than two of the challenger's log queries span, so that it finds the move only by reading
//! the logs backwards by ranges.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::TransactionRequest;
use alloy::sol;
use pedals_dispute::game::{StepContext, Turn, defend};

use crate::game::{open, play_via, validator_side, worker_side};
use crate::{Run, World, job, post_and_run};

sol! {
    #[sol(rpc)]
    interface Forwarder {
        function exec(address target, bytes data) external payable returns (bytes memory);
    }
}

/// Deploys the contracts' test forwarder (`contracts/test/utils/EtherRefuser.sol`, compiled by
/// `make contracts`) from the worker's account; returns its address.
async fn deploy_forwarder(w: &World) -> Address {
    let artifact = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contracts/out/EtherRefuser.sol/EtherRefuser.json");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&artifact).expect("run `make contracts` first"),
    )
    .expect("artifact");
    let code: Bytes = json["bytecode"]["object"]
        .as_str()
        .expect("bytecode")
        .parse()
        .expect("hex");
    let p = w.worker.provider();
    let tx = TransactionRequest::default()
        .with_from(w.worker.sender())
        .with_deploy_code(code);
    let receipt = p
        .send_transaction(tx)
        .await
        .expect("deploy")
        .get_receipt()
        .await
        .expect("receipt");
    receipt.contract_address.expect("created")
}

/// Blocks per log query of the challenger in this test (its default is `SCAN_RANGE`, 2 000,
/// too many blocks to mine here between moves).
const RANGE: u64 = 8;
/// Blocks mined after each relayed move: more than two ranges of the challenger's log reads.
const GAP: u64 = 2 * RANGE + 5;

/// The worker's turn as `defend` plays it, but sent through `forwarder`: the move is made on a
/// snapshot, its calldata kept, the chain put back, and the same calldata relayed; then
/// [`GAP`] blocks pass.
pub(crate) async fn relayed_defend(
    w: &World,
    id: pedals_core::JobId,
    ctx: &StepContext,
    run: &Run,
    forwarder: Address,
) -> Turn {
    let p = w.worker.provider();
    let snapshot = p.anvil_snapshot().await.expect("snapshot");
    let turn = defend(&w.worker, id, ctx, &run.trace)
        .await
        .expect("defend");
    let Turn::Moved(name, tx) = turn else {
        return turn;
    };
    let sent = p
        .get_transaction_by_hash(tx.hash)
        .await
        .expect("rpc")
        .expect("known");
    let data = alloy::consensus::Transaction::input(&sent).clone();
    assert!(p.anvil_revert(snapshot).await.expect("revert"), "reverted");
    let game = w.worker.deployment().dispute_game;
    let relayed = Forwarder::new(forwarder, p)
        .exec(game, data)
        .from(w.worker.sender())
        .send()
        .await
        .expect("relay")
        .get_receipt()
        .await
        .expect("receipt");
    let outcome = pedals_chain::TxOutcome::from_receipt(&relayed).expect("the relayed move");
    // Blocks pass before the challenger reads the move: it finds the event in an older range
    // of its backward log reads.
    p.anvil_mine(Some(GAP), None).await.expect("mine");
    Turn::Moved(name, outcome)
}

#[tokio::test]
async fn a_worker_that_moves_through_a_contract_is_followed_and_slashed() {
    let mut w = World::start().await;
    w.validator = w.validator.clone().with_log_range(RANGE);
    let job = job();
    let step = 2;
    let (id, run) = post_and_run(&w, &job, Some(step)).await;
    let forwarder = deploy_forwarder(&w).await;
    w.worker
        .dispute_game()
        .setDefender(forwarder)
        .from(w.worker.sender())
        .send()
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("setDefender");
    let worker_side = worker_side(&job, &run, step);
    let validator_side = validator_side(&job, step, false);
    let collateral = U256::from(w.worker.job(id).await.expect("job").collateral);
    let staked = || async {
        w.worker
            .stake_of(w.worker.sender())
            .await
            .expect("stake")
            .staked
    };
    let before = staked().await;
    open(
        &w,
        id,
        step,
        *validator_side.trace.leaves.last().expect("leaves"),
    )
    .await;

    let moves: Vec<&str> = play_via(&w, id, &worker_side, &run, &validator_side, Some(forwarder))
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(
        moves,
        [
            "commitOpTrace",
            "disputeOp",
            "revealRowHashes",
            "pickRow",
            "revealRow",
            "disputeElement"
        ]
    );
    assert_eq!(
        w.worker.games_decided(id).await.expect("events"),
        [(true, false)],
        "decided by the element, not by the clock"
    );
    assert_eq!(U256::from(before - staked().await), collateral, "slashed");
}
