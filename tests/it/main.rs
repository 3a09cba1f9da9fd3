//! Integration tests of pedals-node: the worker against a real anvil with the contracts
//! deployed by the project's own deploy script.

mod audit;
mod availability;
mod chaos;
mod claim;
mod dispute;
mod ft;
mod ft_dispute;
mod ft_validator;
mod lm;
mod network;
mod payments;
mod puppet;
mod reset;
mod scan;
mod worker;
mod zk;
