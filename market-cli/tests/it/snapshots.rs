//! Golden output: the whole command tree's help (every command, flag, environment variable
//! and example) and the plan `job post --dry-run` prints for the example job (the human and
//! JSON output of `job status`, `job list` and `provider status` are pinned in `cli.rs`, on a
//! devnet with jobs in several states). A change to any of them is a
//! change users and scripts see: review the new snapshot (`cargo insta review`, or move the
//! `.snap.new` file over the `.snap`) and commit it with the change.

use std::path::Path;

use crate::pedals;

/// The subcommands `pedals <path> --help` lists.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

fn help_of(path: &[String], out: &mut String) {
    let mut cmd = pedals();
    // clap shows an option's environment variable's value when it is set.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PEDALS_")) {
        cmd.env_remove(key);
    }
    let help = cmd.args(path).arg("--help").output().expect("runs");
    assert!(help.status.success(), "pedals {} --help", path.join(" "));
    let text = String::from_utf8(help.stdout).expect("utf8");
    out.push_str(&format!("$ pedals {} --help\n{text}\n", path.join(" ")));
    for sub in subcommands(&text) {
        let mut next = path.to_vec();
        next.push(sub);
        help_of(&next, out);
    }
}

#[test]
fn every_commands_help() {
    let mut out = String::new();
    help_of(&[], &mut out);
    // Debug builds add `devnet dispute-demo`; the snapshot is of what every build has.
    let out: String = out
        .split("$ pedals ")
        .filter(|section| !section.starts_with("devnet dispute-demo"))
        .collect::<Vec<_>>()
        .join("$ pedals ");
    let out = out.replace("  dispute-demo  Debug builds only: the same job with a worker that lies about half of its steps, and a validator that catches it, wins the dispute game and gets the worker slashed\n", "");
    insta::assert_snapshot!(out);
}

#[test]
fn the_example_jobs_plan() {
    insta::assert_snapshot!(plan("mnist-job.toml"));
}

/// The zk example's plan: its circuit, its samples and the job commitment (deterministic: a
/// fixed model seed and digit).
#[test]
fn the_example_zk_jobs_plan() {
    insta::assert_snapshot!(plan("mnist-zk-job.toml"));
}

/// The language-model example's plan: the CIDs of the model quantized from the committed
/// checkpoint, of the prompts and of the spec, the same on every machine.
#[test]
fn the_example_lm_jobs_plan() {
    insta::assert_snapshot!(plan("tiny-lm-job.toml"));
}

/// The example fine-tuning job's plan: its spec, model and dataset CIDs and its terms.
#[test]
fn the_example_finetune_jobs_plan() {
    insta::assert_snapshot!(plan("tiny-finetune-job.toml"));
}

fn plan(example: &str) -> String {
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(example);
    let out = pedals()
        .args(["job", "post", example.to_str().expect("utf8"), "--dry-run"])
        // A dry run reads no chain and no key; the options must still be given.
        .args([
            "--rpc-url",
            "http://127.0.0.1:9",
            "--deployment",
            "unused.json",
        ])
        .args(["--keystore", "unused.json"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// What changes from run to run: hashes, time left, balances after gas.
pub(crate) fn redacted(f: impl FnOnce()) {
    insta::with_settings!({filters => vec![
        (r"0x[0-9a-fA-F]{64}", "[hash]"),
        (r"\b1[0-9]{9}\b", "[unix time]"),
        (r"\b(in|ends in) [0-9hmins ]+ s\b", "$1 [time]"),
        (r"\b9999\.[0-9]+\b", "[balance]"),
        (r"\b9999[0-9]{18}\b", "[balance wei]"),
    ]}, { f() });
}
