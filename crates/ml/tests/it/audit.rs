//! Auditing: a run that keeps every step's op-trace root trains bit for bit as one that does
//! not, its roots are the ones a validator's replay of each step computes, and a run resumed
//! from a checkpoint commits to the same audit root.

use pedals_ml::exact::CpuOps;
use pedals_ml::{Dataset, MlpConfig, MlpState, TraceSoFar, TrainConfig, Trainer, audit_root};

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
fn each_op_root_is_what_a_replay_of_that_step_computes() {
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
    assert!(plain.op_roots.is_empty());
    assert_eq!(plain.audit_root().expect("root"), None);
    assert_eq!(audited.op_roots.len() as u64, config.steps);
    // A validator replays step i from the state h_i names and hashes its op trace.
    let mut state = init;
    for (i, root) in audited.op_roots.iter().enumerate() {
        let step = i as u64;
        let trace = audited_trainer
            .op_trace(&data, &state, step)
            .expect("op trace");
        assert_eq!(trace.root(), *root, "step {step}");
        assert_eq!(trace.leaves[0], audited.hashes[i]);
        state = audited_trainer
            .replay_step(&data, &state, step)
            .expect("replay");
    }
    let roots = audited.op_roots.to_vec();
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
    assert_eq!(so_far.op_roots.len() as u64, done);
    let state = MlpState::from_bytes(&config.model, &bytes).expect("state");
    let resumed = trainer
        .train_from(&data, &state, so_far.clone(), |_, _, _| Ok(()))
        .expect("resume");
    assert_eq!(resumed.hashes, whole.hashes);
    assert_eq!(resumed.op_roots, whole.op_roots);
    assert_eq!(
        audit_root(&resumed.op_roots).expect("root"),
        whole.audit_root().expect("root")
    );
    // A checkpoint stored without its op roots cannot be resumed by an auditing run.
    let bare = TraceSoFar {
        hashes: so_far.hashes,
        op_roots: Vec::new(),
    };
    let err = trainer
        .train_from(&data, &state, bare, |_, _, _| Ok(()))
        .expect_err("no op roots");
    assert!(err.to_string().contains("op-trace roots"), "{err}");
}
