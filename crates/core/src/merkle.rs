//! Binary keccak256 Merkle trees over 32-byte leaves, shaped so that a Solidity verifier is a
//! short loop (docs/commitments.md has the exact specification).
//!
//! - leaf hash: `keccak256(0x00 ‖ leaf)`;
//! - internal node: `keccak256(0x01 ‖ left ‖ right)`;
//! - the leaf level is padded to the next power of two with the zero word, which is never hashed;
//! - a tree of one leaf has that leaf's hash as its root.

use alloy_primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Domain prefix of a leaf hash.
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain prefix of an internal node hash.
pub const NODE_PREFIX: u8 = 0x01;

/// `keccak256(0x00 ‖ leaf)`: the hash of a leaf at the bottom of the tree.
#[inline]
pub fn hash_leaf(leaf: &B256) -> B256 {
    let mut buf = [0u8; 33];
    buf[0] = LEAF_PREFIX;
    buf[1..].copy_from_slice(leaf.as_slice());
    keccak256(buf)
}

/// `keccak256(0x01 ‖ left ‖ right)`: the hash of an internal node.
#[inline]
pub fn hash_node(left: &B256, right: &B256) -> B256 {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left.as_slice());
    buf[33..].copy_from_slice(right.as_slice());
    keccak256(buf)
}

/// Number of levels above the leaves, `ceil(log2(leaf_count))`: also the number of siblings in
/// every proof. 0 for a tree of one leaf (and, by convention, of zero leaves).
#[inline]
pub const fn tree_depth(leaf_count: u64) -> u32 {
    if leaf_count <= 1 {
        0
    } else {
        u64::BITS - (leaf_count - 1).leading_zeros()
    }
}

/// The Merkle root of `leaves`, computed in one buffer without keeping the tree.
///
/// Fails only on an empty slice.
pub fn merkle_root(leaves: &[B256]) -> Result<B256, CoreError> {
    if leaves.is_empty() {
        return Err(CoreError::EmptyTree);
    }
    let mut level: Vec<B256> = leaves.iter().map(hash_leaf).collect();
    let mut count = level.len();
    // Value of a subtree made only of padding at the current level.
    let mut zero = B256::ZERO;
    while count > 1 {
        let next = count.div_ceil(2);
        for j in 0..next {
            let left = level[2 * j];
            let right = if 2 * j + 1 < count {
                level[2 * j + 1]
            } else {
                zero
            };
            level[j] = hash_node(&left, &right);
        }
        zero = hash_node(&zero, &zero);
        count = next;
    }
    Ok(level[0])
}

/// A Merkle tree that keeps every node, to hand out inclusion proofs.
///
/// Only the nodes over real leaves are stored (about `2 × leaf_count` words in one allocation);
/// nodes over padding alone are the same at every position of a level and are kept once per
/// level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    leaf_count: usize,
    /// Real nodes of every level, leaf hashes first, root last.
    nodes: Vec<B256>,
    /// Start of each level in `nodes`; one more entry than levels.
    offsets: Vec<usize>,
    /// Value of an all-padding subtree at each level (`zeros[0]` is the zero word).
    zeros: Vec<B256>,
}

impl MerkleTree {
    /// Builds the tree over `leaves`. Fails only on an empty slice.
    pub fn new(leaves: &[B256]) -> Result<Self, CoreError> {
        if leaves.is_empty() {
            return Err(CoreError::EmptyTree);
        }
        let depth = tree_depth(leaves.len() as u64) as usize;
        let mut offsets = Vec::with_capacity(depth + 2);
        let mut zeros = Vec::with_capacity(depth + 1);
        let mut total = 0;
        let mut count = leaves.len();
        for _ in 0..=depth {
            offsets.push(total);
            total += count;
            count = count.div_ceil(2);
        }
        offsets.push(total);

        let mut nodes = Vec::with_capacity(total);
        nodes.extend(leaves.iter().map(hash_leaf));
        let mut zero = B256::ZERO;
        for level in 0..depth {
            zeros.push(zero);
            let start = offsets[level];
            let count = offsets[level + 1] - start;
            for j in 0..count.div_ceil(2) {
                let left = nodes[start + 2 * j];
                let right = if 2 * j + 1 < count {
                    nodes[start + 2 * j + 1]
                } else {
                    zero
                };
                nodes.push(hash_node(&left, &right));
            }
            zero = hash_node(&zero, &zero);
        }
        zeros.push(zero);
        debug_assert_eq!(nodes.len(), total);
        Ok(Self {
            leaf_count: leaves.len(),
            nodes,
            offsets,
            zeros,
        })
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.nodes[self.nodes.len() - 1]
    }

