//! `pedals ui`: the web app (docs/web-app.md) on localhost. It reads the market from the
//! chain, and posts jobs as a requester's node: datasets uploaded from the page go to its
//! store, and its network serves the job files to workers while it runs.

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;
use eyre::Context;

use super::job::{ChainArgs, NodeArgs, node, read_market};

/// `pedals ui`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct UiArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The address to serve the page on: loopback only (127.0.0.1 or ::1); port 0 picks a
    /// free one.
    #[arg(
        long = "http",
        env = "PEDALS_UI_HTTP",
        default_value = "127.0.0.1:7070"
    )]
    http: SocketAddr,
    /// Encrypted keystore the page may unlock (with its password, typed in the page) to sign
    /// jobs with the node's account; without it, the page signs with a browser wallet only.
    #[arg(long, env = "PEDALS_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// A block explorer to link transactions and accounts to, such as
    /// https://sepolia.basescan.org [default: the chain's well-known one, if any].
    #[arg(long, env = "PEDALS_EXPLORER", value_parser = web_address)]
    explorer: Option<String>,
    /// The requester's node (the same folder as `pedals job`'s, so `pedals job result` finds
    /// the jobs posted from the page; stop `pedals ui` before running it on that folder).
    #[command(flatten)]
    node: NodeArgs,
}

/// An http(s) address.
fn web_address(s: &str) -> Result<String, String> {
    match s.parse::<alloy::transports::http::reqwest::Url>() {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(s.to_owned()),
        _ => Err(format!(
            "{s:?} is not a web address: give the explorer's base, like https://sepolia.basescan.org"
        )),
    }
}

impl UiArgs {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        let market = read_market(&self.chain).await?;
        let (dir, store, network) = node(&self.node).await.wrap_err(
            "cannot start the requester's node: another pedals command may hold its folder \
             (stop it, or pass another --data-dir)",
        )?;
        let addrs = network.client.listen_addrs().await?;
        let parts = pedals_ui::Node {
            dir,
            store,
            client: network.client.clone(),
            events: network.events,
            keystore: self.keystore,
        };
        let (bound, token, task) = pedals_ui::serve(
            market,
            pedals_ui::Options {
                node: Some(parts),
                explorer: self.explorer,
                ..Default::default()
            },
            self.http,
            super::provider::shutdown_signal(),
        )
        .await
        .wrap_err("cannot serve the web app: pick another --http")?;
        println!("Pedals web app: http://{bound}/#token={token}");
        for addr in &addrs {
            println!("  serving posted jobs' files at {addr}");
        }
        eprintln!(
            "Open that address in a browser on this machine. The token in it lets the page use \
             this node's API: do not share it. Ctrl-C stops (workers that have not fetched a \
             posted job's files yet then need another peer holding them)."
        );
        task.await??;
        Ok(())
    }
}
