//! Split-model inference (docs/split-inference.md): `pedals provider serve` runs a span of a
//! model's blocks for the swarm, and `pedals gateway` serves an OpenAI-compatible API over the
//! servers it finds.

use std::{
    collections::HashSet,
    net::SocketAddr,
    ops::Range,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use alloy::primitives::U256;
use clap::Args;
use eyre::Context;
use pedals_core::{Cid, cid_of, parse_cid};
use pedals_infer::{
    Directory, RemoteModel, SpanLoader, SpanServer, coverage, follow, least_served, rebalance,
    serve,
};
use pedals_lm::ExactModel;
use pedals_node::StoreSource;
use pedals_p2p::{DownloadOptions, NetEvent};
use pedals_store::Store;
use tracing::info;

use super::{
    data::StoreArgs,
    net::{NetArgs, start_node},
    spandispute::{ChainDisputer, ChainReceipts, defend_receipts},
    spanpay::{ChainBook, ChainSigner, PayArgs},
};

/// `pedals provider serve`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The model: a CID (taken from the store, else fetched from the peers that provide it)
    /// or a stored model file (`pedals model import` writes one into the store).
    #[arg(long)]
    model: String,
    /// The blocks to serve, `start..end` (e.g. `0..8`). Without it, the server listens to the
    /// network's announcements for a few seconds and takes the `--span-blocks` consecutive
    /// blocks that the fewest servers cover, and later moves when a block nobody serves
    /// appears while others serve its blocks too.
    #[arg(long, value_parser = parse_blocks)]
    blocks: Option<Range<usize>>,
    /// How many blocks to serve when `--blocks` is not given [default: all].
    #[arg(long)]
    span_blocks: Option<usize>,
    /// Price of one token through the span, in wei: clients pay it with vouchers that this
    /// server redeems with the account of --keystore (which a price needs).
    #[arg(long, default_value_t = U256::ZERO)]
    wei_per_token: U256,
    /// Memory for the sessions' key/value caches, in MiB.
    #[arg(long, default_value_t = 1024)]
    cache_mib: usize,
    /// Seconds between announcements.
    #[arg(long, default_value_t = 10)]
    announce_secs: u64,
    /// Answer every request this many milliseconds late (a slow link, for tests and
    /// measurements on one machine).
    #[arg(long, hide = true, default_value_t = 0)]
    debug_reply_delay_ms: u64,
    /// Change one value of every answer once this many rows were served, and sign the lie: a
    /// dishonest server, for tests and demonstrations of the span dispute game.
    #[arg(long, hide = true)]
    debug_lie_after: Option<u64>,
    #[command(flatten)]
    pay: PayArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    net: NetArgs,
}

/// `pedals gateway`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct GatewayArgs {
    /// The model: a CID (from the store, else fetched from peers) or a stored model file.
    /// The gateway keeps its embeddings and head; span servers run its blocks.
    #[arg(long)]
    model: String,
    /// The name clients give as `model` [default: the CID].
    #[arg(long)]
    name: Option<String>,
    /// The HTTP address to listen on.
    #[arg(
        long = "http",
        env = "PEDALS_GATEWAY_HTTP",
        default_value = "127.0.0.1:8080"
    )]
    http: SocketAddr,
    /// An API key clients must send as `Authorization: Bearer <key>` (repeatable).
    #[arg(long = "api-key", env = "PEDALS_API_KEYS", value_delimiter = ',')]
    api_keys: Vec<String>,
    /// A file of API keys, one per line.
    #[arg(long)]
    api_keys_file: Option<PathBuf>,
    /// Serve without API keys (anyone who reaches the address can generate).
    #[arg(long)]
    allow_anonymous: bool,
    /// How long a request waits for servers of blocks that nobody serves, in seconds.
    #[arg(long, default_value_t = 30)]
    wait_secs: u64,
    /// The most this gateway pays one server per token, in wei (needed with --keystore):
    /// servers that charge more are not used.
    #[arg(long)]
    max_wei_per_token: Option<U256>,
    /// Re-execute this share of the servers' answers before using them (0..=1; the gateway
    /// then keeps the whole model in memory): a server caught lying is banned and replaced,
    /// and the tokens do not change.
    #[arg(long, default_value_t = 0.0)]
    verify_fraction: f64,
    /// Ask every server for a signed receipt of each answer, and take a receipt that a spot
    /// check contradicts to the span dispute game, which slashes the server's stake (needs
    /// --keystore, whose account posts the bond and earns the reward, and --verify-fraction
    /// above 0). Servers that sign no receipt (no staked account) are not used.
    #[arg(long)]
    require_receipts: bool,
    /// The paying account (with --rpc-url and --deployment): its deposit pays servers that
    /// charge (`pedals deposit add`); without it only free servers are used.
    #[command(flatten)]
    pay: PayArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    net: NetArgs,
}

