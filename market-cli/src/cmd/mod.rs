//! One module per command.

mod config;
mod daemon_ui;
mod data;
mod datadir;
mod demand;
mod demo;
mod deploy;
mod devnet;
mod devnet_proc;
mod devnet_up;
#[cfg(debug_assertions)]
mod dispute_demo;
mod finetune;
mod job;
mod market;
mod model;
mod net;
pub(crate) mod progress;
mod provider;
mod secret;
mod spandispute;
mod spanpay;
mod stake;
mod swarm;
mod ui;
mod validator;
mod wallet;

pub(crate) use config::MissingSetting;

use clap::Subcommand;

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Content-addressed files: add them, list them, fetch them by CID, serve them to peers.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Deploy every contract to a network (anvil, Base, OP or Arbitrum Sepolia, or any RPC
    /// endpoint), hand the roles over and write the deployment file; `deploy check` reads a
    /// deployment back from the chain and checks it.
    ///
    /// Example: pedals deploy --network base-sepolia --keystore deployer.json --admin 0xSafe… --pauser 0xGuard…
    Deploy(Box<deploy::DeployCommand>),
    /// A local devnet: anvil with every Pedals contract deployed.
    #[command(subcommand)]
    Devnet(devnet::DevnetCommand),
    /// Serve an OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions,
    /// streaming) over a model that span servers run (docs/split-inference.md).
    ///
    /// Example: pedals gateway --model bafkrei… --api-key sk-local --bootstrap /ip4/…
    Gateway(Box<swarm::GatewayArgs>),
    /// The deposit a gateway pays span servers from (split inference's `SpanPayments`):
    /// add to it, ask to withdraw, withdraw, show.
    #[command(subcommand)]
    Deposit(spanpay::DepositCommand),
    /// Requester commands: post a job, follow it, get its result, cancel it.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// The market's protocol fees: what has accrued, the rate, the recipient; withdraw them.
    #[command(subcommand)]
    Market(market::MarketCommand),
    /// Language models in exact mode: import a Hugging Face checkpoint, inspect it, generate,
    /// export it back.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Provider (worker) commands.
    #[command(subcommand)]
    Provider(provider::ProviderCommand),
    /// The web app on localhost: the market, every job and its transactions, the providers;
    /// read from the chain by this node (docs/web-app.md).
    ///
    /// Example: pedals ui --rpc-url http://127.0.0.1:8545 --deployment contracts/deployments/31337.json
    Ui(ui::UiArgs),
    /// Validator commands: check submitted jobs by re-execution and dispute wrong steps.
    #[command(subcommand)]
    Validator(validator::ValidatorCommand),
    /// Encrypted keystores for the accounts that sign.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Print a shell completion script.
    ///
    /// Example: pedals completions bash > ~/.local/share/bash-completion/completions/pedals
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Command {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Data(cmd) => cmd.run().await,
            Self::Deploy(cmd) => cmd.run().await,
            Self::Devnet(cmd) => cmd.run().await,
            Self::Deposit(cmd) => cmd.run().await,
            Self::Gateway(args) => args.run().await,
            Self::Job(cmd) => cmd.run().await,
            Self::Market(cmd) => cmd.run().await,
            Self::Model(cmd) => cmd.run().await,
            Self::Provider(cmd) => cmd.run().await,
            Self::Ui(args) => args.run().await,
            Self::Validator(cmd) => cmd.run().await,
            Self::Wallet(cmd) => cmd.run().await,
            Self::Completions { shell } => {
                let mut cli = <crate::Cli as clap::CommandFactory>::command();
                clap_complete::generate(shell, &mut cli, "pedals", &mut std::io::stdout());
                Ok(())
            }
        }
    }
}

/// Job `id` of `market` and its status. An id the market never gave out is the user's
/// mistake: said plainly, not as a job in status "None" or a peer that did not answer.
pub(crate) async fn existing_job(
    market: &pedals_chain::Market,
    id: u64,
) -> eyre::Result<(pedals_chain::IJobMarket::Job, pedals_chain::JobStatus)> {
    let job = market.job(pedals_core::JobId(id)).await?;
    let status =
        pedals_chain::JobStatus::try_from(job.status).unwrap_or(pedals_chain::JobStatus::None);
    if status == pedals_chain::JobStatus::None {
        let next: u64 = market
            .job_market()
            .nextJobId()
            .call()
            .await?
            .saturating_to();
        eyre::bail!(
            "there is no job {id} on this market (its jobs are numbered 1 to {}); `pedals job \
             list` shows them",
            next.saturating_sub(1)
        );
    }
    Ok((job, status))
}

/// An amount of wei in ETH for people: `0.1`, `9999.8999402855` (every digit that is not a
/// trailing zero; scripts get exact wei from `--json`).
pub(crate) fn eth(wei: alloy::primitives::U256) -> String {
    let text = alloy::primitives::utils::format_ether(wei);
    match text.split_once('.') {
        Some((whole, frac)) => match frac.trim_end_matches('0') {
            "" => whole.to_string(),
            frac => format!("{whole}.{frac}"),
        },
        None => text,
    }
}

/// An amount of ETH as a person writes it (`0.05`), in wei; see
/// [`pedals_chain::human::parse_eth`].
pub(crate) fn parse_eth(text: &str) -> eyre::Result<alloy::primitives::U256> {
    Ok(pedals_chain::human::parse_eth(text)?)
}

#[cfg(test)]
mod tests {
    use alloy::primitives::U256;

    #[test]
    fn parse_eth_takes_plain_decimals_and_refuses_the_rest() {
        let wei = |s: &str| U256::from_str_radix(s, 10).expect("wei");
        for (text, want) in [
            ("0.1", wei("100000000000000000")),
            ("2", wei("2000000000000000000")),
            ("0.000000000000000001", wei("1")),
            (".5", wei("500000000000000000")),
            ("7.", wei("7000000000000000000")),
            ("0", U256::ZERO),
        ] {
            assert_eq!(super::parse_eth(text).expect(text), want, "{text}");
        }
        for (text, says) in [
            ("-0.1", "not an amount"),
            ("+1", "not an amount"),
            ("1e30", "not an amount"),
            (" 1", "not an amount"),
            ("1.2.3", "not an amount"),
            ("", "not an amount"),
            (".", "not an amount"),
            ("0.0000000000000000001", "19 decimals"),
            (
                "1000000000000000000000000000000000000000000000000000000000000000000000000000",
                "too large",
            ),
        ] {
            let err = super::parse_eth(text).expect_err(text).to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn eth_keeps_every_significant_digit_and_no_trailing_zero() {
        let wei = |s: &str| U256::from_str_radix(s, 10).expect("number");
        assert_eq!(super::eth(wei("0")), "0");
        assert_eq!(super::eth(wei("100000000000000000")), "0.1");
        assert_eq!(super::eth(wei("2000000000000000000")), "2");
        assert_eq!(super::eth(wei("1")), "0.000000000000000001");
        assert_eq!(
            super::eth(wei("9999899940285560007664")),
            "9999.899940285560007664"
        );
    }
}
