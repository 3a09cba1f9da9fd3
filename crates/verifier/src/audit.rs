//! Paid auditing, the validator's side (docs/economics.md): the first sampled step of a job
//! that reproduces is also audited. Its audit leaf (which only re-execution yields) is
//! checked against the worker's audit root through the path the worker served with the
//! checkpoint, and committed, bound to this validator's address, while the window is open.
//! Once the job is finalized the commitment is revealed; once the reveal period is over the
//! share is collected.
//!
//! Each open audit is kept in `<dir>/audits/<job>.audit` (JSON, written atomically) from
//! before its commitment is sent until its share is collected, so a restart neither loses
//! the audit leaf (recomputing it would need the checkpoint, which the worker need not
//! serve any more) nor sends a second commitment.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use alloy::primitives::{B256, U256};
use pedals_chain::{AuditStatus, ChainError, JobStatus, chain_time};
use pedals_core::MerkleProof;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::{Verifier, VerifierError, journal::write_atomically, verifier::JobCheck};

/// One audit of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Audit {
    /// The step re-executed.
    pub(crate) step: u64,
    /// Its audit leaf.
    pub(crate) leaf: B256,
    /// The worker's path for it in the job's audit tree.
    pub(crate) proof: MerkleProof,
    /// Whether the commitment was mined.
    pub(crate) sent: bool,
}

/// The open audits, by job, and where they are kept.
#[derive(Debug, Default)]
pub(crate) struct Audits {
    dir: Option<PathBuf>,
    pub(crate) open: HashMap<u64, Audit>,
}

impl Audits {
    /// The audits kept under `dir` (none without a folder).
    pub(crate) fn open(dir: Option<&Path>) -> Self {
        let dir = dir.map(|d| d.join("audits"));
        let mut open = HashMap::new();
        if let Some(entries) = dir.as_ref().and_then(|d| std::fs::read_dir(d).ok()) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "audit") {
                    continue;
                }
                let id = path
                    .file_stem()
                    .and_then(|s| s.to_str()?.parse::<u64>().ok());
                let audit = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Audit>(&b).ok());
                match (id, audit) {
                    (Some(id), Some(audit)) => {
                        open.insert(id, audit);
                    }
                    _ => {
                        warn!(target: "pedals::validator", file = %path.display(), "an audit file that does not read; ignored")
                    }
                }
            }
        }
        Self { dir, open }
    }

    fn save(&mut self, id: u64, audit: Audit) -> Result<(), VerifierError> {
        if let Some(dir) = &self.dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| VerifierError::Job(format!("cannot create {}: {e}", dir.display())))?;
            let bytes = serde_json::to_vec_pretty(&audit)
                .map_err(|e| VerifierError::Job(format!("an audit does not encode: {e}")))?;
            write_atomically(&dir.join(format!("{id}.audit")), &bytes)?;
        }
        self.open.insert(id, audit);
        Ok(())
    }

    fn forget(&mut self, id: u64) {
        self.open.remove(&id);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(format!("{id}.audit")));
        }
    }
}

impl Verifier {
    /// Audits step `step` of job `id`, which reproduced with audit leaf `leaf`: checks
    /// the worker's `proof` against the job's audit root and commits. A path that does not
    /// lead there (a worker that starves its auditors) ends auditing of the job; the job's
    /// share then goes back to its requester.
    pub(crate) async fn audit(
        &self,
        id: u64,
        check: &mut JobCheck,
        step: u64,
        leaf: B256,
        proof: Option<MerkleProof>,
    ) -> Result<(), VerifierError> {
        let Some(root) = check.audit_root else {
            return Ok(());
        };
        let valid = proof.filter(|p| {
            p.index == step && p.leaf_count == check.claim.steps && p.verify(&root, &leaf)
        });
        let Some(proof) = valid else {
            warn!(target: "pedals::validator", job = id, "the worker's audit path does not lead to its audit root: the job cannot be audited");
            check.audit_root = None;
            return Ok(());
        };
        let mut audit = Audit {
            step,
            leaf,
            proof,
            sent: false,
        };
        self.audits().save(id, audit.clone())?;
        self.market()
            .commit_audit(pedals_core::JobId(id), step, leaf)
            .await?;
        audit.sent = true;
        self.audits().save(id, audit)?;
        check.audit_root = None;
        self.stats().audits_committed.inc();
        info!(target: "pedals::validator", job = id, "audit committed");
        Ok(())
    }

    /// Moves every open audit on: a commitment recorded but not mined is sent again while the
    /// window is open; a committed one is revealed once the job is finalized and its pool
    /// funded; a revealed one is collected once the reveal period is over. An audit whose job
    /// ended otherwise (convicted, expired) or whose reveal period passed is forgotten. A call
    /// the pool refuses is dropped with a warning; any other failure is retried next round.
    pub(crate) async fn settle_audits(&self) -> Result<(), VerifierError> {
        let market = self.market();
        let open: Vec<(u64, Audit)> = self
            .audits()
            .open
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        let now = chain_time(market.provider()).await?;
        for (id, audit) in open {
            let job_id = pedals_core::JobId(id);
            let status =
                JobStatus::try_from(market.job(job_id).await?.status).unwrap_or(JobStatus::None);
            let pool = market.audit_pool_of(job_id).await?;
            let result = match market.audit_status(job_id, market.sender()).await? {
                AuditStatus::None if !status.is_terminal() => market
                    .commit_audit(job_id, audit.step, audit.leaf)
                    .await
                    .map(|_| {
                        let sent = Audit {
                            sent: true,
                            ..audit
                        };
                        self.audits().save(id, sent)
                    }),
                AuditStatus::Committed if pool.reveal_end == 0 && !status.is_terminal() => continue,
                AuditStatus::Committed if pool.reveal_end != 0 && now <= pool.reveal_end => market
                    .reveal_audit(job_id, audit.step, audit.leaf, audit.proof.siblings.clone())
                    .await
                    .map(|_| {
                        info!(target: "pedals::validator", job = id, "audit revealed");
                        Ok(())
                    }),
                AuditStatus::Revealed if now <= pool.reveal_end => continue,
                AuditStatus::Revealed => {
                    let left = pool.revealed.saturating_sub(pool.collected).max(1);
                    let share = pool.amount / U256::from(pool.revealed.max(1));
                    market.collect_audit(job_id).await.map(|_| {
                        self.stats()
                            .wei_earned
                            .inc_by(share.saturating_to());
                        self.stats().audits_paid.inc();
                        info!(target: "pedals::validator", job = id, share = %share, auditors_left = left - 1, "audit paid");
                        self.audits().forget(id);
                        Ok(())
                    })
                }
                // Collected, a job that ended without a funded pool, a reveal period missed.
                _ => {
                    self.audits().forget(id);
                    continue;
                }
            };
            match result {
                Ok(saved) => saved?,
                Err(e @ ChainError::AuditPool(_)) => {
                    warn!(target: "pedals::validator", job = id, error = %e, "the audit pool refused the call; the audit is dropped");
                    self.audits().forget(id);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