    /// Number of leaves (before padding).
    pub fn leaf_count(&self) -> usize {
        self.leaf_count
    }

    /// Number of levels above the leaves; the length of every proof.
    pub fn depth(&self) -> u32 {
        (self.offsets.len() - 2) as u32
    }

    /// The hash of leaf `index` (`keccak256(0x00 ‖ leaf)`), if the tree has it.
    pub fn leaf_hash(&self, index: usize) -> Option<B256> {
        (index < self.leaf_count).then(|| self.nodes[index])
    }

    /// The real nodes of `level` (0 = leaf hashes), left to right: at level `h`, the roots of
    /// the aligned runs of `2^h` leaves (crate::chunks). Empty above the root.
    pub fn level(&self, level: usize) -> Vec<B256> {
        match (self.offsets.get(level), self.offsets.get(level + 1)) {
            (Some(&a), Some(&b)) => self.nodes[a..b].to_vec(),
            _ => Vec::new(),
        }
    }

    /// The node at `index` of `level` (0 = leaf hashes), padding included.
    fn node(&self, level: usize, index: usize) -> B256 {
        let start = self.offsets[level];
        let count = self.offsets[level + 1] - start;
        if index < count {
            self.nodes[start + index]
        } else {
            self.zeros[level]
        }
    }

    /// The siblings of node `index` of `level` (0 = leaf hashes) up to the root, bottom first:
    /// with [`Self::proof`] at level 0, the proof of a whole aligned subtree above it.
    pub fn node_proof(&self, level: usize, index: usize) -> Vec<B256> {
        let depth = self.depth() as usize;
        let mut i = index;
        let mut siblings = Vec::with_capacity(depth.saturating_sub(level));
        for l in level..depth {
            siblings.push(self.node(l, i ^ 1));
            i >>= 1;
        }
        siblings
    }

    /// The inclusion proof of leaf `index`.
    pub fn proof(&self, index: usize) -> Result<MerkleProof, CoreError> {
        if index >= self.leaf_count {
            return Err(CoreError::LeafIndexOutOfRange {
                index: index as u64,
                leaf_count: self.leaf_count as u64,
            });
        }
        let depth = self.depth() as usize;
        let mut siblings = Vec::with_capacity(depth);
        let mut i = index;
        for level in 0..depth {
            siblings.push(self.node(level, i ^ 1));
            i >>= 1;
        }
        Ok(MerkleProof {
            index: index as u64,
            leaf_count: self.leaf_count as u64,
            siblings,
        })
    }
}

/// An inclusion proof: the siblings on the path from leaf `index` to the root, bottom first.
///
/// The root does not commit to `leaf_count`: a verifier must take it from a source it trusts
/// (for a step trace, `steps + 1` as posted on-chain), as [`crate::verify_transition`] does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerkleProof {
    /// Position of the leaf, `0..leaf_count`.
    pub index: u64,
    /// Number of leaves in the tree, before padding.
    pub leaf_count: u64,
    /// Sibling of the node on the path at each level, from the leaf level up;
    /// exactly `ceil(log2(leaf_count))` of them.
    pub siblings: Vec<B256>,
}

impl MerkleProof {
    /// The root that this proof and `leaf` lead to, or `None` if the proof is malformed
    /// (`index >= leaf_count`, or not exactly `ceil(log2(leaf_count))` siblings).
    pub fn compute_root(&self, leaf: &B256) -> Option<B256> {
        if self.index >= self.leaf_count
            || self.siblings.len() as u64 != u64::from(tree_depth(self.leaf_count))
        {
            return None;
        }
        let mut hash = hash_leaf(leaf);
        let mut index = self.index;
        for sibling in &self.siblings {
            hash = if index & 1 == 0 {
                hash_node(&hash, sibling)
            } else {
                hash_node(sibling, &hash)
            };
            index >>= 1;
        }
        Some(hash)
    }

