//! A language model's batch job through the market, with real processes on a real chain:
//! `pedals job post` with a `[generate]` job file (a Hugging Face checkpoint folder made by
//! `transformers`, quantized on the way), `pedals provider run` fetching it over libp2p,
//! generating chunk by chunk on the GPU and getting paid, and `pedals job result` checking the
//! completions against the posted trace and re-running chunks on the CPU kernel, to the byte. A provider that lies about one
//! chunk is caught by the re-run. Bad job files are refused before any transaction.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use alloy::{primitives::U256, providers::Provider};
use pedals_chain::{Devnet, JobStatus, Market};
use serde_json::Value;

use crate::{free_port, wait_for};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn pedals(dir: &Path, devnet: &Devnet) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pedals"));
    cmd.env("PEDALS_RPC_URL", devnet.endpoint().as_str())
        .env("PEDALS_DEPLOYMENT", dir.join("deployment.json"))
        .env("PEDALS_REQUESTER_DIR", dir.join("requester"))
        .env("PEDALS_KEYSTORE", dir.join("requester.json"))
        .env("PEDALS_PASSWORD_FILE", dir.join("password"))
        .env("PEDALS_LOG", "warn");
    cmd
}

pub(crate) fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON on stdout ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The job file: the tiny Llama fixture, the example prompts, three chunks of two.
fn lm_job(window: u32, generate_extra: &str) -> String {
    let model = root().join("crates/lm/tests/fixtures/llama-tiny");
    let prompts = root().join("examples/lm-prompts.jsonl");
    format!(
        r#"
payment_eth = "0.05"
challenge_window_secs = {window}

[generate]
model = {model:?}
prompts = {prompts:?}
chunk = 2
max_tokens = 12
temperature = 0.8
top_k = 40
seed = 11
{generate_extra}
"#,
        model = model.display().to_string(),
        prompts = prompts.display().to_string(),
    )
}

pub(crate) fn provider(
    dir: &Path,
    devnet: &Devnet,
    port: u16,
    bootstrap: &str,
    lie: bool,
) -> crate::Daemon {
    let mut cmd = crate::daemon(
        dir,
        devnet,
        &["provider", "run", "--poll-ms", "200"],
        "provider.json",
        "provider",
    );
    cmd.args(["--metrics-addr", "127.0.0.1:0"])
        // Seven blocks a log query: the follower and the game reads page through many.
        .env("PEDALS_LOG_RANGE", "7")
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{port}")])
        .args(["--bootstrap", bootstrap])
        .args([
            "--stake-wei",
            &U256::from(10u64).pow(U256::from(18u64)).to_string(),
        ]);
    if lie {
        cmd.args(["--debug-falsify-steps", "1"]);
    } else {
        // The honest provider generates on the GPU (lavapipe in CI, which must have it) or,
        // without Vulkan, on burn's CPU backend; the requester re-runs on the CPU kernel.
        let device = if pedals_ml::exact::BurnOps::gpu().is_ok() {
            "gpu"
        } else {
            "flex"
        };
        cmd.args(["--lm-device", device]);
    }
    crate::Daemon(cmd.spawn().expect("the provider starts"))
}

