//! The crash-safe sender on a real anvil: every action lands exactly once, through crashes
//! before and after broadcasting, a dropped transaction and a revert.

use std::{sync::Arc, time::Duration};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};
use pedals_chain::{ChainError, Devnet, JobMarket, SendPolicy, StakeManager, TxSender};
use pedals_store::{Action, IntentState, Store, TxIntent};

use crate::support::devnet;

const STAKE: u128 = 1_000_000_000_000_000; // 0.001 ETH

/// The key the staking call is sent under in the tests of sending once: an action taken at
/// most once per job, whose mined intent stays (the real `Stake` repeats).
const ONCE: Action = Action::Claim;

fn provider(devnet: &Devnet) -> DynProvider {
    ProviderBuilder::new()
        .connect_http(devnet.endpoint())
        .erased()
}

fn policy() -> SendPolicy {
    SendPolicy {
        receipt_timeout: Duration::from_millis(1500),
        poll_interval: Duration::from_millis(50),
        max_replacements: 3,
        fee_bump_percent: 25,
        broadcast_attempts: 3,
        backoff: Duration::from_millis(50),
    }
}

async fn sender(devnet: &Devnet, store: &Arc<Store>) -> TxSender {
    let signer = devnet.signer(1).expect("dev account");
    TxSender::new(provider(devnet), signer, store.clone(), policy())
        .await
        .expect("sender")
}

fn stake_call(devnet: &Devnet) -> TransactionRequest {
    TransactionRequest::default()
        .with_to(devnet.deployment().stake_manager)
        .with_input(StakeManager::stakeCall {}.abi_encode())
        .with_value(U256::from(STAKE))
}

async fn staked(devnet: &Devnet, account: Address) -> u128 {
    StakeManager::new(devnet.deployment().stake_manager, provider(devnet))
        .accountOf(account)
        .call()
        .await
        .expect("accountOf")
        .staked
}

async fn nonce(devnet: &Devnet, account: Address) -> u64 {
    provider(devnet)
        .get_transaction_count(account)
        .await
        .expect("nonce")
}

#[tokio::test]
async fn a_send_lands_once_and_a_repeat_returns_the_same_receipt() {
    let devnet = devnet().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let sender = sender(&devnet, &store).await;
    let before = nonce(&devnet, sender.address()).await;
    let first = sender
        .send(0, ONCE, stake_call(&devnet))
        .await
        .expect("stake");
    let again = sender
        .send(0, ONCE, stake_call(&devnet))
        .await
        .expect("the same action again");
    assert_eq!(
        again.hash, first.hash,
        "the stored intent answered; nothing was re-sent"
    );
    assert_eq!(nonce(&devnet, sender.address()).await, before + 1);
    assert_eq!(staked(&devnet, sender.address()).await, STAKE);
    let intent = store.intent(0, ONCE).expect("read").expect("stored");
    assert!(matches!(
        intent.state,
        IntentState::Mined { success: true, .. }
    ));
}

#[tokio::test]
async fn a_crash_before_or_after_broadcasting_still_sends_exactly_once() {
    let devnet = devnet().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let account = devnet.signer(1).expect("dev account").address();
    let before = nonce(&devnet, account).await;
    {
        // Signed and stored, then the process dies before broadcasting.
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let sender = sender(&devnet, &store).await;
        sender
            .prepare(0, ONCE, stake_call(&devnet))
            .await
            .expect("prepare");
    }
    {
        // Restart: resume re-broadcasts the stored bytes.
        let store = Arc::new(Store::open(dir.path()).expect("reopen"));
        let sender = sender(&devnet, &store).await;
        let resumed = sender.resume().await.expect("resume");
        assert_eq!(resumed.len(), 1);
        resumed[0].1.as_ref().expect("mined");
        assert!(store.open_intents().expect("open").is_empty());
    }
    assert_eq!(nonce(&devnet, account).await, before + 1);
    assert_eq!(staked(&devnet, account).await, STAKE);

    // Broadcast, then the process dies before the receipt (mining is paused meanwhile).
    let chain = provider(&devnet);
    chain
        .anvil_set_auto_mine(false)
        .await
        .expect("automine off");
    {
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let sender = sender(&devnet, &store).await;
        let intent = sender
            .prepare(7, Action::Claim, stake_call(&devnet))
            .await
            .expect("prepare");
        let _pending = chain
            .send_raw_transaction(&intent.raw)
            .await
            .expect("broadcast");
    }
    let store = Arc::new(Store::open(dir.path()).expect("reopen"));
    let sender = sender(&devnet, &store).await;
    let miner = {
        let chain = chain.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            chain.anvil_mine(Some(1), None).await.expect("mine");
        })
    };
    // The node asks for the same action again after the restart: the stored intent answers.
    let outcome = sender
        .send(7, Action::Claim, stake_call(&devnet))
        .await
        .expect("resumed to a receipt");
    miner.await.expect("miner");
    let intent = store
        .intent(7, Action::Claim)
        .expect("read")
        .expect("stored");
    assert_eq!(intent.hashes, vec![outcome.hash], "never re-signed");
    assert_eq!(nonce(&devnet, account).await, before + 2);
    assert_eq!(staked(&devnet, account).await, 2 * STAKE);
}

