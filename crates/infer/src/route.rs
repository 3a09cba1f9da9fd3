//! Who serves which blocks, and the chain with the least expected time per token.

use std::{
    collections::HashMap,
    ops::Range,
    time::{Duration, Instant},
};

use alloy_primitives::U256;
use pedals_p2p::{PeerId, SpanAnnouncement};

use crate::InferError;

/// A server that failed is left out of routes this long.
pub const FAIL_COOLDOWN: Duration = Duration::from_secs(60);
/// The round trip assumed for a server not yet pinged.
const UNKNOWN_RTT: Duration = Duration::from_millis(50);

/// A span server as it announced itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    /// Its peer.
    pub peer: PeerId,
    /// The blocks it serves.
    pub blocks: Range<usize>,
    /// Its decoding speed through the whole span, tokens per second.
    pub tokens_per_second: f64,
    /// Its price per token, wei.
    pub wei_per_token: U256,
    /// Sessions it would take.
    pub free_sessions: u32,
    /// The account its vouchers pay (none: free).
    pub payee: Option<alloy_primitives::Address>,
    /// When its announcement arrived.
    pub seen: Instant,
}

/// One server of a chain and the blocks it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The server.
    pub peer: PeerId,
    /// The blocks it runs for this chain (within its span).
    pub blocks: Range<usize>,
    /// Its price per row, wei.
    pub wei_per_token: U256,
    /// The account its vouchers pay (none: free).
    pub payee: Option<alloy_primitives::Address>,
}

/// The servers of one model known to a client.
#[derive(Debug, Clone)]
pub struct Directory {
    model: String,
    blocks: usize,
    stale_after: Duration,
    servers: HashMap<PeerId, ServerInfo>,
    failed: HashMap<PeerId, Instant>,
    banned: std::collections::HashSet<PeerId>,
    max_price: U256,
}

impl Directory {
    /// An empty directory for `model` (its CID) of `blocks` blocks; announcements older than
    /// `stale_after` are forgotten.
    pub fn new(model: String, blocks: usize, stale_after: Duration) -> Self {
        Self {
            model,
            blocks,
            stale_after,
            servers: HashMap::new(),
            failed: HashMap::new(),
            banned: Default::default(),
            max_price: U256::ZERO,
        }
    }

    /// The model's number of blocks.
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// Takes an announcement in (one of another model, or of another shape, is ignored).
    pub fn observe(&mut self, peer: PeerId, a: &SpanAnnouncement) {
        if a.model_cid != self.model || a.blocks as usize != self.blocks {
            return;
        }
        self.servers.insert(
            peer,
            ServerInfo {
                peer,
                blocks: a.start as usize..a.end as usize,
                tokens_per_second: a.tokens_per_second,
                wei_per_token: a.wei_per_token,
                free_sessions: a.free_sessions,
                payee: a.payee,
                seen: Instant::now(),
            },
        );
    }

    /// Leaves `peer` out of routes for [`FAIL_COOLDOWN`].
    pub fn mark_failed(&mut self, peer: PeerId) {
        self.failed.insert(peer, Instant::now());
    }

    /// Routes through servers that charge at most `wei_per_token` (servers that charge are
    /// left out until this is set: a client without a way to pay uses free servers only).
    pub fn set_price_cap(&mut self, wei_per_token: U256) {
        self.max_price = wei_per_token;
    }

    /// Leaves `peer` out of routes for good: it was caught answering what its blocks do not
    /// compute.
    pub fn ban(&mut self, peer: PeerId) {
        self.banned.insert(peer);
    }

    /// The servers that can be routed through now.
    pub fn live(&self) -> Vec<&ServerInfo> {
        let mut v: Vec<&ServerInfo> = self
            .servers
            .values()
            .filter(|s| s.seen.elapsed() < self.stale_after && !self.banned.contains(&s.peer))
            .filter(|s| s.payee.is_none() || s.wei_per_token <= self.max_price)
            .filter(|s| {
                self.failed
                    .get(&s.peer)
                    .is_none_or(|at| at.elapsed() >= FAIL_COOLDOWN)
            })
            .collect();
        v.sort_by_key(|s| s.peer);
        v
    }

    /// The chain over `range` with the least expected time per token: a hop costs its round
    /// trip plus its share of the server's measured time per token. Servers with no free
    /// session are used only when nothing else covers their blocks.
    pub fn route(
        &self,
        range: Range<usize>,
        rtt: &HashMap<PeerId, Duration>,
    ) -> Result<Vec<Hop>, InferError> {
        let live = self.live();
        for full_ok in [false, true] {
            let usable: Vec<&ServerInfo> = live
                .iter()
                .copied()
                .filter(|s| full_ok || s.free_sessions > 0)
                .collect();
            if let Some(hops) = best_chain(&usable, range.clone(), rtt) {
                return Ok(hops);
            }
        }
        let missing = self.missing(&live, range);
        Err(InferError::NoRoute {
            model: self.model.clone(),
            missing,
            known: live.len(),
        })
    }

    fn missing(&self, live: &[&ServerInfo], range: Range<usize>) -> String {
        let covered = |b: usize| live.iter().any(|s| s.blocks.contains(&b));
        let mut out: Vec<String> = Vec::new();
        let mut b = range.start;
        while b < range.end {
            if covered(b) {
                b += 1;
                continue;
            }
            let from = b;
            while b < range.end && !covered(b) {
                b += 1;
            }
            out.push(format!("{from}..{b}"));
        }
        out.join(", ")
    }
}

/// How a block boundary is reached: the cost so far and the hop (from which boundary).
type Reached = (f64, Option<(usize, Hop)>);

fn best_chain(
    servers: &[&ServerInfo],
    range: Range<usize>,
    rtt: &HashMap<PeerId, Duration>,
) -> Option<Vec<Hop>> {
    let n = range.end - range.start;
    // best[i]: the cheapest way to reach block range.start + i, and the hop that got there.
    let mut best: Vec<Option<Reached>> = vec![None; n + 1];
    best[0] = Some((0.0, None));
    for i in 0..n {
        let Some((base, _)) = best[i].clone() else {
            continue;
        };
        let at = range.start + i;
        for s in servers.iter().filter(|s| s.blocks.contains(&at)) {
            let per_block = 1.0 / (s.tokens_per_second.max(1e-6) * s.blocks.len() as f64);
            let trip = rtt
                .get(&s.peer)
                .copied()
                .unwrap_or(UNKNOWN_RTT)
                .as_secs_f64();
            for end in at + 1..=s.blocks.end.min(range.end) {
                let cost = base + trip + per_block * (end - at) as f64;
                let j = end - range.start;
                if best[j].as_ref().is_none_or(|(c, _)| cost < *c) {
                    let hop = Hop {
                        peer: s.peer,
                        blocks: at..end,
                        wei_per_token: s.wei_per_token,
                        payee: s.payee,
                    };
                    best[j] = Some((cost, Some((i, hop))));
                }
            }
        }
    }
    let mut hops = Vec::new();
    let mut j = n;
    while j > 0 {
        let (_, back) = best[j].clone()?;
        let (i, hop) = back?;
        hops.push(hop);
        j = i;
    }
    hops.reverse();
    Some(hops)
}
