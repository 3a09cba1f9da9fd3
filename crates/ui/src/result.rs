//! A job's result, from the page: the requester's node fetches the worker's result over the
//! network, checks it against the worker's on-chain commitment, saves it, and scores it on
//! the samples it kept back when the job was posted (as `pedals job result` does).

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use pedals_core::parse_cid;
use pedals_ml::Dataset;
use pedals_node::{JobResult, PostedJob, Requester};
use serde_json::{Value, json};
use tracing::info;

use crate::{
    api::{App, Refusal},
    node::{NodeState, node_of},
};

/// How long to look for a peer that serves the result.
const PATIENCE: Duration = Duration::from_secs(30);

/// The samples to score `result` on, and what they are: the job's dataset for batch
/// inference, else the samples this node kept back when it posted the job.
fn scoring_data(node: &NodeState, id: u64, result: &JobResult) -> Result<Option<Dataset>, String> {
    let cid = if result.spec.inference.is_some() {
        Some(result.spec.dataset_cid().map_err(|e| e.to_string())?)
    } else {
        match PostedJob::load(&node.dir, id) {
            Ok(posted) => match posted.holdout_cid {
                Some(c) => Some(parse_cid(&c).map_err(|e| e.to_string())?),
                None => None,
            },
            // Posted elsewhere (or by a browser wallet): nothing was kept back here.
            Err(_) => None,
        }
    };
    let Some(cid) = cid else {
        return Ok(None);
    };
    let bytes = node
        .store
        .blob(&cid)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the samples {cid} are gone from the node's store"))?;
    Dataset::from_canonical_bytes(&bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// `POST /api/jobs/{id}/result`: fetches, checks, saves and scores job `id`'s result; the
/// answer (`finalStateHash`, `saved`, `accuracy`, `scoredOn`) is also kept for the job's page.
pub async fn fetch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let id: u64 = id
        .parse()
        .map_err(|_| Refusal(StatusCode::BAD_REQUEST, "a job id is a whole number".into()))?;
    let node = node_of(&app)?;
    let requester = Requester::new(
        app.market.clone(),
        node.store.clone(),
        Some(node.client.clone()),
    );
    let result = requester.result(id, PATIENCE).await.map_err(|e| {
        Refusal(
            StatusCode::BAD_GATEWAY,
            format!(
                "cannot get the result of job {id}: {e}. A peer must serve it (the worker does \
                 while it runs); `pedals job result {id}` also fetches language-model, \
                 fine-tuning and zk results"
            ),
        )
    })?;
    let dir = node.dir.join("results");
    let saved = dir.join(format!("job-{id}-model.bin"));
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&saved, &result.state))
        .map_err(|e| {
            Refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot save the result in {}: {e}", dir.display()),
            )
        })?;
    let data = scoring_data(node, id, &result)
        .map_err(|m| Refusal(StatusCode::INTERNAL_SERVER_ERROR, m))?;
    let accuracy = match &data {
        Some(d) => Some(
            result
                .accuracy(d)
                .map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
        ),
        None => None,
    };
    let answer = json!({
        "finalStateHash": result.submitted.finalStateHash,
        "saved": saved,
        "accuracy": accuracy,
        "scoredOn": data.as_ref().map(Dataset::len),
        "inference": result.spec.inference.is_some(),
    });
    info!(target: "pedals::ui", job = id, saved = %saved.display(), ?accuracy, "result fetched from the page");
    node.keep_result(id, answer.clone());
    Ok(Json(answer).into_response())
}

/// What the page fetched of job `id`'s result, if it did.
pub(crate) fn kept(app: &App, id: u64) -> Option<Value> {
    app.node.as_ref().and_then(|n| n.result(id))
}
