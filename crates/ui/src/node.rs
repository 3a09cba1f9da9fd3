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

/// Reports kept per job: past this, every other one is dropped (the curve keeps its shape).
const MAX_REPORTS: usize = 512;

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
    progress: Arc<StdMutex<HashMap<u64, Vec<Report>>>>,
    /// The results the page fetched, by job.
    results: StdMutex<HashMap<u64, serde_json::Value>>,
}

impl NodeState {
    /// Starts hearing `node`'s progress reports for `market`'s jobs.
    pub(crate) fn start(node: Node, market: &Market) -> Self {
        let progress: Arc<StdMutex<HashMap<u64, Vec<Report>>>> = Arc::default();
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
                let mut map = heard.lock().unwrap_or_else(|e| e.into_inner());
                let list = map.entry(p.job_id).or_default();
                list.push(Report {
                    worker: p.worker,
                    steps_done: p.steps_done,
                    steps: p.steps,
                    at: p.announced_at,
                    loss: p.loss_micro.map(|l| l as f64 / 1e6),
                });
                if list.len() > MAX_REPORTS {
                    let mut i = 0;
                    list.retain(|_| {
                        i += 1;
                        i % 2 == 1
                    });
                }
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
        let map = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Report> = map
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|r| r.worker == worker)
            .copied()
            .collect();
        out.sort_by_key(|r| (r.steps_done, r.at));
        out.dedup_by_key(|r| r.steps_done);
        out
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
