use std::{sync::Arc, time::Duration};

use alloy_primitives::{Address, U256};
use pedals_core::cid_of;
use pedals_p2p::{
    Announcement, IdentTopic, JOBS_TOPIC, JobAnnouncement, MemorySource, NetEvent, Network,
    unix_now,
};

use crate::{node, tcp_addr, wait_for_peers, within};

fn announcement(job_id: u64) -> Announcement {
    let cid = cid_of(b"spec").to_string();
    Announcement::Job(JobAnnouncement {
        chain_id: 31337,
        market: Address::repeat_byte(7),
        job_id,
        spec_cid: cid.clone(),
        dataset_cid: cid.clone(),
        model_cid: cid,
        steps: 300,
        payment_wei: U256::from(1_000_000u64),
        announced_at: unix_now(),
    })
}

/// Publishes until gossipsub has peers for the topic (subscriptions travel right after the
/// connection opens).
async fn publish(network: &Network, message: &Announcement) {
    within(20, async {
        while network.client.publish(message).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Waits until `network` receives `expected` (skipping copies of earlier messages).
async fn receive(network: &mut Network, expected: &Announcement) {
    within(20, async {
        loop {
            let NetEvent::Announced { announcement, .. } =
                network.events.recv().await.expect("event stream open");
            if &announcement == expected {
                return;
            }
        }
    })
    .await;
}

/// Publishes `message` from `from` until both `a` and `b` received it: a publish can go out
/// before every peer's subscription has arrived, and then reaches only some of them.
async fn deliver(from: &Network, message: &Announcement, a: &mut Network, b: &mut Network) {
    let mut got = [false; 2];
    within(30, async {
        while got.contains(&false) {
            let _ = from.client.publish(message).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            for (i, n) in [&mut *a, &mut *b].into_iter().enumerate() {
                while let Ok(NetEvent::Announced { announcement, .. }) = n.events.try_recv() {
                    got[i] |= &announcement == message;
                }
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_reach_every_node_and_invalid_ones_are_dropped() {
    let hub = node(Arc::new(MemorySource::default()), &[]).await;
    let hub_addr = tcp_addr(&hub.client).await;
    let mut a = node(
        Arc::new(MemorySource::default()),
        std::slice::from_ref(&hub_addr),
    )
    .await;
    let mut b = node(Arc::new(MemorySource::default()), &[hub_addr]).await;
    wait_for_peers(&hub.client, 2).await;

    deliver(&hub, &announcement(1), &mut a, &mut b).await;

    // A node that publishes garbage and a job of zero steps: its peers refuse both, and
    // peer scoring graylists it, so even its next valid message is dropped.
    let topic = IdentTopic::new(JOBS_TOPIC);
    a.client
        .publish_raw(topic.clone(), b"{not json".to_vec())
        .await
        .expect("published");
    let Announcement::Job(mut zero) = announcement(2) else {
        unreachable!()
    };
    zero.steps = 0;
    a.client
        .publish_raw(topic, Announcement::Job(zero).encode())
        .await
        .expect("published");
    within(20, async {
        // One rejection is enough to graylist the sender, so the hub may drop the second
        // message before it is even validated.
        while hub.client.stats().snapshot().gossip_rejected < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    publish(&a, &announcement(3)).await;

    // An honest node's messages still flow, to the offender too.
    let honest = announcement(4);
    publish(&b, &honest).await;
    receive(&mut a, &honest).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        b.events.try_recv().is_err(),
        "nothing from the graylisted node reached b"
    );
}
