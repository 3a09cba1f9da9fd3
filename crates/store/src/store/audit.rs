//! The audit leaves of an audited run, stored with each resumable checkpoint: the leaves of
//! the audit root a worker submits, from which it serves an auditor the path of one step
//! (never a leaf itself).

use alloy_primitives::B256;
use redb::{ReadableDatabase, TableDefinition, WriteTransaction};

use super::Store;
use crate::StoreError;

/// The audit leaves of steps `0..k` (32 bytes each) of a job at checkpoint `k`.
const OP_ROOTS: TableDefinition<'_, (u64, u64), &[u8]> = TableDefinition::new("audit_leaves");

/// Writes the audit leaves of checkpoint `steps_done` in `tx` (nothing for an unaudited run).
pub(super) fn put_audit_leaves(
    tx: &WriteTransaction,
    job: u64,
    steps_done: u64,
    audit_leaves: &[B256],
) -> Result<(), StoreError> {
    if audit_leaves.is_empty() {
        return Ok(());
    }
    assert_eq!(
        audit_leaves.len() as u64,
        steps_done,
        "steps 0..k have k audit leaves"
    );
    let bytes: Vec<u8> = audit_leaves.iter().flat_map(|h| h.0).collect();
    let mut table = tx.open_table(OP_ROOTS).map_err(StoreError::db)?;
    table
        .insert((job, steps_done), bytes.as_slice())
        .map_err(StoreError::db)?;
    Ok(())
}

impl Store {
    /// The audit leaves stored with checkpoint `steps_done` of `job`; `None` when that run
    /// did not audit (or there is no such checkpoint).
    pub fn audit_leaves(&self, job: u64, steps_done: u64) -> Result<Option<Vec<B256>>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let table = match tx.open_table(OP_ROOTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(StoreError::db(e)),
        };
        let Some(value) = table.get((job, steps_done)).map_err(StoreError::db)? else {
            return Ok(None);
        };
        let bytes = value.value();
        if bytes.len() as u64 != steps_done * 32 {
            return Err(StoreError::Corrupt {
                what: format!("op roots ({job}, {steps_done})"),
                reason: format!("{} bytes", bytes.len()),
            });
        }
        Ok(Some(bytes.chunks_exact(32).map(B256::from_slice).collect()))
    }
}
