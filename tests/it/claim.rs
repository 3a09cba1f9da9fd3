//! Claims: two workers race for one job and the loser pays only gas; a worker that sees a
//! rival's claim pending sends none; a claim that is not mined yet keeps the job (it may still
//! be mined, and abandoning it would lock stake on a job nobody works on).

use std::time::Duration;

use alloy::{
    primitives::U256,
    providers::{Provider, ext::AnvilApi},
};
use pedals_chain::{JobStatus, SendPolicy};
use pedals_node::Worker;
use pedals_store::{Action, JobPhase};

use crate::worker::{
    PAYMENT, Setup, balance, gas_of, hand_over, job, post, provider, setup, worker_as, worker_on,
};

#[tokio::test]
async fn a_claim_not_yet_mined_keeps_the_job_and_is_driven_to_its_receipt() {
    let s = setup().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Gives up on a receipt quickly: one version, one replacement, a second each.
    let impatient = SendPolicy {
        receipt_timeout: Duration::from_secs(1),
        poll_interval: Duration::from_millis(50),
        max_replacements: 1,
        ..SendPolicy::default()
    };
    let w = worker_on(&s.devnet, dir.path(), impatient).await;
    let job = job();
    hand_over(&w, &job);
    let id = post(&s, &job).await;
    for _ in 0..2 {
        w.tick().await.expect("tick");
    }
    assert_eq!(
        w.store().job(id).expect("read").expect("record").phase,
        JobPhase::Ready
    );
    let chain = provider(&s.devnet);
    chain
        .anvil_set_auto_mine(false)
        .await
        .expect("automine off");
    // The claim goes out and is not mined: the sender gives up for this round.
    w.tick().await.expect("tick");
    let claim = w
        .store()
        .intent(id, Action::Claim)
        .expect("read")
        .expect("the claim is stored");
    assert!(
        claim.hashes.len() >= 2,
        "the claim was re-priced once: {claim:?}"
    );
    assert_eq!(
        w.store().job(id).expect("read").expect("record").phase,
        JobPhase::Claiming,
        "a pending claim keeps the job"
    );
    chain.evm_mine(None).await.expect("mine");
    chain.anvil_set_auto_mine(true).await.expect("automine on");
    w.tick().await.expect("tick");
    let phase = w.store().job(id).expect("read").expect("record").phase;
    assert!(
        !matches!(phase, JobPhase::Claiming | JobPhase::Abandoned { .. }),
        "the mined claim is seen: {phase:?}"
    );
    let on_chain = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(on_chain.worker, w.address());
    assert_eq!(JobStatus::try_from(on_chain.status), Ok(JobStatus::Claimed));
}

/// The setup's worker and a rival (dev account 3), both staked and both at Ready for one
/// posted job; each gives up on a receipt after a second, leaving the claim pending.
async fn two_ready_workers() -> (Setup, Worker, u64, tempfile::TempDir) {
    let mut s = setup().await;
    let quick = SendPolicy {
        receipt_timeout: Duration::from_secs(1),
        poll_interval: Duration::from_millis(50),
        max_replacements: 0,
        ..SendPolicy::default()
    };
    s.restart(quick.clone()).await;
    let rival_dir = tempfile::tempdir().expect("tempdir");
    let rival = worker_as(&s.devnet, 3, rival_dir.path(), quick).await;
    let stake = s
        .requester
        .stake_to_claim(U256::from(PAYMENT))
        .await
        .expect("params");
    rival.ensure_stake(stake).await.expect("stake");
    let job = job();
    hand_over(s.w(), &job);
    hand_over(&rival, &job);
    let id = post(&s, &job).await;
    for _ in 0..2 {
        s.w().tick().await.expect("tick");
        rival.tick().await.expect("tick");
    }
    for w in [s.w(), &rival] {
        assert_eq!(
            w.store().job(id).expect("read").expect("record").phase,
            JobPhase::Ready
        );
    }
    (s, rival, id, rival_dir)
}

