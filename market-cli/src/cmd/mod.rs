//! One module per command.

mod devnet;
mod provider;

use clap::Subcommand;

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// A local devnet: anvil with every Pedals contract deployed.
    #[command(subcommand)]
    Devnet(devnet::DevnetCommand),
    /// Provider (worker) commands.
    #[command(subcommand)]
    Provider(provider::ProviderCommand),
}

impl Command {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Devnet(cmd) => cmd.run().await,
            Self::Provider(cmd) => cmd.run().await,
        }
    }
}
