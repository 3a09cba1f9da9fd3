//! A lying span server slashed, with real processes on a devnet (docs/split-inference.md,
//! "Disputes"): two staked `pedals provider serve` of the whole model, one of them lying in
//! every answer (and signing its receipts all the same), and a `pedals gateway` that asks for
//! receipts and re-executes every answer. The gateway catches the lie, bans the liar, finishes
//! the completion on the honest server, and disputes the liar's receipt; the liar cannot defend
//! it, its clock runs out, the gateway calls the timeout, and the liar's stake is slashed by the
//! game's amount to the wei while the gateway withdraws its bond and half the slash.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{primitives::U256, providers::ext::AnvilApi};
use serde_json::json;

use crate::{
    Daemon, daemon_dir, dev_market, free_port,
    swarm::{http, json_body, model_file, serve},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_disputes_a_lying_servers_receipt_and_the_liar_is_slashed() {
    let devnet = pedals_chain::Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let dir = daemon_dir(
        &devnet,
        &[(3, "gateway.json"), (4, "liar.json"), (5, "honest.json")],
    );
    let d = dir.path();
    let rpc = devnet.endpoint().to_string();
    let chain = |key: &str| crate::chain_args(&rpc, d, key);
    let gateway_account = dev_market(&devnet, 3).await;
    let (liar, honest) = (dev_market(&devnet, 4).await, dev_market(&devnet, 5).await);
    let stake = U256::from(10u64).pow(U256::from(18));
    for s in [&liar, &honest] {
        s.stake(stake).await.expect("stake");
    }
    let game = gateway_account.span_dispute_game();
    let (bond, slash) = (
        game.bond().call().await.expect("bond"),
        game.slashAmount().call().await.expect("slash"),
    );

    let (file, cid) = model_file(d);
    let file = file.to_str().expect("utf-8").to_string();
    let seed = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let args = |key: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["--model", file.as_str(), "--blocks", "0..4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(chain(key));
        a
    };
    let liar_args = args("liar.json", &["--listen", &seed, "--debug-lie-after", "0"]);
    let (_liar, line) = serve(
        d,
        "liar",
        &liar_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(line.starts_with("serving blocks 0..4"), "{line:?}");

    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pedals"))
        .args([
            "gateway",
            "--model",
            &cid,
            "--api-key",
            "sk",
            "--name",
            "tiny",
        ])
        .args(["--http", &format!("127.0.0.1:{port}"), "--bootstrap", &seed])
        .args(["--verify-fraction", "1", "--require-receipts"])
        .args(["--max-wei-per-token", "0"])
        .arg("--data-dir")
        .arg(d.join("gw"))
        .args(chain("gateway.json"))
        .env("PEDALS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("gateway starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = String::new();
    while !lines.contains("OpenAI-compatible API") {
        assert_ne!(out.read_line(&mut lines).expect("reads"), 0, "{lines}");
    }
    let _gw = Daemon(child);
    // The gateway's later lines (the dispute's) are read in the background.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let ask = || {
        let body = json!({"model": "tiny", "prompt": "Once upon a time", "max_tokens": 6,
                          "temperature": 0});
        http(port, "/v1/completions", Some("sk"), Some(&body))
    };
    // The liar is the only server: its first answer is re-executed, contradicted and its
    // receipt disputed; with nobody to fail over to, the completion fails and says why.
    let (status, answer) = ask();
    assert_eq!(status, 502, "{answer}");
    assert!(answer.contains("caught lying"), "{answer}");
    // With an honest server up, the same completion succeeds, checked answer by answer.
    let honest_args = args("honest.json", &["--bootstrap", &seed]);
    let (_honest, _) = serve(
        d,
        "honest",
        &honest_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let (status, answer) = ask();
    assert_eq!(status, 200, "{answer}");
    let got = json_body(&answer);
    assert!(got["pedals"]["checked"].as_u64() > Some(0), "{got}");
    assert_eq!(got["pedals"]["failovers"], json!([]), "{got}");

    // The gateway disputes the liar's receipt; the liar cannot defend it.
    let until = Instant::now() + Duration::from_secs(90);
    let id = loop {
        let ids = gateway_account
            .span_disputes_against(liar.sender())
            .await
            .expect("events");
        if let Some(&id) = ids.first() {
            break id;
        }
        assert!(Instant::now() < until, "no dispute was opened");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // The liar's clock runs out (a day on this deployment): the gateway calls the timeout.
    let clock = game.clock().call().await.expect("clock");
    let p = gateway_account.provider();
    p.anvil_increase_time(u64::from(clock) + 1)
        .await
        .expect("warp");
    p.evm_mine(None).await.expect("mine");
    let settled = loop {
        if let Some(s) = gateway_account.span_settlement(id).await.expect("events") {
            break s;
        }
        assert!(Instant::now() < until, "the dispute was never decided");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(settled.server_lost);
    assert_eq!(settled.slashed, slash);
    assert_eq!(settled.paid, bond + slash / U256::from(2));
    let account = liar.stake_of(liar.sender()).await.expect("stake");
    assert_eq!(
        U256::from(account.staked),
        stake - slash,
        "slashed to the wei"
    );
    let account = honest.stake_of(honest.sender()).await.expect("stake");
    assert_eq!(
        U256::from(account.staked),
        stake,
        "the honest server keeps its stake"
    );
    assert!(
        honest_disputes(&gateway_account, honest.sender()).await,
        "nobody disputed the honest server"
    );
    // The gateway withdraws what it won.
    loop {
        let owed = gateway_account
            .span_owed(gateway_account.sender())
            .await
            .expect("owed");
        if owed.is_zero() {
            break;
        }
        assert!(Instant::now() < until, "the gateway never withdrew {owed}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let printed: Vec<String> = rx.try_iter().collect();
    assert!(
        printed
            .iter()
            .any(|l| l.contains("disputing the receipt of span server")),
        "{printed:?}"
    );
}

async fn honest_disputes(m: &pedals_chain::Market, who: alloy::primitives::Address) -> bool {
    m.span_disputes_against(who)
        .await
        .expect("events")
        .is_empty()
}