/// Posts `job` (serving its files until claimed) and starts a provider (lying when `lie`)
/// listening on `port` that claims it; returns what `job post` printed and the provider.
pub(crate) fn start_job(
    dir: &Path,
    devnet: &Devnet,
    job: &Path,
    port: u16,
    lie: bool,
) -> (Value, crate::Daemon) {
    let listen = free_port();
    let mut post = pedals(dir, devnet)
        .args(["job", "post", "--json"])
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{listen}")])
        .arg(job)
        .stdout(Stdio::piped())
        .spawn()
        .expect("post runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(post.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("the posted job");
    let posted: Value = serde_json::from_str(&line).expect("JSON");
    let requester = format!("/ip4/127.0.0.1/tcp/{listen}");
    let daemon = provider(dir, devnet, port, &requester, lie);
    assert!(post.wait().expect("post returns once claimed").success());
    (posted, daemon)
}

/// Posts `job` and has a provider run it ([`start_job`]), waits for it to be finalized, and
/// runs `job result --json --recheck 3` against the provider's node, saving to `out(id)`;
/// returns what `job post` printed and what `job result` did.
pub(crate) async fn run_job(
    dir: &Path,
    devnet: &Devnet,
    market: &Market,
    job: &Path,
    port: u16,
    lie: bool,
    out: impl Fn(u64) -> PathBuf,
) -> (Value, Output) {
    let (posted, daemon) = start_job(dir, devnet, job, port, lie);
    let id = posted["jobId"].as_u64().expect("job id");
    wait_for(
        market,
        pedals_core::JobId(id),
        JobStatus::Finalized,
        Duration::from_secs(180),
    )
    .await;
    let out = pedals(dir, devnet)
        .args(["job", "result", "--json", "--recheck", "3", &id.to_string()])
        .args(["--bootstrap", &format!("/ip4/127.0.0.1/tcp/{port}")])
        .arg("--out")
        .arg(out(id))
        .output()
        .expect("runs");
    drop(daemon);
    (posted, out)
}

/// A devnet with a requester (account 4), a provider (account 5) and a validator (account 6),
/// their keystores in a folder, and the market as the requester sees it.
pub(crate) struct World {
    pub(crate) devnet: Devnet,
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) requester: alloy::signers::local::PrivateKeySigner,
    pub(crate) provider: alloy::signers::local::PrivateKeySigner,
    pub(crate) market: Market,
    /// The market's shortest challenge window.
    pub(crate) window: u32,
}

impl World {
    pub(crate) async fn new() -> Self {
        let devnet = crate::mining_devnet().await;
        let tmp = crate::daemon_dir(
            &devnet,
            &[
                (4, "requester.json"),
                (5, "provider.json"),
                (6, "validator.json"),
            ],
        );
        let requester = devnet.signer(4).expect("dev account");
        let provider = devnet.signer(5).expect("dev account");
        let market = Market::connect(
            devnet.endpoint(),
            requester.clone(),
            devnet.deployment().clone(),
        )
        .await
        .expect("market");
        let window = market
            .parameters()
            .await
            .expect("params")
            .minChallengeWindow;
        Self {
            devnet,
            tmp,
            requester,
            provider,
            market,
            window,
        }
    }

