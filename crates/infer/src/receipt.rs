//! Receipts (docs/split-inference.md, "Disputes"): with each answer a span server signs what it
//! claims, the row roots of every input row the session sent its span and of every output row
//! it returned, from position 0. A client checks each receipt against the rows it holds before
//! it uses the answer; a receipt whose output re-execution contradicts is the evidence that
//! `SpanDisputeGame` slashes the server with. The signatures are the chain's business
//! ([`ReceiptSigner`], [`ReceiptVerifier`], implemented where the chain client lives).

use std::{
    collections::VecDeque,
    io::Write,
    ops::Range,
    path::{Path, PathBuf},
    time::Duration,
};

use alloy_primitives::{Address, B256, Bytes};
use pedals_core::{hash_row, merkle_root};
use pedals_p2p::PeerId;
use serde::{Deserialize, Serialize};

/// A receipt as it travels with an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireReceipt {
    /// The model's key (its architecture and tensors' commitment, `pedals_chain::model_key`).
    pub model: B256,
    /// The first block of the span that ran.
    pub start: u32,
    /// One past its last block.
    pub end: u32,
    /// The session's positions so far: the rows under both roots.
    pub positions: u32,
    /// Row root of every input row of the session, from position 0.
    pub input: B256,
    /// Row root of every output row.
    pub output: B256,
    /// When the server signed it, Unix seconds by its clock (a client refuses one off its own
    /// clock by more than [`MAX_CLOCK_SKEW`]).
    pub issued_at: u64,
    /// The server's EIP-712 signature (65 bytes); empty while it is being made.
    pub signature: Bytes,
}

/// How far a receipt's `issued_at` may be from the client's clock (the game allows five
/// minutes into the future).
pub(crate) const MAX_CLOCK_SKEW: u64 = 120;

/// Signs a server's receipts with its staked account.
pub trait ReceiptSigner: Send + Sync {
    /// The key of the model served.
    fn model_key(&self) -> B256;
    /// The signature over `receipt` (its own `signature` ignored).
    fn sign(&self, receipt: &WireReceipt) -> Result<Bytes, String>;
}

/// The answer of [`ReceiptVerifier::staked`]: the reason when the server is not staked.
pub type StakeCheck<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;

/// Checks receipts for a client.
pub trait ReceiptVerifier: Send + Sync {
    /// The key of the model the client runs.
    fn model_key(&self) -> B256;
    /// The account that signed `receipt`, if the signature is one the game accepts.
    fn signer(&self, receipt: &WireReceipt) -> Option<Address>;
    /// Whether `server` has stake that a dispute can slash, enough to deter a lie; the reason
    /// when it has not. A receipt signed by an account with nothing at stake binds nobody.
    fn staked(&self, server: Address) -> StakeCheck<'_> {
        let _ = server;
        Box::pin(async { Ok(()) })
    }
}

/// What a client holds against a server whose answer re-execution contradicted.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The server's network identity.
    pub peer: PeerId,
    /// The account that signed the receipt: the one a dispute slashes.
    pub server: Address,
    /// The span's blocks.
    pub blocks: Range<usize>,
    /// Every input row the session sent the span, from position 0 (the receipt's input).
    pub input: Vec<i32>,
    /// The signed receipt of the contradicted answer.
    pub receipt: WireReceipt,
}

/// Takes evidence to the dispute game (in the background: the call must not block).
pub trait Disputer: Send + Sync {
    /// Disputes the receipt in `evidence`.
    fn dispute(&self, evidence: Evidence);
}

/// One session's rows through one span: the input rows and the row hashes of both sides, from
/// position 0.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowLog {
    pub(crate) inputs: Vec<i32>,
    in_hashes: Vec<B256>,
    out_hashes: Vec<B256>,
}

impl RowLog {
    /// Positions logged.
    pub(crate) fn len(&self) -> usize {
        self.in_hashes.len()
    }

    /// Appends rows that continue the session.
    pub(crate) fn push(&mut self, input: &[i32], output: &[i32], hidden: usize) {
        self.inputs.extend_from_slice(input);
        self.in_hashes
            .extend(input.chunks(hidden.max(1)).map(hash_row));
        self.out_hashes
            .extend(output.chunks(hidden.max(1)).map(hash_row));
    }

