//! Split-model inference with real processes on loopback: four `pedals provider serve`
//! processes hold spans of a 4-block model (one fetched it from another over libp2p, one
//! chose its blocks itself), `pedals gateway` serves the OpenAI API over them, and what it
//! generates is what `pedals model generate` generates in one process, also when a middle
//! server is killed with SIGKILL in the middle of a streamed answer.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

use crate::{Daemon, free_port, pedals};

/// The llama-tiny fixture, quantized, with its two blocks repeated into four.
pub(crate) fn model_file(dir: &Path) -> (std::path::PathBuf, String) {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/lm/tests/fixtures/llama-tiny");
    let ck = pedals_lm::Checkpoint::load_hf(&fixture).expect("fixture");
    let m = pedals_lm::quantize(&ck, 8).expect("quantizes");
    let bytes = m
        .repeat_blocks(4)
        .expect("deeper")
        .to_bytes()
        .expect("bytes");
    let path = dir.join("model.bin");
    std::fs::write(&path, &bytes).expect("write");
    (path, pedals_core::cid_of(&bytes).to_string())
}

/// Starts `pedals provider serve` and returns it with the line it printed (its span and
/// peer id).
pub(crate) fn serve(dir: &Path, name: &str, args: &[&str]) -> (Daemon, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pedals"))
        .args(["provider", "serve", "--announce-secs", "1", "--data-dir"])
        .arg(dir.join(name))
        .args(args)
        .env("PEDALS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reads");
    assert!(line.starts_with("serving blocks"), "{line:?}");
    (Daemon(child), line)
}

/// Starts `pedals gateway` for model `cid`, named `tiny`, on a free port (returned), with
/// `args`.
pub(crate) fn gateway(dir: &Path, cid: &str, bootstrap: &str, args: &[&str]) -> (Daemon, u16) {
    let port = free_port();
    let mut gw = Command::new(env!("CARGO_BIN_EXE_pedals"))
        .args(["gateway", "--model", cid, "--name", "tiny", "--http"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--bootstrap", bootstrap])
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("gw"))
        .env("PEDALS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("gateway starts");
    let mut out = BufReader::new(gw.stdout.take().expect("stdout"));
    let mut lines = String::new();
    while !lines.contains("OpenAI-compatible API") {
        assert_ne!(out.read_line(&mut lines).expect("reads"), 0, "{lines}");
    }
    (Daemon(gw), port)
}

/// One HTTP/1.1 request; the whole answer (headers and body) as text.
pub(crate) fn http(
    port: u16,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    let method = if body.is_empty() { "GET" } else { "POST" };
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("sends");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("reads");
    let status = out[9..12].parse().expect("status");
    (status, out)
}

pub(crate) fn json_body(answer: &str) -> Value {
    let body = &answer[answer.find("\r\n\r\n").expect("head") + 4..];
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[test]
fn a_gateway_over_four_span_servers_generates_the_local_tokens_and_survives_a_killed_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, cid) = model_file(dir.path());
    let file_s = file.to_str().expect("utf-8");
    let seed_port = free_port();
    let seed_addr = format!("/ip4/127.0.0.1/tcp/{seed_port}");
    let (_s0, line) = serve(
        dir.path(),
        "s0",
        &[
            "--model", file_s, "--blocks", "0..1", "--listen", &seed_addr,
        ],
    );
    assert!(line.contains("0..1"), "{line}");
    // These fetch the model by CID from the first server.
    let boot = ["--bootstrap", &seed_addr];
    // The middle servers answer 20 ms late, so that a streamed answer is still being
    // generated when one is killed.
    let middle = [
        "--model",
        &cid,
        "--blocks",
        "1..3",
        "--debug-reply-delay-ms",
        "20",
    ];
    let (mut s1, line1) = serve(dir.path(), "s1", &[&middle[..], &boot].concat());
    let (mut s2, line2) = serve(dir.path(), "s2", &[&middle[..], &boot].concat());
    std::thread::sleep(Duration::from_secs(2));
    // This one picks the one block that nobody serves.
    let (_s3, line3) = serve(
        dir.path(),
        "s3",
        &[&["--model", &cid, "--span-blocks", "1"][..], &boot].concat(),
    );
    assert!(line3.contains("3..4"), "{line3}");

    let (_gw, port) = gateway(dir.path(), &cid, &seed_addr, &["--api-key", "sk-test"]);

    // No key, a wrong model, an empty prompt: OpenAI-shaped errors.
    let (status, _) = http(port, "/v1/models", None, None);
    assert_eq!(status, 401);
    let (status, answer) = http(port, "/v1/models", Some("sk-test"), None);
    assert_eq!(status, 200);
    assert_eq!(json_body(&answer)["data"][0]["id"], "tiny");
    let ask = |body: Value| http(port, "/v1/completions", Some("sk-test"), Some(&body));
    let (status, answer) = ask(json!({"model": "other", "prompt": "x"}));
    assert_eq!(status, 404, "{answer}");
    assert_eq!(json_body(&answer)["error"]["code"], "model_not_found");
    let (status, answer) = ask(json!({"model": "tiny", "prompt": ""}));
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = ask(json!({"model": "tiny", "prompt": "x", "max_tokens": 100000}));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        json_body(&answer)["error"]["code"],
        "context_length_exceeded"
    );

    // The same tokens as one process, with sampling.
    let local = pedals()
        .args([
            "model",
            "generate",
            file_s,
            "--prompt",
            "Once upon a time",
            "--json",
        ])
        .args([
            "--max-tokens",
            "24",
            "--temperature",
            "0.8",
            "--top-p",
            "0.95",
            "--seed",
            "7",
        ])
        .output()
        .expect("runs");
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let local: Value = serde_json::from_slice(&local.stdout).expect("json");
    let request = json!({"model": "tiny", "prompt": "Once upon a time", "max_tokens": 24,
                         "temperature": 0.8, "top_p": 0.95, "seed": 7});
    let (status, answer) = ask(request.clone());
    assert_eq!(status, 200, "{answer}");
    let got = json_body(&answer);
    assert_eq!(got["choices"][0]["tokens"], local["completion"]["tokens"]);
    assert_eq!(got["choices"][0]["text"], local["completion"]["text"]);
    assert_eq!(got["usage"]["completion_tokens"], 24);
    assert_eq!(got["pedals"]["chain"].as_array().expect("chain").len(), 3);

    // Streamed, with the middle server of the chain killed after the third piece of text.
    let mut stream_req = request;
    stream_req["stream"] = true.into();
    stream_req["stream_options"] = json!({"include_usage": true});
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let body = stream_req.to_string();
    write!(s, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer sk-test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).expect("sends");
    let (mut text, mut pieces, mut done, mut last) = (String::new(), 0, false, Value::Null);
    let (mut killed, mut chain, mut failovers) = (None, Vec::new(), Vec::new());
    for line in BufReader::new(s).lines() {
        let line = line.expect("line");
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            break;
        }
        let chunk: Value = serde_json::from_str(data).expect("chunk");
        assert!(chunk.get("error").is_none(), "{chunk}");
        if let Some(t) = chunk["choices"][0]["text"].as_str() {
            text.push_str(t);
            pieces += 1;
        }
        if let Some(c) = chunk["pedals"]["chain"].as_array() {
            chain = c.clone();
        }
        if let Some(f) = chunk["pedals"]["failovers"].as_array() {
            failovers = f.clone();
        }
        if killed.is_none() && pieces >= 3 {
            let middle = chain
                .iter()
                .find(|h| h["blocks"] == json!([1, 3]))
                .map(|h| h["peer"].as_str().expect("peer").to_string());
            if let Some(peer) = middle {
                let victim = if line1.contains(&peer) {
                    &mut s1
                } else {
                    assert!(line2.contains(&peer), "{peer} is a middle server");
                    &mut s2
                };
                victim.0.kill().expect("SIGKILL");
                killed = Some(peer);
            }
        }
        last = chunk;
    }
    assert!(done, "the stream ended with [DONE]");
    let killed = killed.expect("a middle server was killed mid-stream");
    assert_eq!(text, local["completion"]["text"].as_str().expect("text"));
    assert_eq!(last["usage"]["completion_tokens"], 24, "{last}");
    assert_eq!(failovers.len(), 1, "{failovers:?}");
    assert_eq!(failovers[0]["peer"], killed.as_str());
    let middle_now = chain
        .iter()
        .find(|h| h["blocks"] == json!([1, 3]))
        .expect("a middle hop");
    assert_ne!(
        middle_now["peer"],
        killed.as_str(),
        "the other middle server took over"
    );

    openai_client(port, file_s);
}

