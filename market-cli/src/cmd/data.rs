//! `pedals data add|list|get|serve`: content-addressed files in the requester's store, served
//! to peers over libp2p. A file is named by its CIDv1 (raw, sha2-256), the identifier IPFS
//! uses for raw blocks, and checked against it every time it is read or received.

use std::{path::PathBuf, sync::Arc};

use alloy::transports::http::reqwest::Url;
use clap::{Args, Subcommand};
use eyre::Context;
use pedals_core::{parse_cid, verify_cid};
use pedals_node::StoreSource;
use pedals_store::Store;
use serde_json::json;
use tracing::info;

use super::net::{NetArgs, start_node};

/// Data commands.
#[derive(Debug, Subcommand)]
pub(crate) enum DataCommand {
    /// Add files to the store and print their CIDs.
    ///
    /// Example: pedals data add train.pdds model.pdls
    Add {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the files in the store.
    ///
    /// Example: pedals data list --json
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a file by CID from the peers that provide it (or an IPFS gateway), check it
    /// against the CID, keep it in the store and write it out.
    ///
    /// Example: pedals data get bafkrei… --out train.pdds --bootstrap /ip4/192.0.2.7/tcp/4001
    Get {
        /// The file's CID.
        cid: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// An IPFS HTTP gateway to ask (as /ipfs/<cid>?format=raw) when no peer provides it.
        #[arg(long, env = "PEDALS_IPFS_GATEWAY")]
        ipfs_gateway: Option<Url>,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Serve every file in the store to peers over libp2p until Ctrl-C or SIGTERM.
    ///
    /// Example: pedals data serve --listen /ip4/0.0.0.0/tcp/4001
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        net: NetArgs,
    },
}

/// Where the files live.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The data directory (the requester's by default, so `pedals job post` serves the same
    /// files).
    #[arg(long, env = "PEDALS_REQUESTER_DIR")]
    data_dir: Option<PathBuf>,
}

impl StoreArgs {
    fn open(&self) -> eyre::Result<(PathBuf, Arc<Store>)> {
        let dir = self.data_dir.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("pedals")
                .join("requester")
        });
        std::fs::create_dir_all(&dir)
            .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        let store = Store::open(&dir)
            .wrap_err_with(|| format!("cannot open the store in {}", dir.display()))?;
        Ok((dir, Arc::new(store)))
    }
}

/// Fetches `cid` from the peers that provide it, or else from `gateway`; checked against the
/// CID either way.
async fn fetch(
    dir: &std::path::Path,
    store: &Arc<Store>,
    cid: pedals_core::Cid,
    net: &NetArgs,
    gateway: Option<&Url>,
) -> eyre::Result<Vec<u8>> {
    let network = start_node(
        dir,
        net.config(&[], &[]),
        Arc::new(StoreSource::new(store.clone(), 1)),
    )
    .await?;
    // A fresh node: give the bootstrap dials a moment to connect before asking the DHT, which
    // would otherwise answer from an empty table.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while network.client.peers().await?.is_empty() && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let fetched = network.client.fetch_blob(cid).await;
    network.client.shutdown().await;
    match (fetched, gateway) {
        (Ok((bytes, from)), _) => {
            info!(target: "pedals::data", %cid, %from, "fetched from a peer");
            Ok(bytes)
        }
        (Err(e), Some(gateway)) => {
            info!(target: "pedals::data", %cid, error = %e, "no peer delivered it; asking the gateway");
            let http = alloy::transports::http::reqwest::Client::new();
            let bytes = pedals_node::gateway::fetch(&http, gateway, &cid, 1 << 32)
                .await
                .map_err(|e| eyre::eyre!(e))?;
            verify_cid(&cid, &bytes).wrap_err(
                "the gateway sent bytes that do not match the CID: try another gateway",
            )?;
            Ok(bytes)
        }
        (Err(e), None) => Err(e.into()),
    }
}

impl DataCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Add { files, store, json } => {
                let (_, store) = store.open()?;
                let mut added = Vec::new();
                for file in &files {
                    let bytes = std::fs::read(file)
                        .wrap_err_with(|| format!("cannot read {}", file.display()))?;
                    let cid = store.put_blob(&bytes)?;
                    added.push(json!({
                        "file": file.display().to_string(),
                        "cid": cid.to_string(),
                        "bytes": bytes.len(),
                    }));
                }
                if json {
                    println!("{}", serde_json::to_string(&json!({ "added": added }))?);
                } else {
                    for a in &added {
                        println!(
                            "{}  {}",
                            a["cid"].as_str().unwrap_or_default(),
                            a["file"].as_str().unwrap_or_default()
                        );
                    }
                }
                Ok(())
            }
            Self::List { store, json } => {
                let (_, store) = store.open()?;
                let blobs = store.blobs()?;
                if json {
                    let list: Vec<_> = blobs
                        .iter()
                        .map(|(cid, size)| json!({ "cid": cid.to_string(), "bytes": size }))
                        .collect();
                    println!("{}", serde_json::to_string(&json!({ "files": list }))?);
                } else {
                    for (cid, size) in &blobs {
                        println!("{cid}  {size} bytes");
                    }
                }
                Ok(())
            }
            Self::Get {
                cid,
                out,
                ipfs_gateway,
                store,
                net,
            } => {
                let cid = parse_cid(&cid).wrap_err("that is not a CIDv1 (raw, sha2-256)")?;
                let (dir, store) = store.open()?;
                let bytes = match store.blob(&cid)? {
                    Some(bytes) => bytes,
                    None => {
                        let bytes = fetch(&dir, &store, cid, &net, ipfs_gateway.as_ref()).await?;
                        store.put_blob_expecting(&cid, &bytes)?;
                        bytes
                    }
                };
                std::fs::write(&out, &bytes)
                    .wrap_err_with(|| format!("cannot write {}", out.display()))?;
                println!("{cid}  {} bytes  {}", bytes.len(), out.display());
                Ok(())
            }
            Self::Serve { store, net } => {
                let (dir, store) = store.open()?;
                let network = start_node(
                    &dir,
                    net.config(&[], &[]),
                    Arc::new(StoreSource::new(store.clone(), 1)),
                )
                .await?;
                let blobs = store.blobs()?;
                for (cid, _) in &blobs {
                    network.client.provide(*cid).await?;
                }
                info!(target: "pedals::data", files = blobs.len(), "serving");
                super::provider::shutdown_signal().await;
                network.client.shutdown().await;
                Ok(())
            }
        }
    }
}
