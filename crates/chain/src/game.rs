//! The dispute game as one signing account plays it: the challenge (commit, then reveal), every
//! move of both sides, the clock, and the data the other side put on-chain (the worker's op-trace
//! leaves, row hashes and rows from its events, never from a transaction's calldata: a mover may be a
//! contract).

use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;
use pedals_core::JobId;

use pedals_store::Action;

use crate::market::TxOutcome;
use crate::{ChainError, DisputeGame, GameBase, Market};

/// Which of the router's games a dispute is played in: the MLP training game or the
/// fine-tuning game. Both share `GameBase`'s moves, clocks and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GameKind {
    /// `DisputeGame`: MLP training steps.
    #[default]
    Mlp,
    /// `LmDisputeGame`: language-model fine-tuning steps.
    Lm,
}

/// Whose move it is in a game, and which (the contract's `Phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No game is open for the job.
    None,
    /// Worker: commit the op trace.
    Commit,
    /// Challenger: name the disputed op.
    NameOp,
    /// Worker: reveal the output's row hashes.
    RevealRowHashes,
    /// Challenger: pick a row.
    PickRow,
    /// Worker: reveal the row.
    RevealRow,
    /// Challenger: name the element.
    NameElement,
    /// Challenger: pick the op trace's chunk to open (the fine-tuning game).
    PickChunk,
    /// Worker: reveal the picked chunk's leaves (the fine-tuning game).
    RevealChunk,
    /// Challenger: pick the chunk of the disputed output's rows to open (an output of more
    /// than `2^ROW_CHUNK_LOG` rows).
    PickRowChunk,
    /// Worker: reveal the picked chunk's row hashes.
    RevealRowChunk,
}

/// log2 of the rows in a chunk of a disputed output (`GameBase.ROW_CHUNK_LOG`): an output of
/// more rows reveals its row hashes in two moves, the nodes of its aligned chunks of this many
/// rows and then the picked chunk's hashes.
pub const ROW_CHUNK_LOG: usize = 10;

impl Phase {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Commit,
            2 => Self::NameOp,
            3 => Self::RevealRowHashes,
            4 => Self::PickRow,
            5 => Self::RevealRow,
            6 => Self::NameElement,
            7 => Self::PickChunk,
            8 => Self::RevealChunk,
            9 => Self::PickRowChunk,
            10 => Self::RevealRowChunk,
            _ => Self::None,
        }
    }
}

/// A game's state as `gameOf` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GameView {
    /// The phase.
    pub phase: Phase,
    /// Whether the worker is to move.
    pub worker_to_move: bool,
    /// Seconds left on the mover's clock.
    pub remaining: u64,
    /// The disputed op's leaf (0 before the challenger named one).
    pub leaf: u64,
    /// The picked row.
    pub row: u64,
}

impl Market {
    /// The MLP dispute game binding.
    pub fn dispute_game(&self) -> DisputeGame::DisputeGameInstance<DynProvider> {
        DisputeGame::new(self.deployment().dispute_game, self.provider().clone())
    }

    /// This client, playing the shared moves (`game_of`, the row moves, `timeout_game` and
    /// their events) in the game of `kind`.
    pub fn playing(&self, kind: GameKind) -> Self {
        let mut m = self.clone();
        m.game = kind;
        m
    }

    /// This client, reading logs (a game's events, a validator's scan, the web app's index) by
    /// `blocks` blocks a query (at least 1; the default is [`crate::SCAN_RANGE`]): for a
    /// provider that serves fewer.
    pub fn with_log_range(mut self, blocks: u64) -> Self {
        self.log_range = blocks.max(1);
        self
    }

    /// Blocks per log query ([`Self::with_log_range`]).
    pub fn log_range(&self) -> u64 {
        self.log_range
    }

    /// The played game's `GameBase` part: its functions and events have the same selectors in
    /// every game, so the MLP game's binding calls them at either address.
    fn base_game(&self) -> DisputeGame::DisputeGameInstance<DynProvider> {
        let d = self.deployment();
        let address = match self.game {
            GameKind::Mlp => d.dispute_game,
            GameKind::Lm => d.lm_dispute_game,
        };
        DisputeGame::new(address, self.provider().clone())
    }

