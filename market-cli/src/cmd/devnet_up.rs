//! `pedals devnet up|down|status|logs`: a local market that keeps running in the background.
//! `up` starts anvil (a block a second) with every contract deployed, writes a keystore for a
//! requester, a validator and each worker (one shared password file), and starts on loopback a
//! data-seeding peer (`pedals data serve`, holding the example job's spec, dataset and model,
//! and the address every other node joins through), the workers (`pedals provider run`) and a
//! validator (`pedals validator run`); everything it starts, and every file it writes, is in
//! one folder. `down` stops the processes recorded
//! there, and nothing else.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{B256, U256},
    providers::{Provider, ProviderBuilder, ext::AnvilApi},
    signers::local::PrivateKeySigner,
};
use clap::Args;
use eyre::{Context, ContextCompat};
use pedals_chain::{Deployment, Toolchain, deploy};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::devnet_proc::{Process, alive, log_tail, spawn, stop};

/// Where a background devnet keeps its state, logs and keys.
#[derive(Debug, Args)]
pub(crate) struct DirArgs {
    /// The devnet's folder [default: <data dir>/pedals/devnet].
    #[arg(long, env = "PEDALS_DEVNET_DIR")]
    dir: Option<PathBuf>,
}

impl DirArgs {
    fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("pedals")
                .join("devnet")
        })
    }
}

/// Options of `pedals devnet up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Port of anvil's RPC endpoint.
    #[arg(long, default_value_t = 8545)]
    port: u16,
    /// Workers to start in the background (each `pedals provider run` with its own account,
    /// 0 to 6); a `provider` keystore is left for running one yourself.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Start no validator.
    #[arg(long)]
    no_validator: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// The state file, `<dir>/devnet.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    rpc_url: String,
    chain_id: u64,
    deployment: PathBuf,
    password_file: PathBuf,
    requester_keystore: PathBuf,
    validator_keystore: PathBuf,
    /// A funded account no background process uses: for running a provider by hand.
    provider_keystore: PathBuf,
    worker_keystores: Vec<PathBuf>,
    /// Where the seeding peer listens: the address every node bootstraps from.
    bootstrap: String,
    /// The CIDs the seeding peer serves (the example job's spec, dataset and model).
    #[serde(default)]
    seeded: Vec<String>,
    processes: Vec<Process>,
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("devnet.json")
}

fn read_state(dir: &Path) -> eyre::Result<Option<State>> {
    let path = state_path(dir);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .wrap_err_with(|| format!("cannot read {}", path.display()))?;
    Ok(Some(serde_json::from_str(&text).wrap_err_with(|| {
        format!(
            "{} is damaged: delete it and stop its processes by hand",
            path.display()
        )
    })?))
}

/// The state of the devnet in `dir`, or an error that says how to start one.
fn require_state(dir: &Path) -> eyre::Result<State> {
    read_state(dir)?.with_context(|| {
        format!(
            "no devnet is up in {}: start one with `pedals devnet up`",
            dir.display()
        )
    })
}

/// anvil's chain, in the devnet's folder.
const ANVIL_STATE: &str = "anvil-state.json";
/// Where anvil writes old blocks' states (by default under ~/.foundry, never removed).
const ANVIL_CACHE: &str = "anvil-cache";

/// Waits until anvil (`process`) answers at `provider` (60 s at most: a machine busy
/// building or testing can be slow to start it); returns its chain id.
async fn wait_chain(
    provider: &alloy::providers::DynProvider,
    process: &Process,
) -> eyre::Result<u64> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        match provider.get_chain_id().await {
            Ok(id) => return Ok(id),
            Err(_) if Instant::now() < until && alive(process) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                eyre::bail!(
                    "anvil did not start ({e}): is its port taken? its log {} ends:\n{}",
                    process.log.display(),
                    log_tail(&process.log, 10)
                );
            }
        }
    }
}

