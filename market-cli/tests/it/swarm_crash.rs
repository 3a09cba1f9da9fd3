//! A paid span server killed with SIGKILL in the middle of a session is still paid for what
//! it served: it kept the session's best voucher on disk (`span-vouchers/`), and redeems it
//! when it starts again, to the wei.

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use alloy::primitives::U256;
use serde_json::{Value, json};

use crate::{
    daemon_dir, dev_market, free_port, pedals,
    swarm::{gateway, serve},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_session_redeems_its_kept_voucher_when_it_restarts() {
    let devnet = pedals_chain::Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let dir = daemon_dir(&devnet, &[(3, "gateway.json"), (4, "server.json")]);
    let d = dir.path();
    let rpc = devnet.endpoint().to_string();
    let chain = |key: &str| crate::chain_args(&rpc, d, key);
    let out = pedals()
        .args(["deposit", "add", "--eth", "1"])
        .args(chain("gateway.json"))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let payer = dev_market(&devnet, 3).await;
    let one_eth = U256::from(10u128.pow(18));

    let (file, cid) = crate::swarm::model_file(d);
    let seed = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let server_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "--model",
            file.to_str().expect("utf-8"),
            "--blocks",
            "0..4",
            "--wei-per-token",
            "1000000000000",
            "--listen",
            &seed,
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        a.extend(chain("server.json"));
        a
    };
    let slow = server_args(&["--debug-reply-delay-ms", "200"]);
    let (mut server, _) = serve(
        d,
        "server",
        &slow.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut gw_args = chain("gateway.json");
    gw_args.extend(["--allow-anonymous", "--max-wei-per-token", "1000000000000"].map(String::from));
    let (_gw, port) = gateway(
        d,
        &cid,
        &seed,
        &gw_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // A streamed completion; the server is killed after the third piece.
    let body = json!({"model": "tiny", "prompt": "Once upon a time", "max_tokens": 30,
                      "temperature": 0, "stream": true})
    .to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(s, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).expect("sends");
    let mut pieces = 0;
    for line in BufReader::new(s).lines() {
        let line = line.expect("line");
        if let Some(data) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(data).expect("json");
            assert!(v["choices"].is_array(), "{v}");
            pieces += 1;
        }
        if pieces == 3 {
            break;
        }
    }
    let _ = server.0.kill();
    let _ = server.0.wait();

    // The session was never closed: its best voucher is on disk, and nothing was redeemed.
    let kept: Vec<_> = std::fs::read_dir(d.join("server/span-vouchers"))
        .expect("vouchers kept")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(kept.len(), 1, "one session's voucher");
    let voucher: Value =
        serde_json::from_slice(&std::fs::read(kept[0].path()).expect("read")).expect("json");
    let amount: U256 = voucher["voucher"]["amount"]
        .as_str()
        .expect("amount")
        .parse()
        .expect("wei");
    assert!(amount > U256::ZERO);
    let account = payer.span_account(payer.sender()).await.expect("deposit");
    assert_eq!(
        account.balance, one_eth,
        "nothing redeemed before the restart"
    );

    // Restarted on the same data folder, it redeems the kept voucher first.
    let again = server_args(&[]);
    let (_server, _) = serve(
        d,
        "server",
        &again.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let a = payer.span_account(payer.sender()).await.expect("deposit");
        if a.balance != one_eth {
            assert_eq!(
                a.balance,
                one_eth - amount,
                "the kept voucher's amount, to the wei"
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "the kept voucher was never redeemed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let until = Instant::now() + Duration::from_secs(10);
    while kept[0].path().exists() {
        assert!(Instant::now() < until, "the redeemed voucher's file stays");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
