//! Integration tests of pedals-ml.

mod data;
mod exact;
