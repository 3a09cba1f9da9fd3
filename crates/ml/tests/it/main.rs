//! Integration tests of pedals-ml.

mod backends;
mod cnn;
mod data;
mod exact;
mod float;
mod vectors;
