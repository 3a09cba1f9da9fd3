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
    // `pedals job list | head -1` closes stdout early: leave quietly, as Unix tools do,
    // instead of panicking in `println!`.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("Broken pipe") || message.contains("BrokenPipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("warn")))
        // Through the progress bars, so that a log line does not tear a bar.
        .with_writer(cmd::progress::LogWriter::default)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// Exit code for user errors (bad input, a file, a password, a request the contracts
/// refuse): 1.
const EXIT_USER: u8 = 1;
/// Exit code for a command line that is incomplete or does not parse (clap's own code, which
/// a required setting given nowhere also gets): 2.
const EXIT_USAGE: u8 = 2;
/// Exit code for chain errors (the RPC endpoint, a reverted or refused transaction): 3.
const EXIT_CHAIN: u8 = 3;
/// Exit code for network errors (libp2p: no provider, a peer that failed or lied): 4.
const EXIT_NETWORK: u8 = 4;

/// The documented exit code of `err` (the table in docs/cli.md): the first setting, chain or
/// network error found in its chain of causes decides; anything else is the user's to fix.
fn exit_code(err: &eyre::Report) -> u8 {
    for cause in err.chain() {
        if cause.is::<cmd::MissingSetting>() {
            return EXIT_USAGE;
        }
        if let Some(e) = cause.downcast_ref::<pedals_chain::ChainError>() {
            return chain_code(e);
        }
        if cause.is::<alloy::transports::TransportError>() {
            return EXIT_CHAIN;
        }
        if cause.is::<pedals_p2p::P2pError>() {
            return EXIT_NETWORK;
        }
        if let Some(e) = cause.downcast_ref::<pedals_node::NodeError>() {
            match e {
                pedals_node::NodeError::Chain(e) => return chain_code(e),
                pedals_node::NodeError::Net(_) => return EXIT_NETWORK,
                _ => {}
            }
        }
        if let Some(e) = cause.downcast_ref::<pedals_verifier::VerifierError>() {
            match e {
                pedals_verifier::VerifierError::Chain(e) => return chain_code(e),
                pedals_verifier::VerifierError::Net(_) => return EXIT_NETWORK,
                _ => {}
            }
        }
    }
    EXIT_USER
}

/// A contract's refusal of the request (one of its custom errors, found before anything is
/// sent) is the user's to fix; every other chain error is the chain's.
fn chain_code(e: &pedals_chain::ChainError) -> u8 {
    use pedals_chain::ChainError as E;
    match e {
        E::JobMarket(_)
        | E::DisputeGame(_)
        | E::DataAvailability(_)
        | E::StakeManager(_)
        | E::SpanPayments(_) => EXIT_USER,
        _ => EXIT_CHAIN,
    }
}
