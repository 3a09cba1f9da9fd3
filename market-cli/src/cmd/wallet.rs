//! `pedals wallet`: encrypted keystores (Web3 secret storage) in the user's data folder.
//!
//! Keys never leave a keystore unencrypted, are never printed or logged, and keystore files
//! are written with mode 0600.

use std::path::{Path, PathBuf};

use alloy::{primitives::B256, signers::local::PrivateKeySigner};
use clap::{Args, Subcommand};
use eyre::Context;
use serde_json::json;

use super::secret::{default_keystore_dir, new_password, password};

/// Wallet commands.
#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a new account in an encrypted keystore.
    ///
    /// Example: pedals wallet new --name provider
    New(NewArgs),
    /// Encrypt an existing private key (read from a file or a hidden prompt) into a keystore.
    ///
    /// Example: pedals wallet import --name provider --private-key-file key.txt
    Import(ImportArgs),
    /// List the keystores in the folder.
    ///
    /// Example: pedals wallet list --json
    List(ListArgs),
    /// Print a keystore's address (decrypting it checks the password).
    ///
    /// Example: pedals wallet address --name provider
    Address(NameArgs),
    /// Print a keystore account's ETH balance on the chain.
    ///
    /// Example: pedals wallet balance --name provider --rpc-url http://127.0.0.1:8545
    Balance(BalanceArgs),
}

/// Options of `pedals wallet balance`.
#[derive(Debug, Args)]
pub(crate) struct BalanceArgs {
    #[command(flatten)]
    at: NameArgs,
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "PEDALS_RPC_URL")]
    rpc_url: alloy::transports::http::reqwest::Url,
}

/// Where a keystore lives.
#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// Keystore name (the file is `<dir>/<name>.json`).
    #[arg(long, default_value = "default")]
    name: String,
    /// Keystore folder [default: the user's data folder, pedals/keystores].
    #[arg(long, env = "PEDALS_KEYSTORE_DIR")]
    dir: Option<PathBuf>,
    /// File holding the password (else `PEDALS_PASSWORD`, else a prompt).
    #[arg(long, env = "PEDALS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `pedals wallet new`.
#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    #[command(flatten)]
    at: NameArgs,
}

/// Options of `pedals wallet import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    at: NameArgs,
    /// File holding the private key as hex (else a hidden prompt).
    #[arg(long)]
    private_key_file: Option<PathBuf>,
}

/// Options of `pedals wallet list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Keystore folder [default: the user's data folder, pedals/keystores].
    #[arg(long, env = "PEDALS_KEYSTORE_DIR")]
    dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl NameArgs {
    fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(default_keystore_dir)
    }

    fn path(&self) -> eyre::Result<PathBuf> {
        eyre::ensure!(
            !self.name.is_empty()
                && self
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "keystore name {:?}: use letters, digits, '-' and '_'",
            self.name
        );
        Ok(self.dir().join(format!("{}.json", self.name)))
    }

    fn report(&self, action: &str, address: alloy::primitives::Address, path: &Path) {
        if self.json {
            println!(
                "{}",
                json!({ "name": self.name, "address": address, "path": path })
            );
        } else {
            println!("{action} {address}  ({})", path.display());
        }
    }
}

/// Encrypts `key` into `<dir>/<name>.json` with mode 0600; refuses to overwrite.
fn write_keystore(at: &NameArgs, key: B256) -> eyre::Result<()> {
    let path = at.path()?;
    eyre::ensure!(
        !path.exists(),
        "{} exists already; pick another --name (nothing was overwritten)",
        path.display()
    );
    let dir = at.dir();
    std::fs::create_dir_all(&dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let password = new_password(at.password_file.as_deref())?;
    let file_name = format!("{}.json", at.name);
    let (signer, _) = PrivateKeySigner::encrypt_keystore(
        &dir,
        &mut rand::thread_rng(),
        key,
        password,
        Some(&file_name),
    )
    .wrap_err("could not write the keystore")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .wrap_err_with(|| format!("cannot restrict {}", path.display()))?;
    }
    at.report("created", signer.address(), &path);
    Ok(())
}

impl WalletCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            Self::New(args) => write_keystore(&args.at, PrivateKeySigner::random().to_bytes()),
            Self::Import(args) => {
                let text = match &args.private_key_file {
                    Some(path) => std::fs::read_to_string(path).wrap_err_with(|| {
                        format!("cannot read the private key file {}", path.display())
                    })?,
                    None => rpassword::prompt_password("private key (hex): ")
                        .wrap_err("no private key: pass --private-key-file or run on a terminal")?,
                };
                let key: B256 = text.trim().parse().map_err(|_| {
                    eyre::eyre!("the private key must be 32 bytes of hex (64 digits, 0x optional)")
                })?;
                PrivateKeySigner::from_bytes(&key)
                    .map_err(|_| eyre::eyre!("that is not a valid secp256k1 private key"))?;
                write_keystore(&args.at, key)
            }
            Self::List(args) => {
                let dir = args.dir.clone().unwrap_or_else(default_keystore_dir);
                let mut names: Vec<String> = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries
                        .filter_map(Result::ok)
                        .filter_map(|e| {
                            e.file_name()
                                .to_str()
                                .and_then(|n| n.strip_suffix(".json"))
                                .map(str::to_string)
                        })
                        .collect(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => {
                        return Err(e).wrap_err_with(|| format!("cannot read {}", dir.display()));
                    }
                };
                names.sort();
                if args.json {
                    println!("{}", json!({ "dir": dir, "keystores": names }));
                } else if names.is_empty() {
                    println!(
                        "no keystores in {} (create one with `pedals wallet new`)",
                        dir.display()
                    );
                } else {
                    for name in names {
                        println!("{name}  ({})", dir.join(format!("{name}.json")).display());
                    }
                }
                Ok(())
            }
            Self::Address(at) => {
                let path = at.path()?;
                let password = password(at.password_file.as_deref())?;
                let signer =
                    PrivateKeySigner::decrypt_keystore(&path, password).wrap_err_with(|| {
                        format!(
                            "cannot open {}: wrong password, or not a keystore",
                            path.display()
                        )
                    })?;
                at.report("address", signer.address(), &path);
                Ok(())
            }
            Self::Balance(args) => {
                use alloy::providers::Provider;
                let path = args.at.path()?;
                let address =
                    super::secret::open_keystore(&path, args.at.password_file.as_deref())?
                        .address();
                let balance = pedals_chain::rpc_provider(args.rpc_url.clone())?
                    .get_balance(address)
                    .await
                    .wrap_err_with(|| format!("cannot reach the chain at {}", args.rpc_url))?;
                if args.at.json {
                    println!(
                        "{}",
                        json!({ "name": args.at.name, "address": address, "balanceWei": balance.to_string() })
                    );
                } else {
                    println!("{address}  {} ETH", super::eth(balance));
                }
                Ok(())
            }
        }
    }
}
