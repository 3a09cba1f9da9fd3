//! Pedals node storage: one redb database per node, under the node's data directory.
//!
//! ```text
//!  data-dir/
//!    node.redb        jobs · intents · checkpoints · blob index · meta (schema, chain cursor)
//!    blobs/<cid>      content-addressed files, verified against their CID on every read
//! ```
//!
//! - **Job records** are the node's own state machine ([`JobPhase`]); [`Store::advance`]
//!   refuses a transition the machine does not allow, so a record is never corrupted by a
//!   stale or repeated event.
//! - **Transaction intents** are written before the transaction they describe is sent
//!   ([`Store::record_intent`]): the signed bytes, the nonce and the hash. After a crash the
//!   node re-broadcasts the same bytes (same nonce, same hash) instead of signing a new
//!   transaction, so it never sends one action twice. A job's phase change and its intent
//!   commit in one transaction ([`Store::advance_with_intent`]).
//! - **Blobs** (datasets, models, checkpoints) are files named by their CIDv1; a file is
//!   fsynced and renamed into place before the index row that refers to it commits.
//! - **The chain cursor** is the last block the node processed, with its hash, so that the
//!   event follower resumes where it stopped and can tell when a reorg removed that block.
//!
//! ```no_run
//! # fn main() -> Result<(), pedals_store::StoreError> {
//! use pedals_store::{JobPhase, JobRecord, Store};
//! let store = Store::open(std::path::Path::new("/var/lib/pedals"))?;
//! store.insert_job(&JobRecord::new(7, JobPhase::Seen))?;
//! store.advance(7, JobPhase::Fetching)?;
//! # Ok(()) }
//! ```

mod error;
mod intent;
mod job;
mod store;

pub use error::StoreError;
pub use intent::{Action, IntentState, TxIntent};
pub use job::{JobPhase, JobRecord};
pub use store::{ChainCursor, ResumePoint, SCHEMA_VERSION, Store};
