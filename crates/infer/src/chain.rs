//! A client's session through a chain of span servers, with failover: a server that fails,
//! refuses, or answers with malformed activations is replaced for its blocks by the next best
//! chain, which is sent the session's prefix so that generation goes on with the same tokens.

use std::{
    collections::HashMap,
    ops::Range,
    sync::{Arc, Mutex},
    time::Duration,
};

use pedals_lm::{Activations, exact::ops::ACT_MAX};
use pedals_p2p::{Client, PeerId};
use tracing::{info, warn};

use alloy_primitives::U256;

use crate::{
    InferError,
    check::{Checked, SpotCheck},
    pay::{Tab, VoucherSigner, WireVoucher},
    receipt::{Disputer, Evidence, ReceiptVerifier, RowLog, WireReceipt},
    route::{Directory, Hop},
    wire::{self, Refusal, Reply, Request},
};

/// The default [`Chain::answer_timeout`]: generous for a long prefill on a slow machine.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a failover waits for a replacement to announce itself when none is known.
const FAILOVER_WAIT: Duration = Duration::from_secs(10);
/// How many times one request may fail over before it gives up.
const MAX_FAILOVERS: usize = 8;

/// What a chain needs: the network, the directory of servers, the model's CID and width, and
/// what pays the servers that charge.
#[derive(Clone)]
pub struct Chain {
    /// The network node.
    pub net: Client,
    /// The servers known.
    pub directory: Arc<Mutex<Directory>>,
    /// The model's CID.
    pub model: String,
    /// Its blocks.
    pub blocks: usize,
    /// Its hidden width.
    pub hidden: usize,
    /// Signs vouchers for servers that charge (none: only free servers can be used).
    pub payer: Option<Arc<dyn VoucherSigner>>,
    /// Re-executes a sample of the servers' answers (none: answers are trusted).
    pub checker: Option<SpotCheck>,
    /// How long a server may take to answer one request before it is replaced (a server that
    /// accepts requests and never answers would otherwise hold the stream for the network's
    /// whole request timeout).
    pub answer_timeout: Duration,
    /// Checks the servers' receipts (none: receipts are not asked for). With it, an answer
    /// without a receipt that matches the rows this client holds is refused like a lost server.
    pub receipts: Option<Arc<dyn ReceiptVerifier>>,
    /// Takes a contradicted receipt to the dispute game (none: a liar is only banned).
    pub disputer: Option<Arc<dyn Disputer>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("model", &self.model)
            .field("payer", &self.payer.as_ref().map(|p| p.account()))
            .finish_non_exhaustive()
    }
}

struct HopState {
    hop: Hop,
    /// Every row this server was sent, from position 0 (`log.inputs`: what a replacement is
    /// sent), and the hashes of its rows both ways, for its receipts.
    log: RowLog,
    /// What the session owes the server.
    tab: Tab,
    /// Whether the server already asked for the session's rows again.
    resent: bool,
}

impl HopState {
    fn new(hop: Hop) -> Self {
        Self {
            hop,
            log: RowLog::default(),
            tab: Tab::default(),
            resent: false,
        }
    }
}

/// One sequence's state along the chain.
pub struct Session {
    id: u64,
    hops: Vec<HopState>,
    /// Servers replaced during this session, with why.
    pub failovers: Vec<(PeerId, String)>,
    /// Answers re-executed by the spot check.
    pub checks: u64,
}

