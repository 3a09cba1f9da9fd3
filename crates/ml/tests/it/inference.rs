//! Batch inference: the committed chunk outputs are the same on every backend, the result blob
//! rebuilds the trace, and the predictions are the model's.

use pedals_ml::{
    Dataset, JobSpec, MlpConfig, MlpState, TrainConfig, Trainer,
    exact::{CpuOps, Mat, Reference},
    inference,
};

fn setup() -> (TrainConfig, Dataset, MlpState) {
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![16, 12, 4],
            conv: None,
            batch: 8,
            lr_q12: 410,
            momentum_q12: 3686,
        },
        seed: 3,
        steps: 40,
        checkpoint_every: 40,
    };
    let data = Dataset::synthetic(5, 300, 16, 4).expect("data");
    let trained = Trainer::new(Reference, config.clone())
        .expect("trainer")
        .train(&data, &MlpState::init(&config.model, 3).expect("init"))
        .expect("train")
        .final_state;
    (config, data, trained)
}

#[test]
fn chunks_agree_across_backends_and_the_result_rebuilds_the_trace() {
    let (config, data, model) = setup();
    let model_bytes = model.to_bytes().expect("bytes");
    let reference = Trainer::new(Reference, config.clone()).expect("trainer");
    let cpu = Trainer::new(CpuOps::new(2), config.clone()).expect("trainer");
    let a = inference::run(&reference, &data, &model, &model_bytes, 64).expect("run");
    let b = inference::run(&cpu, &data, &model, &model_bytes, 64).expect("run");
    assert_eq!(a, b);
    assert_eq!(a.chunks.len(), 5, "300 samples in chunks of 64");
    assert_eq!(
        a.chunks[4].len(),
        (300 - 256) * 4 * 4,
        "the last chunk is short"
    );

    // A validator recomputes one chunk on its own.
    let again = inference::run_chunk(&cpu, &data, &model, 64, 3).expect("chunk");
    assert_eq!(again, a.chunks[3]);
    assert!(inference::run_chunk(&cpu, &data, &model, 64, 5).is_err());

    let result = a.result_bytes();
    let trace = inference::result_trace(&result, &model_bytes, 300, 4, 64).expect("trace");
    assert_eq!(trace, a.hashes);
    assert!(inference::result_trace(&result[4..], &model_bytes, 300, 4, 64).is_err());

    let inputs = Mat::new(data.len(), data.features, data.inputs.clone());
    assert_eq!(
        inference::predictions(&result, 4),
        reference.predict(&model, &inputs)
    );
}

#[test]
fn an_inference_spec_counts_its_chunks_and_refuses_bad_ones() {
    let (config, _, model) = setup();
    let cid = pedals_core::cid_of(&model.to_bytes().expect("bytes"));
    let spec = JobSpec::inference(config.model.clone(), 300, 64, &cid, &cid).expect("spec");
    assert_eq!(spec.train.steps, 5);
    let back = JobSpec::from_canonical_bytes(&spec.to_canonical_bytes()).expect("canonical");
    assert_eq!(back, spec);
    assert!(JobSpec::inference(config.model.clone(), 300, 0, &cid, &cid).is_err());
    assert!(JobSpec::inference(config.model, 300, 4096, &cid, &cid).is_err());
}
