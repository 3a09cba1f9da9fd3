//! Posting a job from the page: a dataset uploaded to the node, the plan and its cost, and
//! the post itself, signed by the node's unlocked account or by the browser's wallet.
//!
//! The job is the job file's fields as JSON (`pedals job post`'s TOML, docs/cli.md), except
//! the dataset: `{"format": "synthetic", …}` or `{"upload": CID}` of a file sent to
//! `/api/uploads`, and a batch-inference job's model: `"model_upload": CID`, not a path. Every check the CLI makes runs here, before anything is signed.

use std::{path::Path as FsPath, sync::Arc};

use alloy::{
    primitives::{B256, U256},
    providers::Provider,
};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use pedals_core::{cid_of, parse_cid};
use pedals_ml::{Dataset, LabelColumn};
use pedals_node::{
    PostedJob, Requester,
    jobfile::{JobFile, Prepared},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

use crate::{
    api::{App, Refusal, error},
    node::{NodeState, node_of},
};

/// The most bytes one upload may have (a dataset's canonical form can be larger than 2 MiB,
/// axum's default).
pub const MAX_UPLOAD: usize = 256 << 20;

/// Gas a post may take (the spec's admission and the post), for the cost shown before signing.
const POST_GAS: u64 = 400_000;

/// A dataset from a file's bytes: Pedals' canonical encoding, or a CSV of numbers with the
/// label in the `label` column.
fn dataset_of(bytes: &[u8], label: LabelColumn) -> Result<Dataset, String> {
    let canonical = match Dataset::from_canonical_bytes(bytes) {
        Ok(d) => return Ok(d),
        Err(e) => e,
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(format!(
            "this file is not a dataset: it is not text, so not a CSV, and not Pedals' \
             canonical dataset encoding either ({canonical}). Upload a CSV with one sample per \
             row, numbers only, and the label in the first or last column"
        ));
    };
    Dataset::from_csv(text, label, None).map_err(|e| {
        format!(
            "this file is not a dataset: {e}. Upload a CSV with one sample per row, numbers \
             only, and the label in the first or last column (say which)"
        )
    })
}

/// Writes `bytes` as `uploads/<cid>` (aside, then renamed).
fn keep_upload(dir: &FsPath, bytes: &[u8]) -> Result<pedals_core::Cid, (StatusCode, String)> {
    let cid = cid_of(bytes);
    let keep = |e: std::io::Error| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the node cannot keep the file in {}: {e}", dir.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(keep)?;
    let part = dir.join(format!("{cid}.part"));
    std::fs::write(&part, bytes).map_err(keep)?;
    std::fs::rename(&part, dir.join(cid.to_string())).map_err(keep)?;
    Ok(cid)
}

/// `POST /api/uploads?label=first|last` (a dataset: the node keeps its canonical form) or
/// `?kind=model` (a model state for batch inference, kept as sent and checked against the
/// job's layers when it is planned): the file is the body; the answer is its CID and shape.
pub async fn upload(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Refusal> {
    let node = node_of(&app)?;
    let (label, model) = match query.as_deref() {
        None | Some("") | Some("label=last") => (LabelColumn::Last, false),
        Some("label=first") => (LabelColumn::First, false),
        Some("kind=model") => (LabelColumn::Last, true),
        Some(other) => {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                &format!("?{other}: say label=first or label=last (a dataset), or kind=model"),
            ));
        }
    };
    if body.is_empty() {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "the file is empty: pick a dataset or model file",
        ));
    }
    let dir = node.dir.join("uploads");
    let made = tokio::task::spawn_blocking(move || -> Result<Value, (StatusCode, String)> {
        if model {
            let cid = keep_upload(&dir, &body)?;
            return Ok(json!({"cid": cid.to_string(), "bytes": body.len()}));
        }
        let data = dataset_of(&body, label).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
        let bytes = data
            .to_canonical_bytes()
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        let cid = keep_upload(&dir, &bytes)?;
        Ok(json!({
            "cid": cid.to_string(),
            "samples": data.len(),
            "features": data.features,
            "classes": data.classes,
        }))
    })
    .await;
    Ok(match made {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err((status, m))) => error(status, &m),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    })
}