/// Starts the named processes again as they were started (every one that is not running
/// when none is named), anvil with the chain it had, and records their new pids.
pub(crate) async fn restart(dir: &DirArgs, names: &[String]) -> eyre::Result<()> {
    let dir = dir.dir();
    let mut state = require_state(&dir)?;
    for name in names {
        eyre::ensure!(
            state.processes.iter().any(|p| &p.name == name),
            "no process {name:?} in this devnet: pick one of {}",
            state
                .processes
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let picked: Vec<usize> = (0..state.processes.len())
        .filter(|&i| {
            let p = &state.processes[i];
            if names.is_empty() {
                !alive(p)
            } else {
                names.contains(&p.name)
            }
        })
        .collect();
    if picked.is_empty() {
        println!(
            "every process of the devnet in {} runs; name one to restart it",
            dir.display()
        );
        return Ok(());
    }
    // In the order `up` started them: anvil before the nodes that read it.
    for i in picked {
        let p = super::devnet_proc::restart(&state.processes[i])?;
        if p.name == "anvil" {
            let provider = ProviderBuilder::new()
                .connect_http(state.rpc_url.parse()?)
                .erased();
            wait_chain(&provider, &p).await?;
            // The block interval is not part of anvil's saved state.
            provider.anvil_set_interval_mining(1).await?;
        }
        println!("restarted {} (pid {})", p.name, p.pid);
        state.processes[i] = p;
        // Recorded at once: a later failure leaves the state true for what did restart.
        std::fs::write(state_path(&dir), serde_json::to_string_pretty(&state)?)?;
    }
    Ok(())
}

/// The dev accounts' keys, read from anvil's log.
fn anvil_keys(log: &Path) -> Vec<B256> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let Some(start) = text.find("Private Keys") else {
        return Vec::new();
    };
    text[start..]
        .lines()
        .skip_while(|l| !l.trim_start().starts_with('('))
        .map_while(|l| {
            let l = l.trim();
            let hex = l.split_whitespace().nth(1)?;
            hex.parse::<B256>().ok()
        })
        .collect()
}

fn keystore(dir: &Path, name: &str, key: B256, password: &str) -> eyre::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let file = format!("{name}.json");
    let path = dir.join(&file);
    PrivateKeySigner::encrypt_keystore(dir, &mut rand::thread_rng(), key, password, Some(&file))
        .wrap_err("could not write a keystore")?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

/// A free TCP port below Linux's ephemeral range (32768 and up), where no outgoing connection
/// can take it before the node that is given it binds it.
fn free_port() -> eyre::Result<u16> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..1000)
        .map(|_| rng.gen_range(20_000..32_000))
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .ok_or_else(|| eyre::eyre!("no free port between 20000 and 32000"))
}

