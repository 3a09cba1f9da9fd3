//! Paid auditing (docs/economics.md): a validator that re-executed a step of a job commits to
//! the step's audit leaf while the job's window is open, reveals it against the worker's
//! audit root once the job is finalized, and collects its share of the job's audit pool.

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    sol_types::SolValue,
};
use pedals_core::JobId;

use pedals_store::Action;

use crate::{AuditPool, ChainError, Market, TxOutcome};

/// A job's audit pool, as the pool contract keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPoolState {
    /// Wei the market sent at finalization (zero: not funded, or released to the requester).
    pub amount: U256,
    /// Last second at which a commitment may be revealed (zero: not funded yet).
    pub reveal_end: u64,
    /// Auditors that revealed.
    pub revealed: u32,
    /// Auditors that collected.
    pub collected: u32,
}

/// Where one auditor is with one job (`IAuditPool.AuditStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditStatus {
    /// No commitment.
    None,
    /// Committed, not revealed.
    Committed,
    /// Revealed, share not collected.
    Revealed,
    /// Share collected.
    Collected,
}

/// The commitment an auditor sends: `keccak256(abi.encode(auditor, jobId, step, auditLeaf))`,
/// bound to its address so that nobody else can reveal it.
pub fn audit_commitment(auditor: Address, job_id: JobId, step: u64, leaf: B256) -> B256 {
    keccak256((auditor, job_id.to_u256(), U256::from(step), leaf).abi_encode())
}

impl Market {
    /// The market's audit pool.
    pub fn audit_pool(&self) -> AuditPool::AuditPoolInstance<alloy::providers::DynProvider> {
        AuditPool::new(self.deployment().audit_pool, self.provider().clone())
    }

    /// Commits the sender to having computed `leaf` for step `step` of `job_id`.
    pub async fn commit_audit(
        &self,
        job_id: JobId,
        step: u64,
        leaf: B256,
    ) -> Result<TxOutcome, ChainError> {
        let commitment = audit_commitment(self.sender(), job_id, step, leaf);
        let job_id = job_id.to_u256();
        let contract = self.audit_pool();
        let call = contract.commitAudit(job_id, commitment);
        self.transact(job_id, Action::AuditCommit, call).await
    }

    /// Reveals the sender's audit of `job_id`: the step, its audit leaf and the worker's
    /// path for it in the audit tree.
    pub async fn reveal_audit(
        &self,
        job_id: JobId,
        step: u64,
        leaf: B256,
        siblings: Vec<B256>,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let contract = self.audit_pool();
        let call = contract.revealAudit(job_id, U256::from(step), leaf, siblings);
        self.transact(job_id, Action::AuditReveal, call).await
    }

    /// Pays the sender its share of `job_id`'s audit pool, once the reveal period is over.
    pub async fn collect_audit(&self, job_id: JobId) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let contract = self.audit_pool();
        let call = contract.collectAudit(job_id);
        self.transact(job_id, Action::AuditCollect, call).await
    }

    /// The audit pool of `job_id`.
    pub async fn audit_pool_of(&self, job_id: JobId) -> Result<AuditPoolState, ChainError> {
        let job_id = job_id.to_u256();
        let p = self
            .audit_pool()
            .getPool(job_id)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(AuditPoolState {
            amount: U256::from(p.amount),
            reveal_end: p.revealEnd.to::<u64>(),
            revealed: p.revealed,
            collected: p.collected,
        })
    }

    /// Where `account` is with its audit of `job_id`.
    pub async fn audit_status(
        &self,
        job_id: JobId,
        account: Address,
    ) -> Result<AuditStatus, ChainError> {
        let job_id = job_id.to_u256();
        let s = self
            .audit_pool()
            .auditStatusOf(job_id, account)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(match s {
            0 => AuditStatus::None,
            1 => AuditStatus::Committed,
            2 => AuditStatus::Revealed,
            _ => AuditStatus::Collected,
        })
    }
}
