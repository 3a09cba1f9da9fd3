//! The requester's read-only commands: `job watch`, `job list` and `job status`.

use super::*;
#[allow(clippy::wildcard_imports)]
use pedals_chain::human::secs as human_secs;

pub(super) async fn watch(args: WatchArgs) -> eyre::Result<()> {
    let market = read_market(&args.chain).await?;
    let id = pedals_core::JobId(args.id);
    let mut feed = if args.net.bootstrap.is_empty() {
        None
    } else {
        // A node of its own, with a fresh identity and nothing to serve: it only listens.
        let network = pedals_p2p::start(
            pedals_p2p::Keypair::generate_ed25519(),
            args.net.config(&[], &[]),
            Arc::new(pedals_p2p::MemorySource::default()),
        )
        .await
        .wrap_err("cannot join the network: check --bootstrap and --listen")?;
        let d = market.deployment();
        Some(ProgressFeed::new(
            network,
            d.chain_id,
            d.job_market,
            args.id,
        ))
    };
    let mut view = JobView::new(args.id, args.json);
    let poll = Duration::from_millis(args.poll_ms.max(50));
    // The chain is read every `poll`; gossip, which moves faster, every 200 ms between.
    let tick = poll.min(Duration::from_millis(200));
    let mut snapshot = None;
    let mut last_read = None::<std::time::Instant>;
    loop {
        if last_read.is_none_or(|t| t.elapsed() >= poll) {
            let job = market.job(id).await?;
            let now = pedals_chain::chain_time(market.provider()).await?;
            let listening = match &feed {
                Some(f) => f.connected().await,
                None => false,
            };
            let mut s = Snapshot::of(&job, now, listening);
            eyre::ensure!(
                s.status != JobStatus::None,
                "there is no job {}: `pedals job list` shows the jobs",
                args.id
            );
            if s.status == JobStatus::Disputed {
                let game = market.game_of(id).await?;
                let mover = if game.worker_to_move {
                    "worker"
                } else {
                    "challenger"
                };
                s.dispute = Some((
                    format!(
                        "{:?}, {mover} to move, {} s left on its clock",
                        game.phase, game.remaining
                    ),
                    json!({
                        "phase": format!("{:?}", game.phase),
                        "toMove": mover,
                        "secondsLeft": game.remaining,
                    }),
                ));
            }
            snapshot = Some(s);
            last_read = Some(std::time::Instant::now());
        }
        let s = snapshot.as_mut().context("read above")?;
        if let Some(feed) = &mut feed {
            s.progress = feed.poll(s.worker);
        }
        if s.status.is_terminal() {
            view.finish(s);
            return Ok(());
        }
        view.show(s);
        tokio::time::sleep(tick).await;
    }
}