    /// Commits to a challenge of `step` of `job_id` claiming `claimed` for `h_(step+1)`; the
    /// reveal ([`Self::challenge`]) must come in a later block. The commitment binds the sender,
    /// so nobody can copy the reveal from the mempool.
    pub async fn commit_challenge(
        &self,
        job_id: JobId,
        step: u64,
        claimed: B256,
        salt: B256,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let commitment = alloy::primitives::keccak256(alloy::sol_types::SolValue::abi_encode(&(
            self.sender(),
            job_id,
            U256::from(step),
            claimed,
            salt,
        )));
        let contract = self.job_market();
        let call = contract.commitChallenge(job_id, commitment);
        self.transact(job_id, Action::Challenge, call).await
    }

    /// Opens the committed challenge, posting `bond`.
    pub async fn challenge(
        &self,
        job_id: JobId,
        step: u64,
        claimed: B256,
        salt: B256,
        bond: U256,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let contract = self.job_market();
        let call = contract
            .challenge(job_id, U256::from(step), claimed, salt)
            .value(bond);
        self.transact(job_id, Action::Reveal, call).await
    }

    /// The game of `job_id`.
    pub async fn game_of(&self, job_id: JobId) -> Result<GameView, ChainError> {
        let job_id = job_id.to_u256();
        let g = self
            .base_game()
            .gameOf(job_id)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(GameView {
            phase: Phase::from_u8(g.phase),
            worker_to_move: g.workerToMove,
            remaining: g.remaining.saturating_to(),
            leaf: g.leaf.saturating_to(),
            row: g.row.saturating_to(),
        })
    }

    /// Worker, move 1.
    pub async fn commit_op_trace(
        &self,
        job_id: JobId,
        spec: DisputeGame::Spec,
        commitment: DisputeGame::Commitment,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        self.transact(
            job_id,
            Action::DisputeMove,
            self.dispute_game().commitOpTrace(job_id, spec, commitment),
        )
        .await
    }

    /// Worker, move 2.
    pub async fn reveal_row_hashes(
        &self,
        job_id: JobId,
        row_hashes: Vec<B256>,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        self.transact(
            job_id,
            Action::DisputeMove,
            self.base_game().revealRowHashes(job_id, row_hashes),
        )
        .await
    }

    /// Worker: the row hashes of the chunk the challenger picked, with the siblings above the
    /// chunk's node.
    pub async fn reveal_row_chunk(
        &self,
        job_id: JobId,
        row_hashes: Vec<B256>,
        proof: Vec<B256>,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let game = self.base_game();
        let call = game.revealRowChunk(job_id, row_hashes, proof);
        self.transact(job_id, Action::DisputeMove, call).await
    }

