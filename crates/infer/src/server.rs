//! A span server: one span of a model's blocks, a key/value cache per client session within
//! a memory budget, answering `/pedals/span/1` requests (docs/split-inference.md).

use std::{
    collections::HashMap,
    ops::Range,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U256};
use pedals_core::Cid;
use pedals_lm::{Activations, ExactModel, KvCache};
use pedals_p2p::{PeerId, SpanAnnouncement, SpanService, unix_now};
use tracing::{debug, info, warn};

use crate::{
    InferError,
    pay::{Till, VoucherBook, WireVoucher},
    receipt::{Archive, ReceiptSigner, RowFiles, RowLog, WireReceipt},
    wire::{self, Refusal, Reply, Request, refused},
};

/// A session idle this long may be evicted to make room for a new one.
const EVICT_IDLE: Duration = Duration::from_secs(30);

struct Session {
    cache: KvCache,
    blocks: Range<usize>,
    used: Instant,
    /// The session's rows, kept when the server signs receipts.
    log: RowLog,
    /// The session's number in the server's row files.
    id: u64,
    /// The [`Loaded::generation`] it was opened under.
    generation: u64,
}

/// The span a server runs now: it changes when the server moves ([`SpanServer::move_to`]).
struct Loaded {
    /// The model with only the span's blocks (block `i` of it is block `span.start + i`).
    model: ExactModel,
    span: Range<usize>,
    tokens_per_second: f64,
    max_sessions: usize,
    /// Counts the moves: a session of an earlier span is not continued.
    generation: u64,
}

impl Loaded {
    /// Keeps blocks `span` of `model` (the whole model, or those blocks alone), measures its
    /// decoding speed, and sizes the session table so that every session can reach the full
    /// context within `cache_bytes`.
    fn new(
        mut model: ExactModel,
        span: Range<usize>,
        cache_bytes: usize,
        generation: u64,
    ) -> Result<Self, InferError> {
        let blocks = model.config.layers;
        if span.is_empty() || span.end > blocks {
            return Err(pedals_lm::LmError::Config(format!(
                "blocks {span:?} are not a span of this model's {blocks} blocks (give --blocks \
                 within 0..{blocks})"
            ))
            .into());
        }
        if model.blocks.len() == blocks {
            model.blocks = model.blocks.drain(span.clone()).collect();
        } else if model.blocks.len() != span.len() {
            return Err(pedals_lm::LmError::Config(format!(
                "a model of {} blocks is neither the whole model nor blocks {span:?}",
                model.blocks.len()
            ))
            .into());
        }
        let (tokens_per_second, session_bytes) = measure(&model)?;
        let max_sessions = (cache_bytes / session_bytes.max(1)).max(1);
        info!(target: "pedals::infer", ?span, tokens_per_second, max_sessions, session_bytes, "loaded a span");
        Ok(Self {
            model,
            span,
            tokens_per_second,
            max_sessions,
            generation,
        })
    }
}

/// Serves blocks `span` of one model.
pub struct SpanServer {
    cid: Cid,
    loaded: RwLock<Arc<Loaded>>,
    /// The model's blocks, and its width.
    blocks: usize,
    hidden: usize,
    cache_bytes: usize,
    sessions: Mutex<HashMap<(PeerId, u64), Session>>,
    price: U256,
    served: AtomicU64,
    delay: Duration,
    till: Option<Till>,
    receipts: Option<Arc<dyn ReceiptSigner>>,
    archive: Mutex<Archive>,
    files: Option<RowFiles>,
    lie_after: Option<u64>,
}

impl std::fmt::Debug for SpanServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanServer")
            .field("cid", &self.cid.to_string())
            .field("span", &self.span())
            .finish_non_exhaustive()
    }
}

impl SpanServer {
    /// Keeps blocks `span` of `model` (the whole model, or only those blocks as
    /// [`ExactModel::span_from_bytes`] reads them; its stored bytes have CID `cid`), measures
    /// its decoding speed, and sizes the session table so that every session can reach the
    /// full context within `cache_bytes`.
    pub fn new(
        model: ExactModel,
        cid: Cid,
        span: Range<usize>,
        cache_bytes: usize,
    ) -> Result<Self, InferError> {
        let (blocks, hidden) = (model.config.layers, model.config.hidden);
        let loaded = Loaded::new(model, span, cache_bytes, 0)?;
        info!(target: "pedals::infer", model = %cid, span = ?loaded.span, "serving a span");
        Ok(Self {
            cid,
            loaded: RwLock::new(Arc::new(loaded)),
            blocks,
            hidden,
            cache_bytes,
            sessions: Mutex::default(),
            price: U256::ZERO,
            served: AtomicU64::new(0),
            delay: Duration::ZERO,
            till: None,
            receipts: None,
            archive: Mutex::default(),
            files: None,
            lie_after: None,
        })
    }

