//! Row commitments of a tensor: each row hashed on its own, and a Merkle tree over the row
//! hashes, so that a dispute can open one row and then one element of it on-chain.
//!
//! A row is a run of the last dimension: a `[m, n]` tensor has `m` rows of `n` elements, a
//! `[a, b, n]` tensor `a × b` rows. A tensor of rank 0 or 1 is a single row.

use alloy_primitives::B256;

use crate::{CoreError, StateTensor, merkle_root, state::keccak_i32s};

/// `keccak256` of a row's elements as i32 little-endian bytes (`keccak256` of nothing for an
/// empty row).
pub fn hash_row(row: &[i32]) -> B256 {
    keccak_i32s(row)
}

/// The hash of every row of `tensor`, in row-major order.
///
/// Fails when the data does not fill the shape, and for a tensor of rank 2 or more whose last
/// dimension is 0 but which has rows: such rows hold nothing to open.
pub fn row_hashes(tensor: &StateTensor) -> Result<Vec<B256>, CoreError> {
    tensor.validate()?;
    let row_len = match tensor.shape.as_slice() {
        [] | [_] => return Ok(vec![hash_row(&tensor.data)]),
        [.., last] => *last as usize,
    };
    if row_len == 0 {
        return if has_no_rows(&tensor.shape) {
            Ok(Vec::new())
        } else {
            Err(CoreError::EmptyRows {
                name: tensor.name.clone(),
                shape: tensor.shape.clone(),
            })
        };
    }
    Ok(tensor.data.chunks_exact(row_len).map(hash_row).collect())
}

/// Whether a shape of rank 2 or more has no rows (a zero among its leading dimensions).
fn has_no_rows(shape: &[u32]) -> bool {
    shape[..shape.len() - 1].contains(&0)
}

/// The Merkle root over [`row_hashes`] of `tensor`: the commitment that a dispute opens rows
/// against. Fails as [`row_hashes`] does, and for a tensor with no rows.
pub fn tensor_root(tensor: &StateTensor) -> Result<B256, CoreError> {
    merkle_root(&row_hashes(tensor)?)
}

#[cfg(test)]
mod tests {
    use alloy_primitives::keccak256;

    use super::*;
    use crate::{MerkleTree, hash_leaf};

    fn t(shape: Vec<u32>, data: Vec<i32>) -> StateTensor {
        StateTensor::new("t", shape, data).expect("tensor")
    }

    #[test]
    fn rows_are_the_last_dimension() {
        let tensor = t(vec![2, 2, 3], (0..12).collect());
        let hashes = row_hashes(&tensor).expect("rows");
        assert_eq!(hashes.len(), 4);
        assert_eq!(hashes[1], keccak256([3u8, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0]));
        let tree = MerkleTree::new(&hashes).expect("tree");
        assert_eq!(tensor_root(&tensor).expect("root"), tree.root());
        assert!(
            tree.proof(3)
                .expect("proof")
                .verify(&tree.root(), &hash_row(&[9, 10, 11]))
        );
    }

    #[test]
    fn scalars_and_vectors_are_one_row() {
        let scalar = t(vec![], vec![-1]);
        assert_eq!(
            row_hashes(&scalar).expect("rows"),
            vec![keccak256([0xffu8; 4])]
        );
        assert_eq!(
            tensor_root(&scalar).expect("root"),
            hash_leaf(&keccak256([0xffu8; 4]))
        );
        let vector = t(vec![3], vec![1, 2, 3]);
        assert_eq!(
            row_hashes(&vector).expect("rows"),
            vec![hash_row(&[1, 2, 3])]
        );
        let empty = t(vec![0], vec![]);
        assert_eq!(row_hashes(&empty).expect("rows"), vec![keccak256(b"")]);
    }

    #[test]
    fn empty_shapes() {
        let no_rows = t(vec![0, 4], vec![]);
        assert_eq!(row_hashes(&no_rows).expect("rows"), Vec::<B256>::new());
        assert_eq!(tensor_root(&no_rows), Err(CoreError::EmptyTree));
        let empty_rows = t(vec![3, 0], vec![]);
        assert!(matches!(
            row_hashes(&empty_rows),
            Err(CoreError::EmptyRows { .. })
        ));
        let bad = StateTensor {
            name: "bad".into(),
            shape: vec![2, 2],
            data: vec![1],
        };
        assert!(matches!(
            row_hashes(&bad),
            Err(CoreError::TensorShapeMismatch { .. })
        ));
    }
}
