//! A dispute's moves, read from the dispute games' events and merged with the market's
//! (docs/web-app.md, "Disputes"): who moved, what each move narrowed the disagreement to, and
//! how the referee decided.

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEventInterface,
};
use pedals_chain::{DisputeGame::DisputeGameEvents as Mlp, Market, lm::LmDisputeGame};
use serde::Serialize;

use crate::{UiError, index::EventView};

/// One move of a dispute, or a market event around it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Move {
    /// The event's name.
    pub name: &'static str,
    /// `challenger`, `worker`, `referee` (the contract's decision) or `market`.
    pub side: &'static str,
    /// Its block and log index.
    pub block: u64,
    /// Its log's index in the block.
    pub log: u64,
    /// Its transaction.
    pub tx: B256,
    /// What it did, in words.
    pub detail: String,
}

/// The move an MLP or fine-tuning game event stands for, if it is one.
fn describe(
    mlp: Option<Mlp>,
    lm: Option<LmDisputeGame::LmDisputeGameEvents>,
) -> Option<(&'static str, &'static str, String)> {
    use LmDisputeGame::LmDisputeGameEvents as Lm;
    let decided = |lost: bool, timeout: bool, recomputed: alloy::primitives::I256, claimed| {
        let who = if lost {
            "the worker lost"
        } else {
            "the worker won"
        };
        if timeout {
            let late = if lost { "worker" } else { "challenger" };
            format!("{who}: the {late}'s clock ran out")
        } else {
            format!(
                "{who}: the contract recomputed the element as {recomputed}; the worker had \
                 claimed {claimed}"
            )
        }
    };
    let started = |step: U256, clock: U256| {
        format!("step {step} disputed; each side has {clock} s on its clock")
    };
    let op = |leaf: U256, kind: u8, rows: U256, cols: U256| {
        format!("the challenger disputes op {leaf} (kind {kind}, {rows} × {cols} output)")
    };
    if let Some(e) = mlp {
        return Some(match e {
            Mlp::GameStarted(e) => ("GameStarted", "challenger", started(e.step, e.clock)),
            Mlp::OpTraceCommitted(e) => (
                "OpTraceCommitted",
                "worker",
                format!("the worker commits the step's {} ops", e.leaves.len()),
            ),
            Mlp::OpDisputed(e) => (
                "OpDisputed",
                "challenger",
                op(e.leaf, e.kind, e.rows, e.cols),
            ),
            Mlp::RowHashesRevealed(e) => (
                "RowHashesRevealed",
                "worker",
                format!("the worker reveals the op's {} row hashes", e.rows),
            ),
            Mlp::RowPicked(e) => ("RowPicked", "challenger", format!("row {} picked", e.row)),
            Mlp::RowRevealed(e) => ("RowRevealed", "worker", format!("row {} revealed", e.row)),
            Mlp::GameDecided(e) => (
                "GameDecided",
                "referee",
                decided(e.workerLost, e.byTimeout, e.recomputed, e.claimed),
            ),
            _ => return None,
        });
    }
    Some(match lm? {
        Lm::GameStarted(e) => ("GameStarted", "challenger", started(e.step, e.clock)),
        Lm::OpTraceCommitted(e) => (
            "OpTraceCommitted",
            "worker",
            format!(
                "the worker commits the step's op trace in {} chunks",
                e.nodes.len()
            ),
        ),
        Lm::ChunkPicked(e) => (
            "ChunkPicked",
            "challenger",
            format!("chunk {} picked", e.chunk),
        ),
        Lm::ChunkRevealed(e) => (
            "ChunkRevealed",
            "worker",
            format!("chunk {}'s {} ops revealed", e.chunk, e.leaves.len()),
        ),
        Lm::OpDisputed(e) => (
            "OpDisputed",
            "challenger",
            op(e.leaf, e.kind, e.rows, e.cols),
        ),
        Lm::RowHashesRevealed(e) => (
            "RowHashesRevealed",
            "worker",
            format!("the worker reveals the op's {} row hashes", e.rows),
        ),
        Lm::RowPicked(e) => ("RowPicked", "challenger", format!("row {} picked", e.row)),
        Lm::RowRevealed(e) => ("RowRevealed", "worker", format!("row {} revealed", e.row)),
        Lm::GameDecided(e) => (
            "GameDecided",
            "referee",
            decided(e.workerLost, e.byTimeout, e.recomputed, e.claimed),
        ),
        _ => return None,
    })
}

/// Every move of the disputes of job `job`, with the market's own events about them
/// (`market_events`, from the index), in chain order.
pub async fn timeline(
    market: &Market,
    job: u64,
    market_events: &[EventView],
) -> Result<Vec<Move>, UiError> {
    let d = market.deployment();
    let games: Vec<Address> = [d.dispute_game, d.lm_dispute_game]
        .into_iter()
        .filter(|a| *a != Address::ZERO)
        .collect();
    let filter = Filter::new()
        .address(games)
        .topic1(B256::from(U256::from(job)))
        .from_block(d.deployment_block);
    let logs = market
        .provider()
        .get_logs(&filter)
        .await
        .map_err(UiError::rpc)?;
    let mut moves: Vec<Move> = logs
        .iter()
        .filter_map(|log| {
            let mlp = (log.address() == d.dispute_game)
                .then(|| Mlp::decode_log(&log.inner).ok().map(|e| e.data))
                .flatten();
            let lm = (log.address() == d.lm_dispute_game)
                .then(|| {
                    LmDisputeGame::LmDisputeGameEvents::decode_log(&log.inner)
                        .ok()
                        .map(|e| e.data)
                })
                .flatten();
            let (name, side, detail) = describe(mlp, lm)?;
            Some(Move {
                name,
                side,
                block: log.block_number?,
                log: log.log_index.unwrap_or_default(),
                tx: log.transaction_hash?,
                detail,
            })
        })
        .collect();
    moves.extend(
        market_events
            .iter()
            .filter(|e| matches!(e.name, "ChallengeOpened" | "DisputeResolved"))
            .map(|e| Move {
                name: e.name,
                side: "market",
                block: e.block,
                log: e.log,
                tx: e.tx,
                detail: e.detail.clone(),
            }),
    );
    moves.sort_by_key(|m| (m.block, m.log));
    Ok(moves)
}
