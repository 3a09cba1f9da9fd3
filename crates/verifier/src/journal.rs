//! What the validator must not forget when it stops: each finding (a step that does not
//! reproduce) with its commitment's salt, whether the commitment was sent and revealed, and
//! the state before the step, from which the step's op trace is rebuilt to go on playing the
//! game after a restart. A cheating worker need not serve that state again, so it is kept.
//!
//! ```text
//! <dir>/findings/<job>.finding   step, claimed hash, salt, sent, revealed (one per line)
//! <dir>/findings/<job>.state     the canonical bytes of the state before the step
//! ```
//!
//! Each file is written to a temporary name, synced and renamed into place, so a crash
//! leaves the old file or the new one. Without a folder the journal keeps nothing (tests,
//! the demos): the validator then works as before, in memory.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use alloy::primitives::B256;

use crate::VerifierError;

/// A step found not to reproduce, and how far its challenge got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The step.
    pub(crate) step: u64,
    /// This validator's hash of the state after it.
    pub(crate) claimed: B256,
    /// The commitment's salt.
    pub(crate) salt: B256,
    /// Whether the commitment was mined.
    pub(crate) sent: bool,
    /// Whether the challenge was opened (a game of this validator's).
    pub(crate) revealed: bool,
}

/// The validator's journal (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct Journal {
    dir: Option<PathBuf>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VerifierError + '_ {
    move |e| VerifierError::Job(format!("cannot write {}: {e}", path.display()))
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), VerifierError> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl Finding {
    fn encode(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n",
            self.step,
            self.claimed,
            self.salt,
            u8::from(self.sent),
            u8::from(self.revealed)
        )
    }

    fn decode(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let step = lines.next()?.parse().ok()?;
        let claimed = lines.next()?.parse().ok()?;
        let salt = lines.next()?.parse().ok()?;
        let sent = lines.next()? == "1";
        let revealed = lines.next()? == "1";
        Some(Self {
            step,
            claimed,
            salt,
            sent,
            revealed,
        })
    }
}

impl Journal {
    /// A journal in `dir/findings` (created on the first record), or one that keeps nothing.
    pub(crate) fn open(dir: Option<&Path>) -> Self {
        Self {
            dir: dir.map(|d| d.join("findings")),
        }
    }

    fn path(&self, job: u64, ext: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{job}.{ext}")))
    }

    /// Records `finding` for `job`, with the state before its step when given.
    pub(crate) fn record(
        &self,
        job: u64,
        finding: &Finding,
        state: Option<&[u8]>,
    ) -> Result<(), VerifierError> {
        let (Some(text), Some(bin)) = (self.path(job, "finding"), self.path(job, "state")) else {
            return Ok(());
        };
        if let Some(dir) = &self.dir {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        // The state first: a finding on disk always has its state.
        if let Some(state) = state {
            write_atomically(&bin, state)?;
        }
        write_atomically(&text, finding.encode().as_bytes())
    }

    /// Every recorded finding, by job; a damaged file is skipped with a warning.
    pub(crate) fn findings(&self) -> Vec<(u64, Finding)> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().is_none_or(|e| e != "finding") {
                continue;
            }
            let job = path.file_stem().and_then(|s| s.to_str()?.parse().ok());
            let finding = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| Finding::decode(&t));
            match (job, finding) {
                (Some(job), Some(f)) => out.push((job, f)),
                _ => {
                    tracing::warn!(target: "pedals::validator", path = %path.display(), "a damaged finding in the journal was skipped")
                }
            }
        }
        out.sort_by_key(|(job, _)| *job);
        out
    }

    /// The state before the finding's step, if recorded.
    pub(crate) fn state(&self, job: u64) -> Option<Vec<u8>> {
        std::fs::read(self.path(job, "state")?).ok()
    }

    /// Forgets `job`'s finding (its game or its reward is settled).
    pub(crate) fn forget(&self, job: u64) {
        for ext in ["finding", "state"] {
            if let Some(path) = self.path(job, ext) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_survive_a_reopen_and_are_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(Some(dir.path()));
        let f = Finding {
            step: 7,
            claimed: B256::repeat_byte(1),
            salt: B256::repeat_byte(2),
            sent: true,
            revealed: false,
        };
        journal.record(3, &f, Some(b"state")).expect("record");
        let again = Journal::open(Some(dir.path()));
        assert_eq!(again.findings(), vec![(3, f)]);
        assert_eq!(again.state(3).as_deref(), Some(&b"state"[..]));
        std::fs::write(dir.path().join("findings/9.finding"), "garbage").expect("write");
        assert_eq!(again.findings(), vec![(3, f)], "a damaged file is skipped");
        again.forget(3);
        assert!(again.state(3).is_none());
        assert_eq!(Journal::open(None).findings(), vec![]);
    }
}
