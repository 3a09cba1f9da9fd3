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

/// One tensor laid out for publication.
#[derive(Debug, Clone)]
struct Planned {
    dims: Vec<u32>,
    /// Rows and elements per row (zero rows for a tensor with no elements).
    rows: usize,
    cols: usize,
    data: Vec<i32>,
    tree: Option<MerkleTree>,
}

/// A state laid out for publication: its entries and each tensor's rows and row tree, so that
/// the parts from any cursor can be cut. Anyone may publish a part, with any aligned run size,
/// so the next part must start wherever the contract's cursor is, not where a plan made in
/// advance expected it.
#[derive(Debug, Clone)]
pub struct Publication {
    entries: Vec<StateEntry>,
    tensors: Vec<Planned>,
}

impl Publication {
    /// Lays `state` out: its entries, and every tensor's rows and row tree.
    pub fn new(state: &ModelState) -> Result<Self, CoreError> {
        let entries = state.state_entries()?;
        let mut order: Vec<_> = state.tensors.iter().collect();
        order.sort_by(|a, b| a.name.cmp(&b.name));
        let mut tensors = Vec::with_capacity(order.len());
        for t in order {
            let (rows, cols, tree) = if t.data.is_empty() {
                (0, 0, None)
            } else {
                let hashes = row_hashes(t)?;
                let rows = hashes.len();
                (rows, t.data.len() / rows, Some(MerkleTree::new(&hashes)?))
            };
            tensors.push(Planned {
                dims: t.shape.clone(),
                rows,
                cols,
                data: t.data.clone(),
                tree,
            });
        }
        Ok(Self { entries, tensors })
    }

    /// The tensors' entries, in name order.
    pub fn entries(&self) -> &[StateEntry] {
        &self.entries
    }

    /// The longest run that starts at row `row` of tensor `tensor` and holds at most
    /// `max_bytes` (one row when a single row is larger): `2^m` rows with `row` a multiple of
    /// `2^m`. `None` past the last tensor or row.
    pub fn run_at(&self, tensor: usize, row: u64, max_bytes: usize) -> Option<RowRun> {
        let t = self.tensors.get(tensor)?;
        let Some(tree) = &t.tree else {
            return (row == 0).then(|| RowRun {
                tensor,
                first_row: 0,
                dims: t.dims.clone(),
                log2_rows: 0,
                data: Vec::new(),
                proof: Vec::new(),
            });
        };
        let first = usize::try_from(row).ok().filter(|&r| r < t.rows)?;
        let depth = tree.depth() as usize;
        let row_bytes = t.cols * 4;
        let mut m = 0;
        while m < depth && first.is_multiple_of(1 << (m + 1)) && (row_bytes << (m + 1)) <= max_bytes
        {
            m += 1;
        }
        let count = (1usize << m).min(t.rows - first);
        let mut data = Vec::with_capacity(count * row_bytes);
        for v in &t.data[first * t.cols..(first + count) * t.cols] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        Some(RowRun {
            tensor,
            first_row: row,
            dims: t.dims.clone(),
            log2_rows: m as u8,
            data,
            proof: tree.node_proof(m, first >> m),
        })
    }

    /// The runs from row `row` of tensor `tensor` on, in order, holding at most `budget` bytes
    /// in all (at least one run): one transaction's worth.
    pub fn runs_from(&self, mut tensor: usize, mut row: u64, budget: usize) -> Vec<RowRun> {
        let mut runs = Vec::new();
        let mut left = budget;
        while let Some(run) = self.run_at(tensor, row, left.max(1)) {
            if !runs.is_empty() && run.data.len() > left {
                break;
            }
            left = left.saturating_sub(run.data.len());
            let rows = self.tensors[tensor].rows as u64;
            row += (run.data.len() / (self.tensors[tensor].cols * 4).max(1)) as u64;
            if row >= rows {
                tensor += 1;
                row = 0;
            }
            runs.push(run);
            if left == 0 {
                break;
            }
        }
        runs
    }
}

/// The entries of `state` and its rows in runs of at most `max_run_bytes` bytes each (one row
/// when a single row is larger), in the order the contract takes them.
pub fn publication_runs(
    state: &ModelState,
    max_run_bytes: usize,
) -> Result<(Vec<StateEntry>, Vec<RowRun>), CoreError> {
    let plan = Publication::new(state)?;
    let mut runs = Vec::new();
    let (mut tensor, mut row) = (0, 0);
    while let Some(run) = plan.run_at(tensor, row, max_run_bytes) {
        let planned = &plan.tensors[tensor];
        row += (run.data.len() / (planned.cols * 4).max(1)) as u64;
        if row >= planned.rows as u64 {
            tensor += 1;
            row = 0;
        }
        runs.push(run);
    }
    Ok((plan.entries, runs))
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