#[tokio::test]
async fn a_dropped_transaction_is_replaced_with_higher_fees_and_the_same_nonce() {
    let devnet = devnet().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let sender = sender(&devnet, &store).await;
    let chain = provider(&devnet);
    chain
        .anvil_set_auto_mine(false)
        .await
        .expect("automine off");
    let before = nonce(&devnet, sender.address()).await;
    let intent = sender
        .prepare(0, ONCE, stake_call(&devnet))
        .await
        .expect("prepare");
    let first_hash = intent.hashes[0];
    // The node loses it from its pool right after it is broadcast; blocks keep coming.
    let dropper = {
        let chain = chain.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            chain
                .anvil_drop_transaction(first_hash)
                .await
                .expect("drop");
            for _ in 0..60 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                chain.anvil_mine(Some(1), None).await.expect("mine");
            }
        })
    };
    let outcome = sender
        .drive(intent.clone())
        .await
        .expect("mined after a replacement");
    dropper.abort();
    let stored = store.intent(0, ONCE).expect("read").expect("stored");
    assert!(stored.hashes.len() >= 2, "replaced: {:?}", stored.hashes);
    assert_eq!(stored.nonce, intent.nonce);
    assert_ne!(outcome.hash, first_hash);
    assert!(stored.hashes.contains(&outcome.hash));
    assert_eq!(nonce(&devnet, sender.address()).await, before + 1);
    assert_eq!(staked(&devnet, sender.address()).await, STAKE);
}

#[tokio::test]
async fn a_call_that_would_revert_is_refused_before_anything_is_stored() {
    let devnet = devnet().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let sender = sender(&devnet, &store).await;
    let claim_missing_job = TransactionRequest::default()
        .with_to(devnet.deployment().job_market)
        .with_input(
            JobMarket::claimJobCall {
                jobId: U256::from(99),
            }
            .abi_encode(),
        );
    let err = sender
        .send(99, Action::Claim, claim_missing_job)
        .await
        .expect_err("no such job");
    assert!(matches!(err, ChainError::JobMarket(_)), "{err}");
    assert!(store.intent(99, Action::Claim).expect("read").is_none());
}

#[tokio::test]
async fn a_mined_transaction_that_a_reorg_removes_is_sent_again_with_the_same_bytes() {
    let devnet = devnet().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let sender = sender(&devnet, &store).await;
    let first = sender
        .send(0, ONCE, stake_call(&devnet))
        .await
        .expect("stake");
    let chain = provider(&devnet);
    chain
        .anvil_reorg(alloy::rpc::types::anvil::ReorgOptions {
            depth: 1,
            tx_block_pairs: vec![],
        })
        .await
        .expect("reorg");
    assert_eq!(
        staked(&devnet, sender.address()).await,
        0,
        "the stake is gone"
    );
    let intent = store.intent(0, ONCE).expect("read").expect("stored");
    let again = sender.drive(intent).await.expect("mined again");
    assert_eq!(again.hash, first.hash, "the same signed transaction");
    assert_eq!(staked(&devnet, sender.address()).await, STAKE);
}

#[tokio::test]
async fn a_repeating_action_is_retired_once_mined_and_can_be_taken_again() {
    let devnet = devnet().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let sender = sender(&devnet, &store).await;
    assert!(Action::Stake.repeats() && Action::DisputeMove.repeats());
    assert!(!Action::Challenge.repeats() && !Action::Reveal.repeats());
    let first = sender
        .send(0, Action::Stake, stake_call(&devnet))
        .await
        .expect("stake");
    assert!(
        store.intent(0, Action::Stake).expect("read").is_none(),
        "retired once mined"
    );
    let second = sender
        .send(0, Action::Stake, stake_call(&devnet))
        .await
        .expect("stake again");
    assert_ne!(first.hash, second.hash, "a second transaction");
    assert_eq!(staked(&devnet, sender.address()).await, 2 * STAKE);
}

#[tokio::test]
async fn a_repeating_action_mined_but_not_retired_before_a_crash_does_not_answer_the_next_one() {
    let devnet = devnet().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let sender = sender(&devnet, &store).await;
    let first = sender
        .send(0, Action::Stake, stake_call(&devnet))
        .await
        .expect("stake");
    // A crash between the receipt and the retirement leaves the mined intent in the store.
    let mut left = TxIntent::signed(0, Action::Stake, 0, Default::default(), first.hash);
    left.state = IntentState::Mined {
        block: first.block_number,
        success: true,
    };
    store.record_intent(&left).expect("record");
    let second = sender
        .send(0, Action::Stake, stake_call(&devnet))
        .await
        .expect("the next stake");
    assert_ne!(
        second.hash, first.hash,
        "a new transaction, not the old receipt"
    );
    assert_eq!(staked(&devnet, sender.address()).await, 2 * STAKE);
}