pub(super) async fn list(args: ListArgs) -> eyre::Result<()> {
    let wanted = match &args.status {
        Some(s) => Some(
            [
                JobStatus::Posted,
                JobStatus::Claimed,
                JobStatus::Submitted,
                JobStatus::Disputed,
                JobStatus::Finalized,
                JobStatus::Cancelled,
                JobStatus::Expired,
                JobStatus::Resolved,
            ]
            .into_iter()
            .find(|st| st.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                eyre::eyre!(
                    "unknown status {s:?}: use posted, claimed, submitted, disputed, finalized, \
                     cancelled, expired or resolved"
                )
            })?,
        ),
        None => None,
    };
    let market = read_market(&args.chain).await?;
    let next: u64 = market
        .job_market()
        .nextJobId()
        .call()
        .await
        .wrap_err("cannot read the job count")?
        .saturating_to();
    let mut jobs = Vec::new();
    for id in (1..next).rev() {
        if jobs.len() as u64 >= args.limit {
            break;
        }
        let job = market.job(pedals_core::JobId(id)).await?;
        let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
        if wanted.is_some_and(|w| w != status) {
            continue;
        }
        jobs.push(json!({
            "jobId": id,
            "status": status.to_string(),
            "requester": job.requester.to_string(),
            "worker": job.worker.to_string(),
            "paymentWei": job.payment.to_string(),
            "steps": job.steps,
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string(&json!({ "jobs": jobs }))?);
        return Ok(());
    }
    if jobs.is_empty() {
        println!("no jobs");
        return Ok(());
    }
    println!(
        "{:>6}  {:<10}  {:>12}  {:>8}  worker",
        "job", "status", "ETH", "steps"
    );
    for j in &jobs {
        let payment: U256 = j["paymentWei"]
            .as_str()
            .unwrap_or("0")
            .parse()
            .unwrap_or_default();
        let worker = match j["worker"].as_str() {
            Some(w) if w.parse::<alloy::primitives::Address>().ok() != Some(Default::default()) => {
                w
            }
            _ => "-",
        };
        println!(
            "{:>6}  {:<10}  {:>12}  {:>8}  {worker}",
            j["jobId"].as_u64().unwrap_or_default(),
            j["status"].as_str().unwrap_or_default(),
            super::super::eth(payment),
            j["steps"].as_u64().unwrap_or_default(),
        );
    }
    Ok(())
}

pub(super) async fn status(args: StatusArgs) -> eyre::Result<()> {
    let market = read_market(&args.chain).await?;
    let (job, status) = crate::cmd::existing_job(&market, args.id).await?;
    let submitted = market.submitted_result(pedals_core::JobId(args.id)).await?;
    let result = submitted.as_ref().map(|s| {
        json!({
            "traceRoot": s.traceRoot.to_string(),
            "finalStateHash": s.finalStateHash.to_string(),
            "resultCid": cid_from_bytes(&s.resultCid).map_or_else(|e| format!("invalid: {e}"), |c| c.to_string()),
        })
    });
    let dispute = if status == JobStatus::Disputed {
        let challenge = market
            .job_market()
            .getChallenge(pedals_core::JobId(args.id).to_u256())
            .call()
            .await
            .wrap_err("cannot read the challenge")?;
        let game = market.game_of(pedals_core::JobId(args.id)).await?;
        Some(json!({
            "step": challenge.step,
            "challenger": challenge.challenger.to_string(),
            "phase": format!("{:?}", game.phase),
            "toMove": if game.worker_to_move { "worker" } else { "challenger" },
            "secondsLeft": game.remaining,
            "leaf": game.leaf,
        }))
    } else {
        None
    };
    let doc = json!({
        "jobId": args.id,
        "status": status.to_string(),
        "dispute": dispute,
        "requester": job.requester.to_string(),
        "worker": job.worker.to_string(),
        "paymentWei": job.payment.to_string(),
        "collateralWei": job.collateral.to_string(),
        "steps": job.steps,
        "claimDeadline": job.claimDeadline.to::<u64>(),
        "deliveryDeadline": job.deliveryDeadline.to::<u64>(),
        "windowEnd": job.windowEnd.to::<u64>(),
        "result": result,
    });
    if args.json {
        println!("{}", serde_json::to_string(&doc)?);
        return Ok(());
    }
    println!("job {}: {status}", args.id);
    println!(
        "  requester {}, {} ETH for {} steps",
        job.requester,
        super::super::eth(U256::from(job.payment)),
        job.steps
    );
    if !job.worker.is_zero() {
        println!(
            "  worker {}, {} ETH collateral",
            job.worker,
            super::super::eth(U256::from(job.collateral))
        );
    }
    let now = pedals_chain::chain_time(market.provider()).await?;
    let until = |deadline: u64| match deadline.checked_sub(now) {
        Some(left) => format!("in {}", human_secs(left)),
        None => format!("{} ago", human_secs(now - deadline)),
    };
    match status {
        JobStatus::Posted => println!("  claim deadline {}", until(job.claimDeadline.to::<u64>())),
        JobStatus::Claimed => println!(
            "  delivery deadline {}",
            until(job.deliveryDeadline.to::<u64>())
        ),
        _ => {}
    }
    if let Some(r) = &doc["result"].as_object() {
        println!(
            "  trace root {}",
            r["traceRoot"].as_str().unwrap_or_default()
        );
        println!("  result {}", r["resultCid"].as_str().unwrap_or_default());
        if status == JobStatus::Submitted {
            println!(
                "  challenge window ends {}",
                until(job.windowEnd.to::<u64>())
            );
        }
    }
    if let Some(d) = doc["dispute"].as_object() {
        println!(
            "  disputed by {} at step {}: {} to move ({}), {} left on its clock",
            d["challenger"].as_str().unwrap_or_default(),
            d["step"],
            d["toMove"].as_str().unwrap_or_default(),
            d["phase"].as_str().unwrap_or_default(),
            human_secs(d["secondsLeft"].as_u64().unwrap_or_default())
        );
    }
    Ok(())
}