    /// Challenger: the chunk of the disputed output's rows to open.
    pub async fn pick_row_chunk(&self, job_id: JobId, chunk: u64) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let game = self.base_game();
        let call = game.pickRowChunk(job_id, U256::from(chunk));
        self.transact(job_id, Action::DisputeMove, call).await
    }

    /// Worker, move 3.
    pub async fn reveal_row(
        &self,
        job_id: JobId,
        opening: GameBase::RowOpening,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        self.transact(
            job_id,
            Action::DisputeMove,
            self.base_game().revealRow(job_id, opening),
        )
        .await
    }

    /// Challenger, move 1.
    pub async fn dispute_op(
        &self,
        job_id: JobId,
        spec: DisputeGame::Spec,
        leaf: u64,
        output: DisputeGame::LeafOpening,
        inputs: Vec<DisputeGame::LeafOpening>,
        entries: Vec<B256>,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let contract = self.dispute_game();
        let call = contract.disputeOp(job_id, spec, U256::from(leaf), output, inputs, entries);
        self.transact(job_id, Action::DisputeMove, call).await
    }

    /// Challenger, move 2.
    pub async fn pick_row(&self, job_id: JobId, row: u64) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        self.transact(
            job_id,
            Action::DisputeMove,
            self.base_game().pickRow(job_id, U256::from(row)),
        )
        .await
    }

    /// Challenger, move 3.
    pub async fn dispute_element(
        &self,
        job_id: JobId,
        spec: DisputeGame::Spec,
        element: DisputeGame::ElementMove,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        self.transact(
            job_id,
            Action::DisputeMove,
            self.dispute_game().disputeElement(job_id, spec, element),
        )
        .await
    }

    /// Decides against the side whose clock ran out.
    pub async fn timeout_game(&self, job_id: JobId) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        self.transact(
            job_id,
            Action::DisputeMove,
            self.base_game().timeout(job_id),
        )
        .await
    }

    /// The op-trace leaves the worker committed in the open game of `job_id`.
    pub async fn op_trace_leaves(&self, job_id: JobId) -> Result<Option<Vec<B256>>, ChainError> {
        let job_id = job_id.to_u256();
        let game = self.dispute_game();
        let event = self
            .last_job_event(game.OpTraceCommitted_filter(), job_id)
            .await?;
        Ok(event.map(|e| e.leaves))
    }

    /// The row hashes the worker revealed in the open game of `job_id` (or its chunks' nodes),
    /// from its `RowHashesRevealed` event: the mover may be a contract, so the transaction's
    /// calldata need not be this call's.
    pub async fn revealed_row_hashes(
        &self,
        job_id: JobId,
    ) -> Result<Option<Vec<B256>>, ChainError> {
        let game = self.base_game();
        let event = self
            .last_job_event(game.RowHashesRevealed_filter(), job_id.to_u256())
            .await?;
        Ok(event.map(|e| e.rowHashes))
    }

    /// The row hashes of the chunk the worker revealed in the open game of `job_id`, from its
    /// `RowChunkRevealed` event.
    pub async fn revealed_row_chunk(&self, job_id: JobId) -> Result<Option<Vec<B256>>, ChainError> {
        let game = self.base_game();
        let event = self
            .last_job_event(game.RowChunkRevealed_filter(), job_id.to_u256())
            .await?;
        Ok(event.map(|e| e.rowHashes))
    }

    /// The row the worker revealed in the open game of `job_id` (its packed bytes), from its
    /// `RowRevealed` event.
    pub async fn revealed_row(&self, job_id: JobId) -> Result<Option<Bytes>, ChainError> {
        let game = self.base_game();
        let event = self
            .last_job_event(game.RowRevealed_filter(), job_id.to_u256())
            .await?;
        Ok(event.map(|e| e.values))
    }

    /// The `GameDecided` events of `job_id`: (worker lost, by timeout) per decided game.
    pub async fn games_decided(&self, job_id: JobId) -> Result<Vec<(bool, bool)>, ChainError> {
        let job_id = job_id.to_u256();
        let game = self.base_game();
        let events = self.job_events(game.GameDecided_filter(), job_id).await?;
        Ok(events
            .into_iter()
            .map(|(e, _)| (e.workerLost, e.byTimeout))
            .collect())
    }

    /// The newest event `event` of job `job_id` (its first indexed topic), read from the head
    /// backwards by [`Market::with_log_range`] blocks: what a player reads during a game is recent,
    /// and a provider refuses a log query over too many blocks, so none spans the chain's
    /// history however old the deployment. Callers read an event the game's phase says was
    /// emitted; one that never was walks every range back to the deployment block.
    pub(crate) async fn last_job_event<E: SolEvent>(
        &self,
        event: alloy::contract::Event<&DynProvider, E>,
        job_id: U256,
    ) -> Result<Option<E>, ChainError> {
        let floor = self.deployment().deployment_block;
        let mut to = self.provider().get_block_number().await?;
        let mut event = event.topic1(job_id);
        loop {
            let from = to.saturating_sub(self.log_range - 1).max(floor);
            event = event.from_block(from).to_block(to);
            let found = event.query().await.map_err(ChainError::from_contract)?;
            if let Some((e, _)) = found.into_iter().last() {
                return Ok(Some(e));
            }
            if from <= floor {
                return Ok(None);
            }
            to = from - 1;
        }
    }

    /// The events `event` of job `job_id` (its first indexed topic), oldest first.
    pub(crate) async fn job_events<E: SolEvent>(
        &self,
        event: alloy::contract::Event<&DynProvider, E>,
        job_id: U256,
    ) -> Result<Vec<(E, Log)>, ChainError> {
        event
            .topic1(job_id)
            .from_block(self.deployment().deployment_block)
            .query()
            .await
            .map_err(ChainError::from_contract)
    }
}