impl Session {
    /// The chain it runs through now.
    pub fn chain(&self) -> Vec<Hop> {
        self.hops.iter().map(|h| h.hop.clone()).collect()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// The round trips measured so far.
    async fn rtts(&self) -> HashMap<PeerId, Duration> {
        let peers = self.net.peers().await.unwrap_or_default();
        peers
            .into_iter()
            .filter_map(|p| p.rtt.map(|r| (p.peer, r)))
            .collect()
    }

    /// The best chain over `range` now, or, while some blocks have no server, waits (checking
    /// every 200 ms) up to `wait` for one to announce them.
    pub async fn route(&self, range: Range<usize>, wait: Duration) -> Result<Vec<Hop>, InferError> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let rtt = self.rtts().await;
            let routed = self.directory.lock().map_or_else(
                |_| Err(InferError::Protocol("the directory is poisoned".into())),
                |d| d.route(range.clone(), &rtt),
            );
            match routed {
                Err(InferError::NoRoute { .. }) if tokio::time::Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    /// Starts a session over a chain covering every block.
    pub async fn session(&self, wait: Duration) -> Result<Session, InferError> {
        let hops = self.route(0..self.blocks, wait).await?;
        info!(target: "pedals::infer", chain = ?hops.iter().map(|h| (h.peer.to_string(), h.blocks.clone())).collect::<Vec<_>>(), "routed");
        Ok(Session {
            id: rand::random(),
            hops: hops.into_iter().map(HopState::new).collect(),
            failovers: Vec::new(),
            checks: 0,
        })
    }

    /// Runs `input` through every block of the session's chain and returns the last span's
    /// output.
    pub async fn run(
        &self,
        s: &mut Session,
        input: Activations,
    ) -> Result<Activations, InferError> {
        let d = self.hidden;
        let want = input.start;
        let mut cur = input;
        let mut i = 0;
        let mut failures = 0;
        while i < s.hops.len() {
            let have = s.hops[i].log.len();
            if cur.start < have {
                let skip = (have - cur.start) * d;
                cur = Activations {
                    start: have,
                    rows: cur.rows[skip.min(cur.rows.len())..].to_vec(),
                };
            }
            let hop = s.hops[i].hop.clone();
            let called = self
                .call(s.id, &hop, &s.hops[i].tab, &cur)
                .await
                .and_then(|(out, r)| Ok((self.check_receipt(&s.hops[i], &cur, &out, r)?, out)));
            let called = match called {
                Ok((Some((r, who)), out)) => {
                    self.check_stake(who).await.map(|()| (Some((r, who)), out))
                }
                other => other,
            };
            let answer = match called {
                Ok((receipt, out)) => match self
                    .checker
                    .as_ref()
                    .map(|c| c.check(&hop, &s.hops[i].log.inputs, &cur, &out))
                {
                    Some(Checked::Lie(why)) => {
                        s.checks += 1;
                        self.dispute(&s.hops[i], &cur, receipt);
                        Err(Failure::Lied(why))
                    }
                    Some(Checked::Equal) => {
                        s.checks += 1;
                        Ok(out)
                    }
                    _ => Ok(out),
                },
                Err(e) => Err(e),
            };
            match answer {
                Ok(out) => {
                    s.hops[i].log.push(&cur.rows, &out.rows, d);
                    s.hops[i].tab.add(&out, (cur.rows.len() / d) as u64);
                    cur = out;
                    i += 1;
                    continue;
                }
                Err(Failure::Resend(from))
                    if from <= have && failures < MAX_FAILOVERS && !s.hops[i].resent =>
                {
                    // The server lost (part of) the session: send it again from `from`, once
                    // (a server that keeps asking would be paid for the prefix every time).
                    failures += 1;
                    let h = &mut s.hops[i];
                    h.resent = true;
                    let mut rows = h.log.inputs[from * d..].to_vec();
                    rows.extend_from_slice(&cur.rows);
                    h.log.truncate(from, d);
                    cur = Activations { start: from, rows };
                }
                Err(failure) => {
                    failures += 1;
                    // A server that answered a refusal is up; waiting for another to appear
                    // helps only when one went away.
                    let wait = match failure {
                        Failure::Refused(_) => Duration::ZERO,
                        _ => FAILOVER_WAIT,
                    };
                    let reason = failure.to_string();
                    warn!(target: "pedals::infer", peer = %hop.peer, blocks = ?hop.blocks, %reason, "span server failed: replacing it");
                    if let Ok(mut dir) = self.directory.lock() {
                        match failure {
                            Failure::Lied(_) => dir.ban(hop.peer),
                            _ => dir.mark_failed(hop.peer),
                        }
                    }
                    s.failovers.push((hop.peer, reason.clone()));
                    let exhausted = || InferError::Exhausted {
                        blocks: format!("{:?}", hop.blocks),
                        reasons: s
                            .failovers
                            .iter()
                            .map(|(p, r)| format!("{p}: {r}"))
                            .collect::<Vec<_>>()
                            .join("; "),
                    };
                    if failures > MAX_FAILOVERS {
                        return Err(exhausted());
                    }
                    let replacement = match self.route(hop.blocks.clone(), wait).await {
                        Ok(r) => r,
                        Err(InferError::NoRoute { .. }) => return Err(exhausted()),
                        Err(e) => return Err(e),
                    };
                    let mut rows = s.hops[i].log.inputs.clone();
                    rows.extend_from_slice(&cur.rows);
                    cur = Activations { start: 0, rows };
                    let fresh = replacement.into_iter().map(HopState::new);
                    let old: Vec<HopState> = s.hops.splice(i..=i, fresh).collect();
                    // The replaced server is told the session is over (and, if it charges,
                    // given its last voucher), in the background.
                    for h in old {
                        let (chain, id) = (self.clone(), s.id);
                        tokio::spawn(async move { chain.close_hop(id, &h).await });
                    }
                }
            }
        }
        // After a replay the last output holds the prefix too: keep the requested rows.
        if cur.start < want {
            let skip = (want - cur.start) * d;
            cur = Activations {
                start: want,
                rows: cur.rows[skip.min(cur.rows.len())..].to_vec(),
            };
        }
        Ok(cur)
    }

    /// Ends the session on every server of its chain, with the last voucher for those that
    /// charge (best effort).
    pub async fn close(&self, s: Session) {
        for h in &s.hops {
            self.close_hop(s.id, h).await;
        }
    }

    async fn close_hop(&self, session: u64, h: &HopState) {
        let voucher = self.voucher(session, &h.hop, &h.tab, 0).ok().flatten();
        let req = wire::encode(&Request::Close { session, voucher }, None);
        let _ = self.net.span_call(h.hop.peer, req).await;
    }

    /// The voucher for everything `hop` will have computed in `session` after `rows` more
    /// rows (prepaid), for the outputs received so far, if it charges.
    fn voucher(
        &self,
        session: u64,
        hop: &Hop,
        tab: &Tab,
        rows: u64,
    ) -> Result<Option<WireVoucher>, Failure> {
        let Some(payee) = hop.payee.filter(|_| hop.wei_per_token > U256::ZERO) else {
            return Ok(None);
        };
        let payer = self.payer.as_ref().ok_or_else(|| {
            Failure::Other(format!(
                "the server charges {} wei per token and this client has no account to pay                  with (give the gateway --keystore and a deposit)",
                hop.wei_per_token
            ))
        })?;
        let amount = tab.owed_after(hop.wei_per_token, rows);
        let signature = payer
            .sign(payee, session, amount, tab.outputs)
            .map_err(Failure::Other)?;
        Ok(Some(WireVoucher {
            amount,
            outputs: tab.outputs,
            signature: signature.into(),
        }))
    }

    /// The receipt of `hop`'s answer `out` to `input`, checked against the rows this client
    /// holds, with its signer (none when receipts are not asked for).
    fn check_receipt(
        &self,
        h: &HopState,
        input: &Activations,
        out: &Activations,
        receipt: Option<WireReceipt>,
    ) -> Result<Option<(WireReceipt, alloy_primitives::Address)>, Failure> {
        let Some(v) = &self.receipts else {
            return Ok(None);
        };
        let bad = |why: &str| Failure::Other(format!("its receipt {why}"));
        let r = receipt.ok_or_else(|| bad("is missing (this client asks every server for one)"))?;
        let now = pedals_p2p::unix_now();
        if r.issued_at.abs_diff(now) > crate::receipt::MAX_CLOCK_SKEW {
            return Err(bad(&format!(
                "is dated {} s from this client's clock: the server's clock is wrong",
                r.issued_at.abs_diff(now)
            )));
        }
        let want = h.log.receipt(
            v.model_key(),
            &h.hop.blocks,
            (&input.rows, &out.rows),
            self.hidden,
            r.issued_at,
        );
        let signed = WireReceipt {
            signature: r.signature.clone(),
            ..want
        };
        if signed != r {
            return Err(bad("is not of the rows sent and returned"));
        }
        let signer = v
            .signer(&r)
            .ok_or_else(|| bad("has a signature the game refuses"))?;
        Ok(Some((r, signer)))
    }

    /// Refuses an answer whose receipt's signer has nothing a dispute could slash.
    async fn check_stake(&self, server: alloy_primitives::Address) -> Result<(), Failure> {
        match &self.receipts {
            Some(v) => v
                .staked(server)
                .await
                .map_err(|why| Failure::Other(format!("its receipt's signer {server} {why}"))),
            None => Ok(()),
        }
    }

    /// Hands a contradicted receipt to the disputer, if there is one.
    fn dispute(
        &self,
        h: &HopState,
        input: &Activations,
        receipt: Option<(WireReceipt, alloy_primitives::Address)>,
    ) {
        let (Some(d), Some((receipt, server))) = (&self.disputer, receipt) else {
            return;
        };
        let mut rows = h.log.inputs.clone();
        rows.extend_from_slice(&input.rows);
        d.dispute(Evidence {
            peer: h.hop.peer,
            server,
            blocks: h.hop.blocks.clone(),
            input: rows,
            receipt,
        });
    }

    async fn call(
        &self,
        session: u64,
        hop: &Hop,
        tab: &Tab,
        input: &Activations,
    ) -> Result<(Activations, Option<WireReceipt>), Failure> {
        let req = Request::Forward {
            session,
            model: self.model.clone(),
            start: hop.blocks.start as u32,
            end: hop.blocks.end as u32,
            voucher: self.voucher(
                session,
                hop,
                tab,
                (input.rows.len() / self.hidden.max(1)) as u64,
            )?,
        };
        let call = self
            .net
            .span_call(hop.peer, wire::encode(&req, Some(input)));
        let bytes = tokio::time::timeout(self.answer_timeout, call)
            .await
            .map_err(|_| Failure::Other(format!("no answer within {:?}", self.answer_timeout)))?
            .map_err(|e| Failure::Other(e.to_string()))?;
        let (reply, out) =
            wire::decode::<Reply>(&bytes).map_err(|e| Failure::Other(e.to_string()))?;
        match (reply, out) {
            (Reply::Output { receipt, .. }, Some(out)) => {
                let whole = out.start == input.start && out.rows.len() == input.rows.len();
                if !whole || out.rows.iter().any(|&v| i64::from(v).abs() > ACT_MAX) {
                    return Err(Failure::Other(format!(
                        "malformed activations: {} values from position {} for {} from {}",
                        out.rows.len(),
                        out.start,
                        input.rows.len(),
                        input.start
                    )));
                }
                Ok((out, receipt.map(|r| *r)))
            }
            (
                Reply::Refused {
                    code: Refusal::Gap,
                    resend_from: Some(from),
                    ..
                },
                _,
            ) => Err(Failure::Resend(from as usize)),
            (Reply::Refused { code, reason, .. }, _) => {
                Err(Failure::Refused(format!("refused ({code:?}): {reason}")))
            }
            (other, _) => Err(Failure::Other(format!("unexpected reply {other:?}"))),
        }
    }
}

enum Failure {
    Resend(usize),
    Refused(String),
    Lied(String),
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Resend(p) => write!(f, "asked to resend from position {p}"),
            Self::Lied(s) => write!(f, "caught lying: {s}"),
            Self::Refused(s) | Self::Other(s) => f.write_str(s),
        }
    }
}
