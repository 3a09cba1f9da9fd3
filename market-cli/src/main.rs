//! `pedals`: the command-line interface of the Pedals compute market.
//!
//! This file only parses arguments, sets up logging and maps errors to exit codes; each
//! command lives in `cmd/`.

mod cmd;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Pedals: a market where idle CPUs and GPUs train and run AI models for pay.
#[derive(Debug, Parser)]
#[command(name = "pedals", version, about, propagate_version = true)]
struct Cli {
    /// Log filter (tracing's EnvFilter syntax), e.g. `pedals=debug`. The default keeps kad's
    /// "no known peers" warnings, normal for a node nobody has dialed yet, out.
    #[arg(
        long,
        global = true,
        env = "PEDALS_LOG",
        default_value = "pedals=info,warn,libp2p_kad=error"
    )]
    log: String,

    #[command(subcommand)]
    command: cmd::Command,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    match cli.command.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
