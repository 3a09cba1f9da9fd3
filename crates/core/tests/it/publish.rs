//! The state publication of a data-availability demand: every run proves its rows against the
//! tensor's root the way `JobMarket.publishRows` checks them, the runs cover every row once in
//! order, and the published rows rebuild the state.

use pedals_core::{
    B256, ModelState, Publication, RowRun, StateTensor, hash_leaf, hash_node, hash_row,
    publication_runs, state_from_runs,
};
use proptest::prelude::*;

use crate::{config, state::state};

/// What the contract computes: the run's subtree root (row hashes padded with zero words to
/// `2^log2_rows`), climbed by the proof; `rows` and `cols` from the shape.
fn contract_root(run: &RowRun) -> Option<B256> {
    let (rows, cols) = match run.dims.as_slice() {
        [] => (1usize, 1usize),
        [d] => (1, *d as usize),
        [lead @ .., last] => (lead.iter().map(|&d| d as usize).product(), *last as usize),
    };
    let span = 1usize << run.log2_rows;
    let first = run.first_row as usize;
    let depth = (rows.max(1) as u64).next_power_of_two().trailing_zeros() as usize;
    if !first.is_multiple_of(span) || first >= rows || usize::from(run.log2_rows) > depth {
        return None;
    }
    let count = span.min(rows - first);
    if run.data.len() != count * cols * 4 || run.proof.len() + usize::from(run.log2_rows) != depth {
        return None;
    }
    let mut level: Vec<B256> = vec![B256::ZERO; span];
    for (i, row) in run.data.chunks_exact(cols * 4).enumerate() {
        let values: Vec<i32> = row
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        level[i] = hash_leaf(&hash_row(&values));
    }
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|p| hash_node(&p[0], &p[1]))
            .collect();
    }
    let mut h = level[0];
    let mut index = first >> run.log2_rows;
    for s in &run.proof {
        h = if index & 1 == 0 {
            hash_node(&h, s)
        } else {
            hash_node(s, &h)
        };
        index >>= 1;
    }
    Some(h)
}

fn zeroed(state: &ModelState) -> ModelState {
    let tensors = state
        .tensors
        .iter()
        .map(|t| StateTensor::new(t.name.clone(), t.shape.clone(), vec![0; t.data.len()]))
        .collect::<Result<Vec<_>, _>>()
        .expect("tensors");
    ModelState::new(tensors).expect("state")
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn runs_verify_cover_every_row_and_rebuild_the_state(s in state(), budget in 1usize..600) {
        let (entries, runs) = publication_runs(&s, budget).expect("runs");
        prop_assert_eq!(entries.len(), s.tensors.len());
        let mut next = (0usize, 0u64);
        for run in &runs {
            prop_assert_eq!((run.tensor, run.first_row), next, "runs out of order");
            let entry = entries[run.tensor];
            if run.data.is_empty() {
                prop_assert_eq!(entry.root, B256::ZERO);
                next = (run.tensor + 1, 0);
                continue;
            }
            prop_assert_eq!(contract_root(run), Some(entry.root));
            let (rows, cols) = match run.dims.as_slice() {
                [] => (1u64, 1usize),
                [d] => (1, *d as usize),
                [lead @ .., last] => (lead.iter().map(|&d| u64::from(d)).product(), *last as usize),
            };
            if run.data.len() > budget {
                prop_assert_eq!(run.data.len(), cols * 4, "only a single row may exceed the budget");
            }
            let end = run.first_row + (run.data.len() / (cols * 4)) as u64;
            next = if end == rows { (run.tensor + 1, 0) } else { (run.tensor, end) };
        }
        prop_assert_eq!(next, (s.tensors.len(), 0));
        let rebuilt = state_from_runs(
            &zeroed(&s),
            runs.iter().map(|r| (r.tensor, r.first_row, r.data.as_slice())),
        )
        .expect("rebuilt");
        prop_assert_eq!(rebuilt.state_hash().expect("hash"), s.state_hash().expect("hash"));
        prop_assert_eq!(rebuilt, s);
    }

    #[test]
    fn a_changed_element_or_a_missing_run_is_caught(s in state(), budget in 4usize..256, pick in any::<prop::sample::Index>()) {
        let (entries, runs) = publication_runs(&s, budget).expect("runs");
        let full: Vec<_> = runs.iter().filter(|r| !r.data.is_empty()).cloned().collect();
        prop_assume!(!full.is_empty());
        let mut run = pick.get(&full).clone();
        run.data[0] ^= 1;
        prop_assert_ne!(contract_root(&run), Some(entries[run.tensor].root));
        let without: Vec<_> = runs.iter().filter(|r| **r != *pick.get(&full)).collect();
        let rebuilt = state_from_runs(
            &zeroed(&s),
            without.iter().map(|r| (r.tensor, r.first_row, r.data.as_slice())),
        );
        prop_assert!(rebuilt.is_err());
    }

    #[test]
    fn a_part_cut_at_any_cursor_verifies(s in state(), budget in 1usize..600, picks in prop::collection::vec(any::<prop::sample::Index>(), 4)) {
        // Someone else may have published any aligned runs before: the next part starts at
        // whatever row the cursor is on, and must still verify and move the cursor on.
        let plan = Publication::new(&s).expect("plan");
        for (tensor, t) in s.tensors.iter().enumerate() {
            let rows = match t.shape.as_slice() {
                _ if t.data.is_empty() => 0,
                [] | [_] => 1,
                [lead @ .., _] => lead.iter().map(|&d| d as usize).product(),
            };
            for pick in &picks {
                if rows == 0 {
                    continue;
                }
                let row = pick.index(rows) as u64;
                let part = plan.runs_from(tensor, row, budget);
                prop_assert!(!part.is_empty());
                prop_assert_eq!((part[0].tensor, part[0].first_row), (tensor, row));
                for run in &part {
                    if !run.data.is_empty() {
                        prop_assert_eq!(contract_root(run), Some(plan.entries()[run.tensor].root));
                    }
                }
                let bytes: usize = part.iter().map(|r| r.data.len()).sum();
                prop_assert!(bytes <= budget || part.len() == 1, "{bytes} bytes over {budget}");
            }
        }
    }
}
