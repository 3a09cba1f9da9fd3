//! Paid auditing end to end (docs/economics.md): nobody cheats, and the validator that
//! checked the job is paid anyway. The validator daemon re-executes a sampled step of an
//! honest worker's job, commits to its audit leaf while the window is open, survives a
//! restart, reveals once the job is finalized and collects the job's audit share; an account
//! that copies its commitment gains nothing.

use std::sync::Arc;

use alloy::{
    primitives::{B256, U256},
    providers::{Provider, ext::AnvilApi},
};
use pedals_chain::{AuditStatus, ChainError, Devnet, JobStatus};
use pedals_p2p::MemorySource;
use pedals_store::JobPhase;
use pedals_verifier::{Verifier, VerifierConfig};

use crate::{
    dispute::market,
    puppet::networked_worker,
    worker::{PAYMENT, job, now, provider},
};

async fn warp_past(devnet: &Devnet, end: u64) {
    let p = provider(devnet);
    let t = now(devnet).await;
    p.anvil_increase_time(end.saturating_sub(t) + 1)
        .await
        .expect("warp");
    p.anvil_mine(Some(1), None).await.expect("mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_of_an_honest_job_is_paid_for_checking_it() {
    let devnet = Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let requester = market(&devnet, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (w, worker_net) = networked_worker(&devnet, dir.path(), Vec::new()).await;
    let params = requester.parameters().await.expect("params");
    let job = job();
    let id = crate::dispute::submitted(&devnet, &requester, &w, &job).await;
    let job_id = id.get();
    let submitted = requester.job(id).await.expect("job");
    assert_ne!(
        submitted.auditRoot,
        B256::ZERO,
        "the worker commits an audit root"
    );

    let state = tempfile::tempdir().expect("state dir");
    let validator_net = crate::network::net(
        Arc::new(MemorySource::default()),
        worker_net.client.listen_addrs().await.expect("addrs"),
    )
    .await;
    let config = VerifierConfig {
        samples_per_job: 2,
        threads: 1,
        state_dir: Some(state.path().to_path_buf()),
        ..VerifierConfig::default()
    };
    let validator = Verifier::new(
        market(&devnet, 3).await,
        validator_net.client.clone(),
        config.clone(),
    )
    .expect("validator");
    let auditor = validator.address();
    validator
        .ensure_stake(U256::from(params.minValidatorStake))
        .await
        .expect("stake");
    for _ in 0..30 {
        validator.tick().await.expect("validator round");
        if validator.stats().audits_committed.get() == 1 {
            break;
        }
    }
    assert_eq!(validator.stats().audits_committed.get(), 1);
    let pool = requester.audit_pool();
    let commitment = pool
        .commitmentOf(id.to_u256(), auditor)
        .call()
        .await
        .expect("commitment");
    // A copier commits the same bytes: they are bound to the validator's address.
    let copier = market(&devnet, 4).await;
    copier
        .stake(U256::from(params.minValidatorStake))
        .await
        .expect("stake");
    copier
        .audit_pool()
        .commitAudit(id.to_u256(), commitment)
        .send()
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("mined");

    // The validator stops; a new one on the same folder carries the audit on.
    drop(validator);
    let validator = Verifier::new(
        market(&devnet, 3).await,
        validator_net.client.clone(),
        config,
    )
    .expect("validator");
    warp_past(&devnet, submitted.windowEnd.to::<u64>()).await;
    for _ in 0..10 {
        w.tick().await.expect("worker round");
        if w.store().job(job_id).expect("read").expect("record").phase == JobPhase::Finalized {
            break;
        }
    }
    let finalized = requester.job(id).await.expect("job");
    assert_eq!(
        JobStatus::try_from(finalized.status),
        Ok(JobStatus::Finalized)
    );
    let fee = U256::from(PAYMENT) * U256::from(finalized.feeBps) / U256::from(10_000u64);
    let share = fee / U256::from(2u64);
    let funded = requester.audit_pool_of(id).await.expect("pool");
    assert_eq!(
        funded.amount, share,
        "half the protocol fee pays the audits"
    );

    validator.tick().await.expect("validator round");
    assert_eq!(
        requester.audit_status(id, auditor).await.expect("status"),
        AuditStatus::Revealed
    );
    // The copier now knows the step and the audit leaf from the reveal, and still cannot
    // reveal: its commitment was of the validator's address.
    let revealed = requester
        .audit_pool()
        .AuditRevealed_filter()
        .topic1(id.to_u256())
        .from_block(0)
        .query()
        .await
        .expect("logs");
    let (event, _) = revealed.first().expect("the validator's reveal");
    let proof = pedals_chain::audit_commitment(auditor, id, event.step.to(), event.auditLeaf);
    assert_eq!(proof, commitment);
    let stolen = copier
        .reveal_audit(id, event.step.to(), event.auditLeaf, Vec::new())
        .await
        .expect_err("a copied commitment does not reveal");
    assert!(matches!(stolen, ChainError::AuditPool(_)), "{stolen}");

    warp_past(&devnet, funded.reveal_end).await;
    let chain = provider(&devnet);
    let before = chain.get_balance(auditor).await.expect("balance");
    validator.tick().await.expect("validator round");
    assert_eq!(
        requester.audit_status(id, auditor).await.expect("status"),
        AuditStatus::Collected
    );
    assert_eq!(
        U256::from(validator.stats().audits_paid.get()),
        U256::from(1u8)
    );
    assert_eq!(
        U256::from(validator.stats().wei_earned.get()),
        share,
        "the only auditor that revealed takes the whole share"
    );
    assert!(
        chain.get_balance(auditor).await.expect("balance") > before,
        "the share arrived, net of gas"
    );
    assert_eq!(
        provider(&devnet)
            .get_balance(devnet.deployment().audit_pool)
            .await
            .expect("balance"),
        U256::ZERO,
        "the pool paid out everything"
    );
    drop(dir);
}