pub(crate) fn parse_blocks(s: &str) -> Result<Range<usize>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("{s:?}: write blocks as start..end, e.g. 0..8"))?;
    let a: usize = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: usize = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
    if a >= b {
        return Err(format!("{s:?} is empty: the end must be after the start"));
    }
    Ok(a..b)
}

/// The model named by `spec`, from a file, the store, or the peers (then kept in the store
/// and provided).
async fn load_model(
    spec: &str,
    dir: &Path,
    store: &Arc<Store>,
    net: &pedals_p2p::Client,
) -> eyre::Result<(ExactModel, Cid)> {
    let (bytes, cid) = fetch_model(spec, dir, store, net).await?;
    let model = tokio::task::spawn_blocking(move || ExactModel::from_bytes(&bytes))
        .await?
        .wrap_err_with(|| format!("{cid} is not a stored language model"))?;
    Ok((model, cid))
}

/// The stored bytes of the model named by `spec` ([`load_model`]).
async fn fetch_model(
    spec: &str,
    dir: &Path,
    store: &Arc<Store>,
    net: &pedals_p2p::Client,
) -> eyre::Result<(Vec<u8>, Cid)> {
    let path = Path::new(spec);
    let (bytes, cid) = if path.is_file() {
        let bytes = std::fs::read(path).wrap_err_with(|| format!("cannot read {spec}"))?;
        let cid = cid_of(&bytes);
        store.put_blob_expecting(&cid, &bytes)?;
        (bytes, cid)
    } else {
        let cid = parse_cid(spec).wrap_err_with(|| {
            format!(
                "{spec:?} is neither a file nor a CID; `pedals model import` prints a model's CID"
            )
        })?;
        match store.blob(&cid)? {
            Some(bytes) => (bytes, cid),
            None => {
                info!(target: "pedals::infer", %cid, "fetching the model from peers");
                wait_for_peers(net).await?;
                let tmp = dir.join(format!("{cid}.part"));
                // A node that just joined may not find the providers at once: try for 30 s.
                let until = tokio::time::Instant::now() + Duration::from_secs(30);
                loop {
                    match net
                        .download_blob(cid, &tmp, &DownloadOptions::default())
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if tokio::time::Instant::now() < until => {
                            info!(target: "pedals::infer", %cid, error = %e, "model not fetched yet; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        Err(e) => {
                            return Err(eyre::Report::new(e)
                                .wrap_err(format!("cannot fetch model {cid} from the network")));
                        }
                    }
                }
                let bytes = std::fs::read(&tmp)?;
                store.put_blob_expecting(&cid, &bytes)?;
                let _ = std::fs::remove_file(&tmp);
                (bytes, cid)
            }
        }
    };
    net.provide(cid).await?;
    Ok((bytes, cid))
}

/// Reads blocks of the stored model `cid` from `store`: only those blocks are kept.
fn span_loader(store: Arc<Store>, cid: Cid) -> SpanLoader {
    Arc::new(move |span| {
        let bytes = store
            .blob(&cid)
            .map_err(|e| pedals_infer::InferError::Protocol(e.to_string()))?
            .ok_or_else(|| {
                pedals_infer::InferError::Protocol(format!("model {cid} is no longer stored"))
            })?;
        Ok(ExactModel::span_from_bytes(&bytes, span)?)
    })
}

