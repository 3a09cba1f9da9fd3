//! The redb database and the blob directory.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use alloy_primitives::B256;
use cid::Cid;
use pedals_core::{cid_from_bytes, cid_of, verify_cid};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tracing::debug;

use crate::{Action, IntentState, JobPhase, JobRecord, StoreError, TxIntent};

mod audit;
mod blob_range;

/// The schema this build reads and writes; a database with another version is refused.
pub const SCHEMA_VERSION: u32 = 1;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const JOBS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("jobs");
const INTENTS: TableDefinition<'_, (u64, u8), &[u8]> = TableDefinition::new("intents");
const BLOBS: TableDefinition<'_, &[u8], u64> = TableDefinition::new("blobs");
const CHECKPOINTS: TableDefinition<'_, (u64, u64), &[u8]> = TableDefinition::new("checkpoints");
/// `h_0..h_k` (32 bytes each) of a job at checkpoint `k`: what training resumes from.
const TRACES: TableDefinition<'_, (u64, u64), &[u8]> = TableDefinition::new("traces");

const SCHEMA_KEY: &str = "schema_version";
const CURSOR_KEY: &str = "chain_cursor";
const GENESIS_KEY: &str = "chain_genesis";

/// The last block the node's event follower processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCursor {
    /// Block number.
    pub block: u64,
    /// Its hash: if the chain no longer has this hash at this height, a reorg happened.
    pub hash: B256,
}

/// Where a job's training can resume: the latest checkpoint stored with its trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// Steps done at the checkpoint.
    pub steps_done: u64,
    /// The state's canonical bytes (verified against their CID).
    pub state: Vec<u8>,
    /// `h_0..h_steps_done`.
    pub hashes: Vec<B256>,
    /// The audit leaves of steps `0..steps_done`; empty when the run did not audit.
    pub audit_leaves: Vec<B256>,
}

/// A node's storage. Cheap to share behind an `Arc`: reads run concurrently, writes are
/// serialized by redb.
#[derive(Debug)]
pub struct Store {
    db: Database,
    blobs: PathBuf,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records serialize")
}

