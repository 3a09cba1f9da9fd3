//! Spot checks (docs/split-inference.md, "Verification"): a client that holds the model's
//! blocks re-executes a secret random sample of a server's answers before it uses them, from
//! the rows it sent that server since position 0, and compares bit for bit (exact mode makes
//! any difference a lie). A wrong answer is never passed on: the server is banned, and the
//! session fails over as for a lost server, with the same tokens.

use std::sync::Arc;

use pedals_lm::{Activations, ExactModel, KvCache};
use rand::Rng;

use crate::route::Hop;

/// Re-executes a fraction of every server's answers.
#[derive(Clone)]
pub struct SpotCheck {
    /// The whole model (every block).
    pub model: Arc<ExactModel>,
    /// The share of answers checked, `0.0..=1.0`, each drawn independently and in secret:
    /// a server that lies in `k` answers is caught with probability `1 − (1 − f)^k`.
    pub fraction: f64,
}

impl std::fmt::Debug for SpotCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpotCheck")
            .field("fraction", &self.fraction)
            .finish_non_exhaustive()
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Not sampled.
    Skipped,
    /// Re-executed, and equal.
    Equal,
    /// Re-executed, and different: the server lied (the reason says where).
    Lie(String),
}

impl SpotCheck {
    /// Draws whether to check `hop`'s answer `out` to `input` (the rows sent before it are
    /// `sent`, from position 0) and, if so, re-executes it.
    pub fn check(
        &self,
        hop: &Hop,
        sent: &[i32],
        input: &Activations,
        out: &Activations,
    ) -> Checked {
        if !rand::thread_rng().gen_bool(self.fraction.clamp(0.0, 1.0)) {
            return Checked::Skipped;
        }
        let mut rows = sent.to_vec();
        rows.extend_from_slice(&input.rows);
        let mut cache = KvCache::for_blocks(hop.blocks.clone());
        let again = match self
            .model
            .run_span(&mut cache, &Activations { start: 0, rows })
        {
            Ok(a) => a,
            Err(e) => return Checked::Lie(format!("its input does not re-execute: {e}")),
        };
        let tail = &again.rows[again.rows.len() - out.rows.len().min(again.rows.len())..];
        match tail.iter().zip(&out.rows).position(|(a, b)| a != b) {
            None if tail.len() == out.rows.len() => Checked::Equal,
            at => {
                let d = self.model.config.hidden.max(1);
                let i = at.unwrap_or(0);
                Checked::Lie(format!(
                    "its output differs from re-execution at position {}, value {}",
                    out.start + i / d,
                    i % d
                ))
            }
        }
    }
}
