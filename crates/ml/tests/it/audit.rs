//! Auditing: a run that keeps every step's audit leaf trains bit for bit as one that does
//! not, its leaves are the row roots of each step's first-layer bias gradient, which a
//! validator's replay of the step computes, and a run resumed from a checkpoint commits to the
//! same audit root.

use pedals_ml::dispute::mat_root;
use pedals_ml::exact::CpuOps;
use pedals_ml::{
    AUDITED_TENSOR, Dataset, MlpConfig, MlpState, TraceSoFar, TrainConfig, Trainer, audit_root,
};

fn job() -> (TrainConfig, Dataset) {
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![16, 12, 4],
            batch: 8,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 5,
        steps: 7,
        checkpoint_every: 3,
    };
    (config, Dataset::synthetic(2, 120, 16, 4).expect("data"))
}

#[test]
fn each_audit_leaf_is_what_a_replay_of_that_step_computes() {
    let (config, data) = job();
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let plain = Trainer::new(CpuOps::default(), config.clone())
        .expect("trainer")
        .train(&data, &init)
        .expect("train");
    let audited_trainer = Trainer::new(CpuOps::default(), config.clone())
        .expect("trainer")
        .auditing();
    let audited = audited_trainer.train(&data, &init).expect("train");
    assert_eq!(audited.hashes, plain.hashes, "auditing changes no state");
    assert!(plain.audit_leaves.is_empty());
    assert_eq!(plain.audit_root().expect("root"), None);
    assert_eq!(audited.audit_leaves.len() as u64, config.steps);
    // A validator replays step i from the state h_i names; the leaf is also what the step's
    // op trace holds for the first-layer bias gradient.
    let mut state = init;
    for (i, leaf) in audited.audit_leaves.iter().enumerate() {
        let step = i as u64;
        let (after, mine) = audited_trainer
            .replay_step_audited(&data, &state, step)
            .expect("replay");
        assert_eq!(mine, *leaf, "step {step}");
        assert_eq!(after.state_hash().expect("hash"), audited.hashes[i + 1]);
        let traced = audited_trainer
            .trace_step(&data, &state, step)
            .expect("trace");
        let gb0 = traced
            .iter()
            .find(|t| t.name.ends_with(&format!(":{AUDITED_TENSOR}")))
            .expect("the step computes gb0");
        assert_eq!(mat_root(&gb0.value).expect("root"), *leaf);
        state = after;
    }
    let roots = audited.audit_leaves.to_vec();
    assert_eq!(
        audited.audit_root().expect("root"),
        Some(pedals_core::merkle_root(&roots).expect("tree"))
    );
    assert_ne!(roots[0], roots[1], "steps differ");
}

#[test]
fn a_resumed_run_commits_to_the_same_audit_root() {
    let (config, data) = job();
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let trainer = Trainer::new(CpuOps::default(), config.clone())
        .expect("trainer")
        .auditing();
    let mut saved: Vec<(u64, Vec<u8>, TraceSoFar)> = Vec::new();
    let whole = trainer
        .train_from(
            &data,
            &init,
            TraceSoFar::default(),
            |done, bytes, so_far| {
                saved.push((done, bytes.to_vec(), so_far.clone()));
                Ok(())
            },
        )
        .expect("train");
    let (done, bytes, so_far) = saved
        .iter()
        .find(|(done, ..)| *done == 3)
        .cloned()
        .expect("checkpoint 3");
    assert_eq!(so_far.audit_leaves.len() as u64, done);
    let state = MlpState::from_bytes(&config.model, &bytes).expect("state");
    let resumed = trainer
        .train_from(&data, &state, so_far.clone(), |_, _, _| Ok(()))
        .expect("resume");
    assert_eq!(resumed.hashes, whole.hashes);
    assert_eq!(resumed.audit_leaves, whole.audit_leaves);
    assert_eq!(
        audit_root(&resumed.audit_leaves).expect("root"),
        whole.audit_root().expect("root")
    );
    // A checkpoint stored without its op roots cannot be resumed by an auditing run.
    let bare = TraceSoFar {
        hashes: so_far.hashes,
        audit_leaves: Vec::new(),
    };
    let err = trainer
        .train_from(&data, &state, bare, |_, _, _| Ok(()))
        .expect_err("no op roots");
    assert!(err.to_string().contains("audit leaves"), "{err}");
}
