//! `pedals deploy` and `pedals deploy check` against a real anvil that calls itself Base
//! Sepolia (chain 84532), so the rules for public networks apply: the admin must be a contract,
//! the pauser another account; a second deployment over a recorded one is refused without
//! `--force`, which keeps the old file; and a role granted behind the file's back fails the check.

use alloy::{
    primitives::{Address, Bytes},
    providers::{Provider, ProviderBuilder, ext::AnvilApi},
};
use serde_json::Value;

use crate::{Daemon, free_port, pedals};

const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn deploy(dir: &std::path::Path, rpc: &str, extra: &[&str]) -> std::process::Output {
    pedals()
        .args(["deploy", "--network", "base-sepolia", "--rpc-url", rpc])
        .arg("--keystore")
        .arg(dir.join("deployer.json"))
        .arg("--out")
        .arg(dir.join("84532.json"))
        .args(extra)
        .env("PEDALS_PASSWORD", "correct horse")
        .env("PEDALS_LOG", "error")
        .output()
        .expect("runs")
}

fn error_line(out: &std::process::Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_to_a_public_network_hands_roles_over_refuses_to_overwrite_and_check_catches_drift()
{
    let anvil = pedals_chain::Toolchain::locate()
        .expect("toolchain")
        .binary("anvil")
        .expect("anvil");
    let port = free_port();
    let cache = tempfile::tempdir().expect("tempdir");
    let _anvil = Daemon(
        std::process::Command::new(anvil)
            .args(["--port", &port.to_string(), "--chain-id", "84532"])
            .arg("--cache-path")
            .arg(cache.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("anvil starts"),
    );
    let rpc = format!("http://127.0.0.1:{port}");
    let provider = ProviderBuilder::new().connect_http(rpc.parse().expect("url"));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while provider.get_chain_id().await.is_err() {
        assert!(std::time::Instant::now() < until, "anvil did not start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let deployer: alloy::signers::local::PrivateKeySigner = DEPLOYER_KEY.parse().expect("key");
    crate::keystore(dir.path(), &deployer, "deployer.json");
    // The admin stands for a multisig: an address with code. The pauser is a plain account.
    let admin = Address::repeat_byte(0xad);
    let pauser = Address::repeat_byte(0x9a);
    let (admin_s, pauser_s) = (admin.to_string(), pauser.to_string());

    // Off a devnet: no admin, a keyless admin, or one account for both roles are refused
    // before anything is sent.
    let out = deploy(dir.path(), &rpc, &["--pauser", &pauser_s]);
    assert!(error_line(&out).contains("pass --admin"));
    let out = deploy(
        dir.path(),
        &rpc,
        &["--admin", &admin_s, "--pauser", &admin_s],
    );
    assert!(error_line(&out).contains("another account than --admin"));
    let out = deploy(
        dir.path(),
        &rpc,
        &["--admin", &admin_s, "--pauser", &pauser_s],
    );
    assert!(error_line(&out).contains("has no code"), "{out:?}");
    assert_eq!(
        provider
            .get_transaction_count(deployer.address())
            .await
            .expect("nonce"),
        0,
        "nothing was sent"
    );
    provider
        .anvil_set_code(admin, Bytes::from_static(&[0x00]))
        .await
        .expect("set code");

    let out = deploy(
        dir.path(),
        &rpc,
        &["--admin", &admin_s, "--pauser", &pauser_s, "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["deployment"]["chainId"], 84532);
    let address = |v: &Value| -> Address { v.as_str().expect("address").parse().expect("address") };
    assert_eq!(address(&doc["deployment"]["admin"]), admin);
    assert_eq!(
        address(&doc["deployment"]["feeRecipient"]),
        admin,
        "fees go to the admin by default"
    );
    let holders = doc["checks"]["roles"]["JobMarket admin"]
        .as_array()
        .expect("holders")
        .iter()
        .map(address)
        .collect::<Vec<_>>();
    assert_eq!(holders, [admin], "the deployer kept no admin role");
    assert_eq!(
        doc["checks"]["roles"]["StakeManager slasher"],
        serde_json::json!([doc["deployment"]["spanDisputeGame"]]),
        "the span dispute game is the only slasher"
    );
    assert_eq!(
        doc["checks"]["spanDispute"],
        serde_json::json!({"bondWei": "10000000000000000", "slashWei": "100000000000000000", "clock": 86400, "receiptWindow": 86400})
    );
    let verify = doc["verify"].as_array().expect("verify");
    assert_eq!(
        verify.len(),
        14,
        "StakeManager, JobMarket, Referee, GameRouter, DisputeGame, LmProgramReferee, \
         LmFullProgramReferee, LmElementReferee, LmDisputeGame, DataAvailability, AuditPool, SpanPayments, \
         LmSpanReferee, SpanDisputeGame"
    );
    assert!(
        verify[1]
            .as_str()
            .expect("line")
            .starts_with("forge verify-contract --chain 84532 --watch"),
        "{verify:?}"
    );
    let file = dir.path().join("84532.json");
    let first = std::fs::read(&file).expect("deployment file");

    // A second deployment over the recorded one is refused, and the file is untouched.
    let out = deploy(
        dir.path(),
        &rpc,
        &["--admin", &admin_s, "--pauser", &pauser_s],
    );
    assert!(error_line(&out).contains("--force"));
    assert_eq!(std::fs::read(&file).expect("file"), first);

    // `deploy check` agrees, in both forms.
    let check = |json: bool| {
        let mut cmd = pedals();
        cmd.args(["deploy", "check", "--rpc-url", &rpc])
            .arg("--deployment")
            .arg(&file)
            .env("PEDALS_LOG", "error");
        if json {
            cmd.arg("--json");
        }
        cmd.output().expect("runs")
    };
    let out = check(false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok   JobMarket pauser role"));

    // The admin (impersonated) grants the pause switch to a second account behind the file's
    // back: the check fails and names the role.
    let market: Address = serde_json::from_slice::<Value>(&first).expect("json")["jobMarket"]
        .as_str()
        .expect("address")
        .parse()
        .expect("address");
    provider
        .anvil_impersonate_account(admin)
        .await
        .expect("impersonate");
    provider
        .anvil_set_balance(
            admin,
            alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(18u64)),
        )
        .await
        .expect("fund");
    let jm = pedals_chain::JobMarket::new(market, provider.clone());
    let role = jm.PAUSER_ROLE().call().await.expect("role");
    let grant = jm
        .grantRole(role, Address::repeat_byte(0xee))
        .from(admin)
        .send()
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("mined");
    assert!(grant.status());
    let out = check(true);
    assert!(error_line(&out).contains("JobMarket pauser role"));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["ok"], false);

    // --force deploys new contracts and keeps the old file beside the new one.
    let out = deploy(
        dir.path(),
        &rpc,
        &["--admin", &admin_s, "--pauser", &pauser_s, "--force"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".replaced-"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(std::fs::read(kept[0].path()).expect("kept"), first);
    assert_ne!(std::fs::read(&file).expect("new"), first);
}
