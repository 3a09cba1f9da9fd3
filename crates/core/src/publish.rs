//! A state published on-chain to meet a data-availability demand (docs/protocol.md §7): the
//! entries of its tensors, then each tensor's rows in runs. A run of `2^m` rows that starts at
//! a multiple of `2^m` is a whole subtree of the tensor's row tree, so one proof of its subtree
//! root (the `depth - m` siblings above it) proves every row in it against the tensor's root,
//! which the state hash commits to. `JobMarket.publishRows` checks exactly this.

use alloy_primitives::B256;

use crate::{CoreError, MerkleTree, ModelState, StateEntry, row_hashes};

/// One run of rows of one tensor, as `JobMarket.publishRows` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRun {
    /// The tensor's position in name order.
    pub tensor: usize,
    /// Its first row; a multiple of `2^log2_rows`.
    pub first_row: u64,
    /// The tensor's shape.
    pub dims: Vec<u32>,
    /// The run spans `2^log2_rows` rows (fewer only at the tensor's end).
    pub log2_rows: u8,
    /// The rows' elements as i32 little-endian bytes; empty for a tensor with no elements.
    pub data: Vec<u8>,
    /// Siblings of the run's subtree root up to the tensor's root, bottom first.
    pub proof: Vec<B256>,
}

/// The entries of `state` and its rows in runs of at most `max_run_bytes` bytes each (one row
/// when a single row is larger), in the order the contract takes them.
pub fn publication_runs(
    state: &ModelState,
    max_run_bytes: usize,
) -> Result<(Vec<StateEntry>, Vec<RowRun>), CoreError> {
    let entries = state.state_entries()?;
    let mut order: Vec<_> = state.tensors.iter().collect();
    order.sort_by(|a, b| a.name.cmp(&b.name));
    let mut runs = Vec::new();
    for (tensor, t) in order.into_iter().enumerate() {
        if t.data.is_empty() {
            runs.push(RowRun {
                tensor,
                first_row: 0,
                dims: t.shape.clone(),
                log2_rows: 0,
                data: Vec::new(),
                proof: Vec::new(),
            });
            continue;
        }
        let hashes = row_hashes(t)?;
        let rows = hashes.len();
        let cols = t.data.len() / rows;
        let tree = MerkleTree::new(&hashes)?;
        let depth = tree.depth() as usize;
        let row_bytes = cols * 4;
        let mut m = 0;
        while m < depth && (row_bytes << (m + 1)) <= max_run_bytes {
            m += 1;
        }
        let span = 1usize << m;
        for first in (0..rows).step_by(span) {
            let count = span.min(rows - first);
            let mut data = Vec::with_capacity(count * row_bytes);
            for v in &t.data[first * cols..(first + count) * cols] {
                data.extend_from_slice(&v.to_le_bytes());
            }
            runs.push(RowRun {
                tensor,
                first_row: first as u64,
                dims: t.shape.clone(),
                log2_rows: m as u8,
                data,
                proof: tree.node_proof(m, first >> m),
            });
        }
    }
    Ok((entries, runs))
}

/// The state whose names and shapes are `template`'s and whose elements are the published
/// runs `(tensor, first row, bytes)`. Fails when a row is missing or a run does not fit; the
/// caller compares the result's state hash with the one proven on-chain.
pub fn state_from_runs<'a>(
    template: &ModelState,
    runs: impl IntoIterator<Item = (usize, u64, &'a [u8])>,
) -> Result<ModelState, CoreError> {
    let mut tensors: Vec<_> = template.tensors.clone();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let mut filled: Vec<usize> = vec![0; tensors.len()];
    let bad = |what: String| CoreError::Publication(what);
    for (tensor, first, bytes) in runs {
        let t = tensors
            .get_mut(tensor)
            .ok_or_else(|| bad(format!("tensor {tensor} is not in the state")))?;
        let cols = match t.shape.as_slice() {
            [] => 1,
            [d] => *d as usize,
            [.., last] => *last as usize,
        };
        if bytes.len() % 4 != 0 {
            return Err(bad(format!("a run of {} is not whole elements", t.name)));
        }
        let start = first as usize * cols;
        let end = start + bytes.len() / 4;
        if end > t.data.len() {
            return Err(bad(format!("a run of {} goes past its last row", t.name)));
        }
        for (slot, chunk) in t.data[start..end].iter_mut().zip(bytes.chunks_exact(4)) {
            *slot = i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        filled[tensor] += end - start;
    }
    for (t, n) in tensors.iter().zip(&filled) {
        if *n != t.data.len() {
            return Err(bad(format!(
                "{} of the {} elements of {} were published",
                n,
                t.data.len(),
                t.name
            )));
        }
    }
    ModelState::new(tensors)
}