    /// Signs a receipt with every answer (docs/split-inference.md, "Disputes"), and keeps
    /// every session's input rows (the last [`Archive::KEEP`] ended sessions' too) to defend
    /// the receipts in a dispute ([`SpanServer::prefix`]).
    pub fn with_receipts(mut self, signer: Arc<dyn ReceiptSigner>) -> Self {
        self.receipts = Some(signer);
        self
    }

    /// Also writes the rows that defend its receipts to files in `dir`, kept for `keep` (the
    /// receipt window and two clocks), so that a restarted server can still defend them.
    pub fn with_row_files(
        mut self,
        dir: &std::path::Path,
        keep: Duration,
    ) -> Result<Self, InferError> {
        let files = RowFiles::open(dir, keep).map_err(|e| {
            InferError::Protocol(format!(
                "cannot keep the receipts' rows in {}: {e}",
                dir.display()
            ))
        })?;
        files.prune();
        self.files = Some(files);
        Ok(self)
    }

    /// Changes one value of every answer once `rows` rows have been served, and signs the
    /// lie: a dishonest server, for tests and demonstrations of the dispute game.
    pub fn with_lie_after(mut self, rows: u64) -> Self {
        self.lie_after = Some(rows);
        self
    }

    /// The first `positions` input rows that a session sent blocks `blocks`, if their row
    /// root is `input`: what a receipt of this server committed to, from a live session or
    /// one that ended recently.
    pub fn prefix(&self, blocks: &Range<usize>, positions: usize, input: B256) -> Option<Vec<i32>> {
        let d = self.hidden;
        if let Ok(map) = self.sessions.lock() {
            let found = map
                .values()
                .filter(|s| s.blocks == *blocks)
                .find_map(|s| s.log.prefix(positions, input, d));
            if found.is_some() {
                return found;
            }
        }
        let archived = self.archive.lock().ok().and_then(|archive| {
            archive
                .logs()
                .filter(|(b, _)| b == blocks)
                .find_map(|(_, log)| log.prefix(positions, input, d))
        });
        archived.or_else(|| self.files.as_ref()?.find(blocks, positions, input, d))
    }

    /// Keeps an ended session's rows for disputes.
    fn retire(&self, s: Session) {
        if let Ok(mut a) = self.archive.lock() {
            a.keep(s.blocks, s.log);
        }
    }

    /// Charges `wei_per_token` for every row the span computes, paid by vouchers that `book`
    /// checks and redeems (docs/split-inference.md, "Payment"); a request without a voucher
    /// for everything before it is refused.
    pub fn with_price(mut self, wei_per_token: U256, book: Arc<dyn VoucherBook>) -> Self {
        self.till = (wei_per_token > U256::ZERO).then(|| Till::new(wei_per_token, book));
        self.price = wei_per_token;
        self
    }

    /// Settles the paid sessions idle for `idle` or longer (their clients left without
    /// closing them); the serving loop calls it.
    pub fn settle_idle(&self, idle: Duration) {
        if let Some(files) = &self.files {
            files.prune();
        }
        if let Some(till) = &self.till {
            let settled = till.settle_idle(idle);
            let mut gone = Vec::new();
            if let Ok(mut sessions) = self.sessions.lock() {
                gone.extend(settled.iter().filter_map(|key| sessions.remove(key)));
            }
            for s in gone {
                self.retire(s);
            }
        }
    }

    /// Answers every request `delay` late: a slow link to this server, for tests and
    /// measurements on one machine.
    pub fn with_reply_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The span served.
    pub fn span(&self) -> Range<usize> {
        self.now().span.clone()
    }

