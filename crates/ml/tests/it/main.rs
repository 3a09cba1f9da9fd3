//! Integration tests of pedals-ml.

mod backends;
mod data;
mod exact;
mod float;
mod vectors;
