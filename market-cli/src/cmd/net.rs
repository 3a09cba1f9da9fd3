//! Network options shared by every command that runs a libp2p node, and starting that node.

use std::{path::Path, sync::Arc};

use clap::Args;
use eyre::Context;
use pedals_p2p::{ContentSource, Multiaddr, NetConfig, Network, load_or_create_identity};
use tracing::info;

/// Where the node listens and whom it dials first.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct NetArgs {
    /// Address to listen on, e.g. /ip4/0.0.0.0/tcp/4001 (repeatable) [default: TCP and QUIC
    /// on 127.0.0.1, ports picked by the system].
    #[arg(long = "listen", env = "PEDALS_LISTEN", value_delimiter = ',')]
    pub(crate) listen: Vec<Multiaddr>,
    /// A peer to join the network through, e.g.
    /// /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW… (repeatable; a provider prints its own at start).
    #[arg(long = "bootstrap", env = "PEDALS_BOOTSTRAP", value_delimiter = ',')]
    pub(crate) bootstrap: Vec<Multiaddr>,
}

impl NetArgs {
    /// The network config, with `file` (a config file's lists) under the flags.
    pub(crate) fn config(
        &self,
        file_listen: &[Multiaddr],
        file_bootstrap: &[Multiaddr],
    ) -> NetConfig {
        let pick = |flags: &[Multiaddr], file: &[Multiaddr]| {
            if flags.is_empty() {
                file.to_vec()
            } else {
                flags.to_vec()
            }
        };
        let mut config = NetConfig {
            bootstrap: pick(&self.bootstrap, file_bootstrap),
            ..NetConfig::default()
        };
        let listen = pick(&self.listen, file_listen);
        if !listen.is_empty() {
            config.listen = listen;
        }
        config
    }
}

/// Starts the node of `data_dir` (its identity is kept there) serving from `source`, and logs
/// the addresses others can bootstrap from.
pub(crate) async fn start_node(
    data_dir: &Path,
    config: NetConfig,
    source: Arc<dyn ContentSource>,
) -> eyre::Result<Network> {
    let identity = load_or_create_identity(&data_dir.join("p2p-identity"))?;
    let network = pedals_p2p::start(identity, config, source)
        .await
        .wrap_err("cannot start the network node: check --listen")?;
    let addrs = network.client.listen_addrs().await?;
    for addr in &addrs {
        info!(target: "pedals::p2p", %addr, "reachable at");
    }
    Ok(network)
}
