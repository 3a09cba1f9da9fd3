//! Pedals commitments: the bytes and hashes that every worker, validator and contract must
//! agree on bit for bit. No I/O.
//!
//! ```text
//!  ModelState ──state_entries (name, shape, row root per tensor)──keccak256──► h_i
//!
//!  [h_0 h_1 … h_N] ──TraceCommitment──► traceRoot           (on-chain: N, traceRoot, h_N, CID)
//!                                          │
//!              node = keccak256(0x01 ‖ left ‖ right)        padding = bytes32(0), never hashed
//!              ┌───────────┴───────────┐
//!           node                     node
//!         ┌───┴───┐               ┌───┴───┐
//!        L0      L1              L2       0        L_i = keccak256(0x00 ‖ h_i)
//!
//!  tensor rows ──hash_row──► row hashes ──merkle_root──► tensor root   (disputes open one row)
//!  blob ──cid_of──► CIDv1 raw sha2-256: "bafkrei…", on-chain 0x01 0x55 0x12 0x20 ‖ digest
//! ```
//!
//! The exact specification, precise enough for the Solidity verifier, is in
//! `docs/commitments.md`; shared test vectors are in `crates/core/tests/vectors/`.
//!
//! ```
//! use pedals_core::{ModelState, StateTensor, TraceCommitment, verify_transition};
//!
//! # fn main() -> Result<(), pedals_core::CoreError> {
//! let mut hashes = Vec::new();
//! for step in 0..4 {
//!     let w = StateTensor::new("w", vec![2, 2], vec![step, 1, 2, 3])?;
//!     hashes.push(ModelState::new(vec![w])?.state_hash()?);
//! }
//! let trace = TraceCommitment::new(hashes)?;
//! let (root, steps) = (trace.root(), trace.steps());
//!
//! // A validator checks the openings of h_1 and h_2 before re-executing step 1.
//! let (h1, p1) = (trace.hashes()[1], trace.proof(1)?);
//! let (h2, p2) = (trace.hashes()[2], trace.proof(2)?);
//! verify_transition(&root, steps, 1, &h1, &p1, &h2, &p2)?;
//! # Ok(()) }
//! ```

pub mod chunks;
mod cid;
mod error;
mod ids;
mod merkle;
mod publish;
mod rows;
mod state;
mod trace;

pub use crate::cid::{
    CID_BYTES_LEN, CID_PREFIX, RAW_CODEC, SHA2_256_CODE, check_cid, cid_digest, cid_from_bytes,
    cid_from_digest, cid_of, parse_cid, verify_cid,
};
pub use ::cid::Cid;
pub use alloy_primitives::B256;
pub use error::CoreError;
pub use ids::{JobId, Verification};
pub use merkle::{
    LEAF_PREFIX, MerkleProof, MerkleTree, NODE_PREFIX, hash_leaf, hash_node, merkle_root,
    tree_depth,
};
pub use publish::{Publication, RowRun, publication_runs, state_from_runs};
pub use rows::{hash_row, row_hashes, tensor_root};
pub use state::{
    ModelState, STATE_HASH_TAG, STATE_MAGIC, STATE_VERSION, StateEntry, StateTensor,
    checkpoint_hash, shape_hash, state_hash_of, state_hash_of_bytes,
};
pub use trace::{TraceCommitment, verify_transition};
