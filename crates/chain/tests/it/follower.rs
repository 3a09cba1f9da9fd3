//! The event follower on a real anvil: it resumes from the stored cursor, redelivers an
//! uncommitted batch, and notices a reorg that removed an event it had delivered.

use std::sync::Arc;

use alloy::{
    primitives::U256,
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::anvil::ReorgOptions,
};
use pedals_chain::{ChainEvent, Devnet, EventFollower, JobMarket, StakeManager};
use pedals_store::Store;

use crate::support::{PAYMENT, devnet, market, request};

fn provider(devnet: &Devnet) -> DynProvider {
    ProviderBuilder::new()
        .connect_http(devnet.endpoint())
        .erased()
}

fn posted(events: &[ChainEvent]) -> Vec<pedals_core::JobId> {
    events
        .iter()
        .filter_map(|e| match e {
            ChainEvent::JobMarket(JobMarket::JobMarketEvents::JobPosted(p), _) => {
                pedals_core::JobId::try_from(p.jobId).ok()
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_follower_resumes_from_its_cursor_and_redelivers_what_was_not_committed() {
    let devnet = devnet().await;
    let requester = market(&devnet, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, _) = requester
        .post_job(request(&requester).await, U256::from(PAYMENT))
        .await
        .expect("post");
    {
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let follower = EventFollower::new(provider(&devnet), store, devnet.deployment().clone());
        let batch = follower.poll().await.expect("poll");
        assert_eq!(posted(&batch.events), vec![first]);
        // Not committed (the node died before applying it): delivered again.
        let again = follower.poll().await.expect("poll");
        assert_eq!(posted(&again.events), vec![first]);
        follower.commit(&again).expect("commit");
        assert!(follower.poll().await.expect("poll").events.is_empty());
    }
    let (second, _) = requester
        .post_job(request(&requester).await, U256::from(PAYMENT))
        .await
        .expect("post");
    let store = Arc::new(Store::open(dir.path()).expect("reopen"));
    let follower = EventFollower::new(provider(&devnet), store, devnet.deployment().clone());
    let batch = follower.poll().await.expect("poll");
    assert_eq!(
        posted(&batch.events),
        vec![second],
        "only what came after the cursor"
    );
}

#[tokio::test]
async fn a_reorg_that_removes_a_delivered_event_is_reported_and_the_new_chain_delivered() {
    let devnet = devnet().await;
    let provider_account = market(&devnet, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let mut follower = EventFollower::new(provider(&devnet), store, devnet.deployment().clone());
    follower.rewind = 4;
    let batch = follower.poll().await.expect("poll");
    follower.commit(&batch).expect("commit");

    let staked = provider_account
        .stake(U256::from(1_000_000u64))
        .await
        .expect("stake");
    let batch = follower.poll().await.expect("poll");
    let stakes = |events: &[ChainEvent]| {
        events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    ChainEvent::StakeManager(StakeManager::StakeManagerEvents::Staked(_), _)
                )
            })
            .count()
    };
    assert_eq!(stakes(&batch.events), 1);
    follower.commit(&batch).expect("commit");

    // Replace the block with the stake by an empty one.
    provider(&devnet)
        .anvil_reorg(ReorgOptions {
            depth: 1,
            tx_block_pairs: vec![],
        })
        .await
        .expect("reorg");
    let batch = follower.poll().await.expect("poll after the reorg");
    match batch.events.first() {
        Some(ChainEvent::Reorg { from_block }) => {
            assert!(
                *from_block <= staked.block_number,
                "rewound to {from_block}"
            )
        }
        other => panic!("expected a reorg first, got {other:?}"),
    }
    assert_eq!(
        stakes(&batch.events),
        0,
        "the stake is gone from the new chain"
    );
    assert_eq!(
        provider_account
            .stake_of(provider_account.sender())
            .await
            .expect("account")
            .staked,
        0
    );
    follower.commit(&batch).expect("commit");
    assert!(follower.poll().await.expect("poll").events.is_empty());
}