pub(crate) async fn up(args: UpArgs) -> eyre::Result<()> {
    eyre::ensure!(
        args.workers <= 6,
        "--workers must be 0 to 6 (anvil funds 10 accounts: deployer, requester, validator, \
         provider, workers)"
    );
    let dir = args.dir.dir();
    if let Some(state) = read_state(&dir)? {
        eyre::ensure!(
            !state.processes.iter().any(alive),
            "a devnet is already up in {} (RPC {}): use it, or run `pedals devnet down` first",
            dir.display(),
            state.rpc_url
        );
    }
    // Anvil cannot bind a taken port; whatever answers there (another devnet, a node) would
    // then be taken for it. Checked before anything in the folder is touched.
    if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", args.port)) {
        eyre::bail!(
            "port {} is taken ({e}): another devnet or node listens there; stop it, or choose a \
             free port with --port",
            args.port
        );
    }
    // A new devnet is a new chain: the state and logs of an earlier one in this folder (job
    // records, sent transactions, the event cursor) would mislead its nodes. Only what `up`
    // itself creates is removed.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = [
                "seed",
                "validator",
                "provider",
                "requester",
                "deployment.json",
                ANVIL_STATE,
                ANVIL_CACHE,
            ]
            .contains(&name.as_str())
                || name.starts_with("worker-")
                || name.ends_with(".log");
            if ours {
                let path = entry.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.wrap_err_with(|| format!("cannot clear {}", path.display()))?;
            }
        }
    }
    std::fs::create_dir_all(dir.join("keystores"))
        .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let toolchain = Toolchain::locate()?;
    let anvil = toolchain.binary("anvil")?;
    let anvil_log = dir.join("anvil.log");
    let _ = std::fs::remove_file(&anvil_log);
    // anvil keeps the chain in a file (written every few seconds and on exit), so that
    // `pedals devnet restart anvil`, or a `restart` after a reboot, goes on with the same chain.
    let mut processes = vec![spawn(
        "anvil",
        &anvil,
        &[
            "--port".into(),
            args.port.to_string(),
            "--accounts".into(),
            "10".into(),
            "--state".into(),
            dir.join(ANVIL_STATE).display().to_string(),
            "--state-interval".into(),
            "2".into(),
            "--cache-path".into(),
            dir.join(ANVIL_CACHE).display().to_string(),
        ],
        &anvil_log,
    )?];
    let started = async {
        let rpc: alloy::transports::http::reqwest::Url =
            format!("http://127.0.0.1:{}", args.port).parse()?;
        let provider = ProviderBuilder::new().connect_http(rpc.clone()).erased();
        let chain_id = wait_chain(&provider, &processes[0]).await?;
        let keys = anvil_keys(&anvil_log);
        eyre::ensure!(
            keys.len() >= 10,
            "anvil's log lists no dev keys: see {}",
            anvil_log.display()
        );
        let deployer = PrivateKeySigner::from_bytes(&keys[0])?;
        let deployment: Deployment = deploy(&toolchain, &rpc, &deployer).await?;
        // Mined on every transaction until now, so the deployment did not wait for blocks;
        // from here a block a second, as an L2 sequencer makes them.
        provider.anvil_set_interval_mining(1).await?;
        let deployment_file = dir.join("deployment.json");
        deployment.save(&deployment_file)?;
        // Public dev keys, encrypted anyway so every command reads them as it would real ones.
        let password = "pedals devnet";
        let password_file = dir.join("password");
        std::fs::write(&password_file, format!("{password}\n"))?;
        let ks = dir.join("keystores");
        for f in std::fs::read_dir(&ks)?.flatten() {
            let _ = std::fs::remove_file(f.path());
        }
        let requester_keystore = keystore(&ks, "requester", keys[1], password)?;
        let validator_keystore = keystore(&ks, "validator", keys[2], password)?;
        let provider_keystore = keystore(&ks, "provider", keys[3], password)?;
        let worker_keystores = (0..args.workers)
            .map(|i| keystore(&ks, &format!("worker-{i}"), keys[4 + i], password))
            .collect::<eyre::Result<Vec<_>>>()?;
        Ok((
            rpc,
            chain_id,
            deployment_file,
            password_file,
            [requester_keystore, validator_keystore, provider_keystore],
            worker_keystores,
        ))
    }
    .await;
    let (
        rpc,
        chain_id,
        deployment_file,
        password_file,
        [requester_keystore, validator_keystore, provider_keystore],
        worker_keystores,
    ) = match started {
        Ok(s) => s,
        Err(e) => {
            stop(&processes);
            return Err(e);
        }
    };
    let me = std::env::current_exe().wrap_err("cannot find the pedals binary")?;
    let common = |keystore: &Path, data: &Path| -> Vec<String> {
        vec![
            "--rpc-url".into(),
            rpc.to_string(),
            "--deployment".into(),
            deployment_file.display().to_string(),
            "--keystore".into(),
            keystore.display().to_string(),
            "--password-file".into(),
            password_file.display().to_string(),
            "--data-dir".into(),
            data.display().to_string(),
        ]
    };
    // The seeding peer first: every other node joins the network through it.
    let seed_dir = dir.join("seed");
    let seeded = match seed(&seed_dir) {
        Ok(cids) => cids,
        Err(e) => {
            stop(&processes);
            return Err(e);
        }
    };
    let seed_port = free_port()?;
    let bootstrap = format!("/ip4/127.0.0.1/tcp/{seed_port}");
    processes.push(spawn(
        "seed",
        &me,
        &[
            "data".into(),
            "serve".into(),
            "--data-dir".into(),
            seed_dir.display().to_string(),
            "--listen".into(),
            bootstrap.clone(),
        ],
        &dir.join("seed.log"),
    )?);
    if let Err(e) = wait_listening(seed_port, &processes[processes.len() - 1]).await {
        stop(&processes);
        return Err(e.wrap_err(format!(
            "the seeding peer did not start: see {}",
            dir.join("seed.log").display()
        )));
    }
    for (i, ks) in worker_keystores.iter().enumerate() {
        let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port()?);
        let mut a = vec!["provider".into(), "run".into()];
        a.extend(common(ks, &dir.join(format!("worker-{i}"))));
        a.extend([
            "--stake-wei".into(),
            U256::from(10u64).pow(U256::from(18u64)).to_string(),
            "--listen".into(),
            listen,
            "--metrics-addr".into(),
            format!("127.0.0.1:{}", free_port()?),
            "--bootstrap".into(),
            bootstrap.clone(),
        ]);
        processes.push(spawn(
            &format!("worker-{i}"),
            &me,
            &a,
            &dir.join(format!("worker-{i}.log")),
        )?);
    }
    if !args.no_validator {
        let mut a = vec!["validator".into(), "run".into()];
        a.extend(common(&validator_keystore, &dir.join("validator")));
        a.extend([
            "--stake-wei".into(),
            U256::from(10u64).pow(U256::from(17u64)).to_string(),
            "--bootstrap".into(),
            bootstrap.clone(),
            "--metrics-addr".into(),
            format!("127.0.0.1:{}", free_port()?),
        ]);
        processes.push(spawn("validator", &me, &a, &dir.join("validator.log"))?);
    }
    let state = State {
        rpc_url: rpc.to_string(),
        chain_id,
        deployment: deployment_file,
        password_file,
        requester_keystore,
        validator_keystore,
        provider_keystore,
        worker_keystores,
        bootstrap,
        seeded,
        processes,
    };
    std::fs::write(state_path(&dir), serde_json::to_string_pretty(&state)?)?;
    if args.json {
        println!("{}", serde_json::to_string(&state)?);
    } else {
        println!("devnet up in {} (chain {chain_id})", dir.display());
        for p in &state.processes {
            println!("  {:<10} pid {:<7} log {}", p.name, p.pid, p.log.display());
        }
        if !state.seeded.is_empty() {
            println!(
                "  the seed serves examples/mnist-job.toml's spec, dataset and model ({} files)",
                state.seeded.len()
            );
        }
        // The hints name the folder when it is not the default one.
        let dir_flag = if args.dir.dir.is_some() {
            format!(" --dir {}", dir.display())
        } else {
            String::new()
        };
        println!();
        println!("use it as the requester: eval \"$(pedals devnet env{dir_flag})\"");
        println!(
            "  (or --role provider, --role validator); stop it with: pedals devnet down{dir_flag}"
        );
    }
    Ok(())
}

