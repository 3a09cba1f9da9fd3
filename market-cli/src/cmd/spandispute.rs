//! Split inference's disputes in the daemons (docs/split-inference.md, "Disputes"): a staked
//! span server signs its receipts with its account and defends them when disputed; a gateway
//! checks every server's receipt and takes one that its spot check contradicts to
//! `SpanDisputeGame`, then plays the dispute to the end and withdraws what it won.

use std::{
    collections::{HashMap, HashSet},
    ops::Range,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::{
    primitives::{Address, B256, Bytes, Signature, U256},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
};
use pedals_chain::{Market, Phase, SpanReceipt, model_key};
use pedals_dispute::game::Turn;
use pedals_dispute::span::{
    SpanContext, challenge_span, defend_span, open_span_dispute, span_arch,
};
use pedals_infer::{
    Disputer, Evidence, ReceiptSigner, ReceiptVerifier, SpanServer, StakeCheck, WireReceipt,
};
use pedals_lm::ExactModel;
use tracing::{info, warn};

/// Reads the whole served model (from the node's store) when a dispute needs it.
pub(crate) type ModelLoader = Arc<dyn Fn() -> eyre::Result<ExactModel> + Send + Sync>;

/// How often a server looks for disputes of its receipts, and a challenger at its dispute.
const POLL: Duration = Duration::from_secs(1);
/// How long a server's stake, read from the chain, is trusted.
const STAKE_TTL: Duration = Duration::from_secs(30);

/// The receipt key of `model` and the chain's receipt domain; signs as `signer` (a server)
/// or only checks (a gateway).
pub(crate) struct ChainReceipts {
    key: B256,
    domain: Eip712Domain,
    signer: Option<PrivateKeySigner>,
    market: Market,
    /// The least stake a dispute must be able to reach (a gateway's check).
    min_stake: U256,
    stakes: Mutex<HashMap<Address, Checked>>,
}

/// A server's stake check and when it was made.
type Checked = (Result<(), String>, std::time::Instant);

impl ChainReceipts {
    /// Hashes every tensor of `model` (the whole model) once.
    pub(crate) fn new(
        market: &Market,
        model: &ExactModel,
        signer: Option<PrivateKeySigner>,
    ) -> eyre::Result<Self> {
        let root = pedals_lm::dispute::model_state(model)?.state_hash()?;
        Ok(Self {
            key: model_key(&span_arch(model), root),
            domain: market.receipt_domain(),
            signer,
            market: market.clone(),
            min_stake: U256::ZERO,
            stakes: Mutex::default(),
        })
    }

    /// Refuses receipts whose signer has less than `min_stake` that a dispute can reach.
    pub(crate) fn with_min_stake(mut self, min_stake: U256) -> Self {
        self.min_stake = min_stake;
        self
    }

    async fn reachable(&self, server: Address) -> Result<(), String> {
        let a = self
            .market
            .stake_of(server)
            .await
            .map_err(|e| format!("has a stake this gateway cannot read: {e}"))?;
        let reachable = U256::from(a.staked) - U256::from(a.locked) + U256::from(a.unbonding);
        if reachable.is_zero() || reachable < self.min_stake {
            return Err(format!(
                "has {} ETH that a dispute could slash, less than the {} ETH this gateway asks \
                 for (the span game's slash)",
                super::eth(reachable),
                super::eth(self.min_stake)
            ));
        }
        Ok(())
    }
}

fn to_chain(r: &WireReceipt) -> SpanReceipt {
    SpanReceipt {
        model: r.model,
        start: r.start,
        end: r.end,
        positions: r.positions,
        input: r.input,
        output: r.output,
        issuedAt: r.issued_at,
    }
}

impl ReceiptSigner for ChainReceipts {
    fn model_key(&self) -> B256 {
        self.key
    }

    fn sign(&self, receipt: &WireReceipt) -> Result<Bytes, String> {
        let signer = self.signer.as_ref().ok_or("no account to sign with")?;
        to_chain(receipt)
            .sign(&self.domain, signer)
            .map(|s| s.as_bytes().to_vec().into())
            .map_err(|e| e.to_string())
    }
}

impl ReceiptVerifier for ChainReceipts {
    fn model_key(&self) -> B256 {
        self.key
    }

    fn signer(&self, receipt: &WireReceipt) -> Option<Address> {
        let sig = Signature::try_from(receipt.signature.as_ref()).ok()?;
        to_chain(receipt).signer(&self.domain, &sig)
    }

    fn staked(&self, server: Address) -> StakeCheck<'_> {
        Box::pin(async move {
            let cached = self.stakes.lock().ok().and_then(|c| {
                c.get(&server)
                    .filter(|(_, at)| at.elapsed() < STAKE_TTL)
                    .map(|(r, _)| r.clone())
            });
            if let Some(r) = cached {
                return r;
            }
            let r = self.reachable(server).await;
            if let Ok(mut c) = self.stakes.lock() {
                c.insert(server, (r.clone(), std::time::Instant::now()));
            }
            r
        })
    }
}

