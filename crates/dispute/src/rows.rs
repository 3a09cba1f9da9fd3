//! The row moves every game shares (docs/protocol.md §3): the worker reveals a disputed
//! output's row hashes, or, for an output of more than `2^ROW_CHUNK_LOG` rows, the nodes of its
//! aligned chunks of rows and then the chunk the challenger picks; the challenger picks the
//! first chunk, then the first row, that differs from its own.

use alloy::primitives::B256;
use pedals_chain::ROW_CHUNK_LOG;
use pedals_core::MerkleTree;

use crate::DisputeError;

/// Whether an output of `rows` rows reveals its row hashes by chunks.
pub(crate) fn chunked(rows: usize) -> bool {
    rows > 1 << ROW_CHUNK_LOG
}

/// What the worker's `revealRowHashes` carries for an output whose rows hash to `hashes`: the
/// hashes, or past one chunk the roots of its chunks of rows.
pub(crate) fn revealed(hashes: &[B256]) -> Result<Vec<B256>, DisputeError> {
    if !chunked(hashes.len()) {
        return Ok(hashes.to_vec());
    }
    Ok(MerkleTree::new(hashes)?.level(ROW_CHUNK_LOG))
}

/// The row hashes of chunk `chunk` and the siblings above its node (`revealRowChunk`).
pub(crate) fn chunk_opening(
    hashes: &[B256],
    chunk: usize,
) -> Result<(Vec<B256>, Vec<B256>), DisputeError> {
    let first = chunk << ROW_CHUNK_LOG;
    if first >= hashes.len() {
        return Err(DisputeError::Job(format!(
            "row chunk {chunk} is past the output's {} rows",
            hashes.len()
        )));
    }
    let end = ((chunk + 1) << ROW_CHUNK_LOG).min(hashes.len());
    let proof = MerkleTree::new(hashes)?.node_proof(ROW_CHUNK_LOG, chunk);
    Ok((hashes[first..end].to_vec(), proof))
}

/// The chunk to open: the first whose node in the worker's `theirs` differs from ours.
pub(crate) fn pick_chunk(theirs: &[B256], ours: &[B256]) -> Result<usize, DisputeError> {
    let nodes = MerkleTree::new(ours)?.level(ROW_CHUNK_LOG);
    Ok(first_difference(theirs, &nodes).unwrap_or(0))
}

/// The row to open: the first whose hash in the worker's revealed `theirs` differs from ours;
/// past one chunk `theirs` holds the hashes of chunk `chunk` only.
pub(crate) fn pick_row(theirs: &[B256], ours: &[B256], chunk: usize) -> usize {
    if !chunked(ours.len()) {
        return first_difference(theirs, ours).unwrap_or(0);
    }
    let first = (chunk << ROW_CHUNK_LOG).min(ours.len());
    first + first_difference(theirs, &ours[first..]).unwrap_or(0)
}

/// Where `a` and `b` first differ (over the shorter's length).
pub(crate) fn first_difference<T: PartialEq>(a: &[T], b: &[T]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(n: usize, salt: u8) -> Vec<B256> {
        (0..n)
            .map(|i| alloy::primitives::keccak256([&i.to_le_bytes()[..], &[salt]].concat()))
            .collect()
    }

    /// The revealed nodes are the tree's level of chunk roots, and every chunk's opening is a
    /// proof of each of its rows: the siblings within the chunk then the opening's are the
    /// row's whole proof in the output's tree, for widths around the chunk size.
    #[test]
    fn chunk_nodes_and_openings_prove_against_the_outputs_root() {
        for n in [1, 1024, 1025, 2048, 3000, 5 << 10] {
            let h = hashes(n, 0);
            let tree = MerkleTree::new(&h).expect("tree");
            let nodes = revealed(&h).expect("nodes");
            if !chunked(n) {
                assert_eq!(nodes, h);
                continue;
            }
            assert_eq!(nodes.len(), n.div_ceil(1 << ROW_CHUNK_LOG));
            assert_eq!(nodes, tree.level(ROW_CHUNK_LOG));
            for chunk in 0..nodes.len() {
                let (rows, proof) = chunk_opening(&h, chunk).expect("opening");
                assert_eq!(rows[0], h[chunk << ROW_CHUNK_LOG]);
                for i in [0, rows.len() / 2, rows.len() - 1] {
                    let mut whole =
                        pedals_core::chunks::chunk_proof(&rows, i, ROW_CHUNK_LOG).expect("within");
                    whole.extend(&proof);
                    let row = (chunk << ROW_CHUNK_LOG) + i;
                    assert_eq!(
                        whole,
                        tree.proof(row).expect("proof").siblings,
                        "{n}: {row}"
                    );
                }
            }
            assert!(chunk_opening(&h, nodes.len()).is_err());
        }
    }

    /// A challenger whose rows differ from the worker's at row `r` picks `r`'s chunk, then `r`.
    #[test]
    fn the_challenger_picks_the_first_differing_chunk_and_row() {
        let theirs = hashes(3000, 0);
        for r in [0, 1023, 1024, 2999] {
            let mut ours = theirs.clone();
            ours[r] = B256::repeat_byte(7);
            let nodes = revealed(&theirs).expect("nodes");
            let chunk = pick_chunk(&nodes, &ours).expect("chunk");
            assert_eq!(chunk, r >> ROW_CHUNK_LOG);
            let (rows, _) = chunk_opening(&theirs, chunk).expect("opening");
            assert_eq!(pick_row(&rows, &ours, chunk), r);
        }
        let small = hashes(10, 0);
        let mut ours = small.clone();
        ours[6] = B256::ZERO;
        assert_eq!(pick_row(&small, &ours, 0), 6);
    }
}