    /// Forgets the positions from `rows` on.
    pub(crate) fn truncate(&mut self, rows: usize, hidden: usize) {
        self.inputs.truncate(rows * hidden);
        self.in_hashes.truncate(rows);
        self.out_hashes.truncate(rows);
    }

    /// The receipt's fields for the rows logged, plus `input` and `output` not yet logged,
    /// issued at `issued_at`.
    pub(crate) fn receipt(
        &self,
        model: B256,
        blocks: &Range<usize>,
        (input, output): (&[i32], &[i32]),
        hidden: usize,
        issued_at: u64,
    ) -> WireReceipt {
        let root = |logged: &[B256], more: &[i32]| {
            let mut all = logged.to_vec();
            all.extend(more.chunks(hidden.max(1)).map(hash_row));
            (all.len(), merkle_root(&all).unwrap_or_default())
        };
        let (positions, input) = root(&self.in_hashes, input);
        let (_, output) = root(&self.out_hashes, output);
        WireReceipt {
            model,
            start: blocks.start as u32,
            end: blocks.end as u32,
            positions: positions as u32,
            input,
            output,
            issued_at,
            signature: Bytes::new(),
        }
    }

    /// The first `positions` input rows, if they are the ones under `root`.
    pub(crate) fn prefix(&self, positions: usize, root: B256, hidden: usize) -> Option<Vec<i32>> {
        let hashes = self.in_hashes.get(..positions)?;
        (merkle_root(hashes).ok()? == root).then(|| self.inputs[..positions * hidden].to_vec())
    }
}

/// The logs of sessions that ended, kept for the disputes that may follow them (the most
/// recent [`Archive::KEEP`]).
#[derive(Debug, Default)]
pub(crate) struct Archive {
    logs: VecDeque<(Range<usize>, RowLog)>,
}

impl Archive {
    /// Sessions kept.
    pub(crate) const KEEP: usize = 256;

    pub(crate) fn keep(&mut self, blocks: Range<usize>, log: RowLog) {
        if log.len() == 0 {
            return;
        }
        if self.logs.len() >= Self::KEEP {
            self.logs.pop_front();
        }
        self.logs.push_back((blocks, log));
    }

    pub(crate) fn logs(&self) -> impl Iterator<Item = &(Range<usize>, RowLog)> {
        self.logs.iter()
    }
}

/// The input rows of every session a server signed receipts for, on disk: what defends its
/// receipts after a restart. One file per session and span, `<start>-<end>-<id>.rows`, the
/// rows appended as little-endian `i32`s; files older than `keep` (the receipt window and
/// two clocks) are deleted.
#[derive(Debug)]
pub(crate) struct RowFiles {
    dir: PathBuf,
    keep: Duration,
}

impl RowFiles {
    pub(crate) fn open(dir: &Path, keep: Duration) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            keep,
        })
    }

    fn prefix_of(blocks: &Range<usize>) -> String {
        format!("{}-{}-", blocks.start, blocks.end)
    }

    /// Appends `rows` to session `id`'s file.
    pub(crate) fn append(
        &self,
        blocks: &Range<usize>,
        id: u64,
        rows: &[i32],
    ) -> std::io::Result<()> {
        let path = self
            .dir
            .join(format!("{}{id:016x}.rows", Self::prefix_of(blocks)));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
        f.write_all(&bytes)
    }

    /// The first `positions` rows of a session of `blocks` whose row root is `root`.
    pub(crate) fn find(
        &self,
        blocks: &Range<usize>,
        positions: usize,
        root: B256,
        hidden: usize,
    ) -> Option<Vec<i32>> {
        let want = positions * hidden * 4;
        let prefix = Self::prefix_of(blocks);
        std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .find_map(|e| {
                let bytes = std::fs::read(e.path()).ok()?;
                let rows: Vec<i32> = bytes
                    .get(..want)?
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                let hashes: Vec<B256> = rows.chunks(hidden.max(1)).map(hash_row).collect();
                (merkle_root(&hashes).ok()? == root).then_some(rows)
            })
    }

    /// Deletes the files not written for `keep`.
    pub(crate) fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.filter_map(Result::ok) {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= self.keep);
            if old && e.file_name().to_string_lossy().ends_with(".rows") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
