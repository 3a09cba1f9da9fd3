//! A local devnet: a real anvil with every contract deployed by the project's deploy script.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy::{
    eips::BlockNumberOrTag,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, B256, Bytes},
    providers::{Provider, ProviderBuilder, ext::AnvilApi},
    signers::local::PrivateKeySigner,
    transports::http::reqwest::Url,
};
use tokio::process::Command;
use tracing::{debug, info};

use crate::{ChainError, Deployment, Toolchain};

/// How to start a devnet.
#[derive(Debug, Clone, Default)]
pub struct DevnetConfig {
    /// The toolchain; [`Toolchain::locate`] when `None`.
    pub toolchain: Option<Toolchain>,
    /// Port for anvil; a free one when `None`.
    pub port: Option<u16>,
    /// Seconds between blocks; anvil mines on every transaction when `None`.
    pub block_time: Option<u64>,
}

/// A running anvil with the Pedals contracts deployed. Dropping it stops anvil.
#[derive(Debug)]
pub struct Devnet {
    // Dropped in this order: anvil is killed before its state cache is removed.
    anvil: AnvilInstance,
    deployment: Deployment,
    _cache: tempfile::TempDir,
}

impl Devnet {
    /// Starts anvil and deploys every contract with `contracts/script/Deploy.s.sol`, from
    /// anvil's first funded account.
    pub async fn start(config: DevnetConfig) -> Result<Self, ChainError> {
        let toolchain = match config.toolchain {
            Some(t) => t,
            None => Toolchain::locate()?,
        };
        let anvil_bin = toolchain.binary("anvil")?;
        let port = config.port;
        let block_time = config.block_time;
        // anvil writes old blocks' states to a cache folder (by default under ~/.foundry, where
        // a killed anvil leaves them behind: gigabytes per long test). This one goes with us.
        let cache = tempfile::Builder::new()
            .prefix("pedals-anvil-cache-")
            .tempdir()
            .map_err(|source| ChainError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let cache_path = cache.path().to_path_buf();
        // anvil starts mining on every transaction, so the deployment does not wait for blocks;
        // the block time, if any, is switched on after it.
        let anvil = tokio::task::spawn_blocking(move || {
            let mut anvil = Anvil::at(anvil_bin).arg("--cache-path").arg(cache_path);
            if let Some(port) = port {
                anvil = anvil.port(port);
            }
            anvil.try_spawn()
        })
        .await??;
        info!(target: "pedals::devnet", endpoint = %anvil.endpoint(), "anvil started");
        let deployer = PrivateKeySigner::from(anvil.first_key().clone());
        let deployment = deploy(&toolchain, &anvil.endpoint_url(), &deployer).await?;
        if let Some(secs) = block_time {
            let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
            provider.anvil_set_interval_mining(secs).await?;
        }
        info!(
            target: "pedals::devnet",
            job_market = %deployment.job_market,
            stake_manager = %deployment.stake_manager,
            "contracts deployed"
        );
        Ok(Self {
            anvil,
            deployment,
            _cache: cache,
        })
    }

    /// The HTTP RPC endpoint.
    pub fn endpoint(&self) -> Url {
        self.anvil.endpoint_url()
    }

    /// The deployed contracts.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.anvil.chain_id()
    }

    /// Signer of anvil's funded dev account `index` (10 000 ETH each; index 0 deployed the
    /// contracts and holds every role). These keys are public: use them on a devnet only.
    pub fn signer(&self, index: usize) -> Option<PrivateKeySigner> {
        self.anvil
            .nth_key(index)
            .cloned()
            .map(PrivateKeySigner::from)
    }

    /// Addresses of anvil's funded dev accounts.
    pub fn accounts(&self) -> &[Address] {
        self.anvil.addresses()
    }

    /// Every transaction `from` sent on this devnet, oldest first: what a test reads to see
    /// that a daemon sent nothing twice (a repeated move reverts).
    pub async fn sent_by(&self, from: Address) -> Result<Vec<SentTx>, ChainError> {
        let chain = ProviderBuilder::new().connect_http(self.endpoint());
        let head = chain.get_block_number().await?;
        let mut out = Vec::new();
        for n in 0..=head {
            let block = chain
                .get_block_by_number(BlockNumberOrTag::Number(n))
                .full()
                .await?
                .ok_or(ChainError::MissingBlock(n))?;
            for tx in block.transactions.into_transactions() {
                if tx.inner.signer() != from {
                    continue;
                }
                let hash = *tx.inner.tx_hash();
                let success = chain
                    .get_transaction_receipt(hash)
                    .await?
                    .is_some_and(|r| r.status());
                let input = alloy::consensus::Transaction::input(&tx).clone();
                out.push(SentTx {
                    hash,
                    input,
                    success,
                });
            }
        }
        Ok(out)
    }
}

