//! A long list committed by chunks (docs/commitments.md §1, "Chunks"): the nodes at level `h`
//! of the list's Merkle tree are the roots of its aligned runs of `2^h` leaves (the last run
//! padded with the zero word, as the whole tree is), and the tree above them is the rest of the
//! list's tree. A game commits such a list by its level-`h` nodes ([`crate::MerkleTree::level`])
//! and opens one chunk when asked; a proof of a leaf is the proof within its chunk followed by
//! the chunk node's proof in the level above, the same siblings as
//! [`crate::MerkleTree::proof`]'s. The tests hold the nodes and the root rebuilt from them to
//! the whole tree's, as the contract (`TraceMerkle`) rebuilds them.

use alloy_primitives::B256;

use crate::{CoreError, hash_leaf, hash_node};

/// The value of an all-padding node at `level` (0: the zero word).
fn zero_node(level: usize) -> B256 {
    (0..level).fold(B256::ZERO, |z, _| hash_node(&z, &z))
}

/// One level up from `level` (whose padding nodes are `zero`).
fn up(level: &[B256], zero: &B256) -> Vec<B256> {
    level
        .chunks(2)
        .map(|p| hash_node(&p[0], p.get(1).unwrap_or(zero)))
        .collect()
}

fn chunk_levels(chunk: &[B256], height: usize) -> Result<Vec<Vec<B256>>, CoreError> {
    if chunk.is_empty() || chunk.len() > 1usize << height {
        return Err(CoreError::EmptyTree);
    }
    let mut levels = vec![chunk.iter().map(hash_leaf).collect::<Vec<_>>()];
    for level in 0..height {
        let next = up(&levels[level], &zero_node(level));
        levels.push(next);
    }
    Ok(levels)
}

/// The `height` siblings of leaf `index` within `chunk` (a subtree of `2^height` leaves),
/// bottom first.
pub fn chunk_proof(chunk: &[B256], index: usize, height: usize) -> Result<Vec<B256>, CoreError> {
    if index >= chunk.len() {
        return Err(CoreError::LeafIndexOutOfRange {
            index: index as u64,
            leaf_count: chunk.len() as u64,
        });
    }
    let levels = chunk_levels(chunk, height)?;
    Ok((0..height)
        .map(|l| {
            let i = (index >> l) ^ 1;
            levels[l].get(i).copied().unwrap_or_else(|| zero_node(l))
        })
        .collect())
}

/// The levels from the chunk nodes `nodes` (at level `height`) up to the root.
fn upper_levels(nodes: &[B256], height: usize) -> Vec<Vec<B256>> {
    let mut levels = vec![nodes.to_vec()];
    let mut level = height;
    while levels.last().is_some_and(|l| l.len() > 1) {
        let next = up(
            levels.last().map_or(&[][..], Vec::as_slice),
            &zero_node(level),
        );
        levels.push(next);
        level += 1;
    }
    levels
}

/// The siblings of chunk node `index` (of `nodes`, at level `height`) up to the root, bottom
/// first.
pub fn level_proof(nodes: &[B256], index: usize, height: usize) -> Vec<B256> {
    let levels = upper_levels(nodes, height);
    (0..levels.len() - 1)
        .map(|k| {
            let i = (index >> k) ^ 1;
            levels[k]
                .get(i)
                .copied()
                .unwrap_or_else(|| zero_node(height + k))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MerkleTree, tree_depth};
    use proptest::prelude::*;

    /// The root of `chunk` as a subtree of `2^height` leaves (what the contract's
    /// `TraceMerkle.subtreeRoot` computes of a revealed chunk).
    fn subtree_root(chunk: &[B256], height: usize) -> Result<B256, CoreError> {
        Ok(chunk_levels(chunk, height)?[height][0])
    }

    /// The root of a tree whose level `height` is `nodes` (`TraceMerkle.rootOfLevel`).
    fn level_root(nodes: &[B256], height: usize) -> Result<B256, CoreError> {
        if nodes.is_empty() {
            return Err(CoreError::EmptyTree);
        }
        Ok(upper_levels(nodes, height)
            .last()
            .map_or(B256::ZERO, |l| l[0]))
    }

    proptest! {
        /// Chunk nodes, their root and the two-part proofs are the whole tree's.
        #[test]
        fn chunks_are_the_whole_trees_subtrees(n in 1usize..300, h in 0usize..9) {
            let leaves: Vec<B256> = (0..n).map(|i| alloy_primitives::keccak256(i.to_le_bytes())).collect();
            let tree = MerkleTree::new(&leaves).expect("tree");
            let h = h.min(tree_depth(n as u64) as usize);
            let nodes: Vec<B256> = leaves
                .chunks(1 << h)
                .map(|c| subtree_root(c, h).expect("chunk"))
                .collect();
            prop_assert_eq!(&nodes, &tree.level(h));
            prop_assert_eq!(level_root(&nodes, h).expect("root"), tree.root());
            for k in 0..n {
                let c = k >> h;
                let chunk = &leaves[c << h..((c + 1) << h).min(n)];
                let mut proof = chunk_proof(chunk, k - (c << h), h).expect("in chunk");
                proof.extend(level_proof(&nodes, c, h));
                prop_assert_eq!(&proof, &tree.proof(k).expect("proof").siblings);
            }
        }
    }

    #[test]
    fn a_chunk_wider_than_its_subtree_or_empty_is_refused() {
        let leaves = [B256::ZERO; 5];
        assert!(subtree_root(&leaves, 2).is_err());
        assert!(subtree_root(&[], 2).is_err());
        assert!(chunk_proof(&leaves[..4], 4, 2).is_err());
        assert!(level_root(&[], 3).is_err());
    }
}