/// The example job file, in this source tree (absent from an installed binary's machine).
fn example_job() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/mnist-job.toml")
}

/// Fills the seeding peer's store with the example job's spec, dataset and model, so that a
/// job posted from examples/mnist-job.toml can be fetched from the seed as well as from its
/// requester; returns their CIDs (none when the example or its dataset is not on this
/// machine: the seed then only helps nodes find each other).
fn seed(dir: &Path) -> eyre::Result<Vec<String>> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let store = pedals_store::Store::open(dir)
        .wrap_err_with(|| format!("cannot open the seed's store in {}", dir.display()))?;
    let path = example_job();
    let prepared = match super::job::JobFile::read(&path).and_then(|(f, d)| f.prepare(&d)) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(target: "pedals::devnet", error = %e, "the seed serves no example files");
            return Ok(Vec::new());
        }
    };
    let files = &prepared.files;
    [
        files.spec.to_canonical_bytes(),
        files.dataset.clone(),
        files.model.clone(),
    ]
    .iter()
    .map(|bytes| Ok(store.put_blob(bytes)?.to_string()))
    .collect()
}

/// Waits until `port` on loopback accepts connections, while `process` runs (10 s at most).
async fn wait_listening(port: u16, process: &Process) -> eyre::Result<()> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        eyre::ensure!(
            alive(process) && Instant::now() < until,
            "nothing listens on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Which account `devnet env` sets up.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Role {
    /// Posts jobs.
    Requester,
    /// Runs a worker by hand.
    Provider,
    /// Runs a validator by hand.
    Validator,
}