/// A mined transaction, as [`Devnet::sent_by`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTx {
    /// Its hash.
    pub hash: B256,
    /// Its calldata.
    pub input: Bytes,
    /// Whether it succeeded.
    pub success: bool,
}

impl SentTx {
    /// The function selector it called (zeros for a plain transfer).
    pub fn selector(&self) -> [u8; 4] {
        self.input
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or_default()
    }
}

/// Runs `forge script script/Deploy.s.sol` against `rpc_url` from `deployer` and returns the
/// deployment file it wrote. The key travels on forge's command line, which is fine for a
/// devnet's public dev keys; deployments to public networks use [`deploy_as`] with a keystore.
pub async fn deploy(
    toolchain: &Toolchain,
    rpc_url: &Url,
    deployer: &PrivateKeySigner,
) -> Result<Deployment, ChainError> {
    deploy_as(
        toolchain,
        rpc_url,
        Deployer::Key(deployer),
        &DeployRoles {
            devnet_zk: true,
            ..DeployRoles::default()
        },
    )
    .await
}

/// Who sends the deployment transactions.
#[derive(Debug, Clone, Copy)]
pub enum Deployer<'a> {
    /// A key given to forge on its command line (public dev keys only: the command line is
    /// readable by every process of the machine).
    Key(&'a PrivateKeySigner),
    /// An encrypted keystore and a file holding its password, which forge opens itself.
    Keystore {
        /// The keystore (Web3 secret storage).
        path: &'a std::path::Path,
        /// A file holding its password.
        password_file: &'a std::path::Path,
        /// Its account.
        address: alloy::primitives::Address,
    },
}

/// The role holders a deployment hands over to; `None` leaves the role with the deployer.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeployRoles {
    /// Admin of both contracts (a timelock or a multisig on a public network).
    pub admin: Option<alloy::primitives::Address>,
    /// The market's pauser.
    pub pauser: Option<alloy::primitives::Address>,
    /// Receiver of protocol fees.
    pub fee_recipient: Option<alloy::primitives::Address>,
    /// Registers the committed `MnistMlpVerifier` as zk circuit 1. Its keys come from the
    /// public devnet seed, so the script allows it on chain 31337 only.
    pub devnet_zk: bool,
}

/// Runs the deploy script as `deployer`, handing the roles to `roles`' holders, and returns
/// the deployment it wrote.
pub async fn deploy_as(
    toolchain: &Toolchain,
    rpc_url: &Url,
    deployer: Deployer<'_>,
    roles: &DeployRoles,
) -> Result<Deployment, ChainError> {
    let forge = toolchain.binary("forge")?;
    let dir = toolchain.contracts_dir();
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // forge may only write inside its fs_permissions (contracts/deployments).
    let relative = format!("deployments/.devnet-{}-{nonce}.json", std::process::id());
    let file = dir.join(&relative);
    debug!(target: "pedals::devnet", file = %file.display(), "running the deploy script");
    let mut command = Command::new(&forge);
    command
        .current_dir(dir)
        .args([
            "script",
            "script/Deploy.s.sol:Deploy",
            "--broadcast",
            // One transaction at a time, each after the previous one's receipt: sent
            // concurrently, a request lost under load left a nonce gap that forge then waited
            // on forever.
            "--slow",
            "--silent",
        ])
        .arg("--rpc-url")
        .arg(rpc_url.as_str())
        .env("PEDALS_DEPLOYMENT_FILE", &relative)
        .env("FOUNDRY_DISABLE_NIGHTLY_WARNING", "1")
        .kill_on_drop(true);
    match deployer {
        Deployer::Key(key) => {
            command
                .arg("--private-key")
                .arg(alloy::hex::encode_prefixed(key.to_bytes()));
        }
        Deployer::Keystore {
            path,
            password_file,
            address,
        } => {
            command
                .arg("--keystore")
                .arg(path)
                .arg("--password-file")
                .arg(password_file)
                .arg("--sender")
                .arg(address.to_string());
        }
    }
    for (name, holder) in [
        ("PEDALS_ADMIN", roles.admin),
        ("PEDALS_PAUSER", roles.pauser),
        ("PEDALS_FEE_RECIPIENT", roles.fee_recipient),
    ] {
        match holder {
            Some(address) => command.env(name, address.to_string()),
            None => command.env_remove(name),
        };
    }
    if roles.devnet_zk {
        command.env("PEDALS_DEVNET_ZK", "true");
    } else {
        command.env_remove("PEDALS_DEVNET_ZK");
    }
    let output = command.output();
    // A deploy of a handful of transactions takes seconds; never wait on it forever.
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), output)
        .await
        .map_err(|_| ChainError::Io {
            path: forge.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the deploy script did not finish in 5 minutes: is the RPC endpoint answering?",
            ),
        })?
        .map_err(|source| ChainError::Io {
            path: forge.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(ChainError::DeployScript {
            status: output.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    let deployment = Deployment::load(&file);
    std::fs::remove_file(&file).ok();
    deployment
}
