//! `pedals job demand`: make the worker of a submitted job publish the state after one step
//! (by default its result) on-chain, or lose its collateral (docs/protocol.md §7).

use alloy::primitives::U256;
use clap::Args;
use eyre::Context;
use pedals_chain::{JobStatus, chain_time};
use serde_json::json;

use super::job::{ChainArgs, SignerArgs, signed_market};

/// Options of `pedals job demand`.
#[derive(Debug, Args)]
pub(crate) struct DemandArgs {
    /// The job id.
    id: u64,
    /// The step whose state to demand (default: the last, which is the result).
    #[arg(long)]
    step: Option<u64>,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    signer: SignerArgs,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn demand(args: DemandArgs) -> eyre::Result<()> {
    let market = signed_market(&args.chain, &args.signer).await?;
    let job_id = pedals_core::JobId(args.id);
    let (job, status) = super::existing_job(&market, args.id).await?;
    eyre::ensure!(
        status == JobStatus::Submitted,
        "job {} is {status}: a demand needs a submitted job inside its challenge window, with \
         no demand or dispute open",
        args.id
    );
    let steps = u64::from(job.steps);
    let step = args.step.unwrap_or(steps);
    eyre::ensure!(
        step <= steps,
        "job {} has {steps} steps: demand a step from 0 to {steps}",
        args.id
    );
    let now = chain_time(market.provider()).await?;
    let window_end = job.windowEnd.to::<u64>();
    eyre::ensure!(
        now < window_end,
        "the challenge window of job {} has closed: it can only be finalized now",
        args.id
    );
    let bond = U256::from(market.parameters().await?.challengeBond);
    let balance = market.balance(market.sender()).await?;
    eyre::ensure!(
        balance > bond,
        "the demand's bond is {} ETH and {} holds {} ETH; fund it first",
        super::eth(bond),
        market.sender(),
        super::eth(balance)
    );
    let outcome = market
        .demand_data(job_id, step, bond)
        .await
        .wrap_err("the demand was refused")?;
    let demand = market.demand(job_id).await?;
    let deadline = demand.deadline.to::<u64>();
    if args.json {
        println!(
            "{}",
            json!({
                "job": args.id,
                "step": step,
                "bond": bond.to_string(),
                "deadline": deadline,
                "tx": outcome.hash,
            })
        );
    } else {
        println!(
            "demanded the state after step {step} of job {} (bond {} ETH, tx {})",
            args.id,
            super::eth(bond),
            outcome.hash
        );
        println!(
            "  the worker must publish it on-chain within {} s; if it does, the bond is its pay \
             for the gas, and `pedals job result {}` reads the result from the chain when the \
             worker serves it nowhere else; if not, its collateral is seized and the payment \
             comes back to the requester",
            deadline.saturating_sub(now),
            args.id
        );
    }
    Ok(())
}