/// Disputes contradicted receipts as the gateway's account, each in a task of its own.
pub(crate) struct ChainDisputer {
    market: Market,
    model: Arc<ExactModel>,
    rt: tokio::runtime::Handle,
    seen: Mutex<HashSet<B256>>,
}

impl ChainDisputer {
    pub(crate) fn new(market: Market, model: Arc<ExactModel>) -> Self {
        Self {
            market,
            model,
            rt: tokio::runtime::Handle::current(),
            seen: Mutex::default(),
        }
    }
}

impl Disputer for ChainDisputer {
    fn dispute(&self, evidence: Evidence) {
        let digest = to_chain(&evidence.receipt).digest(&self.market.receipt_domain());
        if !self.seen.lock().is_ok_and(|mut s| s.insert(digest)) {
            return;
        }
        let (market, model) = (self.market.clone(), self.model.clone());
        self.rt.spawn(async move {
            if let Err(e) = challenge(market, model, evidence).await {
                warn!(target: "pedals::infer", error = %e, "the span dispute failed");
            }
        });
    }
}

/// Opens the dispute of `e`'s receipt and plays it to the end: every move of the challenger,
/// and the timeout once the server's clock runs out; then withdraws what the game owes.
async fn challenge(market: Market, model: Arc<ExactModel>, e: Evidence) -> eyre::Result<()> {
    let (blocks, input) = (e.blocks.clone(), e.input.clone());
    let ctx =
        tokio::task::spawn_blocking(move || SpanContext::new(&model, blocks, &input)).await??;
    let receipt = to_chain(&e.receipt);
    eyre::ensure!(
        ctx.receipt(receipt.issuedAt).output != receipt.output,
        "re-execution agrees with the receipt of {}: nothing to dispute",
        e.server
    );
    let sig = Signature::try_from(e.receipt.signature.as_ref())?;
    let id = open_span_dispute(&market, &ctx, &receipt, &sig).await?;
    println!(
        "disputing the receipt of span server {} (peer {}, blocks {:?}): dispute {id}",
        e.server, e.peer, e.blocks
    );
    loop {
        match challenge_span(&market, id, &ctx).await {
            Ok(Turn::NoGame) => break,
            Ok(Turn::Moved(..)) => continue,
            Ok(Turn::Waiting) => {
                let view = market.span_game_of(id).await?;
                if view.phase != Phase::None && view.worker_to_move && view.remaining == 0 {
                    let _ = market.span_timeout(id).await;
                }
            }
            Err(err) => {
                warn!(target: "pedals::infer", dispute = id, error = %err, "a span dispute move failed; retrying")
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let settled = market.span_settlement(id).await?;
    let owed = market.span_owed(market.sender()).await?;
    if let Some(s) = settled {
        println!(
            "span dispute {id} decided: the server {}; slashed {} ETH",
            if s.server_lost { "lost" } else { "won" },
            super::eth(s.slashed)
        );
    }
    if !owed.is_zero() {
        market.span_withdraw().await?;
        info!(target: "pedals::infer", dispute = id, owed = %owed, "withdrew what the span game owed");
    }
    Ok(())
}

/// Defends the receipts `server` signed as `market`'s account: finds the disputes opened
/// against it, rebuilds each receipt's trace from the rows the server kept, plays the
/// server's moves, and withdraws the bonds of the disputes it wins. A receipt this server's own re-execution does not give (a lie) cannot be
/// defended; it is left to the clock. Runs until aborted.
pub(crate) async fn defend_receipts(market: Market, server: Arc<SpanServer>, model: ModelLoader) {
    let me = market.sender();
    // Every block is read once: the disputes found stay pending until they are over.
    let mut cursor = market.deployment().deployment_block;
    let mut pending: std::collections::BTreeSet<u64> = Default::default();
    let mut contexts: HashMap<u64, SpanContext> = HashMap::new();
    loop {
        tokio::time::sleep(POLL).await;
        match market.span_disputes_against_since(me, cursor).await {
            Ok((ids, next)) => {
                pending.extend(ids);
                cursor = next;
            }
            Err(e) => warn!(target: "pedals::infer", error = %e, "cannot read span disputes"),
        }
        let mut done = Vec::new();
        for id in pending.iter().copied() {
            if let std::collections::hash_map::Entry::Vacant(slot) = contexts.entry(id) {
                match defense(&market, &server, &model, id).await {
                    Ok(Some(ctx)) => {
                        slot.insert(ctx);
                    }
                    Ok(None) => {
                        done.push(id);
                        continue;
                    }
                    Err(e) => {
                        warn!(target: "pedals::infer", dispute = id, error = %e, "cannot prepare a defense");
                        continue;
                    }
                }
            }
            match defend_span(&market, id, &contexts[&id]).await {
                Ok(Turn::NoGame) => {
                    done.push(id);
                    contexts.remove(&id);
                    info!(target: "pedals::infer", dispute = id, "span dispute over");
                    // A won dispute owes this server the challenger's bond: take it.
                    if market.span_owed(me).await.is_ok_and(|o| !o.is_zero()) {
                        match market.span_withdraw().await {
                            Ok(_) => {
                                info!(target: "pedals::infer", dispute = id, "withdrew the bond the span game owed")
                            }
                            Err(e) => {
                                warn!(target: "pedals::infer", error = %e, "cannot withdraw what the span game owes")
                            }
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(target: "pedals::infer", dispute = id, error = %e, "a defense move failed; retrying")
                }
            }
        }
        for id in done {
            pending.remove(&id);
        }
    }
}

/// The trace that defends dispute `id`, or none when it is over or cannot be defended.
async fn defense(
    market: &Market,
    server: &Arc<SpanServer>,
    model: &ModelLoader,
    id: u64,
) -> eyre::Result<Option<SpanContext>> {
    if market.span_game_of(id).await?.phase == Phase::None {
        return Ok(None);
    }
    let Some((_, receipt)) = market.span_dispute_receipt(id).await? else {
        return Ok(None);
    };
    let blocks: Range<usize> = receipt.start as usize..receipt.end as usize;
    let Some(rows) = server.prefix(&blocks, receipt.positions as usize, receipt.input) else {
        warn!(target: "pedals::infer", dispute = id, "no record of the rows this receipt commits to: it cannot be defended");
        return Ok(None);
    };
    let model = model.clone();
    let ctx = tokio::task::spawn_blocking(move || -> eyre::Result<SpanContext> {
        Ok(SpanContext::new(&model()?, blocks, &rows)?)
    })
    .await??;
    if ctx.receipt(receipt.issuedAt) != receipt {
        warn!(target: "pedals::infer", dispute = id, "this server's re-execution does not give the disputed receipt: it cannot be defended");
        return Ok(None);
    }
    info!(target: "pedals::infer", dispute = id, "defending a span receipt");
    Ok(Some(ctx))
}
