//! `pedals job result`: the submitted result fetched and checked against the worker's on-chain
//! commitment, saved, and scored on the held-out samples; a zk job's logits checked against
//! the proven output commitment; a language-model job's completions (in `lm.rs`); a
//! fine-tuning job's adapter (in `ft.rs`).

use std::{path::PathBuf, time::Duration};

use eyre::{Context, ContextCompat};
use pedals_ml::Dataset;
use pedals_node::Requester;
use serde_json::json;

use super::{PostedJob, ResultArgs, lm, node, posted_path, read_market};

/// What to say when a job's result cannot be fetched.
pub(super) fn unserved(id: u64) -> String {
    format!(
        "cannot get the result of job {id}: a peer must serve it (pass --bootstrap with the \
         worker's address)"
    )
}

pub(super) async fn result(args: ResultArgs) -> eyre::Result<()> {
    let market = read_market(&args.chain).await?;
    let zk = pedals_core::Verification::Zk.is(crate::cmd::existing_job(&market, args.id)
        .await?
        .0
        .verification);
    let (dir, store, network) = node(&args.node).await?;
    let requester = Requester::new(market, store.clone(), Some(network.client.clone()));
    if zk {
        return zk_result(&requester, args).await;
    }
    if requester
        .is_lm_job(args.id, Duration::from_secs(args.wait_secs))
        .await?
    {
        return lm::result(&requester, args).await;
    }
    if requester
        .ft_spec(args.id, Duration::from_secs(args.wait_secs))
        .await?
        .is_some()
    {
        return super::ft::result(&requester, args).await;
    }
    let result = requester
        .result(args.id, Duration::from_secs(args.wait_secs))
        .await
        .wrap_err_with(|| unserved(args.id))?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("job-{}-model.bin", args.id)));
    std::fs::write(&out, &result.state)
        .wrap_err_with(|| format!("cannot write {}", out.display()))?;
    let holdout = match std::fs::read(posted_path(&dir, args.id)) {
        Ok(text) => serde_json::from_slice::<PostedJob>(&text)?.holdout_cid,
        Err(_) => None,
    };
    let accuracy = match holdout {
        _ if result.spec.inference.is_some() => {
            let bytes = store
                .blob(&result.spec.dataset_cid()?)?
                .context("the job's dataset is gone from the store")?;
            let data = Dataset::from_canonical_bytes(&bytes)?;
            Some((result.accuracy(&data)?, data.len()))
        }
        Some(cid) => {
            let bytes = store
                .blob(&pedals_core::parse_cid(&cid)?)?
                .context("the held-out samples are gone from the store")?;
            let data = Dataset::from_canonical_bytes(&bytes)?;
            Some((result.accuracy(&data)?, data.len()))
        }
        None => None,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "jobId": args.id,
                "out": out.display().to_string(),
                "finalStateHash": result.submitted.finalStateHash.to_string(),
                "accuracy": accuracy.map(|a| a.0),
                "heldOut": accuracy.map(|a| a.1),
            }))?
        );
    } else {
        println!(
            "job {} result saved to {} (matches the worker's on-chain commitment {})",
            args.id,
            out.display(),
            result.submitted.finalStateHash
        );
        match accuracy {
            Some((acc, n)) => println!("  accuracy {:.2}% on {n} held-out samples", acc * 100.0),
            None => println!("  no held-out samples for this job (set holdout in the job file)"),
        }
    }
    Ok(())
}

/// A zk job's logits, checked against the output commitment its proof was verified with.
async fn zk_result(requester: &Requester, args: ResultArgs) -> eyre::Result<()> {
    let result = requester
        .zk_result(args.id, Duration::from_secs(args.wait_secs))
        .await
        .wrap_err_with(|| {
            format!(
                "cannot get the result of zk job {}: a peer must serve it (pass --bootstrap with \
                 the worker's address)",
                args.id
            )
        })?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("job-{}-logits.json", args.id)));
    let rows: Vec<&[i32]> = result.logits.data.chunks(result.logits.cols).collect();
    let doc = json!({
        "jobId": args.id,
        "worker": result.accepted.worker.to_string(),
        "outputCommitment": result.accepted.outputCommitment.to_string(),
        "logitsQ8": rows,
        "predictions": result.predictions,
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)
        .wrap_err_with(|| format!("cannot write {}", out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        println!(
            "job {} logits saved to {} (they match the output commitment {} proven on-chain by {})",
            args.id,
            out.display(),
            result.accepted.outputCommitment,
            result.accepted.worker
        );
        println!("  predicted classes: {:?}", result.predictions);
    }
    Ok(())
}