#[tokio::test]
async fn a_worker_that_sees_a_rival_claim_pending_sends_none_and_loses_nothing() {
    let (s, rival, id, _rival_dir) = two_ready_workers().await;
    let before = balance(&s, rival.address()).await;
    let nonce = provider(&s.devnet)
        .get_transaction_count(rival.address())
        .await
        .expect("nonce");
    let chain = provider(&s.devnet);
    chain
        .anvil_set_auto_mine(false)
        .await
        .expect("automine off");
    s.w().tick().await.expect("tick");
    // The rival's gas estimate sees the pending claim: it signs nothing and keeps the job
    // waiting for the chain to say who has it.
    rival.tick().await.expect("tick");
    assert!(
        rival
            .store()
            .intent(id, Action::Claim)
            .expect("read")
            .is_none(),
        "no claim signed"
    );
    chain.evm_mine(None).await.expect("mine");
    chain.anvil_set_auto_mine(true).await.expect("automine on");
    rival.tick().await.expect("tick");
    assert!(matches!(
        rival.store().job(id).expect("read").expect("record").phase,
        JobPhase::Abandoned { .. }
    ));
    assert_eq!(
        balance(&s, rival.address()).await,
        before,
        "not a wei spent"
    );
    assert_eq!(
        chain
            .get_transaction_count(rival.address())
            .await
            .expect("nonce"),
        nonce,
        "nothing sent"
    );
    let on_chain = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(on_chain.worker, s.w().address());
}

#[tokio::test]
async fn two_workers_race_for_one_job_and_the_loser_loses_only_gas() {
    // Each worker's round sends its claim and, with no receipt in a second, leaves it pending
    // for the next round. A worker that sees another's claim pending does not send its own
    // (the next test), so to race, the first claim is taken out of the mempool while the second
    // is signed, and the first worker's next round sends its stored bytes again: both claims are
    // then pending, and one block holds both.
    let (s, rival, id, _rival_dir) = two_ready_workers().await;
    let before = balance(&s, rival.address()).await;
    // Both claims go out before either is mined; one block holds both.
    let chain = provider(&s.devnet);
    chain
        .anvil_set_auto_mine(false)
        .await
        .expect("automine off");
    s.w().tick().await.expect("tick");
    chain
        .anvil_drop_all_transactions()
        .await
        .expect("mempool emptied");
    rival.tick().await.expect("tick");
    s.w().tick().await.expect("tick");
    for w in [s.w(), &rival] {
        assert!(
            w.store().intent(id, Action::Claim).expect("read").is_some(),
            "each worker signed and sent its claim"
        );
        assert_eq!(
            w.store().job(id).expect("read").expect("record").phase,
            JobPhase::Claiming,
            "an unmined claim keeps the job"
        );
    }
    chain.evm_mine(None).await.expect("mine");
    chain.anvil_set_auto_mine(true).await.expect("automine on");
    let on_chain = s.requester.job(pedals_core::JobId(id)).await.expect("job");
    let (winner, loser) = if on_chain.worker == s.w().address() {
        (s.w(), &rival)
    } else {
        (&rival, s.w())
    };
    loser.tick().await.expect("tick");
    assert!(matches!(
        loser.store().job(id).expect("read").expect("record").phase,
        JobPhase::Abandoned { .. }
    ));
    // A tick may have returned with the claim broadcast but not yet seen mined: the next one
    // reads its receipt.
    for _ in 0..50 {
        if winner.store().job(id).expect("read").expect("record").phase != JobPhase::Claiming {
            break;
        }
        winner.tick().await.expect("tick");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let phase = winner.store().job(id).expect("read").expect("record").phase;
    assert!(
        matches!(
            phase,
            JobPhase::Claimed
                | JobPhase::Training { .. }
                | JobPhase::Trained
                | JobPhase::Submitting
                | JobPhase::Submitted
        ),
        "the winner works on the job: {phase:?}"
    );
    // The loser's claim reverted: it paid that gas and nothing else; its stake is free.
    let claim = loser
        .store()
        .intent(id, Action::Claim)
        .expect("read")
        .expect("signed");
    assert!(matches!(
        claim.state,
        pedals_store::IntentState::Mined { success: false, .. }
    ));
    if loser.address() == rival.address() {
        let gas = gas_of(&s, &claim.hashes).await;
        assert_eq!(balance(&s, rival.address()).await, before - gas);
    }
    let account = s.requester.stake_of(loser.address()).await.expect("stake");
    assert_eq!(account.locked, 0);
}
