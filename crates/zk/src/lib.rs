//! pedals-zk: succinct proofs that a batch of exact-mode MLP inference was computed right.
//!
//! A worker proves, with Groth16 on BN254, "the model committed in `c_w`, run on the inputs
//! committed in `c_x`, gives the logits committed in `c_out`" (a job posts only
//! `c_job = H(4, c_w, c_x)`), bit for bit as
//! `pedals_ml::Trainer::logits` computes them (docs/zk.md has the statement, the packing, the
//! Poseidon parameters and the constraint count):
//!
//! ```text
//!  MlpState ──quantize──► ZkModel (wq: 13-bit, b: Q16)      inputs (Q8, 12-bit)
//!        │                      │                                 │
//!        │            commit ◄──┴──────────── Poseidon ───────────┘
//!        ▼                      ▼
//!  InferenceCircuit { shape, witness } ──Groth16──► Proof over [c_job, c_out, worker]
//! ```
//!
//! Keys are made once per architecture and batch size ([`setup`]), serialized and stored by
//! CID; [`prove`] and [`verify`] use them. The setup here is a single-party trusted setup,
//! fit for a devnet (docs/zk.md says what a production ceremony takes).

mod circuit;
mod commit;
mod error;
mod groth;
mod job;
pub mod solidity;

pub use circuit::InferenceCircuit;
pub use commit::{
    Commitments, Forward, Shape, ZkModel, commit_inputs, commit_job, commit_outputs, forward,
    poseidon_config,
};
pub use error::ZkError;
pub use groth::{Binding, Keys, Proof, Statement, prove, setup, setup_seeded, verify};
pub use job::{CIRCUITS, Circuit, ZkJob, circuit, circuit_for, logits_bytes, logits_from_bytes};

/// The public seed of the devnet's zk keys (see [`setup_seeded`]: insecure by design).
pub const DEVNET_SEED: [u8; 32] = *b"pedals devnet zk keys: insecure!";

/// The scalar field of BN254, in which every commitment and public input lives.
pub use ark_bn254::Fr;
