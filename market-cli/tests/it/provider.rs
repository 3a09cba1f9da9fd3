//! `pedals provider run` as an operator runs it: a real process with a keystore, a config from
//! flags, killed with SIGKILL mid-job and restarted; the job still settles with exactly one
//! transaction per action, and SIGTERM stops the daemon cleanly.

use std::{
    path::Path,
    process::{Child, Command},
    time::{Duration, Instant},
};

use alloy::{primitives::U256, providers::Provider};
use pedals_chain::{Devnet, DevnetConfig, JobStatus};
use pedals_store::Store;

use crate::wait_for;

fn start(dir: &Path, devnet: &Devnet, stake: U256) -> Child {
    let stake = stake.to_string();
    let args = ["provider", "run", "--poll-ms", "200", "--stake-wei", &stake];
    crate::daemon(dir, devnet, &args, "provider.json", "data")
        .spawn()
        .expect("the daemon starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_survives_sigkill_mid_job_and_sends_each_action_once() {
    let devnet = crate::mining_devnet().await;
    let dir = crate::daemon_dir(&devnet, &[(3, "provider.json")]);
    let account = devnet.signer(3).expect("dev account").address();

    // The job, and its files handed to the provider's store (no libp2p yet).
    let (spec, dataset, model) = crate::small_job(9, 2000, 500, 4, 512, &dir.path().join("data"));

    let requester = crate::dev_market(&devnet, 1).await;
    let params = requester.parameters().await.expect("params");
    let payment = U256::from(10u64).pow(U256::from(17u64));
    let stake = requester.stake_to_claim(payment).await.expect("params");

    let mut daemon = start(dir.path(), &devnet, stake);
    let chain = requester.provider().clone();
    crate::admit(&requester, &spec).await;
    let id = crate::post_spec(
        &requester,
        &spec,
        (&model, &dataset),
        payment,
        params.minChallengeWindow,
    )
    .await;

    // Killed with SIGKILL as soon as its claim is on-chain (it is training or about to).
    wait_for(&requester, id, JobStatus::Claimed, Duration::from_secs(60)).await;
    daemon.kill().expect("SIGKILL");
    daemon.wait().expect("reaped");
    let killed_in = {
        let store = Store::open(&dir.path().join("data")).expect("the store opens after a kill");
        let job = id.get();
        store.job(job).expect("read").expect("record").phase
    };
    eprintln!("killed while the job was {killed_in}");
    assert!(!killed_in.is_final(), "killed mid-job, not after it");

    let mut daemon = start(dir.path(), &devnet, stake);
    wait_for(
        &requester,
        id,
        JobStatus::Finalized,
        Duration::from_secs(120),
    )
    .await;
    // Let it withdraw, then stop it with SIGTERM: it exits cleanly.
    let until = Instant::now() + Duration::from_secs(30);
    while requester.credit_of(account).await.expect("credit") != U256::ZERO {
        assert!(Instant::now() < until, "the credit was never withdrawn");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = daemon.wait().expect("exits");
    assert!(exit.success(), "graceful shutdown: {exit}");

    // stake, claim, submit, finalize, withdraw: five transactions, each sent once.
    let nonce = chain.get_transaction_count(account).await.expect("nonce");
    assert_eq!(nonce, 5);
}

fn run(dir: &Path, devnet: &Devnet, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pedals"))
        .arg("provider")
        .args(args)
        .env("PEDALS_RPC_URL", devnet.endpoint().as_str())
        .env("PEDALS_DEPLOYMENT", dir.join("deployment.json"))
        .env("PEDALS_KEYSTORE", dir.join("provider.json"))
        .env("PEDALS_PASSWORD_FILE", dir.join("password"))
        .env("PEDALS_LOG", "warn")
        .output()
        .expect("runs")
}

fn status(dir: &Path, devnet: &Devnet) -> serde_json::Value {
    let out = run(dir, devnet, &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn stake_unstake_and_withdraw_move_the_providers_eth() {
    use alloy::providers::ext::AnvilApi;
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet starts: run `make setup` first if the toolchain is missing");
    let dir = crate::daemon_dir(&devnet, &[(6, "provider.json")]);
    let dir = dir.path();
    let key = devnet.signer(6).expect("dev account");
    let eth = U256::from(10u64).pow(U256::from(18u64));

    assert!(run(dir, &devnet, &["stake", "--eth", "1"]).status.success());
    assert_eq!(status(dir, &devnet)["stakedWei"], eth.to_string());
    let out = run(dir, &devnet, &["unstake", "--eth", "0.4"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = status(dir, &devnet);
    assert_eq!(
        s["unbondingWei"],
        (eth * U256::from(4u64) / U256::from(10u64)).to_string()
    );
    assert_eq!(
        s["stakedWei"],
        (eth * U256::from(6u64) / U256::from(10u64)).to_string()
    );

    // Too early: refused, saying when; nothing moves.
    let out = run(dir, &devnet, &["withdraw"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("withdrawable in 1")
            && String::from_utf8_lossy(&out.stderr).contains(" d "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // After the unbonding delay the stake comes back.
    let chain = alloy::providers::ProviderBuilder::new().connect_http(devnet.endpoint());
    let unbonds_at = s["unbondsAt"].as_u64().expect("time");
    let now = chain
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .expect("rpc")
        .expect("block")
        .header
        .timestamp;
    chain
        .anvil_increase_time(unbonds_at - now + 1)
        .await
        .expect("warp");
    chain.evm_mine(None).await.expect("mine");
    let before = chain.get_balance(key.address()).await.expect("balance");
    let out = run(dir, &devnet, &["withdraw"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = chain.get_balance(key.address()).await.expect("balance");
    let back = after - before;
    assert!(
        back > eth * U256::from(39u64) / U256::from(100u64)
            && back <= eth * U256::from(4u64) / U256::from(10u64),
        "0.4 ETH back, less gas: {back}"
    );
    assert_eq!(status(dir, &devnet)["unbondingWei"], "0");

    // The wallet sees the same balance.
    let out = Command::new(env!("CARGO_BIN_EXE_pedals"))
        .args(["wallet", "balance", "--json", "--name", "provider"])
        .arg("--dir")
        .arg(dir)
        .arg("--password-file")
        .arg(dir.join("password"))
        .args(["--rpc-url", devnet.endpoint().as_str()])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wallet: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(wallet["balanceWei"], after.to_string());

    // Mistakes: a typo in the amount, a wrong password; one line each, nothing sent.
    let out = run(dir, &devnet, &["stake", "--eth", "one"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an amount of ETH"));
    std::fs::write(dir.join("password"), "wrong\n").expect("password");
    let out = run(dir, &devnet, &["stake", "--eth", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
}
