//! pedals-infer integration tests: span servers and a client on loopback, in one process.

mod bad;
mod moving;
mod receipts;
mod swarm;
mod verify;
