//! Merkle trees and proofs: every leaf opens, any flipped bit fails.

use pedals_core::{B256, MerkleProof, MerkleTree, merkle_root, tree_depth};
use proptest::prelude::*;

use crate::config;

fn leaves(max: usize) -> impl Strategy<Value = Vec<B256>> {
    prop::collection::vec(any::<[u8; 32]>().prop_map(B256::from), 1..=max)
}

/// A tree, the index of one of its leaves, and a bit position for tampering.
fn tree_and_leaf() -> impl Strategy<Value = (Vec<B256>, usize, usize)> {
    leaves(300).prop_flat_map(|l| {
        let n = l.len();
        (Just(l), 0..n, 0..256usize)
    })
}

fn flip(word: &B256, bit: usize) -> B256 {
    let mut out = *word;
    out.0[bit / 8] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_leaf_opens(l in leaves(300)) {
        let tree = MerkleTree::new(&l).expect("tree");
        let root = tree.root();
        prop_assert_eq!(root, merkle_root(&l).expect("root"));
        for (i, leaf) in l.iter().enumerate() {
            let proof = tree.proof(i).expect("proof");
            prop_assert_eq!(proof.siblings.len() as u32, tree_depth(l.len() as u64));
            prop_assert!(proof.verify(&root, leaf), "leaf {} of {}", i, l.len());
        }
        prop_assert!(tree.proof(l.len()).is_err());
    }

    #[test]
    fn a_flipped_bit_anywhere_fails(
        (l, i, bit) in tree_and_leaf(),
        level in any::<prop::sample::Index>(),
    ) {
        let tree = MerkleTree::new(&l).expect("tree");
        let root = tree.root();
        let proof = tree.proof(i).expect("proof");
        prop_assert!(proof.verify(&root, &l[i]));

        // In a sibling.
        if !proof.siblings.is_empty() {
            let mut p = proof.clone();
            let k = level.index(p.siblings.len());
            p.siblings[k] = flip(&p.siblings[k], bit);
            prop_assert!(!p.verify(&root, &l[i]), "sibling {} bit {}", k, bit);
        }
        // In the leaf.
        prop_assert!(!proof.verify(&root, &flip(&l[i], bit)));
        // In the root.
        prop_assert!(!proof.verify(&flip(&root, bit), &l[i]));
        // In the index (any of its 64 bits).
        let mut p = proof.clone();
        p.index ^= 1 << (bit % 64);
        prop_assert!(!p.verify(&root, &l[i]), "index bit {}", bit % 64);
        // A leaf count of another depth.
        let mut p = proof.clone();
        p.leaf_count = 2 * p.leaf_count.next_power_of_two() + 1;
        prop_assert!(!p.verify(&root, &l[i]));
        // A sibling too many or too few.
        let mut p = proof.clone();
        p.siblings.push(root);
        prop_assert!(!p.verify(&root, &l[i]));
        if let Some(last) = proof.siblings.len().checked_sub(1) {
            let mut p = proof.clone();
            p.siblings.truncate(last);
            prop_assert!(!p.verify(&root, &l[i]));
        }
    }

    #[test]
    fn proofs_round_trip_through_json(l in leaves(40), pick in any::<prop::sample::Index>()) {
        let tree = MerkleTree::new(&l).expect("tree");
        let proof = tree.proof(pick.index(l.len())).expect("proof");
        let json = serde_json::to_string(&proof).expect("serialize");
        let back: MerkleProof = serde_json::from_str(&json).expect("parse");
        prop_assert_eq!(back, proof);
    }
}

#[test]
fn trees_of_every_size_up_to_300_agree() {
    let all: Vec<B256> = (0u32..300).map(word).collect();
    for n in 1..=all.len() {
        let tree = MerkleTree::new(&all[..n]).expect("tree");
        assert_eq!(
            tree.root(),
            merkle_root(&all[..n]).expect("root"),
            "n = {n}"
        );
        let last = tree.proof(n - 1).expect("proof");
        assert!(last.verify(&tree.root(), &all[n - 1]), "n = {n}");
    }
}

/// A distinct word per counter value.
fn word(i: u32) -> B256 {
    let mut w = [0u8; 32];
    w[28..].copy_from_slice(&i.to_be_bytes());
    B256::from(w)
}
