//! `pedals market fees|withdraw-fees`: the market's protocol fees, for its operator: what has
//! accrued and not been withdrawn, the rate each payment is charged, who may withdraw them,
//! and their withdrawal by that account.

use alloy::primitives::U256;
use clap::{Args, Subcommand};
use eyre::Context;
use serde_json::json;

use super::job::{ChainArgs, SignerArgs, read_market, signed_market};

/// Market commands.
#[derive(Debug, Subcommand)]
pub(crate) enum MarketCommand {
    /// The protocol fees: accrued and not yet withdrawn, the rate charged on each payment
    /// (fixed per job when it is posted) and the account that may withdraw them.
    ///
    /// Example: pedals market fees --json
    Fees(FeesArgs),
    /// Withdraw the accrued protocol fees to the fee recipient, which must sign.
    ///
    /// Example: pedals market withdraw-fees --keystore ~/.pedals/fees.json
    WithdrawFees(WithdrawFeesArgs),
}

/// Options of `pedals market fees`.
#[derive(Debug, Args)]
pub(crate) struct FeesArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Print one JSON object (amounts in wei, as strings).
    #[arg(long)]
    json: bool,
}

/// Options of `pedals market withdraw-fees`.
#[derive(Debug, Args)]
pub(crate) struct WithdrawFeesArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    signer: SignerArgs,
}

impl MarketCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Fees(args) => fees(args).await,
            Self::WithdrawFees(args) => withdraw(args).await,
        }
    }
}

async fn fees(args: FeesArgs) -> eyre::Result<()> {
    let market = read_market(&args.chain).await?;
    let accrued = market.fees_accrued().await?;
    let rate = market.parameters().await?.protocolFeeBps;
    let recipient = market.job_market().feeRecipient().call().await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "market": market.deployment().job_market.to_string(),
                "feesAccruedWei": accrued.to_string(),
                "protocolFeeBps": rate,
                "feeRecipient": recipient.to_string(),
            }))?
        );
        return Ok(());
    }
    println!("market {}", market.deployment().job_market);
    println!("  fees accrued {} ETH", super::eth(accrued));
    println!(
        "  rate {}% of each payment ({rate} bps, fixed per job when it is posted)",
        f64::from(rate) / 100.0
    );
    println!("  recipient {recipient} (`pedals market withdraw-fees` with its keystore)");
    Ok(())
}

async fn withdraw(args: WithdrawFeesArgs) -> eyre::Result<()> {
    let market = signed_market(&args.chain, &args.signer).await?;
    let recipient = market.job_market().feeRecipient().call().await?;
    eyre::ensure!(
        market.sender() == recipient,
        "only the fee recipient {recipient} may withdraw the fees, and this keystore is {}: \
         sign with the recipient's keystore",
        market.sender()
    );
    let accrued = market.fees_accrued().await?;
    eyre::ensure!(
        accrued > U256::ZERO,
        "nothing to withdraw: no fees have accrued since the last withdrawal"
    );
    let tx = market
        .withdraw_fees()
        .await
        .wrap_err("withdrawing the fees failed")?;
    println!(
        "withdrew {} ETH of fees to {recipient} (tx {})",
        super::eth(accrued),
        tx.hash
    );
    Ok(())
}
