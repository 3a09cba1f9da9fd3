//! The exit-code table of docs/cli.md, followed by every kind of command: one case per row
//! and cause, against one devnet (the network's code, 4, is tested in data.rs, where a peer
//! that provides nothing is at hand).

use std::path::Path;

use alloy::primitives::Address;
use pedals_chain::{Deployment, Devnet, DevnetConfig};

use crate::{keystore, pedals};

/// One command, its settings and the code it must exit with.
struct Case {
    what: &'static str,
    args: Vec<String>,
    /// `None`: the variable is removed from the environment.
    env: Vec<(&'static str, Option<String>)>,
    code: i32,
}

fn case(
    what: &'static str,
    args: &[&str],
    env: &[(&'static str, Option<&str>)],
    code: i32,
) -> Case {
    Case {
        what,
        args: args.iter().map(ToString::to_string).collect(),
        env: env
            .iter()
            .map(|(k, v)| (*k, v.map(ToString::to_string)))
            .collect(),
        code,
    }
}

fn deployment_file(dir: &Path, name: &str, d: &Deployment) -> String {
    let path = dir.join(name);
    d.save(&path).expect("deployment file");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_exits_with_the_documented_code() {
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet");
    let dir = tempfile::tempdir().expect("tempdir");
    let rpc = devnet.endpoint().to_string();
    let good = deployment_file(dir.path(), "good.json", devnet.deployment());
    let mut other_chain = devnet.deployment().clone();
    other_chain.chain_id = 8453;
    let other_chain = deployment_file(dir.path(), "other-chain.json", &other_chain);
    let mut empty = devnet.deployment().clone();
    empty.job_market = Address::repeat_byte(0x77);
    let empty = deployment_file(dir.path(), "no-contract.json", &empty);
    keystore(dir.path(), &devnet.signer(2).expect("key"), "stranger.json");
    let stranger = dir.path().join("stranger.json").display().to_string();

    // Job 1, posted by account 1.
    let requester = crate::dev_market(&devnet, 1).await;
    crate::post_small_jobs(&requester, 1).await;
    let bad_job = dir.path().join("bad.toml");
    std::fs::write(&bad_job, "[model]\nlayers = []\n").expect("job file");
    let bad_job = bad_job.display().to_string();

    let signer = |password: &'static str| -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("PEDALS_KEYSTORE", Some(stranger.as_str())),
            ("PEDALS_PASSWORD", Some(password)),
        ]
    };
    let no_rpc = [("PEDALS_RPC_URL", None)];
    let cases = [
        case("a job's status", &["job", "status", "1"], &[], 0),
        case("an unknown job id", &["job", "status", "99"], &[], 1),
        case(
            "an invalid job file",
            &["job", "post", &bad_job, "--dry-run"],
            &signer("correct horse"),
            1,
        ),
        case(
            "a wrong password",
            &["job", "cancel", "1"],
            &signer("wrong"),
            1,
        ),
        case(
            "a request the contract refuses (another's job)",
            &["job", "cancel", "1"],
            &signer("correct horse"),
            1,
        ),
        case("an unknown flag", &["job", "list", "--colour"], &[], 2),
        case(
            "a value clap cannot parse",
            &["job", "list", "--limit", "many"],
            &[],
            2,
        ),
        case(
            "job post without an endpoint",
            &["job", "post", &bad_job],
            &[&signer("correct horse")[..], &no_rpc].concat(),
            2,
        ),
        case(
            "provider run without an endpoint",
            &["provider", "run"],
            &no_rpc,
            2,
        ),
        case(
            "validator run without an endpoint",
            &["validator", "run"],
            &no_rpc,
            2,
        ),
        case(
            "an endpoint nobody answers",
            &["job", "list"],
            &[("PEDALS_RPC_URL", Some("http://127.0.0.1:9"))],
            3,
        ),
        case(
            "a deployment of another chain (list)",
            &["job", "list"],
            &[("PEDALS_DEPLOYMENT", Some(other_chain.as_str()))],
            3,
        ),
        case(
            "a deployment of another chain (status)",
            &["job", "status", "1"],
            &[("PEDALS_DEPLOYMENT", Some(other_chain.as_str()))],
            3,
        ),
        case(
            "no contract at the deployment's address (list)",
            &["job", "list"],
            &[("PEDALS_DEPLOYMENT", Some(empty.as_str()))],
            3,
        ),
        case(
            "no contract at the deployment's address (status)",
            &["job", "status", "1"],
            &[("PEDALS_DEPLOYMENT", Some(empty.as_str()))],
            3,
        ),
    ];
    let mut wrong = Vec::new();
    for c in &cases {
        let mut cmd = pedals();
        cmd.args(&c.args)
            .env("PEDALS_RPC_URL", &rpc)
            .env("PEDALS_DEPLOYMENT", &good)
            .env("PEDALS_LOG", "error")
            .env_remove("PEDALS_KEYSTORE")
            .env_remove("PEDALS_PASSWORD_FILE")
            .env_remove("PEDALS_PASSWORD")
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .stdin(std::process::Stdio::null());
        for (key, value) in &c.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        let out = cmd.output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(c.code) {
            wrong.push(format!(
                "{}: exit {:?}, not {}: {stderr}",
                c.what,
                out.status.code(),
                c.code
            ));
        } else if c.code != 0 {
            assert!(stderr.starts_with("error: "), "{}: {stderr}", c.what);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The table in docs/cli.md has a row for each code the cases use.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md"))
        .expect("docs/cli.md");
    let table = &doc[doc.find("## Exit codes").expect("the exit-code section")..];
    for code in 0..=4 {
        assert!(
            table.contains(&format!("\n| {code} |")),
            "docs/cli.md lists exit code {code}"
        );
    }
}
