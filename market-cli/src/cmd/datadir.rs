//! A daemon's data folder belongs to one deployment on one chain: its records (jobs, sent
//! transactions, the event cursor) mean nothing on another. The first start writes
//! `chain.json` (chain id, genesis block hash, JobMarket); a later start against another
//! chain, a reset devnet included (same addresses, new genesis), is refused before anything
//! is read or sent.

use std::path::Path;

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::{DynProvider, Provider},
};
use eyre::{Context, ContextCompat};
use pedals_chain::Deployment;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Binding {
    chain_id: u64,
    genesis: B256,
    job_market: Address,
}

/// Checks that `dir` was used with this chain and deployment, or records that it is now.
pub(crate) async fn bind(
    dir: &Path,
    provider: &DynProvider,
    deployment: &Deployment,
) -> eyre::Result<()> {
    let genesis = provider
        .get_block_by_number(BlockNumberOrTag::Number(0))
        .await?
        .context("the chain has no genesis block")?
        .header
        .hash;
    let here = Binding {
        chain_id: deployment.chain_id,
        genesis,
        job_market: deployment.job_market,
    };
    let path = dir.join("chain.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let was: Binding = serde_json::from_slice(&bytes).wrap_err_with(|| {
                format!(
                    "{} is damaged: delete it if {} belongs to this chain",
                    path.display(),
                    dir.display()
                )
            })?;
            eyre::ensure!(
                was == here,
                "the data folder {} belongs to JobMarket {} on chain {} (genesis {}), not to \
                 JobMarket {} on chain {} (genesis {}): a devnet that was restarted is another \
                 chain. Use another --data-dir, or delete this one",
                dir.display(),
                was.job_market,
                was.chain_id,
                was.genesis,
                here.job_market,
                here.chain_id,
                here.genesis
            );
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, serde_json::to_vec_pretty(&here)?)
                .wrap_err_with(|| format!("cannot write {}", path.display()))
        }
        Err(e) => Err(e).wrap_err_with(|| format!("cannot read {}", path.display())),
    }
}
