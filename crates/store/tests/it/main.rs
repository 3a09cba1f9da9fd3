//! Integration tests of pedals-store: persistence across reopen, the job state machine,
//! write-ahead intents, content-addressed blobs and checkpoints, the chain cursor.

mod store;