async fn wait_for_peers(net: &pedals_p2p::Client) -> eyre::Result<()> {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while net.peers().await?.is_empty() {
        eyre::ensure!(
            tokio::time::Instant::now() < until,
            "no peer reached within 10 s: give --bootstrap with a reachable peer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// What a span server serves and charges.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpanJob {
    /// The model: a CID or a stored model file.
    pub(crate) model: String,
    /// The blocks (pinned), or none to choose the least served and move with coverage.
    pub(crate) blocks: Option<Range<usize>>,
    /// How many blocks to choose.
    pub(crate) span_blocks: Option<usize>,
    /// The price per token (needs `market`).
    pub(crate) wei_per_token: U256,
    /// Cache memory, bytes.
    pub(crate) cache_bytes: usize,
    /// Between announcements.
    pub(crate) announce: Duration,
    /// Added to every answer (tests).
    pub(crate) reply_delay: Duration,
    /// Lie in every answer after this many rows (tests).
    pub(crate) lie_after: Option<u64>,
}

/// A span server running on a node: stop it to redeem what it holds.
pub(crate) struct RunningSpan {
    server: Arc<SpanServer>,
    task: tokio::task::JoinHandle<()>,
    book: Option<(Arc<ChainBook>, tokio::task::JoinHandle<()>)>,
    defense: Option<tokio::task::JoinHandle<()>>,
    balance: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSpan {
    /// Waits for the serving loop to end (the node is shut down first), then settles every
    /// session and waits for the redemptions.
    pub(crate) async fn stop(self) {
        let _ = self.task.await;
        for t in [&self.defense, &self.balance].into_iter().flatten() {
            t.abort();
        }
        self.server.settle_idle(Duration::ZERO);
        drop(self.server);
        if let Some((book, redeemer)) = self.book {
            drop(book);
            let _ = redeemer.await;
        }
    }
}

/// Fetches `job`'s model (from the store or the peers), loads only its span's blocks, and
/// serves and announces them on `net`. With an `account`, the server signs a receipt of every
/// answer with it and defends them in disputes, and is paid into it when it charges. With
/// `events` (the node's), the server follows the other servers' announcements: when
/// `job.blocks` is none it listens for a few seconds, takes the blocks that the fewest
/// servers cover, and moves later when coverage calls for it ([`rebalance`]).
pub(crate) async fn start_span(
    job: SpanJob,
    dir: &Path,
    store: &Arc<Store>,
    net: &pedals_p2p::Client,
    events: Option<tokio::sync::mpsc::Receiver<NetEvent>>,
    account: Option<(
        pedals_chain::Market,
        alloy::signers::local::PrivateKeySigner,
    )>,
) -> eyre::Result<RunningSpan> {
    let market = account.as_ref().map(|(m, _)| m.clone());
    let (bytes, cid) = fetch_model(&job.model, dir, store, net).await?;
    let total = ExactModel::stored_config(&bytes)
        .wrap_err_with(|| format!("{cid} is not a stored language model"))?
        .layers;
    // Announcements are forgotten after three missed rounds; paid servers count too.
    let seen = Directory::new(cid.to_string(), total, job.announce * 3);
    let seen = Arc::new(std::sync::Mutex::new(seen));
    if let Ok(mut d) = seen.lock() {
        d.set_price_cap(U256::MAX);
    }
    let following = events.is_some();
    if let Some(events) = events {
        tokio::spawn(follow(net.clone(), events, seen.clone()));
    }
    let blocks = match (job.blocks.clone(), following) {
        (Some(b), _) => b,
        (None, false) => eyre::bail!("give the blocks to serve, e.g. 0..8"),
        (None, true) => {
            // Listen to who serves what for a few gossip rounds before choosing.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let cover = seen.lock().map(|d| coverage(&d, None)).unwrap_or_default();
            least_served(&cover, job.span_blocks.unwrap_or(total))
        }
    };
    let load = span_loader(store.clone(), cid);
    let bytes = Arc::new(bytes);
    let model = {
        let (bytes, span) = (bytes.clone(), blocks.clone());
        tokio::task::spawn_blocking(move || ExactModel::span_from_bytes(&bytes, span))
            .await?
            .wrap_err_with(|| format!("cannot load blocks {blocks:?} of {cid}"))?
    };
    let price = job.wei_per_token;
    let book = match &market {
        Some(market) if !price.is_zero() => {
            let market = market.clone();
            let delay = market.span_payments().withdrawDelay().call().await?;
            if delay < U256::from(4 * pedals_infer::SETTLE_IDLE.as_secs()) {
                tracing::warn!(target: "pedals::infer", %delay, "this deployment's withdrawal delay is short: a client could withdraw before an idle session is redeemed");
            }
            let files = super::spanpay::VoucherFiles::open(dir.join("span-vouchers"))?;
            Some(ChainBook::start(market, files))
        }
        _ => {
            eyre::ensure!(
                price.is_zero(),
                "a price per token needs the account that is paid: give --keystore, --rpc-url \
                 and --deployment"
            );
            None
        }
    };
    let vouchers = book.as_ref().map(|(b, _)| b.clone());
    let (cache, delay, lie) = (job.cache_bytes, job.reply_delay, job.lie_after);
    // A staked server signs receipts, and keeps on disk, for the receipt window and two
    // clocks, the rows that defend them. The receipts name the whole model's root: it is
    // hashed once here, and the whole model is read again only to defend a dispute.
    let (full, receipts, keep) = match &account {
        Some((market, signer)) => {
            let (m, s) = (market.clone(), signer.clone());
            let receipts = tokio::task::spawn_blocking(move || {
                let full = ExactModel::from_bytes(&bytes)?;
                ChainReceipts::new(&m, &full, Some(s))
            })
            .await??;
            let full: super::spandispute::ModelLoader = {
                let store = store.clone();
                Arc::new(move || {
                    let bytes = store
                        .blob(&cid)?
                        .ok_or_else(|| eyre::eyre!("model {cid} is no longer stored"))?;
                    Ok(ExactModel::from_bytes(&bytes)?)
                })
            };
            let game = market.span_dispute_game();
            let window = u64::from(game.receiptWindow().call().await?);
            let clock = u64::from(game.clock().call().await?);
            let keep = Duration::from_secs(window + 2 * clock + 3600);
            (Some(full), Some(Arc::new(receipts)), keep)
        }
        None => (None, None, Duration::ZERO),
    };
    let signer = receipts.clone();
    let rows_dir = dir.join("span-rows");
    let server = tokio::task::spawn_blocking(move || {
        SpanServer::new(model, cid, blocks, cache).and_then(|s| {
            let mut s = s.with_reply_delay(delay);
            if let Some(r) = signer {
                s = s.with_receipts(r).with_row_files(&rows_dir, keep)?;
            }
            if let Some(n) = lie {
                s = s.with_lie_after(n);
            }
            Ok(match vouchers {
                Some(v) => s.with_price(price, v),
                None => s,
            })
        })
    })
    .await??;
    let server = Arc::new(server);
    let defense = match (market, full) {
        (Some(m), Some(full)) => Some(tokio::spawn(defend_receipts(m, server.clone(), full))),
        _ => None,
    };
    println!(
        "serving blocks {:?} of {cid} ({total} blocks) as peer {}",
        server.span(),
        net.peer_id()
    );
    let task = tokio::spawn(serve(net.clone(), server.clone(), job.announce));
    // A server that chose its blocks moves with coverage; pinned blocks stay.
    let balance = (job.blocks.is_none() && following).then(|| {
        tokio::spawn(rebalance(
            net.clone(),
            server.clone(),
            seen,
            load,
            job.announce * 3,
            3,
        ))
    });
    Ok(RunningSpan {
        server,
        task,
        book,
        defense,
        balance,
    })
}

impl ServeArgs {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        let (dir, store) = self.store.open()?;
        let source = Arc::new(StoreSource::new(store.clone(), 1));
        let mut net = start_node(&dir, self.net.config(&[], &[]), source).await?;
        let job = SpanJob {
            model: self.model,
            blocks: self.blocks,
            span_blocks: self.span_blocks,
            wei_per_token: self.wei_per_token,
            cache_bytes: self.cache_mib << 20,
            announce: Duration::from_secs(self.announce_secs.max(1)),
            reply_delay: Duration::from_millis(self.debug_reply_delay_ms),
            lie_after: self.debug_lie_after,
        };
        let account = self.pay.market().await?;
        let running = start_span(
            job,
            &dir,
            &store,
            &net.client,
            Some(std::mem::replace(
                &mut net.events,
                tokio::sync::mpsc::channel(1).1,
            )),
            account,
        )
        .await?;
        super::provider::shutdown_signal().await;
        net.client.shutdown().await;
        // Every session is over: redeem what they owe, and wait for the transactions.
        running.stop().await;
        Ok(())
    }
}

impl GatewayArgs {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        let mut keys: HashSet<String> = self.api_keys.iter().cloned().collect();
        if let Some(file) = &self.api_keys_file {
            let text = std::fs::read_to_string(file)
                .wrap_err_with(|| format!("cannot read {}", file.display()))?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            );
        }
        keys.retain(|k| !k.is_empty());
        eyre::ensure!(
            !keys.is_empty() || self.allow_anonymous,
            "no API key: give --api-key (or --api-keys-file), or --allow-anonymous to serve anyone"
        );
        let (dir, store) = self.store.open()?;
        let source = Arc::new(StoreSource::new(store.clone(), 1));
        let mut net = start_node(&dir, self.net.config(&[], &[]), source).await?;
        eyre::ensure!(
            (0.0..=1.0).contains(&self.verify_fraction),
            "--verify-fraction is a share of the answers: give a number from 0 to 1"
        );
        let account = self.pay.market().await?;
        eyre::ensure!(
            !self.require_receipts || (account.is_some() && self.verify_fraction > 0.0),
            "--require-receipts needs --keystore (the account that disputes) and a \
             --verify-fraction above 0 (the spot checks that find the lies)"
        );
        let (model, cid) = load_model(&self.model, &dir, &store, &net.client).await?;
        let events = std::mem::replace(&mut net.events, tokio::sync::mpsc::channel(1).1);
        let wait = Duration::from_secs(self.wait_secs);
        let full = Arc::new(model.clone());
        let mut remote = RemoteModel::new(
            model,
            cid,
            net.client.clone(),
            Duration::from_secs(120),
            wait,
        )?;
        if self.verify_fraction > 0.0 {
            remote = remote.with_spot_checks(full.clone(), self.verify_fraction);
        }
        if let (true, Some((market, _))) = (self.require_receipts, &account) {
            let (m, f) = (market.clone(), full.clone());
            let slash = market.span_dispute_game().slashAmount().call().await?;
            let receipts =
                tokio::task::spawn_blocking(move || ChainReceipts::new(&m, &f, None)).await??;
            let receipts = receipts.with_min_stake(slash);
            let disputer = ChainDisputer::new(market.clone(), full.clone());
            remote = remote.with_disputes(Arc::new(receipts), Arc::new(disputer));
        }
        if let Some((market, signer)) = account {
            let a = market.span_account(market.sender()).await?;
            println!(
                "paying servers from {} (deposit {} ETH)",
                market.sender(),
                super::eth(a.balance)
            );
            let cap = self.max_wei_per_token.ok_or_else(|| {
                eyre::eyre!(
                    "give --max-wei-per-token, the most this gateway pays one server per token"
                )
            })?;
            remote = remote.with_payer(Arc::new(ChainSigner::new(&market, signer)), cap);
        }
        tokio::spawn(follow(
            remote.chain.net.clone(),
            events,
            remote.chain.directory.clone(),
        ));
        let gateway = Arc::new(pedals_gateway::Gateway {
            model: remote,
            name: self.name.unwrap_or_else(|| cid.to_string()),
            keys,
            created: pedals_p2p::unix_now(),
        });
        let (bound, task) =
            pedals_gateway::serve(gateway, self.http, super::provider::shutdown_signal())
                .await
                .wrap_err_with(|| format!("cannot listen on {}: pick another --http", self.http))?;
        println!("OpenAI-compatible API at http://{bound}/v1 (model {cid})");
        task.await??;
        net.client.shutdown().await;
        Ok(())
    }
}
