use alloy_primitives::{B256, Bytes, keccak256};
use pedals_core::cid_of;
use pedals_store::{
    Action, ChainCursor, IntentState, JobPhase, JobRecord, SCHEMA_VERSION, Store, StoreError,
    TxIntent,
};
use proptest::prelude::*;

fn signed(job: u64, action: Action, nonce: u64, tag: &str) -> TxIntent {
    let raw = Bytes::from(format!("signed {tag}").into_bytes());
    TxIntent::signed(job, action, nonce, raw.clone(), keccak256(&raw))
}

#[test]
fn everything_survives_closing_and_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (blob_cid, claim) = {
        let store = Store::open(dir.path()).expect("open");
        store
            .insert_job(&JobRecord::new(3, JobPhase::Seen))
            .expect("insert");
        store.advance(3, JobPhase::Fetching).expect("fetching");
        store.advance(3, JobPhase::Ready).expect("ready");
        let claim = signed(3, Action::Claim, 12, "claim 3");
        store
            .advance_with_intent(3, JobPhase::Claiming, &claim)
            .expect("claiming");
        let cid = store.put_blob(b"a dataset").expect("blob");
        store.put_checkpoint(3, 0, b"state 0").expect("checkpoint");
        store
            .put_checkpoint(3, 10, b"state 10")
            .expect("checkpoint");
        store
            .set_cursor(ChainCursor {
                block: 99,
                hash: B256::repeat_byte(7),
            })
            .expect("cursor");
        (cid, claim)
    };
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.job(3).expect("job").expect("stored").phase,
        JobPhase::Claiming
    );
    assert_eq!(store.active_jobs().expect("jobs").len(), 1);
    // The claim comes back byte for byte: a restarted node re-broadcasts it, never re-signs.
    assert_eq!(store.open_intents().expect("intents"), vec![claim]);
    assert_eq!(
        store.blob(&blob_cid).expect("blob").as_deref(),
        Some(&b"a dataset"[..])
    );
    assert_eq!(store.checkpoint_steps(3).expect("steps"), vec![0, 10]);
    assert_eq!(
        store.checkpoint(3, 10).expect("checkpoint").as_deref(),
        Some(&b"state 10"[..])
    );
    assert_eq!(store.checkpoint(3, 5).expect("checkpoint"), None);
    assert_eq!(store.cursor().expect("cursor").map(|c| c.block), Some(99));
}

#[test]
fn a_transition_the_state_machine_forbids_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store
        .insert_job(&JobRecord::new(1, JobPhase::Seen))
        .expect("insert");
    let err = store
        .advance(1, JobPhase::Claiming)
        .expect_err("needs verified data first");
    assert!(
        matches!(err, StoreError::Transition { job: 1, .. }),
        "{err}"
    );
    assert_eq!(err.to_string(), "job 1: cannot go from seen to claiming");
    assert_eq!(
        store.job(1).expect("job").expect("stored").phase,
        JobPhase::Seen
    );
    let err = store
        .insert_job(&JobRecord::new(1, JobPhase::Seen))
        .expect_err("duplicate");
    assert!(matches!(err, StoreError::DuplicateJob(1)));
    assert!(matches!(
        store.advance(2, JobPhase::Fetching),
        Err(StoreError::UnknownJob(2))
    ));
    store
        .advance(
            1,
            JobPhase::Abandoned {
                reason: "dataset does not match its CID".into(),
            },
        )
        .expect("abandon");
    assert!(store.active_jobs().expect("jobs").is_empty());
    assert!(
        store.advance(1, JobPhase::Fetching).is_err(),
        "abandoned is final"
    );
    let record = store
        .update_job(1, |r| r.trace_root = Some(B256::repeat_byte(1)))
        .expect("a field edit in a final phase");
    assert_eq!(record.trace_root, Some(B256::repeat_byte(1)));
}

