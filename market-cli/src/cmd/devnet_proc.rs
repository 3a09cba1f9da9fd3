//! The devnet's processes: each started in its own process group with its log, recorded
//! with its command line (so that `pedals devnet restart` starts it again as it was), recognised
//! in /proc before it is signalled, and stopped with its whole group.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use eyre::Context;
use serde::{Deserialize, Serialize};

/// One process the devnet started.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Process {
    pub(super) name: String,
    pub(super) pid: u32,
    pub(super) log: PathBuf,
    /// What it is, to recognize it in /proc before signalling it.
    pub(super) program: String,
    /// The program's path and arguments, to start it again (empty in a state file written
    /// before `restart` existed).
    #[serde(default)]
    pub(super) command: Vec<String>,
}

/// Whether `p` is still running as what was started (its pid was not reused).
pub(super) fn alive(p: &Process) -> bool {
    std::fs::read(format!("/proc/{}/cmdline", p.pid))
        .map(|cmd| String::from_utf8_lossy(&cmd).contains(&p.program))
        .unwrap_or(false)
}

/// Starts `program args…` in its own process group (it outlives this command and a Ctrl-C
/// here), with stdout and stderr appended to `log`.
pub(super) fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    log: &Path,
) -> eyre::Result<Process> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .wrap_err_with(|| format!("cannot open {}", log.display()))?;
    let err = out.try_clone()?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env("PEDALS_LOG", "pedals=info,warn,libp2p_kad=error")
        .process_group(0)
        .spawn()
        .wrap_err_with(|| format!("cannot start {}", program.display()))?;
    Ok(Process {
        name: name.to_string(),
        pid: child.id(),
        log: log.to_path_buf(),
        program: program
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        command: std::iter::once(program.display().to_string())
            .chain(args.iter().cloned())
            .collect(),
    })
}

/// Whether process `pid` is gone: no longer in /proc, or only its zombie is left. A process
/// that is exiting has already lost its command line (so `alive` says no) but still runs.
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        Err(_) => true,
    }
}

/// Stops every process and its process group (an npm launcher's real binary with it):
/// SIGTERM, up to 10 s, then SIGKILL; returns once each is gone, not merely exiting.
pub(super) fn stop(processes: &[Process]) {
    let signal = |sig: &str, p: &Process| {
        // The group first (its id is the leader's pid: `spawn` made each its own group),
        // then the process, in case it left the group.
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{}", p.pid)])
            .status();
        let _ = Command::new("kill")
            .args([sig, &p.pid.to_string()])
            .status();
    };
    let live: Vec<&Process> = processes.iter().rev().filter(|p| alive(p)).collect();
    for p in &live {
        signal("-TERM", p);
    }
    let until = Instant::now() + Duration::from_secs(10);
    while live.iter().any(|p| !gone(p.pid)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in live.iter().filter(|p| !gone(p.pid)) {
        signal("-KILL", p);
    }
    // SIGKILL is not instant either: return once every process is gone.
    let until = Instant::now() + Duration::from_secs(5);
    while live.iter().any(|p| !gone(p.pid)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops `p` if it runs and starts it again with the command line it was started with,
/// appending to the same log; returns the new process.
pub(super) fn restart(p: &Process) -> eyre::Result<Process> {
    let Some((program, args)) = p.command.split_first() else {
        eyre::bail!(
            "{} was started by an older pedals, which did not record how: run `pedals devnet \
             down` and `pedals devnet up`",
            p.name
        );
    };
    stop(std::slice::from_ref(p));
    spawn(&p.name, Path::new(program), args, &p.log)
}

/// The last `lines` lines of the log at `path` (or why it cannot be read), to put the reason
/// a process died into the error that reports it.
pub(super) fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read it: {e})"),
    }
}
