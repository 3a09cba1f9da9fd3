//! Paying for split inference with `SpanPayments` (docs/split-inference.md, "Payment"): the
//! gateway's voucher signer, the span server's voucher book (checks, deposits, redemptions),
//! and `pedals deposit`, which moves a client's deposit.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, Signature, U256},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
    transports::http::reqwest::Url,
};
use clap::{Args, Subcommand};
use pedals_chain::{Deployment, Market, SpanAccount, Voucher, voucher_domain};
use pedals_infer::{VoucherBook, VoucherSigner, WireVoucher};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// The account that pays or is paid, on the chain of a deployment (all optional: without
/// them a gateway uses only free servers, and a server serves for free).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct PayArgs {
    /// JSON-RPC endpoint of the chain (checks deposits, redeems vouchers).
    #[arg(long, env = "PEDALS_RPC_URL")]
    rpc_url: Option<Url>,
    /// Deployment file written by the deploy script (its `spanPayments`).
    #[arg(long, env = "PEDALS_DEPLOYMENT")]
    deployment: Option<PathBuf>,
    /// Encrypted keystore of the account that signs vouchers (gateway) or is paid (server).
    #[arg(long, env = "PEDALS_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// File holding the keystore's password (else `PEDALS_PASSWORD`, else a prompt).
    #[arg(long, env = "PEDALS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
}

impl PayArgs {
    /// The account on its chain, when a keystore is given.
    pub(crate) async fn market(&self) -> eyre::Result<Option<(Market, PrivateKeySigner)>> {
        let Some(keystore) = &self.keystore else {
            return Ok(None);
        };
        let (Some(rpc_url), Some(deployment)) = (&self.rpc_url, &self.deployment) else {
            eyre::bail!("--keystore needs --rpc-url and --deployment too (the chain that pays)");
        };
        let signer = super::secret::open_keystore(keystore, self.password_file.as_deref())?;
        let deployment = Deployment::load(deployment)?;
        let market = Market::connect(rpc_url.clone(), signer.clone(), deployment).await?;
        Ok(Some((market, signer)))
    }
}

/// Signs the gateway's vouchers with its account.
pub(crate) struct ChainSigner {
    signer: PrivateKeySigner,
    domain: Eip712Domain,
}

impl ChainSigner {
    pub(crate) fn new(market: &Market, signer: PrivateKeySigner) -> Self {
        let d = market.deployment();
        Self {
            signer,
            domain: voucher_domain(d.chain_id, d.span_payments),
        }
    }
}

impl VoucherSigner for ChainSigner {
    fn account(&self) -> Address {
        self.signer.address()
    }

    fn sign(
        &self,
        server: Address,
        session: u64,
        amount: U256,
        outputs: B256,
    ) -> Result<Vec<u8>, String> {
        let v = Voucher {
            server,
            session,
            amount,
            outputs,
        };
        v.sign(&self.domain, &self.signer)
            .map(|s| s.as_bytes().to_vec())
            .map_err(|e| e.to_string())
    }
}

/// How many times a redemption is sent before the voucher is given up.
const REDEEM_TRIES: u32 = 3;

/// How long a client's deposit, read from the chain, is trusted.
const DEPOSIT_TTL: Duration = Duration::from_secs(5);

/// The best voucher of every paid session that is not redeemed yet, one file each, so that a
/// server that crashes or is killed redeems them when it starts again.
pub(crate) struct VoucherFiles {
    dir: PathBuf,
}

/// A kept voucher and whose session it pays.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptVoucher {
    client: Address,
    session: u64,
    voucher: WireVoucher,
}

