//! `pedals job post|result` for a language-model batch job (a job file with `[generate]`):
//! the model and the prompts posted with the generation parameters; the completions fetched,
//! checked against the worker's trace, and some chunks re-run here.

use pedals_lm::CanonicalSpec as _;
use std::{path::Path, path::PathBuf, time::Duration};

use eyre::Context;
use pedals_core::cid_of;
use pedals_node::{LmJobResult, Requester};
use rand::seq::index::sample;
use serde_json::json;

use super::{JobFile, PostArgs, PostedJob, ResultArgs, node, signed_market};

/// The requester's node for `job post`, or nothing on a dry run.
pub(super) type Opened = Option<(
    PathBuf,
    std::sync::Arc<pedals_store::Store>,
    pedals_p2p::Network,
)>;

/// Opens the requester's node unless this is a dry run.
pub(super) async fn open(args: &PostArgs) -> eyre::Result<Opened> {
    Ok(if args.dry_run {
        None
    } else {
        Some(node(&args.node).await?)
    })
}

/// Posts a language-model job (batch or fine-tune) that a job file became: prints `summary`
/// on a dry run; else posts it with `post`, records and reports it, and serves its files until
/// a worker claims it.
pub(super) async fn post_job(
    args: &PostArgs,
    opened: Opened,
    summary: serde_json::Value,
    record: PostedJob,
    headline: impl FnOnce(u64, &pedals_chain::TxOutcome) -> String,
    post: impl AsyncFnOnce(&Requester) -> Result<(u64, pedals_chain::TxOutcome), pedals_node::NodeError>,
) -> eyre::Result<()> {
    let Some((store_dir, store, network)) = opened else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    };
    let market = signed_market(&args.chain, &args.signer).await?;
    let requester = Requester::new(market, store, Some(network.client.clone()));
    let (id, outcome) = post(&requester)
        .await
        .wrap_err("posting the job failed; nothing was escrowed")?;
    let headline = headline(id, &outcome);
    super::report_posted(
        &store_dir, id, &record, summary, &outcome, &network, args.json, headline,
    )
    .await?;
    if args.no_wait {
        return Ok(());
    }
    super::wait_serving(&requester, id, args.json).await
}

/// Posts a `[generate]` job file.
pub(super) async fn post(args: PostArgs, file: JobFile, dir: &Path) -> eyre::Result<()> {
    let opened = open(&args).await?;
    let lookup = |cid: &pedals_core::Cid| {
        opened
            .as_ref()
            .and_then(|(_, s, _)| s.blob(cid).ok().flatten())
    };
    let prepared = file.prepare_lm(dir, lookup)?;
    let spec = &prepared.files.spec;
    let summary = json!({
        "kind": "lm-generate",
        "specCid": spec.cid().to_string(),
        "modelCid": spec.model,
        "promptsCid": spec.prompts,
        "prompts": spec.count,
        "chunk": spec.chunk,
        "steps": spec.steps,
        "maxTokens": spec.max_tokens,
        "paymentWei": prepared.terms.payment.to_string(),
    });
    let record = PostedJob {
        spec_cid: spec.cid().to_string(),
        dataset_cid: cid_of(&prepared.files.prompts).to_string(),
        model_cid: spec.model.clone(),
        holdout_cid: None,
    };
    let headline = |id, outcome: &pedals_chain::TxOutcome| {
        format!(
            "job {id} posted: {} prompts in {} chunks, {} ETH escrowed (tx {})",
            spec.count,
            spec.steps,
            crate::cmd::eth(prepared.terms.payment),
            outcome.hash
        )
    };
    post_job(
        &args,
        opened,
        summary,
        record,
        headline,
        async |r: &Requester| r.post_lm(&prepared.files, &prepared.terms).await,
    )
    .await
}

/// Fetches, checks and saves a language-model job's completions, re-running `--recheck`
/// chunks chosen at random here.
pub(super) async fn result(requester: &Requester, args: ResultArgs) -> eyre::Result<()> {
    let patience = Duration::from_secs(args.wait_secs);
    let result = requester
        .lm_result(args.id, patience)
        .await
        .wrap_err_with(|| {
            format!(
                "cannot get the completions of job {}: a peer must serve them (pass --bootstrap \
                 with the worker's address)",
                args.id
            )
        })?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("job-{}-completions.jsonl", args.id)));
    std::fs::write(&out, &result.completions)
        .wrap_err_with(|| format!("cannot write {}", out.display()))?;
    let checked = recheck(requester, &result, args.recheck, patience).await?;
    let wrong: Vec<u64> = checked.iter().filter(|c| !c.1).map(|c| c.0).collect();
    let lines = result.lines()?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "jobId": args.id,
                "out": out.display().to_string(),
                "traceRoot": result.submitted.traceRoot.to_string(),
                "completions": lines.len(),
                "rechecked": checked.iter().map(|c| c.0).collect::<Vec<_>>(),
                "mismatched": wrong,
            }))?
        );
    } else {
        println!(
            "job {} completions saved to {} ({} lines; they rebuild the trace {} the worker posted)",
            args.id,
            out.display(),
            lines.len(),
            result.submitted.traceRoot
        );
        if !checked.is_empty() {
            println!(
                "  re-ran chunk(s) {:?} here: {}",
                checked.iter().map(|c| c.0).collect::<Vec<_>>(),
                if wrong.is_empty() {
                    "byte for byte the worker's"
                } else {
                    "MISMATCH"
                }
            );
        }
    }
    eyre::ensure!(
        wrong.is_empty(),
        "chunk(s) {wrong:?} of job {} differ from what this machine computes: the worker's \
         completions are wrong (language-model jobs cannot be disputed yet; do not use them)",
        args.id
    );
    Ok(())
}

/// Re-runs `count` chunks of `result`, chosen at random, and says which matched.
async fn recheck(
    requester: &Requester,
    result: &LmJobResult,
    count: u64,
    patience: Duration,
) -> eyre::Result<Vec<(u64, bool)>> {
    let steps = result.spec.steps;
    let n = count.min(steps) as usize;
    let mut picked: Vec<u64> = sample(&mut rand::thread_rng(), steps as usize, n)
        .into_iter()
        .map(|i| i as u64)
        .collect();
    picked.sort_unstable();
    Ok(requester.recheck_lm(result, picked, patience).await?)
}