    /// Each job file of `cases` is refused by `job post` with exit code 1 and an error that
    /// says its text; nothing is sent.
    pub(crate) async fn assert_refused(&self, cases: Vec<(String, &str)>) {
        let dir = self.tmp.path();
        for (body, says) in cases {
            let file = dir.join("bad.toml");
            std::fs::write(&file, body).expect("job file");
            let out = pedals(dir, &self.devnet)
                .args(["job", "post"])
                .arg(&file)
                .output()
                .expect("runs");
            assert_eq!(out.status.code(), Some(1));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(says), "expected {says:?} in: {err}");
        }
        assert_eq!(
            self.market
                .provider()
                .get_transaction_count(self.requester.address())
                .await
                .expect("nonce"),
            0,
            "nothing was sent"
        );
    }

    /// The provider was paid a 0.05 ETH job: what it holds, has staked and has in credit (if
    /// it has not withdrawn yet) grew by the payment less the protocol fee (2.5%), less its
    /// gas, from `before`.
    pub(crate) async fn assert_paid(&self, before: U256) {
        let (market, who) = (&self.market, self.provider.address());
        let after = market.provider().get_balance(who).await.expect("balance");
        let staked = U256::from(market.stake_of(who).await.expect("stake").staked);
        let credit = market.credit_of(who).await.expect("credit");
        let after = after + credit;
        let paid = U256::from(5u64) * U256::from(10u64).pow(U256::from(16u64)) * U256::from(975u64)
            / U256::from(1000u64);
        let gas = U256::from(10u64).pow(U256::from(15u64));
        assert!(
            after + staked + gas > before + paid && after + staked < before + paid,
            "paid 0.04875 ETH less gas: before {before}, after {after} (credit {credit}), staked {staked}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_language_model_job_is_generated_paid_and_rechecked_and_a_lying_chunk_is_caught() {
    let w = World::new().await;
    let (devnet, dir, market, window) = (&w.devnet, w.tmp.path(), &w.market, w.window);
    let chain = market.provider().clone();
    let provider_key = &w.provider;

    // Bad job files are refused before any transaction, saying what to fix.
    let bad_prompts = dir.join("bad.jsonl");
    std::fs::write(
        &bad_prompts,
        "{\"prompt\": \"fine\"}\n{\"promt\": \"typo\"}\n",
    )
    .expect("w");
    w.assert_refused(vec![
        (
            lm_job(window, "").replace("max_tokens = 12", "max_tokens = 200"),
            "does not fit the model's context of 128",
        ),
        (
            lm_job(window, "").replace("chunk = 2", "chunk = 1000"),
            "ask for smaller chunks",
        ),
        (
            lm_job(window, "").replace(
                &format!(
                    "{:?}",
                    root()
                        .join("examples/lm-prompts.jsonl")
                        .display()
                        .to_string()
                ),
                &format!("{:?}", bad_prompts.display().to_string()),
            ),
            "prompts line 2",
        ),
        (
            lm_job(window, "").replace("top_k = 40", "top_p = 0.0"),
            "top-p 0 is outside (0, 1]",
        ),
        (
            format!("holdout = 5\n{}", lm_job(window, "")),
            "holdout does not apply to a [generate] job",
        ),
        (
            lm_job(window, "bits = 4"),
            "generate.bits = 4: write 8 or 16",
        ),
        (
            lm_job(window, "").replace("llama-tiny", "no-such-model"),
            "is neither a folder, a file nor a CID",
        ),
    ])
    .await;

    // An honest provider: paid, and every chunk it committed re-runs to the same bytes here.
    let job = dir.join("lm.toml");
    std::fs::write(&job, lm_job(window, "stop = [\"\\n\\n\"]")).expect("job file");
    let before = chain
        .get_balance(provider_key.address())
        .await
        .expect("balance");
    let port = free_port();
    let jsonl = |id: u64| dir.join(format!("job-{id}.jsonl"));
    let (posted, out) = run_job(dir, devnet, market, &job, port, false, jsonl).await;
    assert_eq!(posted["kind"], "lm-generate");
    assert_eq!(posted["steps"], 3, "six prompts in chunks of two");
    let id = posted["jobId"].as_u64().expect("job id");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = json(&out);
    assert_eq!(result["completions"], 6);
    assert_eq!(result["rechecked"], serde_json::json!([0, 1, 2]));
    assert_eq!(result["mismatched"], serde_json::json!([]));
    let job_on_chain = market.job(pedals_core::JobId(id)).await.expect("job");
    assert_eq!(job_on_chain.worker, provider_key.address());
    w.assert_paid(before).await;
    // The completions are what this process computes from the same files.
    let model = pedals_lm::quantize(
        &pedals_lm::Checkpoint::load_hf(&root().join("crates/lm/tests/fixtures/llama-tiny"))
            .expect("checkpoint"),
        8,
    )
    .expect("quantized");
    let tok = pedals_lm::Tokenizer::from_bytes(model.tokenizer.as_deref().expect("tokenizer"))
        .expect("tokenizer");
    let prompts = pedals_lm::batch::parse_prompts(
        &std::fs::read(root().join("examples/lm-prompts.jsonl")).expect("prompts"),
        Some(&tok),
    )
    .expect("prompts");
    let params = pedals_lm::GenParams {
        max_tokens: 12,
        sampling: pedals_lm::Sampling::new(0.8, 40, 1.0, 11).expect("sampling"),
        stop: vec!["\n\n".into()],
    };
    let (_, chunks) =
        pedals_lm::batch::run(&model, Some(&tok), &prompts, &params, 2).expect("generated");
    assert_eq!(
        std::fs::read(dir.join(format!("job-{id}.jsonl"))).expect("saved"),
        chunks.concat()
    );

    // A provider that lies about chunk 1: its trace is consistent with its lie, so the
    // completions are accepted as committed, but re-running the chunks finds it.
    let port = free_port();
    let (_, out) = run_job(dir, devnet, market, &job, port, true, jsonl).await;
    assert_eq!(out.status.code(), Some(1), "a mismatch is an error");
    let result = json(&out);
    assert_eq!(result["mismatched"], serde_json::json!([1]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("differ from what this machine computes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