impl VoucherFiles {
    pub(crate) fn open(dir: PathBuf) -> eyre::Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| eyre::eyre!("cannot keep vouchers in {}: {e}", dir.display()))?;
        Ok(Self { dir })
    }

    fn path(&self, client: Address, session: u64) -> PathBuf {
        self.dir.join(format!("{client:#x}-{session}.json"))
    }

    /// Replaces the session's kept voucher (written aside, then renamed: never half).
    fn keep(&self, client: Address, session: u64, voucher: &WireVoucher) {
        let kept = KeptVoucher {
            client,
            session,
            voucher: voucher.clone(),
        };
        let path = self.path(client, session);
        let tmp = path.with_extension("tmp");
        let written = serde_json::to_vec(&kept)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            warn!(target: "pedals::infer", %client, session, error = %e, "cannot keep a voucher on disk");
        }
    }

    fn forget(&self, client: Address, session: u64) {
        let _ = std::fs::remove_file(self.path(client, session));
    }

    /// Every kept voucher (a file that does not parse is left for a person to look at).
    fn all(&self) -> Vec<(Address, u64, WireVoucher)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| {
                let bytes = std::fs::read(e.path()).ok()?;
                let k: KeptVoucher = serde_json::from_slice(&bytes).ok()?;
                Some((k.client, k.session, k.voucher))
            })
            .collect()
    }
}

/// The server's voucher book: recovers signers, checks deposits on-chain (cached a few
/// seconds), keeps every session's best voucher on disk, and redeems the vouchers of ended
/// sessions in a task of its own.
pub(crate) struct ChainBook {
    me: Address,
    domain: Eip712Domain,
    market: Market,
    rt: tokio::runtime::Handle,
    deposits: Mutex<HashMap<Address, (SpanAccount, Instant)>>,
    settle: mpsc::UnboundedSender<(Address, u64, WireVoucher)>,
    files: Arc<VoucherFiles>,
}

impl ChainBook {
    /// The book, and the task that redeems (it ends when the book is dropped). The vouchers
    /// kept in `files` by an earlier run (one that crashed, or was killed) are redeemed first.
    pub(crate) fn start(
        market: Market,
        files: VoucherFiles,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let d = market.deployment();
        let (settle, mut rx) = mpsc::unbounded_channel::<(Address, u64, WireVoucher)>();
        let files = Arc::new(files);
        for (client, session, v) in files.all() {
            info!(target: "pedals::infer", %client, session, amount = %v.amount, "redeeming a voucher kept by an earlier run");
            let _ = settle.send((client, session, v));
        }
        let book = Arc::new(Self {
            me: market.sender(),
            domain: voucher_domain(d.chain_id, d.span_payments),
            market: market.clone(),
            rt: tokio::runtime::Handle::current(),
            deposits: Mutex::default(),
            settle,
            files: files.clone(),
        });
        let task = tokio::spawn(async move {
            while let Some((client, session, v)) = rx.recv().await {
                let voucher = Voucher {
                    server: market.sender(),
                    session,
                    amount: v.amount,
                    outputs: v.outputs,
                };
                let Ok(sig) = Signature::try_from(v.signature.as_ref()) else {
                    continue;
                };
                // A few tries against a flaky endpoint; a refusal by the contract is final.
                for attempt in 1..=REDEEM_TRIES {
                    match market.redeem_voucher(client, &voucher, &sig).await {
                        Ok(tx) => {
                            info!(target: "pedals::infer", %client, session, amount = %v.amount, tx = %tx.hash, "voucher redeemed");
                            files.forget(client, session);
                            break;
                        }
                        Err(e) => {
                            warn!(target: "pedals::infer", %client, session, attempt, error = %e, "voucher not redeemed");
                            // Refused by the contract (redeemed already, or never valid):
                            // final. Otherwise the file stays for the next run.
                            if matches!(e, pedals_chain::ChainError::SpanPayments(_)) {
                                files.forget(client, session);
                                break;
                            }
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                    }
                }
            }
        });
        (book, task)
    }
}

impl VoucherBook for ChainBook {
    fn account(&self) -> Address {
        self.me
    }

    fn signer(&self, session: u64, v: &WireVoucher) -> Option<Address> {
        // `Voucher::signer` refuses high-s signatures, which the contract would not redeem.
        let sig = Signature::try_from(v.signature.as_ref()).ok()?;
        let voucher = Voucher {
            server: self.me,
            session,
            amount: v.amount,
            outputs: v.outputs,
        };
        voucher.signer(&self.domain, &sig)
    }

    fn paid(&self, client: Address, session: u64) -> Result<U256, String> {
        self.rt
            .block_on(self.market.span_paid(client, self.me, session))
            .map_err(|e| format!("cannot read what session {session} was paid: {e}"))
    }

