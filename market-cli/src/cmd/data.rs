//! `pedals data add|list|get|serve`: content-addressed files in the requester's store, served
//! to peers over libp2p. A file is named by its CIDv1 (raw, sha2-256), the identifier IPFS
//! uses for raw blocks, and checked against it every time it is read or received.
//!
//! `get` downloads in chunks of 4 MiB, each checked as it arrives, into `<out>.part`, with a
//! progress bar on a terminal; run again after an interruption, it resumes from the chunks
//! already there ([`pedals_p2p::Client::download_blob`]).

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    sync::Arc,
};

use alloy::transports::http::reqwest::Url;
use clap::{Args, Subcommand};
use eyre::Context;
use indicatif::ProgressBar;
use pedals_core::{Cid, parse_cid, verify_cid};
use pedals_node::StoreSource;
use pedals_p2p::{DownloadOptions, Progress, ProgressFn};
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
    /// The download goes in chunks, each checked as it arrives, into `<out>.part`; run the
    /// same command again after an interruption and it resumes from there.
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
    pub(crate) fn open(&self) -> eyre::Result<(PathBuf, Arc<Store>)> {
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

/// Shows a download's progress: a bar when stderr is a terminal, else a log line per tenth.
fn progress_display(cid: Cid) -> (ProgressFn, Option<ProgressBar>) {
    if std::io::stderr().is_terminal() {
        let short: String = cid.to_string().chars().take(16).collect();
        let bar = super::progress::transfer_bar(&format!("{short}…"));
        let shown = bar.clone();
        let show = move |p: Progress| {
            shown.set_length(p.total);
            shown.set_position(p.done);
        };
        (Arc::new(show), Some(bar))
    } else {
        let last = std::sync::atomic::AtomicU64::new(u64::MAX);
        let show = move |p: Progress| {
            let tenth = (p.done * 10).checked_div(p.total).unwrap_or(10);
            if last.swap(tenth, std::sync::atomic::Ordering::Relaxed) != tenth {
                info!(target: "pedals::data", %cid, done = p.done, total = p.total, resumed = p.resumed, "downloading");
            }
        };
        (Arc::new(show), None)
    }
}

/// Downloads `cid` into `out` from the peers that provide it, or else from `gateway`; checked
/// against the CID either way. Returns the size.
async fn fetch(
    dir: &Path,
    store: &Arc<Store>,
    cid: Cid,
    out: &Path,
    net: &NetArgs,
    gateway: Option<&Url>,
) -> eyre::Result<u64> {
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
    let (show, bar) = progress_display(cid);
    let options = DownloadOptions {
        progress: Some(show),
        ..DownloadOptions::default()
    };
    let fetched = network.client.download_blob(cid, out, &options).await;
    if let Some(bar) = bar {
        super::progress::close_bar(&bar);
    }
    network.client.shutdown().await;
    match (fetched, gateway) {
        (Ok(done), _) => {
            info!(target: "pedals::data", %cid, from = ?done.providers, resumed = done.resumed, "fetched from peers");
            Ok(done.size)
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
            std::fs::write(out, &bytes)
                .wrap_err_with(|| format!("cannot write {}", out.display()))?;
            Ok(bytes.len() as u64)
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
                let size = match store.blob(&cid)? {
                    Some(bytes) => {
                        std::fs::write(&out, &bytes)
                            .wrap_err_with(|| format!("cannot write {}", out.display()))?;
                        bytes.len() as u64
                    }
                    None => {
                        let size =
                            fetch(&dir, &store, cid, &out, &net, ipfs_gateway.as_ref()).await?;
                        // Kept in the store too (checked against the CID once more), so that
                        // this node can serve it.
                        let bytes = std::fs::read(&out)
                            .wrap_err_with(|| format!("cannot read {}", out.display()))?;
                        store.put_blob_expecting(&cid, &bytes)?;
                        size
                    }
                };
                println!("{cid}  {size} bytes  {}", out.display());
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
