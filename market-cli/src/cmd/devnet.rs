//! `pedals devnet`: a local market (`up`, `env`, `status`, `logs`, `restart`, `down`, in
//! `devnet_up`) and the two demos (`demo`, `dispute-demo`), each in its own module.

use clap::Subcommand;

use super::demo::DemoArgs;

/// Devnet commands.
#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start anvil, deploy the contracts, and run a paid MNIST training job end to end: post,
    /// claim, train (exact mode), submit, challenge window, finalize, withdraw; print the
    /// receipts, the result's accuracy and the balances, and stop anvil.
    ///
    /// Example: pedals devnet demo --json
    Demo(DemoArgs),
    /// Start a devnet that keeps running: anvil with every contract deployed, keystores for a
    /// requester, a validator and the workers, the workers and a validator as background
    /// processes; state and logs in one folder.
    ///
    /// Example: pedals devnet up --workers 2
    Up(super::devnet_up::UpArgs),
    /// Print `export` lines that point every command at the devnet as a requester, a provider
    /// or a validator.
    ///
    /// Example: eval "$(pedals devnet env --role provider)"
    Env {
        /// The account.
        #[arg(long, value_enum, default_value = "requester")]
        role: super::devnet_up::Role,
        #[command(flatten)]
        dir: super::devnet_up::DirArgs,
    },
    /// Stop every process `devnet up` started, and nothing else.
    ///
    /// Example: pedals devnet down
    Down(super::devnet_up::DirArgs),
    /// Start processes of the devnet again as they were started: the named ones (anvil,
    /// seed, worker-0, validator, …), or every one that is not running. anvil goes on with the
    /// chain it had (its state is saved every 2 s and on exit), the nodes with their folders.
    ///
    /// Example: pedals devnet restart worker-0
    Restart {
        /// The processes; none: every one that is not running (after a reboot, say).
        names: Vec<String>,
        #[command(flatten)]
        dir: super::devnet_up::DirArgs,
    },
    /// Show the devnet's endpoint, block height and processes.
    ///
    /// Example: pedals devnet status --json
    Status {
        #[command(flatten)]
        dir: super::devnet_up::DirArgs,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the last lines of one process's log (anvil, worker-0, validator, …).
    ///
    /// Example: pedals devnet logs worker-0 --lines 50
    Logs {
        /// The process.
        name: String,
        /// How many lines.
        #[arg(long, default_value_t = 40)]
        lines: usize,
        #[command(flatten)]
        dir: super::devnet_up::DirArgs,
    },
    /// Debug builds only: the same job with a worker that lies about half of its steps, and a
    /// validator that catches it, wins the dispute game and gets the worker slashed.
    ///
    /// Example: pedals devnet dispute-demo
    #[cfg(debug_assertions)]
    DisputeDemo(DemoArgs),
}

impl DevnetCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            // On Ctrl-C the demo future is dropped, and with it the devnet, which stops anvil.
            Self::Demo(args) => tokio::select! {
                result = super::demo::demo(args) => result,
                _ = tokio::signal::ctrl_c() => Err(eyre::eyre!("interrupted; anvil stopped")),
            },
            Self::Up(args) => super::devnet_up::up(args).await,
            Self::Down(dir) => super::devnet_up::down(&dir),
            Self::Restart { names, dir } => super::devnet_up::restart(&dir, &names).await,
            Self::Env { role, dir } => super::devnet_up::env(&dir, role),
            Self::Status { dir, json } => super::devnet_up::status(&dir, json).await,
            Self::Logs { name, lines, dir } => super::devnet_up::logs(&dir, &name, lines),
            #[cfg(debug_assertions)]
            Self::DisputeDemo(args) => tokio::select! {
                result = super::dispute_demo::dispute_demo(args) => result,
                _ = tokio::signal::ctrl_c() => Err(eyre::eyre!("interrupted; anvil stopped")),
            },
        }
    }
}