/// A job from the page's JSON, its upload resolved to the file under `uploads/`.
fn job_file(mut job: Value, uploads: &FsPath) -> Result<JobFile, String> {
    let Some(obj) = job.as_object_mut() else {
        return Err("the job is a JSON object of the job file's fields".into());
    };
    for key in ["model_file", "generate", "finetune", "verification"] {
        if obj.contains_key(key) {
            return Err(format!(
                "`{key}`: the page posts training and batch-inference jobs only; post other \
                 kinds with `pedals job post`"
            ));
        }
    }
    // A model state for batch inference: an upload, never a path on the node's disk.
    if let Some(cid) = obj.remove("model_upload") {
        let cid = cid
            .as_str()
            .ok_or("model_upload is the CID of an uploaded model file")?;
        let cid = parse_cid(cid).map_err(|e| format!("model_upload: {e}"))?;
        let path = uploads.join(cid.to_string());
        if !path.is_file() {
            return Err(format!(
                "model {cid} was not uploaded to this node: upload the file again"
            ));
        }
        obj.insert("model_file".into(), json!(path));
    }
    if let Some(cid) = obj
        .get("dataset")
        .and_then(|d| d.get("upload"))
        .and_then(Value::as_str)
    {
        let cid = parse_cid(cid).map_err(|e| format!("dataset.upload: {e}"))?;
        let path = uploads.join(cid.to_string());
        if !path.is_file() {
            return Err(format!(
                "dataset {cid} was not uploaded to this node: upload the file again"
            ));
        }
        obj.insert(
            "dataset".into(),
            json!({"format": "canonical", "path": path}),
        );
    } else if let Some(d) = obj.get("dataset")
        && d.get("format").and_then(Value::as_str) != Some("synthetic")
    {
        return Err(
            "dataset: upload a file ({\"upload\": CID}) or ask for a synthetic one \
             ({\"format\": \"synthetic\", …})"
                .into(),
        );
    }
    serde_json::from_value(job).map_err(|e| format!("the job is not valid: {e}"))
}

