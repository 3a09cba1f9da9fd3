//! The requester's node behind the page: its store and network (which serve a posted job's
//! files to workers), the account it signs with once the user unlocks its keystore, and the
//! workers' signed progress reports it hears on gossip.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex as StdMutex},
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use pedals_chain::Market;
use pedals_p2p::{Announcement, Client, NetEvent};
use pedals_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Mutex, mpsc};
use tracing::info;

use crate::api::{App, Refusal, error};

/// Reports kept per job and worker: past this, every other one is dropped (the curve keeps
/// its shape).
const MAX_REPORTS: usize = 512;

/// (job, worker) pairs whose reports are kept: past this, the pair heard from longest ago is
/// forgotten. Any peer can sign reports for any job with a key of its own, so neither the
/// memory nor another account's reports may depend on what it sends.
const MAX_SOURCES: usize = 1024;

/// The progress reports heard, by job and by the account that signed them.
#[derive(Debug, Default)]
pub(crate) struct Heard(HashMap<(u64, Address), Vec<Report>>);

impl Heard {
    /// Keeps `report` on job `job`.
    pub(crate) fn record(&mut self, job: u64, report: Report) {
        let key = (job, report.worker);
        if !self.0.contains_key(&key) && self.0.len() >= MAX_SOURCES {
            let stalest = self
                .0
                .iter()
                .min_by_key(|(_, list)| list.last().map_or(0, |r| r.at))
                .map(|(k, _)| *k);
            if let Some(k) = stalest {
                self.0.remove(&k);
            }
        }
        let list = self.0.entry(key).or_default();
        list.push(report);
        if list.len() > MAX_REPORTS {
            let mut i = 0;
            list.retain(|_| {
                i += 1;
                i % 2 == 1
            });
        }
    }

    /// The reports `worker` signed on job `job`, in order of steps, one per step count.
    pub(crate) fn of(&self, job: u64, worker: Address) -> Vec<Report> {
        let mut out = self.0.get(&(job, worker)).cloned().unwrap_or_default();
        out.sort_by_key(|r| (r.steps_done, r.at));
        out.dedup_by_key(|r| r.steps_done);
        out
    }
}

/// What `pedals ui` hands the page's API so that it can post jobs.
pub struct Node {
    /// The requester's folder: `uploads/` (datasets sent from the page) and `jobs/` (what
    /// `pedals job result` reads), beside the store.
    pub dir: PathBuf,
    /// The content store the job files are served from.
    pub store: Arc<Store>,
    /// The network node that serves them.
    pub client: Client,
    /// Its announcements (progress reports are kept; the rest is dropped).
    pub events: mpsc::Receiver<NetEvent>,
    /// The keystore the page may unlock, if any.
    pub keystore: Option<PathBuf>,
}

/// One progress report heard from a job's worker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The worker that signed it.
    pub worker: Address,
    /// Steps done.
    pub steps_done: u64,
    /// Steps in the job.
    pub steps: u64,
    /// When the worker announced it, Unix seconds.
    pub at: u64,
    /// The training loss it measured at its last checkpoint (its word: nothing checks it).
    pub loss: Option<f64>,
}

/// The node's side of the API.
pub(crate) struct NodeState {
    pub(crate) dir: PathBuf,
    pub(crate) store: Arc<Store>,
    pub(crate) client: Client,
    keystore: Option<PathBuf>,
    /// The market signing as the unlocked account.
    signer: Mutex<Option<Market>>,
    progress: Arc<StdMutex<Heard>>,
    /// The results the page fetched, by job.
    results: StdMutex<HashMap<u64, serde_json::Value>>,
}

impl NodeState {
    /// Starts hearing `node`'s progress reports for `market`'s jobs.
    pub(crate) fn start(node: Node, market: &Market) -> Self {
        let progress: Arc<StdMutex<Heard>> = Arc::default();
        let heard = progress.clone();
        let (chain_id, job_market) = (market.deployment().chain_id, market.deployment().job_market);
        let mut events = node.events;
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let NetEvent::Announced {
                    announcement: Announcement::Progress(p),
                    ..
                } = event
                else {
                    continue;
                };
                // Gossip checked the signature against `p.worker`; the job's worker on-chain
                // is checked when the reports are read.
                if p.chain_id != chain_id || p.market != job_market {
                    continue;
                }
                heard.lock().unwrap_or_else(|e| e.into_inner()).record(
                    p.job_id,
                    Report {
                        worker: p.worker,
                        steps_done: p.steps_done,
                        steps: p.steps,
                        at: p.announced_at,
                        loss: p.loss_micro.map(|l| l as f64 / 1e6),
                    },
                );
            }
        });
        Self {
            dir: node.dir,
            store: node.store,
            client: node.client,
            keystore: node.keystore,
            signer: Mutex::new(None),
            progress,
            results: StdMutex::default(),
        }
    }

    /// Keeps what the page fetched of job `id`'s result.
    pub(crate) fn keep_result(&self, id: u64, result: serde_json::Value) {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, result);
    }

    /// What the page fetched of job `id`'s result, if it did.
    pub(crate) fn result(&self, id: u64) -> Option<serde_json::Value> {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// The reports heard from `worker` on job `id`, in order of steps.
    pub(crate) fn progress(&self, id: u64, worker: Address) -> Vec<Report> {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .of(id, worker)
    }

    /// The market signing as the unlocked account, or the answer that says to unlock it.
    pub(crate) async fn signer(&self) -> Result<Market, Refusal> {
        self.signer.lock().await.clone().ok_or_else(|| {
            Refusal(
                StatusCode::FORBIDDEN,
                "the node's account is locked: unlock it with its keystore's password first \
                 (or post with a browser wallet)"
                    .into(),
            )
        })
    }
}

