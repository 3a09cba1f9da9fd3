//! Daemon config files: TOML with the same settings as the flags (snake_case keys); a flag or
//! its environment variable wins over the file, the file over the default.

use std::path::Path;

use eyre::Context;
use serde::de::DeserializeOwned;

/// The config file at `path` (every setting unset without one); unknown keys are an error.
pub(crate) fn read<T: DeserializeOwned + Default>(path: Option<&Path>) -> eyre::Result<T> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).wrap_err_with(|| format!("the config file {} is invalid", path.display()))
}

/// A required setting given nowhere: the command is incomplete, as when clap finds a
/// required flag missing, and exits with the same code (2).
#[derive(Debug)]
pub(crate) struct MissingSetting {
    what: String,
    flag: String,
    env: String,
    key: String,
}

impl std::fmt::Display for MissingSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no {}: pass --{}, set {}, or put {} in the config file",
            self.what, self.flag, self.env, self.key
        )
    }
}

impl std::error::Error for MissingSetting {}

/// The error for a required setting given nowhere.
pub(crate) fn missing(what: &str, flag: &str, env: &str) -> eyre::Report {
    MissingSetting {
        what: what.into(),
        flag: flag.into(),
        env: env.into(),
        key: flag.replace('-', "_"),
    }
    .into()
}

/// Blocks per `eth_getLogs` request (`--log-range`, at least 1), or the default 2 000.
pub(crate) fn log_range(blocks: Option<u64>) -> eyre::Result<u64> {
    match blocks {
        None => Ok(pedals_chain::SCAN_RANGE),
        Some(0) => eyre::bail!(
            "--log-range must be at least 1 block (the most blocks your RPC provider serves in \
             one eth_getLogs request)"
        ),
        Some(b) => Ok(b),
    }
}

/// The bytes of `--max-trace-gib` (a positive number of GiB), or the default budget of a
/// challenged step's op trace (half of this machine's memory).
pub(crate) fn trace_budget(gib: Option<f64>) -> eyre::Result<u64> {
    match gib {
        None => Ok(pedals_lm::default_trace_budget()),
        Some(g) if g > 0.0 && g.is_finite() => Ok((g * f64::from(1u32 << 30)) as u64),
        Some(g) => eyre::bail!(
            "--max-trace-gib must be a positive number of GiB (the memory a challenged \
             step's op trace may take), not {g}"
        ),
    }
}
