//! `pedals ui`: the web app (docs/web-app.md) on localhost, reading the market from the chain
//! through the node's local API.

use std::net::SocketAddr;

use clap::Args;
use eyre::Context;

use super::job::{ChainArgs, read_market};

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
}

impl UiArgs {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        let market = read_market(&self.chain).await?;
        let (bound, token, task) =
            pedals_ui::serve(market, self.http, super::provider::shutdown_signal())
                .await
                .wrap_err("cannot serve the web app: pick another --http")?;
        println!("Pedals web app: http://{bound}/#token={token}");
        eprintln!(
            "Open that address in a browser on this machine. The token in it lets the page use \
             this node's API: do not share it. Ctrl-C stops."
        );
        task.await??;
        Ok(())
    }
}
