//! `pedals provider|validator status|stake|unstake|withdraw`: an account's stake and credit,
//! and the transactions that move them.

use std::path::PathBuf;

use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
    transports::http::reqwest::Url,
};
use clap::{Args, Subcommand};
use eyre::Context;
use pedals_chain::{Deployment, Market};
use serde_json::json;

/// The chain and the account.
#[derive(Debug, Args)]
pub(crate) struct AccountArgs {
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "PEDALS_RPC_URL")]
    rpc_url: Url,
    /// Deployment file written by the deploy script (contracts/deployments/<chain>.json).
    #[arg(long, env = "PEDALS_DEPLOYMENT")]
    deployment: PathBuf,
    /// Encrypted keystore (Web3 secret storage) of the account.
    #[arg(long, env = "PEDALS_KEYSTORE")]
    keystore: PathBuf,
    /// File holding the keystore's password (else `PEDALS_PASSWORD`, else a prompt).
    #[arg(long, env = "PEDALS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
}

/// Stake commands.
#[derive(Debug, Subcommand)]
pub(crate) enum StakeCommand {
    /// Show the account's stake (free, locked as collateral, unbonding), its market credit and
    /// its balance.
    ///
    /// Example: pedals provider status --json
    Status {
        #[command(flatten)]
        account: AccountArgs,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add to the account's stake.
    ///
    /// Example: pedals provider stake --eth 0.5
    Stake {
        #[command(flatten)]
        account: AccountArgs,
        /// How much, in ETH.
        #[arg(long)]
        eth: String,
    },
    /// Start unbonding part of the free stake; `withdraw` takes it out once the delay is over.
    ///
    /// Example: pedals provider unstake --eth 0.5
    Unstake {
        #[command(flatten)]
        account: AccountArgs,
        /// How much, in ETH.
        #[arg(long)]
        eth: String,
    },
    /// Take out the unbonded stake (once its delay is over) and the market credit.
    ///
    /// Example: pedals provider withdraw
    Withdraw {
        #[command(flatten)]
        account: AccountArgs,
    },
}

pub(crate) async fn connect(account: &AccountArgs) -> eyre::Result<Market> {
    let signer: PrivateKeySigner =
        super::secret::open_keystore(&account.keystore, account.password_file.as_deref())?;
    let deployment = Deployment::load(&account.deployment)?;
    Market::connect(account.rpc_url.clone(), signer, deployment)
        .await
        .wrap_err_with(|| format!("cannot reach the chain at {}", account.rpc_url))
}

fn amount(eth: &str) -> eyre::Result<U256> {
    let wei = super::parse_eth(eth)?;
    eyre::ensure!(wei > U256::ZERO, "the amount must be more than zero");
    Ok(wei)
}

async fn print_status(market: &Market, who: Address, json: bool) -> eyre::Result<()> {
    let stake = market.stake_of(who).await?;
    let credit = market.credit_of(who).await?;
    let balance = market.balance(who).await?;
    let free = U256::from(stake.staked).saturating_sub(U256::from(stake.locked));
    if json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "account": who.to_string(),
                "stakedWei": stake.staked.to_string(),
                "lockedWei": stake.locked.to_string(),
                "freeWei": free.to_string(),
                "unbondingWei": stake.unbonding.to_string(),
                "unbondsAt": stake.unbondsAt,
                "creditWei": credit.to_string(),
                "balanceWei": balance.to_string(),
            }))?
        );
    } else {
        println!("account {who}");
        println!(
            "  stake {} ETH ({} free, {} locked as collateral)",
            super::eth(U256::from(stake.staked)),
            super::eth(free),
            super::eth(U256::from(stake.locked))
        );
        if stake.unbonding > 0 {
            let now = pedals_chain::chain_time(market.provider()).await?;
            println!(
                "  unbonding {} ETH, withdrawable {}",
                super::eth(U256::from(stake.unbonding)),
                pedals_chain::human::at(stake.unbondsAt, now)
            );
        }
        println!("  market credit {} ETH", super::eth(credit));
        println!("  balance {} ETH", super::eth(balance));
    }
    Ok(())
}

impl StakeCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Status { account, json } => {
                let market = connect(&account).await?;
                print_status(&market, market.sender(), json).await
            }
            Self::Stake { account, eth } => {
                let wei = amount(&eth)?;
                let market = connect(&account).await?;
                let tx = market.stake(wei).await.wrap_err("staking failed")?;
                println!("staked {} ETH (tx {})", super::eth(wei), tx.hash);
                Ok(())
            }
            Self::Unstake { account, eth } => {
                let wei = amount(&eth)?;
                let market = connect(&account).await?;
                let tx = market.request_unstake(wei).await.wrap_err(
                    "unstaking failed: only free stake (not locked as collateral) can unbond; \
                     see `pedals provider status`",
                )?;
                let after = market.stake_of(market.sender()).await?;
                let now = pedals_chain::chain_time(market.provider()).await?;
                println!(
                    "unbonding {} ETH, withdrawable {} with `pedals provider withdraw` (tx {})",
                    super::eth(wei),
                    pedals_chain::human::at(after.unbondsAt, now),
                    tx.hash
                );
                Ok(())
            }
            Self::Withdraw { account } => {
                let market = connect(&account).await?;
                let who = market.sender();
                let stake = market.stake_of(who).await?;
                let credit = market.credit_of(who).await?;
                eyre::ensure!(
                    stake.unbonding > 0 || credit > U256::ZERO,
                    "nothing to withdraw: no unbonding stake and no market credit"
                );
                if stake.unbonding > 0 {
                    let now = pedals_chain::chain_time(market.provider()).await?;
                    let tx = market.withdraw_stake().await.wrap_err_with(|| {
                        format!(
                            "the unbonding stake is withdrawable {}",
                            pedals_chain::human::at(stake.unbondsAt, now)
                        )
                    })?;
                    println!(
                        "withdrew {} ETH of stake (tx {})",
                        super::eth(U256::from(stake.unbonding)),
                        tx.hash
                    );
                }
                if credit > U256::ZERO {
                    let tx = market
                        .withdraw()
                        .await
                        .wrap_err("withdrawing the credit failed")?;
                    println!(
                        "withdrew {} ETH of market credit (tx {})",
                        super::eth(credit),
                        tx.hash
                    );
                }
                Ok(())
            }
        }
    }
}
