//! `pedals devnet up|status|logs|down`: a devnet that outlives the command, whose processes are
//! all recorded in one folder and all stopped by `down`, and nothing else.

use serde_json::Value;

use crate::{free_port, pedals};

fn running(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
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
    assert_eq!(pids.len(), 3, "anvil, one worker, a validator");

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
        .args(["devnet", "logs", "anvil", "--dir", &d, "--lines", "400"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&logs.stdout).contains("Listening on"));

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
}
