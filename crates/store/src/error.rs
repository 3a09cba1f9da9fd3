//! The store's errors.

use crate::{Action, JobPhase};

/// What went wrong in the store. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened, read or written.
    #[error("node database error: {0} (check the data directory's permissions and free space)")]
    Database(#[source] Box<redb::Error>),
    /// A blob file could not be read or written.
    #[error("blob file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer (or unknown) version of Pedals.
    #[error(
        "the node database has schema version {found}, this build reads {expected}: upgrade \
         Pedals, or point --data-dir at a new directory"
    )]
    Schema {
        /// The version on disk.
        found: u32,
        /// The version this build writes.
        expected: u32,
    },
    /// A stored record could not be decoded.
    #[error("stored record {what} is unreadable ({reason}); the database may be damaged")]
    Corrupt {
        /// Which record.
        what: String,
        /// Why.
        reason: String,
    },
    /// No job with this id is stored.
    #[error("job {0} is not in the node's store")]
    UnknownJob(u64),
    /// A job with this id is stored already.
    #[error("job {0} is already in the node's store")]
    DuplicateJob(u64),
    /// The job's state machine does not allow this transition.
    #[error("job {job}: cannot go from {from} to {to}")]
    Transition {
        /// The job.
        job: u64,
        /// Its current phase.
        from: JobPhase,
        /// The refused phase.
        to: JobPhase,
    },
    /// An intent for this action exists and has not failed: sending again could act twice.
    #[error(
        "job {job} already has a {action} transaction (nonce {nonce}, state {state}); resume \
         it instead of sending a new one"
    )]
    IntentExists {
        /// The job.
        job: u64,
        /// The action.
        action: Action,
        /// The stored intent's nonce.
        nonce: u64,
        /// The stored intent's state.
        state: String,
    },
    /// No intent for this job and action is stored.
    #[error("job {job} has no {action} transaction in the store")]
    UnknownIntent {
        /// The job.
        job: u64,
        /// The action.
        action: Action,
    },
    /// Bytes do not match the CID they are stored or requested under.
    #[error("blob {cid}: {reason}")]
    Blob {
        /// The CID.
        cid: String,
        /// What is wrong.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn db(e: impl Into<redb::Error>) -> Self {
        Self::Database(Box::new(e.into()))
    }
}