#[test]
fn a_second_transaction_for_the_same_action_is_refused_until_the_first_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    for id in [1, 2] {
        store
            .insert_job(&JobRecord::new(id, JobPhase::Ready))
            .expect("insert");
    }
    store
        .advance_with_intent(1, JobPhase::Claiming, &signed(1, Action::Claim, 5, "a"))
        .expect("claim");
    // The same action again, e.g. after a crash that lost track of it: refused, and the
    // job's phase write in the same transaction did not happen either.
    let err = store
        .advance_with_intent(1, JobPhase::Claiming, &signed(1, Action::Claim, 6, "b"))
        .expect_err("open intent");
    assert!(
        matches!(err, StoreError::IntentExists { nonce: 5, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("resume it instead"), "{err}");
    store
        .set_intent_state(1, Action::Claim, IntentState::Sent)
        .expect("sent");

    // A fee bump keeps the nonce and every hash.
    let bumped = Bytes::from_static(b"signed a, higher fee");
    let intent = store
        .replace_intent(1, Action::Claim, bumped.clone(), keccak256(&bumped))
        .expect("replace");
    assert_eq!(
        (intent.nonce, intent.hashes.len(), intent.raw),
        (5, 2, bumped)
    );

    // Reverted: the claim may be tried again (the phase goes back to Ready first).
    store
        .set_intent_state(
            1,
            Action::Claim,
            IntentState::Mined {
                block: 10,
                success: false,
            },
        )
        .expect("reverted");
    store.advance(1, JobPhase::Ready).expect("back to ready");
    store
        .advance_with_intent(1, JobPhase::Claiming, &signed(1, Action::Claim, 7, "c"))
        .expect("retry after a revert");
    store
        .set_intent_state(
            1,
            Action::Claim,
            IntentState::Mined {
                block: 11,
                success: true,
            },
        )
        .expect("mined");
    assert!(matches!(
        store.record_intent(&signed(1, Action::Claim, 8, "d")),
        Err(StoreError::IntentExists { .. })
    ));

    // Open intents come back by nonce; mined ones are done.
    store
        .record_intent(&signed(2, Action::Claim, 9, "e"))
        .expect("other job");
    store
        .record_intent(&signed(0, Action::Stake, 4, "stake"))
        .expect("account-wide");
    let open: Vec<u64> = store
        .open_intents()
        .expect("open")
        .iter()
        .map(|i| i.nonce)
        .collect();
    assert_eq!(open, vec![4, 9]);
    assert!(matches!(
        store.set_intent_state(3, Action::Submit, IntentState::Sent),
        Err(StoreError::UnknownIntent { job: 3, .. })
    ));
}

#[test]
fn blobs_are_checked_against_their_cid_on_the_way_in_and_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let data = vec![42u8; 1 << 20];
    let cid = store.put_blob(&data).expect("put");
    assert_eq!(cid, cid_of(&data));
    assert_eq!(store.put_blob(&data).expect("idempotent"), cid);
    assert_eq!(store.blob(&cid).expect("get"), Some(data.clone()));

    let wrong = cid_of(b"something else");
    let err = store
        .put_blob_expecting(&wrong, &data)
        .expect_err("mismatch");
    assert!(err.to_string().contains("was not stored"), "{err}");
    assert!(!store.has_blob(&wrong).expect("has"));
    assert_eq!(store.blob(&wrong).expect("get"), None);
    store.put_blob_expecting(&cid, &data).expect("matching");
    let small = store.put_blob(b"small").expect("put");
    let mut listed = store.blobs().expect("list");
    listed.sort_by_key(|(c, _)| c.to_string());
    let mut want = vec![(cid, 1u64 << 20), (small, 5)];
    want.sort_by_key(|(c, _)| c.to_string());
    assert_eq!(listed, want, "every blob once, with its size");

    // Damage on disk is reported, never served.
    let path = dir.path().join("blobs").join(cid.to_string());
    let mut damaged = data;
    damaged[7] ^= 1;
    std::fs::write(&path, &damaged).expect("damage");
    let err = store.blob(&cid).expect_err("damaged");
    assert!(err.to_string().contains("damaged"), "{err}");
    assert!(err.to_string().contains("fetch the blob again"), "{err}");
}

#[test]
fn a_database_of_another_schema_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path()).expect("create"));
    {
        let db = redb::Database::create(dir.path().join("node.redb")).expect("raw open");
        let tx = db.begin_write().expect("write");
        {
            let def: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("meta");
            let mut meta = tx.open_table(def).expect("meta");
            meta.insert(
                "schema_version",
                (SCHEMA_VERSION + 1).to_be_bytes().as_slice(),
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
    }
    let err = Store::open(dir.path()).expect_err("newer schema");
    assert!(
        matches!(
            err,
            StoreError::Schema {
                found: 2,
                expected: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade Pedals"), "{err}");
}

fn phase() -> impl Strategy<Value = JobPhase> {
    prop_oneof![
        Just(JobPhase::Seen),
        Just(JobPhase::Fetching),
        Just(JobPhase::Ready),
        Just(JobPhase::Claiming),
        Just(JobPhase::Claimed),
        (0u64..20).prop_map(|steps_done| JobPhase::Training { steps_done }),
        Just(JobPhase::Trained),
        Just(JobPhase::Submitting),
        Just(JobPhase::Submitted),
        Just(JobPhase::Disputed),
        Just(JobPhase::Finalizing),
        Just(JobPhase::Finalized),
        Just(JobPhase::Abandoned {
            reason: "test".into()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever sequence of transitions is asked for, the stored phase is exactly what the
    /// state machine allows, before and after reopening the database.
    #[test]
    fn the_stored_phase_follows_the_state_machine(requests in proptest::collection::vec(phase(), 1..30)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store.insert_job(&JobRecord::new(1, JobPhase::Seen)).expect("insert");
        let mut model = JobPhase::Seen;
        for to in requests {
            let allowed = model.can_become(&to);
            let result = store.advance(1, to.clone());
            prop_assert_eq!(result.is_ok(), allowed);
            if allowed {
                model = to;
            }
        }
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        prop_assert_eq!(store.job(1).expect("job").expect("stored").phase, model);
    }
}

#[test]
fn the_latest_checkpoint_with_its_trace_is_the_resume_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(store.resume_point(4).expect("none"), None);
    let h = |i: u8| B256::repeat_byte(i);
    store
        .put_resumable_checkpoint(4, 0, b"s0", &[h(0)], &[])
        .expect("0");
    store
        .put_resumable_checkpoint(4, 2, b"s2", &[h(0), h(1), h(2)], &[h(7), h(8)])
        .expect("2");
    store
        .put_checkpoint(4, 3, b"s3 without a trace")
        .expect("3");
    store
        .put_resumable_checkpoint(5, 9, b"other job", &[h(9); 10], &[])
        .expect("other");
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    let point = store.resume_point(4).expect("read").expect("some");
    assert_eq!(
        (point.steps_done, point.state.as_slice(), point.hashes),
        (2, &b"s2"[..], vec![h(0), h(1), h(2)])
    );
    assert_eq!(
        point.audit_leaves,
        vec![h(7), h(8)],
        "the audited run's op roots"
    );
    assert_eq!(
        store.audit_leaves(4, 2).expect("read"),
        Some(vec![h(7), h(8)])
    );
    let other = store.resume_point(5).expect("read").expect("some");
    assert!(other.audit_leaves.is_empty(), "an unaudited run has none");
    assert_eq!(store.audit_leaves(5, 9).expect("read"), None);
}
