//! The stored form and export: byte-stable, content-addressed, and lossless both ways.

use pedals_lm::{Checkpoint, ExactModel, quantize};

use crate::fixtures::{FAMILIES, checkpoint};

#[test]
fn stored_models_round_trip_and_export_reimports_to_the_same_cid() {
    for name in FAMILIES {
        for bits in [8, 16] {
            let model = quantize(&checkpoint(name), bits).expect("test step");
            let bytes = model.to_bytes().expect("test step");
            assert_eq!(bytes, model.to_bytes().expect("test step"), "stable bytes");
            let back = ExactModel::from_bytes(&bytes).expect("test step");
            assert_eq!(back, model);
            let dir = tempfile::tempdir().expect("test step");
            model
                .to_checkpoint()
                .save_hf(dir.path())
                .expect("test step");
            let again = quantize(&Checkpoint::load_hf(dir.path()).expect("test step"), bits)
                .expect("test step");
            assert_eq!(
                again.cid().expect("test step"),
                model.cid().expect("test step"),
                "{name} w{bits}"
            );
        }
    }
}