    fn can_pay(&self, client: Address, owed: U256) -> Result<(), String> {
        let cached = self.deposits.lock().ok().and_then(|m| {
            m.get(&client)
                .filter(|(_, at)| at.elapsed() < DEPOSIT_TTL)
                .map(|(a, _)| *a)
        });
        let account = match cached {
            Some(a) => a,
            None => {
                let a = self
                    .rt
                    .block_on(self.market.span_account(client))
                    .map_err(|e| format!("cannot read the deposit of {client}: {e}"))?;
                if let Ok(mut m) = self.deposits.lock() {
                    m.retain(|_, (_, at)| at.elapsed() < DEPOSIT_TTL);
                    m.insert(client, (a, Instant::now()));
                }
                a
            }
        };
        if account.unlock_at != 0 {
            return Err(format!(
                "{client} asked to withdraw its deposit; this server no longer serves it"
            ));
        }
        if account.balance < owed {
            return Err(format!(
                "the deposit of {client} is {} wei, less than the {owed} wei this session will \
                 owe: deposit more with `pedals deposit add`",
                account.balance
            ));
        }
        Ok(())
    }

    fn settle(&self, client: Address, session: u64, v: WireVoucher) {
        self.files.keep(client, session, &v);
        let _ = self.settle.send((client, session, v));
    }

    fn earned(&self, client: Address, session: u64, v: &WireVoucher) {
        self.files.keep(client, session, v);
    }
}

/// `pedals deposit`: the deposit a gateway pays span servers from.
#[derive(Debug, Subcommand)]
pub(crate) enum DepositCommand {
    /// Add to the account's deposit.
    ///
    /// Example: pedals deposit add --eth 0.1 --keystore gateway.json
    Add {
        #[command(flatten)]
        account: super::stake::AccountArgs,
        /// How much, in ETH.
        #[arg(long)]
        eth: String,
    },
    /// Ask to withdraw; `withdraw` takes it once the contract's delay is over (servers redeem
    /// what they hold meanwhile, and serve the account no more).
    ///
    /// Example: pedals deposit request-withdrawal --eth 0.1
    RequestWithdrawal {
        #[command(flatten)]
        account: super::stake::AccountArgs,
        /// How much, in ETH.
        #[arg(long)]
        eth: String,
    },
    /// Take the requested withdrawal once unlocked.
    ///
    /// Example: pedals deposit withdraw
    Withdraw {
        #[command(flatten)]
        account: super::stake::AccountArgs,
    },
    /// Show the account's deposit.
    ///
    /// Example: pedals deposit show --json
    Show {
        #[command(flatten)]
        account: super::stake::AccountArgs,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

impl DepositCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::Add { account, eth } => {
                let m = super::stake::connect(&account).await?;
                let tx = m.deposit_for_spans(super::parse_eth(&eth)?).await?;
                println!("deposited {eth} ETH (tx {})", tx.hash);
            }
            Self::RequestWithdrawal { account, eth } => {
                let m = super::stake::connect(&account).await?;
                let tx = m.request_span_withdrawal(super::parse_eth(&eth)?).await?;
                println!("withdrawal of {eth} ETH requested (tx {})", tx.hash);
            }
            Self::Withdraw { account } => {
                let m = super::stake::connect(&account).await?;
                let tx = m.withdraw_span_deposit().await?;
                println!("withdrawn (tx {})", tx.hash);
            }
            Self::Show { account, json } => {
                let m = super::stake::connect(&account).await?;
                let a = m.span_account(m.sender()).await?;
                if json {
                    println!(
                        "{}",
                        json!({"account": m.sender(), "balanceWei": a.balance.to_string(),
                               "withdrawingWei": a.withdrawing.to_string(), "unlockAt": a.unlock_at})
                    );
                } else {
                    println!(
                        "{}: {} ETH deposited, {} ETH asked to withdraw{}",
                        m.sender(),
                        super::eth(a.balance),
                        super::eth(a.withdrawing),
                        if a.unlock_at == 0 {
                            String::new()
                        } else {
                            format!(" (unlocks at {})", a.unlock_at)
                        }
                    );
                }
            }
        }
        Ok(())
    }
}