/// Prints `export` lines that point every `pedals` command at the devnet as `role`.
pub(crate) fn env(dir: &DirArgs, role: Role) -> eyre::Result<()> {
    let dir = dir.dir();
    let state = require_state(&dir)?;
    let keystore = match role {
        Role::Requester => &state.requester_keystore,
        Role::Provider => &state.provider_keystore,
        Role::Validator => &state.validator_keystore,
    };
    println!("export PEDALS_RPC_URL={}", state.rpc_url);
    println!("export PEDALS_DEPLOYMENT={}", state.deployment.display());
    println!("export PEDALS_KEYSTORE={}", keystore.display());
    println!(
        "export PEDALS_PASSWORD_FILE={}",
        state.password_file.display()
    );
    if !state.bootstrap.is_empty() {
        println!("export PEDALS_BOOTSTRAP={}", state.bootstrap);
    }
    // Each role's node folder lives in the devnet's folder, so a new devnet starts them clean
    // (a node's records belong to one chain).
    match role {
        Role::Requester => println!(
            "export PEDALS_REQUESTER_DIR={}",
            dir.join("requester").display()
        ),
        Role::Provider => println!("export PEDALS_DATA_DIR={}", dir.join("provider").display()),
        Role::Validator => println!("export PEDALS_DATA_DIR={}", dir.join("validator").display()),
    }
    Ok(())
}

pub(crate) fn down(dir: &DirArgs) -> eyre::Result<()> {
    let dir = dir.dir();
    let state = read_state(&dir)?
        .with_context(|| format!("no devnet is up in {}: nothing to stop", dir.display()))?;
    stop(&state.processes);
    std::fs::remove_file(state_path(&dir))?;
    // Only a cache of old states: the chain itself is in the state file.
    let _ = std::fs::remove_dir_all(dir.join(ANVIL_CACHE));
    println!(
        "devnet in {} stopped ({} processes)",
        dir.display(),
        state.processes.len()
    );
    Ok(())
}

pub(crate) async fn status(dir: &DirArgs, as_json: bool) -> eyre::Result<()> {
    let dir = dir.dir();
    let state = require_state(&dir)?;
    let provider = ProviderBuilder::new()
        .connect_http(state.rpc_url.parse()?)
        .erased();
    let block = provider.get_block_number().await.ok();
    let processes: Vec<_> = state
        .processes
        .iter()
        .map(|p| json!({ "name": p.name, "pid": p.pid, "running": alive(p), "log": p.log }))
        .collect();
    if as_json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "dir": dir,
                "rpcUrl": state.rpc_url,
                "chainId": state.chain_id,
                "block": block,
                "processes": processes,
            }))?
        );
    } else {
        println!(
            "devnet in {}: RPC {} (chain {}), block {}",
            dir.display(),
            state.rpc_url,
            state.chain_id,
            block.map_or("unreachable".into(), |b| b.to_string())
        );
        for p in &state.processes {
            println!(
                "  {:<10} pid {:<7} {}",
                p.name,
                p.pid,
                if alive(p) { "running" } else { "stopped" }
            );
        }
    }
    Ok(())
}

pub(crate) fn logs(dir: &DirArgs, name: &str, lines: usize) -> eyre::Result<()> {
    let dir = dir.dir();
    let state = require_state(&dir)?;
    let p = state
        .processes
        .iter()
        .find(|p| p.name == name)
        .with_context(|| {
            let names: Vec<&str> = state.processes.iter().map(|p| p.name.as_str()).collect();
            format!("no process {name:?}: pick one of {}", names.join(", "))
        })?;
    let text = std::fs::read_to_string(&p.log)
        .wrap_err_with(|| format!("cannot read {}", p.log.display()))?;
    let all: Vec<&str> = text.lines().collect();
    for l in &all[all.len().saturating_sub(lines)..] {
        println!("{l}");
    }
    Ok(())
}
