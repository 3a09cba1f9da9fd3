//! Zk jobs on the worker. A zk job has no claim and no challenge window: the worker fetches
//! the posted model and input batch, checks them against the job commitment, proves the
//! inference on its blocking pool, and submits the proof, which pays it in the same
//! transaction. The first valid proof wins; a later one reverts and the job is abandoned.
//!
//! Proving keys are made once per circuit and kept in the store by the CID of their bytes,
//! with an index file per circuit (`<data dir>/zk-keys/<circuit name>.cid`), so a restarted
//! worker loads them instead of running the setup again.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use alloy::primitives::{B256, Bytes, U256};
use pedals_core::Cid;
use pedals_ml::Dataset;
use pedals_store::Store;
use pedals_zk::{Circuit, Keys, ZkJob, solidity};
use tracing::info;

use crate::NodeError;

/// Proving keys by circuit: in memory once loaded, in the store by CID across restarts.
#[derive(Debug)]
pub(crate) struct Keyring {
    store: Arc<Store>,
    dir: PathBuf,
    loaded: Mutex<HashMap<u8, Arc<Keys>>>,
}

impl Keyring {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        let dir = store.dir().join("zk-keys");
        Self {
            store,
            dir,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The keys of `circuit`, loading or making them (a setup takes tens of seconds for the
    /// MNIST circuit): call it on a blocking thread. This build only makes devnet keys, from
    /// the public devnet seed, which is what the devnet's registered verifiers check.
    pub(crate) fn keys(&self, circuit: &Circuit) -> Result<Arc<Keys>, NodeError> {
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| NodeError::Job("the zk keyring lock is poisoned".into()))?;
        if let Some(keys) = loaded.get(&circuit.id) {
            return Ok(keys.clone());
        }
        let index = self.dir.join(format!("{}.cid", circuit.name));
        let stored = match std::fs::read_to_string(&index) {
            Ok(text) => {
                let cid = pedals_core::parse_cid(text.trim()).map_err(|e| {
                    NodeError::Job(format!("{} names no CID: {e}", index.display()))
                })?;
                self.store.blob(&cid)?.map(|bytes| (cid, bytes))
            }
            Err(_) => None,
        };
        let keys = match stored {
            Some((cid, bytes)) => {
                pedals_core::verify_cid(&cid, &bytes)
                    .map_err(|e| NodeError::Job(format!("the stored keys {cid}: {e}")))?;
                let keys = Keys::from_bytes(&bytes)?;
                info!(target: "pedals::node", circuit = circuit.name, %cid, "zk keys loaded");
                keys
            }
            None => {
                let started = std::time::Instant::now();
                let keys = pedals_zk::setup_seeded(circuit.shape(), pedals_zk::DEVNET_SEED)?;
                let cid = self.store.put_blob(&keys.to_bytes()?)?;
                std::fs::create_dir_all(&self.dir).map_err(|source| NodeError::Io {
                    path: self.dir.clone(),
                    source,
                })?;
                std::fs::write(&index, cid.to_string()).map_err(|source| NodeError::Io {
                    path: index.clone(),
                    source,
                })?;
                info!(target: "pedals::node", circuit = circuit.name, %cid, seconds = started.elapsed().as_secs_f64(), "zk keys made (devnet seed) and stored");
                keys
            }
        };
        let keys = Arc::new(keys);
        loaded.insert(circuit.id, keys.clone());
        Ok(keys)
    }
}

/// The known circuit of a job, or why it cannot be proven here.
pub(crate) fn circuit_of(number: u8) -> Result<&'static Circuit, String> {
    pedals_zk::circuit(number).ok_or_else(|| {
        format!("it needs zk circuit {number}, which this build does not know how to prove")
    })
}

/// A zk job's model and input batch, read from its posted files and checked against its job
/// commitment (the on-chain spec hash).
pub(crate) fn load(
    circuit: &Circuit,
    model: &[u8],
    dataset: &[u8],
    spec_hash: B256,
) -> Result<ZkJob, String> {
    let dataset = Dataset::from_canonical_bytes(dataset).map_err(|e| e.to_string())?;
    let job = ZkJob::from_files(circuit, model, &dataset).map_err(|e| e.to_string())?;
    let commitment = word(job.commitment().map_err(|e| e.to_string())?);
    if commitment != spec_hash {
        return Err(format!(
            "its model and input commit to {commitment}, not to the posted job commitment \
             {spec_hash}"
        ));
    }
    Ok(job)
}

/// A field element as the contract's `bytes32`.
pub(crate) fn word(x: pedals_zk::Fr) -> B256 {
    B256::from(solidity::scalar_word(x))
}

/// What a proven job submits.
pub(crate) struct Proven {
    pub(crate) output_commitment: B256,
    pub(crate) result: Cid,
    pub(crate) proof: [U256; 8],
}

/// Proves `job` for `binding` (this chain, market, job id and worker) with `keys` and stores
/// the logits blob. Blocking.
pub(crate) fn prove(
    store: &Store,
    keys: &Keys,
    job: &ZkJob,
    binding: pedals_zk::Binding,
) -> Result<Proven, NodeError> {
    let (logits, statement, proof) = pedals_zk::prove(keys, &job.model, &job.inputs, binding)?;
    let result = store.put_blob(&pedals_zk::logits_bytes(&logits))?;
    let (a, b, c) = solidity::proof_words(&proof);
    let words: Vec<U256> = a
        .iter()
        .chain(&b)
        .chain(&c)
        .map(|w| U256::from_be_bytes(*w))
        .collect();
    let proof = <[U256; 8]>::try_from(words)
        .map_err(|_| NodeError::Job("a proof is eight words".into()))?;
    Ok(Proven {
        output_commitment: word(statement.commitments.outputs),
        result,
        proof,
    })
}

/// The result CID as the contract takes it.
pub(crate) fn cid_bytes(cid: &Cid) -> Bytes {
    Bytes::from(cid.to_bytes())
}
