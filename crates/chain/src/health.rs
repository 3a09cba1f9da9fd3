//! What a daemon's `/health` says: whether its rounds succeed, and if not, why.
//!
//! A daemon is healthy while its last good round is recent enough. A failure on a chain the
//! node no longer recognises ([`crate::ChainError::ChainReplaced`]) makes it unhealthy at
//! once and stays until a round succeeds; any other failure (an RPC error, a cursor that
//! cannot advance) makes it unhealthy once no round has succeeded for the limit, and the
//! report names the last failure.

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// The health of a daemon, fed by its rounds.
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_good: Option<Instant>,
    failure: Option<Failure>,
}

#[derive(Debug)]
struct Failure {
    reason: String,
    fatal: bool,
    /// When this reason was last said to be logged.
    logged: Instant,
}

/// The same failure is logged again at most this often.
const RELOG_EVERY: Duration = Duration::from_secs(60);

impl Health {
    /// Records a round that succeeded (or a long job that advanced).
    pub fn round_ok(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.last_good = Some(Instant::now());
        state.failure = None;
    }

    /// Records a failed round; a `fatal` one makes the daemon unhealthy at once. Returns
    /// whether to log it: a new reason, or the same one again a minute after it was last
    /// logged, so that a daemon retrying every second does not fill its log with one line.
    pub fn round_failed(&self, reason: impl std::fmt::Display, fatal: bool) -> bool {
        let reason = reason.to_string();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let log = match &state.failure {
            Some(f) if f.reason == reason => now.duration_since(f.logged) >= RELOG_EVERY,
            _ => true,
        };
        let logged = match &state.failure {
            Some(f) if !log => f.logged,
            _ => now,
        };
        state.failure = Some(Failure {
            reason,
            fatal,
            logged,
        });
        log
    }

    /// `Ok` while healthy, or the reason it is not, for a person to read.
    pub fn report(&self, limit: Duration) -> Result<(), String> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(failure) = state.failure.as_ref().filter(|f| f.fatal) {
            return Err(failure.reason.clone());
        }
        let fresh = state.last_good.is_some_and(|t| t.elapsed() <= limit);
        if fresh {
            return Ok(());
        }
        let since = match state.last_good {
            None => "no round has succeeded yet".to_string(),
            Some(t) => format!(
                "no round has succeeded for {} (the limit is {})",
                crate::human::duration(t.elapsed()),
                crate::human::duration(limit)
            ),
        };
        Err(match &state.failure {
            Some(f) => format!("{since}; the last one failed: {}", f.reason),
            None => since,
        })
    }
}

impl Health {
    /// What `GET /health` answers: `200 ok`, or `503 unhealthy: <the reason>`.
    pub fn http(&self, limit: Duration) -> (u16, String) {
        match self.report(limit) {
            Ok(()) => (200, "ok\n".into()),
            Err(reason) => (503, format!("unhealthy: {reason}\n")),
        }
    }
}

/// Keeps a daemon that retries every second from logging the same failure every second: a
/// line is let through when its key (a job, say) last logged another text, or the same one at
/// least a minute ago.
#[derive(Debug, Default)]
pub struct LogGate {
    last: Mutex<std::collections::HashMap<String, (String, Instant)>>,
}

impl LogGate {
    /// Whether to log `text` for `key` now (and, if so, remembers it).
    pub fn admit(&self, key: impl Into<String>, text: &str) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let key = key.into();
        if let Some((said, at)) = last.get(&key)
            && said == text
            && now.duration_since(*at) < RELOG_EVERY
        {
            return false;
        }
        last.insert(key, (text.to_string(), now));
        true
    }

    /// Forgets `key` (its job is over): the next failure is logged at once.
    pub fn forget(&self, key: &str) {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fatal_failure_is_reported_at_once_and_cleared_by_a_good_round() {
        let health = Health::default();
        assert_eq!(
            health.report(Duration::from_secs(60)),
            Err("no round has succeeded yet".into())
        );
        health.round_ok();
        assert_eq!(health.report(Duration::from_secs(60)), Ok(()));
        assert!(
            health.round_failed("the RPC endpoint failed", false),
            "logged"
        );
        assert!(
            !health.round_failed("the RPC endpoint failed", false),
            "the same failure a second later is not logged again"
        );
        assert_eq!(
            health.report(Duration::from_secs(60)),
            Ok(()),
            "within the limit"
        );
        let report = health.report(Duration::ZERO).expect_err("past the limit");
        assert!(
            report.contains("the last one failed: the RPC endpoint failed"),
            "{report}"
        );
        assert!(
            health.round_failed("the chain was replaced", true),
            "a new reason"
        );
        assert_eq!(
            health.report(Duration::from_secs(60)),
            Err("the chain was replaced".into())
        );
        health.round_ok();
        assert_eq!(health.report(Duration::from_secs(60)), Ok(()));
    }

    #[test]
    fn the_gate_lets_a_repeated_line_through_once_and_a_new_one_at_once() {
        let gate = LogGate::default();
        assert!(gate.admit("job 1", "fetch failed"));
        assert!(!gate.admit("job 1", "fetch failed"));
        assert!(gate.admit("job 2", "fetch failed"), "another key");
        assert!(gate.admit("job 1", "claim reverted"), "another text");
        gate.forget("job 1");
        assert!(gate.admit("job 1", "claim reverted"));
    }
}