/// The job, checked and built (on a blocking thread: a dataset can take a while), or the
/// answer that says what to change.
async fn prepare(node: &NodeState, job: Value) -> Result<Prepared, Refusal> {
    let uploads = node.dir.join("uploads");
    let out = tokio::task::spawn_blocking(move || {
        let file = job_file(job, &uploads)?;
        file.prepare(&uploads).map_err(|e| e.to_string())
    })
    .await;
    match out {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(m)) => Err(Refusal(StatusCode::BAD_REQUEST, m)),
        Err(e) => Err(Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// A body of `{"job": …}` and, for a wallet, `"from"`.
#[derive(Deserialize)]
pub struct JobBody {
    job: Value,
}

fn chain_error(e: impl std::fmt::Display) -> Refusal {
    Refusal(
        StatusCode::BAD_GATEWAY,
        format!("the node cannot read the chain: {e}"),
    )
}

/// `POST /api/jobs/plan`: what would be posted and what it costs, sending nothing.
pub async fn plan(
    State(app): State<Arc<App>>,
    Json(body): Json<JobBody>,
) -> Result<Response, Refusal> {
    let node = node_of(&app)?;
    let p = prepare(node, body.job).await?;
    let spec = &p.files.spec;
    let market = &app.market;
    let gas_price = market
        .provider()
        .get_gas_price()
        .await
        .map_err(chain_error)?;
    let stake = market
        .stake_to_claim(p.terms.payment)
        .await
        .map_err(chain_error)?;
    let gas = U256::from(gas_price) * U256::from(POST_GAS);
    Ok(Json(json!({
        "specCid": spec.cid().to_string(),
        "datasetCid": cid_of(&p.files.dataset).to_string(),
        "modelCid": cid_of(&p.files.model).to_string(),
        "layers": spec.train.model.layers,
        "batch": spec.train.model.batch,
        "kind": if spec.inference.is_some() { "inference" } else { "training" },
        "chunk": spec.inference.as_ref().map(|i| i.chunk),
        "steps": spec.train.steps,
        "samples": spec.dispute.as_ref().map_or(0, |d| d.samples),
        "holdout": p.holdout.as_ref().map_or(0, Dataset::len),
        "paymentWei": p.terms.payment.to_string(),
        "gasWei": gas.to_string(),
        "totalWei": (p.terms.payment + gas).to_string(),
        "workerStakeWei": stake.to_string(),
        "claimWithinSecs": p.terms.claim_within,
        "deliverWithinSecs": p.terms.deliver_within,
        "challengeWindowSecs": p.terms.challenge_window,
    }))
    .into_response())
}

/// `POST /api/jobs`: posts the job with the node's unlocked account; the node then serves its
/// files to workers for as long as it runs.
pub async fn post(
    State(app): State<Arc<App>>,
    Json(body): Json<JobBody>,
) -> Result<Response, Refusal> {
    let node = node_of(&app)?;
    let market = node.signer().await?;
    let p = prepare(node, body.job).await?;
    let holdout_cid = match &p.holdout {
        Some(data) => match data
            .to_canonical_bytes()
            .map_err(|e| e.to_string())
            .and_then(|b| node.store.put_blob(&b).map_err(|e| e.to_string()))
        {
            Ok(cid) => Some(cid.to_string()),
            Err(e) => {
                return Ok(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("the node cannot keep the held-out samples: {e}"),
                ));
            }
        },
        None => None,
    };
    let requester = Requester::new(market, node.store.clone(), Some(node.client.clone()));
    let (id, outcome) = match requester.post(&p.files, &p.terms).await {
        Ok(x) => x,
        Err(e) => {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                &format!("the job was not posted, nothing was escrowed: {e}"),
            ));
        }
    };
    let record = PostedJob {
        spec_cid: p.files.spec.cid().to_string(),
        dataset_cid: cid_of(&p.files.dataset).to_string(),
        model_cid: cid_of(&p.files.model).to_string(),
        holdout_cid,
    };
    if let Err(e) = record.save(&node.dir, id) {
        tracing::warn!(target: "pedals::ui", job = id, error = %e, "the job's record was not written; `pedals job result` cannot score it");
    }
    info!(target: "pedals::ui", job = id, tx = %outcome.hash, "job posted from the page");
    Ok(Json(json!({"jobId": id, "tx": outcome.hash})).into_response())
}

/// `POST /api/jobs/calls`: stores and serves the job's files and answers the transactions
/// that post it, for the browser's wallet to sign (`chainId` is the chain they are for).
pub async fn calls(
    State(app): State<Arc<App>>,
    Json(body): Json<JobBody>,
) -> Result<Response, Refusal> {
    let node = node_of(&app)?;
    let p = prepare(node, body.job).await?;
    let requester = Requester::new(
        app.market.clone(),
        node.store.clone(),
        Some(node.client.clone()),
    );
    let calls = requester
        .wallet_calls(&p.files, &p.terms)
        .await
        .map_err(|e| Refusal(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Json(json!({
        "chainId": app.market.deployment().chain_id,
        "calls": calls,
    }))
    .into_response())
}

/// `GET /api/tx/{hash}`: whether a transaction the page sent is mined, and the job it posted.
pub async fn tx(State(app): State<Arc<App>>, Path(hash): Path<String>) -> Response {
    let Ok(hash) = hash.parse::<B256>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "a transaction is named by its hash: 0x and 64 hex digits",
        );
    };
    let receipt = match app.market.provider().get_transaction_receipt(hash).await {
        Ok(r) => r,
        Err(e) => return chain_error(e).into_response(),
    };
    let Some(receipt) = receipt else {
        return Json(json!({"state": "pending"})).into_response();
    };
    if !receipt.status() {
        return Json(json!({"state": "failed"})).into_response();
    }
    let job_market = app.market.deployment().job_market;
    let job = receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.address() == job_market)
        .find_map(|log| log.log_decode::<pedals_chain::JobMarket::JobPosted>().ok())
        .map(|log| log.inner.data.jobId.to_string());
    Json(json!({"state": "mined", "jobId": job})).into_response()
}
