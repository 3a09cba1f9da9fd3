//! `pedals job post|result` for a fine-tuning job (a job file with `[finetune]`): the model and
//! the dataset posted with the terms; the final state fetched, checked against the worker's
//! commitment and saved as a peft adapter, and some steps re-executed here from the worker's
//! own checkpoints.

use std::{path::Path, path::PathBuf, time::Duration};

use eyre::Context;
use pedals_core::cid_of;
use pedals_lm::CanonicalSpec as _;
use pedals_lm::JobState;
use pedals_node::{Requester, StepCheck};
use rand::seq::index::sample;
use serde_json::json;

use super::{JobFile, PostArgs, PostedJob, ResultArgs};

/// Posts a `[finetune]` job file.
pub(super) async fn post(args: PostArgs, file: JobFile, dir: &Path) -> eyre::Result<()> {
    let opened = super::lm::open(&args).await?;
    let lookup = |cid: &pedals_core::Cid| {
        opened
            .as_ref()
            .and_then(|(_, s, _)| s.blob(cid).ok().flatten())
    };
    let prepared = file.prepare_ft(dir, lookup)?;
    let spec = &prepared.files.spec;
    let summary = json!({
        "kind": "lm-finetune",
        "specCid": spec.cid().to_string(),
        "modelCid": spec.model,
        "datasetCid": spec.dataset,
        "examples": spec.count,
        "steps": spec.steps,
        "batch": spec.batch,
        "method": spec.method,
        "rank": spec.rank,
        "targets": spec.targets,
        "paymentWei": prepared.terms.payment.to_string(),
    });
    let record = PostedJob {
        spec_cid: spec.cid().to_string(),
        dataset_cid: cid_of(&prepared.files.dataset).to_string(),
        model_cid: spec.model.clone(),
        holdout_cid: None,
    };
    let headline = |id, outcome: &pedals_chain::TxOutcome| {
        format!(
            "job {id} posted: fine-tune on {} examples in {} steps, {} ETH escrowed (tx {})",
            spec.count,
            spec.steps,
            crate::cmd::eth(prepared.terms.payment),
            outcome.hash
        )
    };
    super::lm::post_job(
        &args,
        opened,
        summary,
        record,
        headline,
        async |r: &Requester| r.post_ft(&prepared.files, &prepared.terms).await,
    )
    .await
}

/// Fetches, checks and saves a fine-tuning job's adapter, re-executing `--recheck` steps
/// chosen at random (and checking the worker's first state) here.
pub(super) async fn result(requester: &Requester, args: ResultArgs) -> eyre::Result<()> {
    let patience = Duration::from_secs(args.wait_secs);
    let result = requester
        .ft_result(args.id, patience)
        .await
        .wrap_err_with(|| super::result::unserved(args.id))?;
    let what = match result.state {
        JobState::Lora(_) => "adapter",
        JobState::Full(_) => "model",
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("job-{}-{what}", args.id)));
    let inputs = &result.inputs;
    match &result.state {
        JobState::Lora(st) => {
            let c = &inputs.model.config;
            pedals_lm::train::peft::save_peft(&out, c, &inputs.run.lora, st)
        }
        JobState::Full(st) => st.model(&inputs.model).to_checkpoint().save_hf(&out),
    }
    .wrap_err_with(|| format!("cannot write the {what} to {}", out.display()))?;
    std::fs::write(out.join("state.pdls"), inputs.state_bytes(&result.state)?)?;
    let steps = result.spec.steps;
    let n = args.recheck.min(steps) as usize;
    let mut picked: Vec<u64> = sample(&mut rand::thread_rng(), steps as usize, n)
        .into_iter()
        .map(|i| i as u64 + 1)
        .collect();
    picked.sort_unstable();
    let checked = requester.recheck_ft(&result, &picked).await?;
    let with = |f: fn(&StepCheck) -> bool| -> Vec<u64> {
        checked.iter().filter(|c| f(&c.1)).map(|c| c.0).collect()
    };
    let wrong = with(|c| *c == StepCheck::Differs);
    let missing = with(|c| matches!(c, StepCheck::Unavailable(_)));
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "jobId": args.id,
                "out": out.display().to_string(),
                "traceRoot": result.submitted.traceRoot.to_string(),
                "finalStateHash": result.submitted.finalStateHash.to_string(),
                "rechecked": picked,
                "mismatched": wrong,
                "unavailable": missing,
            }))?
        );
    } else {
        let format = if what == "adapter" {
            "peft format"
        } else {
            "a Hugging Face checkpoint"
        };
        println!(
            "job {} {what} saved to {} ({format}; its state hashes to the final state {} the \
             worker posted)",
            args.id,
            out.display(),
            result.submitted.finalStateHash
        );
        for (s, c) in &checked {
            let what = if *s == 0 {
                "the first state".to_owned()
            } else {
                format!("step {s}")
            };
            match c {
                StepCheck::Matches => println!("  re-executed {what} here: the worker's"),
                StepCheck::Differs => println!("  re-executed {what} here: MISMATCH"),
                StepCheck::Unavailable(why) => println!("  {what}: not served ({why})"),
            }
        }
    }
    eyre::ensure!(
        wrong.is_empty(),
        "step(s) {wrong:?} of job {} differ from what this machine computes (step 0 is the \
         initial state): the worker's fine-tune is wrong; do not use the result, and \
         challenge the step within the window (a validator running `pedals validator run` \
         does not check fine-tuning jobs yet)",
        args.id
    );
    eyre::ensure!(
        missing.is_empty(),
        "step(s) {missing:?} of job {} could not be checked: the worker's node did not serve \
         them; `pedals job demand {} --step N` makes the worker publish a state on-chain",
        args.id,
        args.id
    );
    Ok(())
}
