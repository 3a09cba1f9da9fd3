//! Integration tests of pedals-chain against a real anvil with the contracts deployed by the
//! project's own deploy script.

mod follower;
mod lifecycle;
mod reverts;
mod sender;
mod support;
