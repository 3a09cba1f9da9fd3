//! `pedals data`: a file added on one node, served over libp2p, fetched by CID on another and
//! checked; an unknown CID is a network error (exit 4) that says what to do.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pedals;

#[test]
fn a_file_added_and_served_on_one_node_is_fetched_by_cid_on_another() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let file = a.path().join("samples.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &content).expect("write");

    let out = pedals()
        .args(["data", "add", "--json"])
        .arg(&file)
        .arg("--data-dir")
        .arg(a.path())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let cid = doc["added"][0]["cid"].as_str().expect("cid").to_string();
    assert_eq!(cid, pedals_core::cid_of(&content).to_string());
    let out = pedals()
        .args(["data", "list", "--json", "--data-dir"])
        .arg(a.path())
        .output()
        .expect("runs");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["files"][0]["cid"], cid.as_str());
    assert_eq!(doc["files"][0]["bytes"], 300_000);

    let port = crate::free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut server = crate::Daemon(
        Command::new(env!("CARGO_BIN_EXE_pedals"))
            .args(["data", "serve", "--listen", &listen, "--data-dir"])
            .arg(a.path())
            .env("PEDALS_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .expect("serves"),
    );
    let out_file = b.path().join("got.bin");
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let out = pedals()
            .args(["data", "get", &cid, "--bootstrap", &listen, "--data-dir"])
            .arg(b.path())
            .arg("--out")
            .arg(&out_file)
            .env("PEDALS_LOG", "error")
            .output()
            .expect("runs");
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < until,
            "never fetched: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(std::fs::read(&out_file).expect("read"), content);

    // A CID nobody provides: a network error, exit 4, one line that says what to do.
    let missing = pedals_core::cid_of(b"nobody has this").to_string();
    let out = pedals()
        .args([
            "data",
            "get",
            &missing,
            "--bootstrap",
            &listen,
            "--data-dir",
        ])
        .arg(b.path())
        .arg("--out")
        .arg(b.path().join("none"))
        .env("PEDALS_LOG", "error")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no peer provides"), "{stderr}");
    assert!(!b.path().join("none").exists(), "nothing written");
    // Not a CID: the user's to fix.
    let out = pedals()
        .args(["data", "get", "not-a-cid", "--out", "x", "--data-dir"])
        .arg(b.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));

    Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(
        server.0.wait().expect("exits").success(),
        "SIGTERM stops it cleanly"
    );
}
