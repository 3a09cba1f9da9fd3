//! A span server that chose its own blocks moves when coverage changes: three `pedals
//! provider serve` processes hold a 4-block model (two pinned, one that chose its blocks), the
//! pinned server of the last blocks is killed, and the one that chose moves to them, so that a
//! `pedals gateway` completion still finds every block and gives the same tokens.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    free_port,
    swarm::{gateway, http, json_body, model_file, serve},
};

#[test]
fn a_server_that_chose_its_blocks_moves_to_blocks_nobody_serves_any_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, cid) = model_file(dir.path());
    let seed_addr = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let boot = ["--bootstrap", seed_addr.as_str()];
    let file_s = file.to_str().expect("utf-8");
    let (_first, _) = serve(
        dir.path(),
        "first",
        &[
            "--model", file_s, "--blocks", "0..2", "--listen", &seed_addr,
        ],
    );
    let (mut last, _) = serve(
        dir.path(),
        "last",
        &[&["--model", &cid, "--blocks", "2..4"][..], &boot].concat(),
    );
    std::thread::sleep(Duration::from_secs(2));
    // Every block is served once: the tie goes to the first blocks.
    let (_mover, line) = serve(
        dir.path(),
        "mover",
        &[&["--model", &cid, "--span-blocks", "2"][..], &boot].concat(),
    );
    assert!(line.contains("blocks 0..2"), "{line}");
    let mover = line.trim().rsplit(' ').next().expect("peer id").to_owned();

    let (_gw, port) = gateway(dir.path(), &cid, &seed_addr, &["--allow-anonymous"]);
    let request = json!({"model": "tiny", "prompt": "Once upon a time", "max_tokens": 12});
    let ask = || http(port, "/v1/completions", None, Some(&request));
    let (status, answer) = ask();
    assert_eq!(status, 200, "{answer}");
    let before = json_body(&answer);

    // Nobody serves blocks 2..4 any more: the server that chose its blocks moves there (it
    // checks every 1.5 to 4.5 s with one-second announcements, once the dead server's
    // announcement is 3 s old), and the gateway finds it.
    let _ = last.0.kill();
    let _ = last.0.wait();
    // A request that comes before the move waits for a server of those blocks, for a while:
    // ask again if it gave up.
    let mut tries = 0;
    let (status, answer) = loop {
        tries += 1;
        let (status, answer) = ask();
        if status == 200 || tries == 3 {
            break (status, answer);
        }
    };
    assert_eq!(status, 200, "{answer}");
    let after = json_body(&answer);
    assert_eq!(
        after["choices"][0]["tokens"], before["choices"][0]["tokens"],
        "the moved server computes what the dead one did"
    );
    let chain = after["pedals"]["chain"].as_array().expect("chain");
    let hop = |peer: &str| chain.iter().find(|h| h["peer"] == peer).cloned();
    assert_eq!(
        hop(&mover).map(|h| h["blocks"].clone()),
        Some(Value::from(vec![2, 4])),
        "{chain:?}"
    );
}
