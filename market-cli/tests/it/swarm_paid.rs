//! Paid split inference with real processes on a devnet: two span servers that charge per
//! token (a `pedals provider serve`, and a `pedals provider run` that serves a span beside its
//! worker), a `pedals gateway` paying from its deposit (`pedals deposit add`); after a
//! completion each server redeems the session's last voucher, and the deposit, the contract
//! and each server's balance move by exactly price × rows (less the server's gas); a gateway
//! whose deposit cannot pay is refused with 402 and a message that says what to do.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{primitives::U256, providers::Provider, rpc::types::Filter};
use serde_json::json;

use crate::{
    Daemon, daemon_dir, dev_market, free_port, pedals,
    swarm::{http, json_body, model_file, serve},
};

const PRICE: [u128; 2] = [1_000_000_000_000, 3_000_000_000_000];
/// The deposit of the gateway that cannot pay (0.000000001 ETH).
const POOR_WEI: u128 = 1_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paying_gateway_pays_each_server_price_times_rows_to_the_wei() {
    let devnet = pedals_chain::Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let dir = daemon_dir(
        &devnet,
        &[
            (3, "gateway.json"),
            (4, "s0.json"),
            (5, "s1.json"),
            (6, "poor.json"),
        ],
    );
    let d = dir.path();
    let rpc = devnet.endpoint().to_string();
    let chain = |key: &str| crate::chain_args(&rpc, d, key);
    let deposit = |key: &str, eth: &str| {
        let out = pedals()
            .args(["deposit", "add", "--eth", eth])
            .args(chain(key))
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    deposit("gateway.json", "1");
    deposit("poor.json", "0.000000001");

    let gateway_account = dev_market(&devnet, 3).await;
    let servers = [dev_market(&devnet, 4).await, dev_market(&devnet, 5).await];
    let server_before = [
        servers[0]
            .balance(servers[0].sender())
            .await
            .expect("balance"),
        servers[1]
            .balance(servers[1].sender())
            .await
            .expect("balance"),
    ];

    let (file, cid) = model_file(d);
    let seed = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let price = |i: usize| PRICE[i].to_string();
    let (p0, p1) = (price(0), price(1));
    let (mut s0, _) = serve(
        d,
        "d0",
        &[
            &["--model", file.to_str().expect("utf-8"), "--blocks", "0..2"],
            &["--listen", seed.as_str(), "--wei-per-token", p0.as_str()][..],
            &chain("s0.json")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()[..],
        ]
        .concat(),
    );
    // The second is a provider's worker daemon that also serves a span of the model.
    let mut s1 = Command::new(env!("CARGO_BIN_EXE_pedals"))
        .args([
            "provider",
            "run",
            "--serve-model",
            &cid,
            "--serve-blocks",
            "2..4",
        ])
        .args(["--serve-wei-per-token", &p1, "--bootstrap", &seed])
        .args(["--metrics-addr", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(d.join("d1"))
        .args(chain("s1.json"))
        .env("PEDALS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("provider starts");
    let mut line = String::new();
    BufReader::new(s1.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reads");
    assert!(line.starts_with("serving blocks 2..4"), "{line:?}");
    let mut s1 = Daemon(s1);
    let gateway = |key: &str, name: &str| {
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
            .arg("--data-dir")
            .arg(d.join(name))
            .args(chain(key))
            .args(["--max-wei-per-token", "5000000000000"])
            .env("PEDALS_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("gateway starts");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut lines = String::new();
        while !lines.contains("OpenAI-compatible API") {
            assert_ne!(out.read_line(&mut lines).expect("reads"), 0, "{lines}");
        }
        assert!(lines.contains("paying servers from"), "{lines}");
        (Daemon(child), port)
    };
    let (_gw, port) = gateway("gateway.json", "gw");
    let ask = |port: u16| {
        let body = json!({"model": "tiny", "prompt": "Once upon a time", "max_tokens": 8,
                          "temperature": 0});
        http(port, "/v1/completions", Some("sk"), Some(&body))
    };
    let (status, answer) = ask(port);
    assert_eq!(status, 200, "{answer}");
    let got = json_body(&answer);
    let usage = &got["usage"];
    // The chain computed the prompt, then every generated token but the last.
    let rows = usage["prompt_tokens"].as_u64().expect("prompt")
        + usage["completion_tokens"].as_u64().expect("completion")
        - 1;
    let owed = [PRICE[0] * u128::from(rows), PRICE[1] * u128::from(rows)];

    // The gateway closed the session with the last vouchers; the servers redeem them.
    let want = U256::from(10u128.pow(18) - owed[0] - owed[1]);
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let a = gateway_account
            .span_account(gateway_account.sender())
            .await
            .expect("deposit");
        if a.balance == want {
            break;
        }
        assert!(
            Instant::now() < until,
            "deposit {} never reached {want}",
            a.balance
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let payments = gateway_account.deployment().span_payments;
    let provider = gateway_account.provider();
    let logs = provider
        .get_logs(&Filter::new().address(payments).from_block(0))
        .await
        .expect("logs");
    for (i, server) in servers.iter().enumerate() {
        let mut gas = U256::ZERO;
        for log in &logs {
            let Some(hash) = log.transaction_hash else {
                continue;
            };
            let tx = provider
                .get_transaction_receipt(hash)
                .await
                .expect("rpc")
                .expect("receipt");
            if tx.from == server.sender() {
                gas += U256::from(tx.gas_used) * U256::from(tx.effective_gas_price);
            }
        }
        assert_eq!(
            server.balance(server.sender()).await.expect("balance"),
            server_before[i] + U256::from(owed[i]) - gas,
            "server {i}: price × rows, less its redemption's gas"
        );
        assert!(gas > U256::ZERO, "server {i} redeemed");
    }
    assert_eq!(
        gateway_account.balance(payments).await.expect("balance"),
        want + U256::from(POOR_WEI),
        "the contract holds the rest of the deposits, to the wei"
    );

    // A gateway whose deposit cannot pay for the prompt: 402, and what to do.
    let (_poor, poor_port) = gateway("poor.json", "poor");
    let (status, answer) = ask(poor_port);
    assert_eq!(status, 402, "{answer}");
    let err = json_body(&answer);
    assert_eq!(err["error"]["code"], "insufficient_deposit", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("message")
            .contains("pedals deposit add"),
        "{err}"
    );
    let _ = (s0.0.kill(), s1.0.kill());
}
