//! One module per command.

mod data;
mod devnet;
mod devnet_up;
#[cfg(debug_assertions)]
mod dispute_demo;
mod job;
mod net;
mod progress;
mod provider;
mod secret;
mod stake;
mod validator;
mod wallet;

use clap::Subcommand;

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Content-addressed files: add them, list them, fetch them by CID, serve them to peers.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// A local devnet: anvil with every Pedals contract deployed.
    #[command(subcommand)]
    Devnet(devnet::DevnetCommand),
    /// Requester commands: post a job, follow it, get its result, cancel it.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Provider (worker) commands.
    #[command(subcommand)]
    Provider(provider::ProviderCommand),
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
            Self::Devnet(cmd) => cmd.run().await,
            Self::Job(cmd) => cmd.run().await,
            Self::Provider(cmd) => cmd.run().await,
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