/// The official OpenAI Python client (scripts/requirements-openai.txt) lists the models, gets
/// a chat completion and streams it, through the chain that lost a server: the text is what
/// local generation gives for the gateway's chat prompt.
fn openai_client(port: u16, model_file: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv-openai/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/openai_venv.sh (make test does)",
        python.display()
    );
    let out = Command::new(&python)
        .arg(root.join("scripts/openai_client.py"))
        .arg(format!("http://127.0.0.1:{port}/v1"))
        .args(["sk-test", "tiny", "Tell me a story", "16", "3"])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).expect("json");
    let local = pedals()
        .args([
            "model",
            "generate",
            model_file,
            "--json",
            "--max-tokens",
            "16",
        ])
        .args(["--prompt", "user: Tell me a story\nassistant:"])
        .args(["--temperature", "0.8", "--top-p", "0.95", "--seed", "3"])
        .output()
        .expect("runs");
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let local: Value = serde_json::from_slice(&local.stdout).expect("json");
    let text = &local["completion"]["text"];
    let tokens = local["completion"]["tokens"]
        .as_array()
        .expect("tokens")
        .len();
    assert_eq!(got["models"], json!(["tiny"]));
    assert_eq!(&got["chat"], text, "{got}");
    assert_eq!(&got["stream"], text, "{got}");
    assert!(got["stream_chunks"].as_u64().expect("chunks") > 1, "{got}");
    assert_eq!(got["stream_usage"]["completion_tokens"], tokens, "{got}");
    assert_eq!(got["chat_usage"], got["stream_usage"]);
    assert_eq!(got["wrong_key_status"], 401);
}