/// The node's side, or the answer that says this node has none.
pub(crate) fn node_of(app: &App) -> Result<&NodeState, Refusal> {
    app.node.as_ref().ok_or_else(|| {
        Refusal(
            StatusCode::NOT_IMPLEMENTED,
            "this node only reads the market: it was started without a requester's node".into(),
        )
    })
}

/// `GET /api/wallet`: the node's account (once unlocked) and its balance, the chain.
pub async fn wallet(State(app): State<Arc<App>>) -> Response {
    let chain_id = app.market.deployment().chain_id;
    let Some(node) = app.node.as_ref() else {
        return Json(json!({"chainId": chain_id, "canPost": false, "keystore": false}))
            .into_response();
    };
    let signer = node.signer.lock().await.clone();
    let (address, balance) = match &signer {
        Some(m) => match m.balance(m.sender()).await {
            Ok(b) => (Some(m.sender()), Some(b.to_string())),
            Err(e) => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    &format!("the node cannot read the chain: {e}"),
                );
            }
        },
        None => (None, None),
    };
    Json(json!({
        "chainId": chain_id,
        "canPost": true,
        "keystore": node.keystore.is_some(),
        "address": address,
        "balanceWei": balance,
    }))
    .into_response()
}

/// `POST /api/wallet/unlock`'s body.
#[derive(Deserialize)]
pub struct Unlock {
    password: String,
}

/// `POST /api/wallet/unlock`: opens the node's keystore with `password`; the key stays in
/// this process's memory until `lock` or the end of `pedals ui`. The password is never
/// logged or kept.
pub async fn unlock(
    State(app): State<Arc<App>>,
    Json(body): Json<Unlock>,
) -> Result<Response, Refusal> {
    let node = node_of(&app)?;
    let Some(path) = node.keystore.clone() else {
        return Ok(error(
            StatusCode::CONFLICT,
            "this node has no keystore: start `pedals ui` with --keystore (or post with a \
             browser wallet)",
        ));
    };
    let opened = tokio::task::spawn_blocking(move || {
        PrivateKeySigner::decrypt_keystore(&path, body.password)
    })
    .await;
    let signer = match opened {
        Ok(Ok(s)) => s,
        _ => {
            return Ok(error(
                StatusCode::FORBIDDEN,
                "wrong password for the node's keystore: nothing was unlocked",
            ));
        }
    };
    let market = Market::over(
        app.market.provider().clone(),
        signer,
        app.market.deployment().clone(),
    );
    let address = market.sender();
    *node.signer.lock().await = Some(market);
    info!(target: "pedals::ui", %address, "the node's account was unlocked from the page");
    Ok(Json(json!({"address": address})).into_response())
}

/// `POST /api/wallet/lock`: forgets the unlocked key.
pub async fn lock(State(app): State<Arc<App>>) -> Result<Response, Refusal> {
    let node = node_of(&app)?;
    *node.signer.lock().await = None;
    Ok(Json(json!({"locked": true})).into_response())
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Address;

    use super::{Heard, MAX_REPORTS, MAX_SOURCES, Report};

    fn report(worker: Address, steps_done: u64, at: u64) -> Report {
        Report {
            worker,
            steps_done,
            steps: 100,
            at,
            loss: None,
        }
    }

    #[test]
    fn a_flooding_peer_neither_thins_a_workers_reports_nor_grows_without_bound() {
        let worker = Address::repeat_byte(1);
        let mut heard = Heard::default();
        heard.record(7, report(worker, 10, 1));
        heard.record(7, report(worker, 20, 2));
        // Another key floods the same job, then thousands of others.
        let spammer = Address::repeat_byte(2);
        for i in 0..10 * MAX_REPORTS as u64 {
            heard.record(7, report(spammer, i % 100, 3));
        }
        assert_eq!(
            heard.of(7, worker).len(),
            2,
            "the worker's reports are all there"
        );
        assert!(heard.0.values().all(|l| l.len() <= MAX_REPORTS));
        for i in 0..2 * MAX_SOURCES as u64 {
            let mut key = [0u8; 20];
            key[..8].copy_from_slice(&i.to_be_bytes());
            heard.record(1000 + i, report(Address::from(key), 1, 4));
        }
        assert!(heard.0.len() <= MAX_SOURCES, "{}", heard.0.len());
        // The oldest sources went first; the newest are kept.
        assert!(heard.of(7, worker).is_empty());
        let last = 2 * MAX_SOURCES as u64 - 1;
        let mut key = [0u8; 20];
        key[..8].copy_from_slice(&last.to_be_bytes());
        assert_eq!(heard.of(1000 + last, Address::from(key)).len(), 1);
    }
}