fn decode<T: DeserializeOwned>(what: impl Fn() -> String, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: what(),
        reason: e.to_string(),
    })
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`: `dir/node.redb` and `dir/blobs/`. Refuses a
    /// database of another schema version.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let blobs = dir.join("blobs");
        fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        let db = Database::create(dir.join("node.redb")).map_err(StoreError::db)?;
        let tx = db.begin_write().map_err(StoreError::db)?;
        {
            let mut meta = tx.open_table(META).map_err(StoreError::db)?;
            let found = meta
                .get(SCHEMA_KEY)
                .map_err(StoreError::db)?
                .map(|v| v.value().to_vec());
            match found {
                None => {
                    meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes().as_slice())
                        .map_err(StoreError::db)?;
                }
                Some(bytes) => {
                    let found = <[u8; 4]>::try_from(bytes.as_slice())
                        .map(u32::from_be_bytes)
                        .map_err(|_| StoreError::Corrupt {
                            what: "schema version".into(),
                            reason: format!("{} bytes", bytes.len()),
                        })?;
                    if found != SCHEMA_VERSION {
                        return Err(StoreError::Schema {
                            found,
                            expected: SCHEMA_VERSION,
                        });
                    }
                }
            }
            tx.open_table(JOBS).map_err(StoreError::db)?;
            tx.open_table(INTENTS).map_err(StoreError::db)?;
            tx.open_table(BLOBS).map_err(StoreError::db)?;
            tx.open_table(CHECKPOINTS).map_err(StoreError::db)?;
            tx.open_table(TRACES).map_err(StoreError::db)?;
        }
        tx.commit().map_err(StoreError::db)?;
        debug!(target: "pedals::store", dir = %dir.display(), "store open");
        Ok(Self { db, blobs })
    }

    /// The folder the store was opened in.
    pub fn dir(&self) -> &Path {
        self.blobs.parent().unwrap_or(&self.blobs)
    }

    // ---- jobs ----

    /// The record of job `id`, if stored.
    pub fn job(&self, id: u64) -> Result<Option<JobRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let jobs = tx.open_table(JOBS).map_err(StoreError::db)?;
        let value = jobs.get(id).map_err(StoreError::db)?;
        value
            .map(|v| decode(|| format!("job {id}"), v.value()))
            .transpose()
    }

    /// Every stored job, by id.
    pub fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let jobs = tx.open_table(JOBS).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for row in jobs.iter().map_err(StoreError::db)? {
            let (id, value) = row.map_err(StoreError::db)?;
            let id = id.value();
            out.push(decode(|| format!("job {id}"), value.value())?);
        }
        Ok(out)
    }

    /// Every job not in a final phase: what a restarted node resumes.
    pub fn active_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        Ok(self
            .jobs()?
            .into_iter()
            .filter(|j| !j.phase.is_final())
            .collect())
    }

    /// Stores a new job record; refuses an id that is stored already.
    pub fn insert_job(&self, record: &JobRecord) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut jobs = tx.open_table(JOBS).map_err(StoreError::db)?;
            if jobs.get(record.job_id).map_err(StoreError::db)?.is_some() {
                return Err(StoreError::DuplicateJob(record.job_id));
            }
            jobs.insert(record.job_id, encode(record).as_slice())
                .map_err(StoreError::db)?;
        }
        tx.commit().map_err(StoreError::db)
    }

    /// Changes job `id`'s record with `edit` (which may change the phase), atomically, if the
    /// state machine allows the new phase; returns the new record.
    pub fn update_job(
        &self,
        id: u64,
        edit: impl FnOnce(&mut JobRecord),
    ) -> Result<JobRecord, StoreError> {
        self.write_job(id, edit, None)
    }

    /// Moves job `id` to `to` if the state machine allows it; returns the new record.
    pub fn advance(&self, id: u64, to: JobPhase) -> Result<JobRecord, StoreError> {
        self.write_job(id, |r| r.phase = to, None)
    }

    /// Moves job `id` to `to` and stores `intent`, in one transaction: the write-ahead record
    /// of a transaction about to be sent. Refuses if an intent for the same job and action is
    /// still open or succeeded (see [`Store::record_intent`]).
    pub fn advance_with_intent(
        &self,
        id: u64,
        to: JobPhase,
        intent: &TxIntent,
    ) -> Result<JobRecord, StoreError> {
        assert_eq!(intent.job_id, id, "the intent belongs to another job");
        self.write_job(id, |r| r.phase = to, Some(intent))
    }

    fn write_job(
        &self,
        id: u64,
        edit: impl FnOnce(&mut JobRecord),
        intent: Option<&TxIntent>,
    ) -> Result<JobRecord, StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::db)?;
        let record = {
            let mut jobs = tx.open_table(JOBS).map_err(StoreError::db)?;
            let current: JobRecord = match jobs.get(id).map_err(StoreError::db)? {
                Some(v) => decode(|| format!("job {id}"), v.value())?,
                None => return Err(StoreError::UnknownJob(id)),
            };
            let mut next = current.clone();
            edit(&mut next);
            next.job_id = id;
            if !current.phase.can_become(&next.phase) {
                return Err(StoreError::Transition {
                    job: id,
                    from: current.phase,
                    to: next.phase,
                });
            }
            jobs.insert(id, encode(&next).as_slice())
                .map_err(StoreError::db)?;
            next
        };
        if let Some(intent) = intent {
            let mut intents = tx.open_table(INTENTS).map_err(StoreError::db)?;
            Self::put_intent(&mut intents, intent)?;
        }
        tx.commit().map_err(StoreError::db)?;
        debug!(target: "pedals::store", job = id, phase = %record.phase, "job advanced");
        Ok(record)
    }

    // ---- intents ----

    fn put_intent(
        intents: &mut redb::Table<'_, (u64, u8), &[u8]>,
        intent: &TxIntent,
    ) -> Result<(), StoreError> {
        let key = (intent.job_id, intent.action.code());
        if let Some(v) = intents.get(key).map_err(StoreError::db)? {
            let old: TxIntent = decode(|| format!("intent {key:?}"), v.value())?;
            if !old.state.has_failed() {
                return Err(StoreError::IntentExists {
                    job: intent.job_id,
                    action: intent.action,
                    nonce: old.nonce,
                    state: old.state.to_string(),
                });
            }
        }
        intents
            .insert(key, encode(intent).as_slice())
            .map_err(StoreError::db)?;
        Ok(())
    }

    /// Stores a signed transaction before it is sent. Refuses if an intent for the same job
    /// and action is open or succeeded, since sending another could act twice; one that
    /// reverted or was dropped is replaced.
    pub fn record_intent(&self, intent: &TxIntent) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut intents = tx.open_table(INTENTS).map_err(StoreError::db)?;
            Self::put_intent(&mut intents, intent)?;
        }
        tx.commit().map_err(StoreError::db)
    }

    /// The intent for `job` and `action`, if stored.
    pub fn intent(&self, job: u64, action: Action) -> Result<Option<TxIntent>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let intents = tx.open_table(INTENTS).map_err(StoreError::db)?;
        let value = intents.get((job, action.code())).map_err(StoreError::db)?;
        value
            .map(|v| decode(|| format!("intent ({job}, {action})"), v.value()))
            .transpose()
    }

    /// Removes the intent for `job` and `action` once it is mined (or has failed), so that the
    /// next transaction of a repeated action can be recorded; returns whether one was removed.
    /// An open intent is kept: it may still be mined, and sending another could act twice.
    pub fn retire_intent(&self, job: u64, action: Action) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::db)?;
        let removed = {
            let mut intents = tx.open_table(INTENTS).map_err(StoreError::db)?;
            let key = (job, action.code());
            let state = match intents.get(key).map_err(StoreError::db)? {
                Some(v) => decode::<TxIntent>(|| format!("intent {key:?}"), v.value())?.state,
                None => return Ok(false),
            };
            if state.is_open() {
                false
            } else {
                intents.remove(key).map_err(StoreError::db)?;
                true
            }
        };
        tx.commit().map_err(StoreError::db)?;
        Ok(removed)
    }

    /// Every intent still signed or sent, oldest nonce first: what a restarted node
    /// re-broadcasts and watches.
    pub fn open_intents(&self) -> Result<Vec<TxIntent>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let intents = tx.open_table(INTENTS).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for row in intents.iter().map_err(StoreError::db)? {
            let (key, value) = row.map_err(StoreError::db)?;
            let key = key.value();
            let intent: TxIntent = decode(|| format!("intent {key:?}"), value.value())?;
            if intent.state.is_open() {
                out.push(intent);
            }
        }
        out.sort_by_key(|i| i.nonce);
        Ok(out)
    }

    fn edit_intent(
        &self,
        job: u64,
        action: Action,
        edit: impl FnOnce(&mut TxIntent),
    ) -> Result<TxIntent, StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::db)?;
        let intent = {
            let mut intents = tx.open_table(INTENTS).map_err(StoreError::db)?;
            let key = (job, action.code());
            let mut intent: TxIntent = match intents.get(key).map_err(StoreError::db)? {
                Some(v) => decode(|| format!("intent ({job}, {action})"), v.value())?,
                None => return Err(StoreError::UnknownIntent { job, action }),
            };
            edit(&mut intent);
            intents
                .insert(key, encode(&intent).as_slice())
                .map_err(StoreError::db)?;
            intent
        };
        tx.commit().map_err(StoreError::db)?;
        Ok(intent)
    }

    /// Sets an intent's state (broadcast, mined, dropped).
    pub fn set_intent_state(
        &self,
        job: u64,
        action: Action,
        state: IntentState,
    ) -> Result<TxIntent, StoreError> {
        self.edit_intent(job, action, |i| i.state = state)
    }

    /// Replaces an open intent's transaction with a re-signed one for the same nonce (a fee
    /// bump), keeping every earlier hash: whichever version is mined settles the intent.
    pub fn replace_intent(
        &self,
        job: u64,
        action: Action,
        raw: alloy_primitives::Bytes,
        hash: B256,
    ) -> Result<TxIntent, StoreError> {
        self.edit_intent(job, action, |i| {
            i.raw = raw;
            i.hashes.push(hash);
            i.state = IntentState::Signed;
        })
    }

    // ---- blobs ----

    fn blob_path(&self, cid: &Cid) -> PathBuf {
        self.blobs.join(cid.to_string())
    }

    /// Stores `bytes` under their CID and returns it: the file is written, fsynced and
    /// renamed into place before the index row commits, so the index never names a missing
    /// or partial file.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Cid, StoreError> {
        let cid = cid_of(bytes);
        let path = self.blob_path(&cid);
        if !path.exists() {
            let tmp = self
                .blobs
                .join(format!(".{cid}.{}.partial", std::process::id()));
            let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
            file.write_all(bytes).map_err(io(&tmp))?;
            file.sync_all().map_err(io(&tmp))?;
            drop(file);
            fs::rename(&tmp, &path).map_err(io(&path))?;
            fs::File::open(&self.blobs)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.blobs))?;
        }
        let tx = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut index = tx.open_table(BLOBS).map_err(StoreError::db)?;
            index
                .insert(cid.to_bytes().as_slice(), bytes.len() as u64)
                .map_err(StoreError::db)?;
        }
        tx.commit().map_err(StoreError::db)?;
        Ok(cid)
    }

    /// Stores `bytes` that must have CID `expected` (data fetched from a peer or a gateway);
    /// refuses them, storing nothing, when they do not.
    pub fn put_blob_expecting(&self, expected: &Cid, bytes: &[u8]) -> Result<(), StoreError> {
        verify_cid(expected, bytes).map_err(|e| StoreError::Blob {
            cid: expected.to_string(),
            reason: format!("{e}; the data was not stored: fetch it from another source"),
        })?;
        self.put_blob(bytes).map(|_| ())
    }

    /// Every stored blob: its CID and its size in bytes, in CID byte order.
    pub fn blobs(&self) -> Result<Vec<(Cid, u64)>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let index = tx.open_table(BLOBS).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for row in index.iter().map_err(StoreError::db)? {
            let (key, size) = row.map_err(StoreError::db)?;
            let cid = cid_from_bytes(key.value()).map_err(|e| StoreError::Corrupt {
                what: "the blob index".into(),
                reason: e.to_string(),
            })?;
            out.push((cid, size.value()));
        }
        Ok(out)
    }

    /// Whether the blob is stored.
    pub fn has_blob(&self, cid: &Cid) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let index = tx.open_table(BLOBS).map_err(StoreError::db)?;
        Ok(index
            .get(cid.to_bytes().as_slice())
            .map_err(StoreError::db)?
            .is_some())
    }

    /// The blob's bytes, verified against its CID; `None` if it is not stored. A file that
    /// no longer matches its CID is an error, never returned.
    pub fn blob(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        if !self.has_blob(cid)? {
            return Ok(None);
        }
        let path = self.blob_path(cid);
        let bytes = fs::read(&path).map_err(io(&path))?;
        verify_cid(cid, &bytes).map_err(|e| StoreError::Blob {
            cid: cid.to_string(),
            reason: format!(
                "the file {} is damaged ({e}): delete it and fetch the blob again",
                path.display()
            ),
        })?;
        Ok(Some(bytes))
    }

    // ---- checkpoints ----

    /// Stores the state of `job` after `steps_done` steps (canonical bytes) as a blob and
    /// indexes it; returns its CID.
    pub fn put_checkpoint(
        &self,
        job: u64,
        steps_done: u64,
        bytes: &[u8],
    ) -> Result<Cid, StoreError> {
        let cid = self.put_blob(bytes)?;
        let tx = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut index = tx.open_table(CHECKPOINTS).map_err(StoreError::db)?;
            index
                .insert((job, steps_done), cid.to_bytes().as_slice())
                .map_err(StoreError::db)?;
        }
        tx.commit().map_err(StoreError::db)?;
        Ok(cid)
    }

    /// Stores a checkpoint together with the state hashes `h_0..h_steps_done` that lead to it
    /// and, for an audited run, the audit leaves of steps `0..steps_done`, in one
    /// transaction, so that training can resume from it after a crash.
    pub fn put_resumable_checkpoint(
        &self,
        job: u64,
        steps_done: u64,
        bytes: &[u8],
        hashes: &[B256],
        audit_leaves: &[B256],
    ) -> Result<Cid, StoreError> {
        assert_eq!(
            hashes.len() as u64,
            steps_done + 1,
            "h_0..h_k has k + 1 hashes"
        );
        let cid = self.put_blob(bytes)?;
        let trace: Vec<u8> = hashes.iter().flat_map(|h| h.0).collect();
        let tx = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut index = tx.open_table(CHECKPOINTS).map_err(StoreError::db)?;
            index
                .insert((job, steps_done), cid.to_bytes().as_slice())
                .map_err(StoreError::db)?;
            let mut traces = tx.open_table(TRACES).map_err(StoreError::db)?;
            traces
                .insert((job, steps_done), trace.as_slice())
                .map_err(StoreError::db)?;
            audit::put_audit_leaves(&tx, job, steps_done, audit_leaves)?;
        }
        tx.commit().map_err(StoreError::db)?;
        Ok(cid)
    }

    /// The latest trace stored for `job`: how many steps it covers and `h_0..h_k`; `None` if
    /// there is none. Reads no checkpoint.
    pub fn latest_trace(&self, job: u64) -> Result<Option<(u64, Vec<B256>)>, StoreError> {
        let latest = {
            let tx = self.db.begin_read().map_err(StoreError::db)?;
            let traces = tx.open_table(TRACES).map_err(StoreError::db)?;
            let mut range = traces
                .range((job, 0)..=(job, u64::MAX))
                .map_err(StoreError::db)?;
            match range.next_back() {
                Some(row) => {
                    let (key, value) = row.map_err(StoreError::db)?;
                    Some((key.value().1, value.value().to_vec()))
                }
                None => None,
            }
        };
        let Some((steps_done, trace)) = latest else {
            return Ok(None);
        };
        if trace.len() as u64 != (steps_done + 1) * 32 {
            return Err(StoreError::Corrupt {
                what: format!("trace ({job}, {steps_done})"),
                reason: format!("{} bytes", trace.len()),
            });
        }
        Ok(Some((
            steps_done,
            trace.chunks_exact(32).map(B256::from_slice).collect(),
        )))
    }

    /// The latest checkpoint of `job` stored with its trace, verified; `None` if there is
    /// none.
    pub fn resume_point(&self, job: u64) -> Result<Option<ResumePoint>, StoreError> {
        let Some((steps_done, hashes)) = self.latest_trace(job)? else {
            return Ok(None);
        };
        match self.checkpoint(job, steps_done)? {
            Some(state) => Ok(Some(ResumePoint {
                steps_done,
                state,
                hashes,
                audit_leaves: self.audit_leaves(job, steps_done)?.unwrap_or_default(),
            })),
            None => Err(StoreError::Corrupt {
                what: format!("checkpoint ({job}, {steps_done})"),
                reason: "its trace is stored but the checkpoint is not".into(),
            }),
        }
    }

    /// The checkpoint of `job` after `steps_done` steps, verified, if stored.
    pub fn checkpoint(&self, job: u64, steps_done: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let cid = {
            let tx = self.db.begin_read().map_err(StoreError::db)?;
            let index = tx.open_table(CHECKPOINTS).map_err(StoreError::db)?;
            let value = index.get((job, steps_done)).map_err(StoreError::db)?;
            match value {
                Some(v) => cid_from_bytes(v.value()).map_err(|e| StoreError::Corrupt {
                    what: format!("checkpoint ({job}, {steps_done})"),
                    reason: e.to_string(),
                })?,
                None => return Ok(None),
            }
        };
        self.blob(&cid)
    }

    /// The step counts of every stored checkpoint of `job`, ascending.
    pub fn checkpoint_steps(&self, job: u64) -> Result<Vec<u64>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let index = tx.open_table(CHECKPOINTS).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for row in index
            .range((job, 0)..=(job, u64::MAX))
            .map_err(StoreError::db)?
        {
            let (key, _) = row.map_err(StoreError::db)?;
            out.push(key.value().1);
        }
        Ok(out)
    }

    // ---- chain cursor ----

    /// The last processed block, if any.
    pub fn cursor(&self) -> Result<Option<ChainCursor>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let meta = tx.open_table(META).map_err(StoreError::db)?;
        let value = meta.get(CURSOR_KEY).map_err(StoreError::db)?;
        value
            .map(|v| decode(|| "chain cursor".into(), v.value()))
            .transpose()
    }

    /// Records the last processed block.
    pub fn set_cursor(&self, cursor: ChainCursor) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut meta = tx.open_table(META).map_err(StoreError::db)?;
            meta.insert(CURSOR_KEY, encode(&cursor).as_slice())
                .map_err(StoreError::db)?;
        }
        tx.commit().map_err(StoreError::db)
    }

    /// The hash of block 0 of the chain this store's jobs live on, once recorded: a chain
    /// with another genesis is another chain (a reset devnet, a wrong endpoint), on which the
    /// stored jobs, cursor and intents mean nothing.
    pub fn genesis(&self) -> Result<Option<B256>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let meta = tx.open_table(META).map_err(StoreError::db)?;
        let value = meta.get(GENESIS_KEY).map_err(StoreError::db)?;
        Ok(value.and_then(|v| <[u8; 32]>::try_from(v.value()).ok().map(B256::from)))
    }

    /// Records the genesis hash of the store's chain.
    pub fn set_genesis(&self, hash: B256) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut meta = tx.open_table(META).map_err(StoreError::db)?;
            meta.insert(GENESIS_KEY, hash.as_slice())
                .map_err(StoreError::db)?;
        }
        tx.commit().map_err(StoreError::db)
    }
}
