//! `--ui ADDR` of `pedals provider run` and `pedals validator run`: the web app served by the
//! daemon itself, with its own page (its account, settings and counters) and, for a
//! provider, pause and resume.

use std::net::SocketAddr;

use alloy::{providers::DynProvider, signers::local::PrivateKeySigner};
use eyre::Context;
use pedals_chain::{Deployment, Market};
use pedals_ui::{Operator, Options};
use tracing::info;

/// Serves the web app on `addr` (loopback only) for `operator` until `shutdown`; prints its
/// address with the token on stdout.
pub(crate) async fn serve(
    addr: SocketAddr,
    provider: DynProvider,
    deployment: Deployment,
    operator: Operator,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> eyre::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    // The page reads the market; the daemon signs its own transactions elsewhere.
    let market = Market::over(provider, PrivateKeySigner::random(), deployment);
    let options = Options {
        operator: Some(operator),
        ..Options::default()
    };
    let (bound, token, task) = pedals_ui::serve(market, options, addr, shutdown)
        .await
        .wrap_err_with(|| format!("cannot serve the web app on {addr}: pass another --ui"))?;
    println!("Pedals web app: http://{bound}/#token={token}");
    info!(target: "pedals::ui", %bound, "web app up (its address with the token is on stdout)");
    Ok(task)
}