    /// Whether `leaf` sits at `index` of a tree of `leaf_count` leaves with this `root`.
    pub fn verify(&self, root: &B256, leaf: &B256) -> bool {
        self.compute_root(leaf)
            .is_some_and(|computed| computed == *root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<B256> {
        (0..n).map(|i| keccak256(i.to_string())).collect()
    }

    #[test]
    fn depth_is_ceil_log2() {
        let expected = [
            (0, 0),
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (8, 3),
            (9, 4),
            (1 << 40, 40),
        ];
        for (n, d) in expected {
            assert_eq!(tree_depth(n), d, "leaf_count {n}");
        }
        assert_eq!(tree_depth(u64::MAX), 64);
    }

    #[test]
    fn empty_is_an_error() {
        assert_eq!(merkle_root(&[]), Err(CoreError::EmptyTree));
        assert_eq!(MerkleTree::new(&[]), Err(CoreError::EmptyTree));
    }

    #[test]
    fn one_leaf_root_is_its_hash() {
        let l = leaves(1);
        let tree = MerkleTree::new(&l).expect("tree");
        assert_eq!(tree.root(), hash_leaf(&l[0]));
        assert_eq!(merkle_root(&l).expect("root"), hash_leaf(&l[0]));
        let proof = tree.proof(0).expect("proof");
        assert!(proof.siblings.is_empty());
        assert!(proof.verify(&tree.root(), &l[0]));
    }

    #[test]
    fn small_trees_match_the_definition() {
        let l = leaves(3);
        let h: Vec<B256> = l.iter().map(hash_leaf).collect();
        let expected = hash_node(&hash_node(&h[0], &h[1]), &hash_node(&h[2], &B256::ZERO));
        assert_eq!(merkle_root(&l).expect("root"), expected);
        assert_eq!(MerkleTree::new(&l).expect("tree").root(), expected);

        let l = leaves(5);
        let h: Vec<B256> = l.iter().map(hash_leaf).collect();
        let z1 = hash_node(&B256::ZERO, &B256::ZERO);
        let left = hash_node(&hash_node(&h[0], &h[1]), &hash_node(&h[2], &h[3]));
        let right = hash_node(&hash_node(&h[4], &B256::ZERO), &z1);
        let expected = hash_node(&left, &right);
        assert_eq!(merkle_root(&l).expect("root"), expected);
        let tree = MerkleTree::new(&l).expect("tree");
        assert_eq!(tree.root(), expected);
        assert_eq!(
            tree.proof(4).expect("proof").siblings,
            vec![B256::ZERO, z1, left]
        );
    }

    #[test]
    fn tree_and_streaming_root_agree() {
        for n in 1..=70 {
            let l = leaves(n);
            let tree = MerkleTree::new(&l).expect("tree");
            assert_eq!(tree.root(), merkle_root(&l).expect("root"), "n = {n}");
            assert_eq!(tree.leaf_count(), n);
            assert_eq!(u64::from(tree.depth()), u64::from(tree_depth(n as u64)));
            for (i, leaf) in l.iter().enumerate() {
                assert_eq!(tree.leaf_hash(i), Some(hash_leaf(leaf)));
                assert!(
                    tree.proof(i).expect("proof").verify(&tree.root(), leaf),
                    "n = {n}, i = {i}"
                );
            }
            assert_eq!(tree.leaf_hash(n), None);
        }
    }

    #[test]
    fn proof_out_of_range_is_an_error() {
        let tree = MerkleTree::new(&leaves(5)).expect("tree");
        assert_eq!(
            tree.proof(5),
            Err(CoreError::LeafIndexOutOfRange {
                index: 5,
                leaf_count: 5
            })
        );
    }

    #[test]
    fn malformed_proofs_are_rejected() {
        let l = leaves(5);
        let tree = MerkleTree::new(&l).expect("tree");
        let root = tree.root();
        let good = tree.proof(2).expect("proof");
        assert!(good.verify(&root, &l[2]));

        let mut p = good.clone();
        p.index = 5;
        assert!(!p.verify(&root, &l[2]));
        let mut p = good.clone();
        p.siblings.push(B256::ZERO);
        assert!(!p.verify(&root, &l[2]));
        let mut p = good.clone();
        p.siblings.pop();
        assert!(!p.verify(&root, &l[2]));
        let mut p = good.clone();
        p.leaf_count = 0;
        assert!(!p.verify(&root, &l[2]));
        // A leaf count of another depth changes the number of siblings required.
        let mut p = good.clone();
        p.leaf_count = 4;
        assert!(!p.verify(&root, &l[2]));
        assert!(!good.verify(&root, &l[3]));
    }

    #[test]
    fn padding_cannot_be_opened() {
        // The padding slot 5 of a 5-leaf tree holds the zero word, which is no leaf hash.
        let l = leaves(5);
        let tree = MerkleTree::new(&l).expect("tree");
        let mut p = tree.proof(4).expect("proof");
        p.index = 5;
        p.leaf_count = 6;
        p.siblings[0] = hash_leaf(&l[4]);
        assert!(!p.verify(&tree.root(), &B256::ZERO));
    }

    #[test]
    fn proof_serde_is_camel_case_hex() {
        let tree = MerkleTree::new(&leaves(2)).expect("tree");
        let proof = tree.proof(1).expect("proof");
        let json = serde_json::to_string(&proof).expect("serialize");
        assert!(
            json.starts_with(r#"{"index":1,"leafCount":2,"siblings":["0x"#),
            "{json}"
        );
        let back: MerkleProof = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, proof);
    }
}