    /// The span loaded now.
    fn now(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves blocks `span` from now on, of `model` (the whole model or only those blocks):
    /// the sessions of the old span end (their clients are refused and fail over, and the
    /// paid ones are settled), and their rows stay kept for disputes.
    pub fn move_to(&self, model: ExactModel, span: Range<usize>) -> Result<(), InferError> {
        if model.config.layers != self.blocks || model.config.hidden != self.hidden {
            return Err(InferError::Protocol(
                "the model to move to is not the one served".into(),
            ));
        }
        let generation = self.now().generation + 1;
        let loaded = Loaded::new(model, span, self.cache_bytes, generation)?;
        info!(target: "pedals::infer", model = %self.cid, span = ?loaded.span, "moved to another span");
        match self.loaded.write() {
            Ok(mut l) => *l = Arc::new(loaded),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(loaded),
        }
        let old: Vec<Session> = self
            .sessions
            .lock()
            .map(|mut m| m.drain().map(|(_, s)| s).collect())
            .unwrap_or_default();
        for s in old {
            self.retire(s);
        }
        if let Some(till) = &self.till {
            till.settle_idle(Duration::ZERO);
        }
        Ok(())
    }

    /// Sessions open now.
    pub fn live_sessions(&self) -> usize {
        self.sessions.lock().map_or(0, |s| s.len())
    }

    /// Tokens (positions) run through the span so far.
    pub fn served_tokens(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    fn free_sessions(&self) -> usize {
        self.now().max_sessions.saturating_sub(self.live_sessions())
    }

    /// What to announce on gossip (the price is the one set by [`SpanServer::with_price`]).
    pub fn announcement(&self) -> SpanAnnouncement {
        let l = self.now();
        SpanAnnouncement {
            model_cid: self.cid.to_string(),
            start: l.span.start as u32,
            end: l.span.end as u32,
            blocks: self.blocks as u32,
            tokens_per_second: l.tokens_per_second,
            wei_per_token: self.price,
            free_sessions: self.free_sessions() as u32,
            payee: self.till.as_ref().map(Till::account),
            addrs: Vec::new(),
            announced_at: unix_now(),
        }
    }

    /// Answers one request (its bytes) from `peer`.
    pub fn handle(&self, peer: PeerId, bytes: &[u8]) -> Vec<u8> {
        let (request, acts) = match wire::decode::<Request>(bytes) {
            Ok(r) => r,
            Err(e) => return wire::encode(&refused(Refusal::BadInput, e.to_string(), None), None),
        };
        let (reply, out) = match request {
            Request::Info => (self.info(), None),
            Request::Close { session, voucher } => {
                let gone = self
                    .sessions
                    .lock()
                    .ok()
                    .and_then(|mut s| s.remove(&(peer, session)));
                if let Some(s) = gone {
                    self.retire(s);
                }
                if let Some(till) = &self.till {
                    till.close((peer, session), voucher);
                }
                (Reply::Closed, None)
            }
            Request::Forward {
                session,
                model,
                start,
                end,
                voucher,
            } => match acts {
                None => (
                    refused(Refusal::BadInput, "no activations follow", None),
                    None,
                ),
                Some(input) => {
                    let blocks = start..end;
                    match self.forward((peer, session), &model, blocks, &input, voucher.as_ref()) {
                        Ok((cached, out, receipt)) => (
                            Reply::Output {
                                cached,
                                receipt: receipt.map(Box::new),
                            },
                            Some(out),
                        ),
                        Err(reply) => (reply, None),
                    }
                }
            },
        };
        wire::encode(&reply, out.as_ref())
    }

    fn info(&self) -> Reply {
        let l = self.now();
        Reply::Info {
            model: self.cid.to_string(),
            start: l.span.start as u32,
            end: l.span.end as u32,
            blocks: self.blocks as u32,
            free_sessions: self.free_sessions() as u32,
            tokens_per_second: l.tokens_per_second,
        }
    }

    fn forward(
        &self,
        key: (PeerId, u64),
        model: &str,
        blocks: Range<u32>,
        input: &Activations,
        voucher: Option<&WireVoucher>,
    ) -> Result<(u64, Activations, Option<WireReceipt>), Reply> {
        let blocks = blocks.start as usize..blocks.end as usize;
        let l = self.now();
        if model != self.cid.to_string()
            || blocks.is_empty()
            || blocks.start < l.span.start
            || blocks.end > l.span.end
        {
            return Err(refused(
                Refusal::NotServed,
                format!(
                    "this server runs blocks {:?} of {}, not blocks {blocks:?} of {model}",
                    l.span, self.cid
                ),
                None,
            ));
        }
        let rows = input.len(self.hidden) as u64;
        if let Some(till) = &self.till {
            till.admit(key, voucher, rows)?;
        }
        let mut s = match self.take_session(&l, key, &blocks, input.start) {
            Ok(s) => s,
            Err(reply) => {
                if let Some(till) = &self.till {
                    till.release(key);
                }
                return Err(reply);
            }
        };
        let out = l.model.run_span(&mut s.cache, input).map_err(|e| {
            let gap = input.start != s.cache.len();
            let resend = gap.then_some(s.cache.len() as u64);
            let code = if gap { Refusal::Gap } else { Refusal::BadInput };
            refused(code, e.to_string(), resend)
        });
        let out = out.map(|o| self.maybe_lie(o, rows));
        let receipt = match &out {
            Ok(o) => self.receipt(&mut s, input, o),
            Err(_) => None,
        };
        let cached = s.cache.len() as u64;
        s.used = Instant::now();
        if let Ok(mut map) = self.sessions.lock() {
            map.insert(key, s);
        }
        if let Some(till) = &self.till {
            match &out {
                Ok(out) => till.record(key, out, rows),
                Err(_) => till.release(key),
            }
        }
        let out = out?;
        self.served.fetch_add(rows, Ordering::Relaxed);
        debug!(target: "pedals::infer", peer = %key.0, session = key.1, rows, cached, "forward");
        Ok((cached, out, receipt))
    }

    /// The signed receipt of an answer, after logging its rows (none without a signer).
    fn receipt(
        &self,
        s: &mut Session,
        input: &Activations,
        out: &Activations,
    ) -> Option<WireReceipt> {
        let signer = self.receipts.as_ref()?;
        let d = self.hidden;
        let mut r = s.log.receipt(
            signer.model_key(),
            &s.blocks,
            (&input.rows, &out.rows),
            d,
            unix_now(),
        );
        s.log.push(&input.rows, &out.rows, d);
        if let Some(files) = &self.files
            && let Err(e) = files.append(&s.blocks, s.id, &input.rows)
        {
            warn!(target: "pedals::infer", error = %e, "cannot keep a receipt's rows on disk");
        }
        match signer.sign(&r) {
            Ok(sig) => {
                r.signature = sig;
                Some(r)
            }
            Err(e) => {
                warn!(target: "pedals::infer", error = %e, "cannot sign a receipt");
                None
            }
        }
    }

    /// A dishonest server's answer ([`SpanServer::with_lie_after`]).
    fn maybe_lie(&self, mut out: Activations, rows: u64) -> Activations {
        let lies = self
            .lie_after
            .is_some_and(|n| self.served.load(Ordering::Relaxed) + rows > n);
        if let Some(v) = out.rows.first_mut().filter(|_| lies) {
            *v = if *v > 0 { *v - 1 } else { *v + 1 };
        }
        out
    }

    /// The session's state, taken out of the table while it runs (a new one when the input
    /// starts the sequence), or the refusal to send.
    fn take_session(
        &self,
        l: &Loaded,
        key: (PeerId, u64),
        blocks: &Range<usize>,
        start: usize,
    ) -> Result<Session, Reply> {
        let mut map = self
            .sessions
            .lock()
            .map_err(|_| refused(Refusal::Full, "the session table is poisoned", None))?;
        if let Some(s) = map.remove(&key) {
            if s.blocks == *blocks && s.generation == l.generation {
                return Ok(s);
            }
            self.retire(s);
        }
        if start != 0 {
            return Err(refused(
                Refusal::Gap,
                "this server holds no such session (evicted, or it restarted): send the \
                 session's rows from position 0",
                Some(0),
            ));
        }
        if map.len() >= l.max_sessions {
            let idle = map
                .iter()
                .filter(|(_, s)| s.used.elapsed() >= EVICT_IDLE)
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| *k);
            match idle {
                Some(old) => {
                    if let Some(s) = map.remove(&old) {
                        self.retire(s);
                    }
                }
                None => {
                    return Err(refused(
                        Refusal::Full,
                        format!("all {} sessions are in use", l.max_sessions),
                        None,
                    ));
                }
            }
        }
        let rel = blocks.start - l.span.start..blocks.end - l.span.start;
        Ok(Session {
            cache: KvCache::for_blocks(rel),
            blocks: blocks.clone(),
            used: Instant::now(),
            log: RowLog::default(),
            id: rand::random(),
            generation: l.generation,
        })
    }
}

impl SpanService for SpanServer {
    fn call(&self, peer: PeerId, request: Vec<u8>) -> Vec<u8> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        self.handle(peer, &request)
    }
}

/// Decoding speed through the whole span (tokens per second, one token at a time after a
/// 4-token prefill) and the cache bytes of one session at the full context.
fn measure(model: &ExactModel) -> Result<(f64, usize), InferError> {
    let c = &model.config;
    let (prefill, steps) = (4.min(c.context), 16.min(c.context.saturating_sub(4)).max(1));
    let mut cache = KvCache::for_blocks(0..model.blocks.len());
    let row = |p: usize| -> Vec<i32> {
        (0..c.hidden)
            .map(|i| ((i * 7 + p * 13) % 255) as i32 - 127)
            .collect()
    };
    let first: Vec<i32> = (0..prefill).flat_map(row).collect();
    model.run_span(
        &mut cache,
        &Activations {
            start: 0,
            rows: first,
        },
    )?;
    let began = Instant::now();
    let mut done = 0;
    for p in prefill..(prefill + steps).min(c.context) {
        model.run_span(
            &mut cache,
            &Activations {
                start: p,
                rows: row(p),
            },
        )?;
        done += 1;
    }
    let secs = began.elapsed().as_secs_f64().max(1e-9);
    let per_position = cache.bytes() / cache.len().max(1);
    Ok((done as f64 / secs, per_position * c.context))
}
