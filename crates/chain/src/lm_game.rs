//! The fine-tuning game's own calls (`LmDisputeGame`, docs/protocol.md §9): the spec's
//! admission, the worker's commit (the op trace's chunk nodes, with each batch slot's data
//! row), the challenger's pick of a chunk and the worker's reveal of it, the challenger's
//! naming of an op and of an element. The moves it shares with the MLP game (row hashes, row, pick,
//! clock) are played through [`Market::playing`] with [`crate::GameKind::Lm`].

use alloy::primitives::{B256, U256};
use alloy::providers::DynProvider;
use pedals_core::JobId;
use pedals_store::Action;

use crate::lm::{LmDisputeGame, LmSpec};
use crate::market::{TxOutcome, send};
use crate::{ChainError, Market};

/// What the worker committed in the open fine-tuning game of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmCommit {
    /// The op trace's chunk nodes (`pedals_core::chunks`): the roots of its runs of
    /// `2^height` leaves (`h_i`, every op's output root, `h_{i+1}`).
    pub nodes: Vec<B256>,
    /// Each batch slot's token count, from the data rows it proved.
    pub lens: Vec<u64>,
}

impl Market {
    /// The fine-tuning game binding.
    pub fn lm_dispute_game(&self) -> LmDisputeGame::LmDisputeGameInstance<DynProvider> {
        LmDisputeGame::new(self.deployment().lm_dispute_game, self.provider().clone())
    }

    /// The hash the fine-tuning game gives `spec` of `steps` steps, and whether it admitted
    /// it already; no transaction. The game refuses a spec it could not adjudicate
    /// (`Inadmissible` names the field).
    pub async fn finetune_admission(
        &self,
        spec: &LmSpec::Spec,
        steps: u64,
    ) -> Result<(B256, bool), ChainError> {
        let game = self.lm_dispute_game();
        let steps = U256::from(steps);
        let hash = game
            .admitSpec(spec.clone(), steps)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        let admitted = game
            .admittedSteps(hash)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok((hash, admitted == steps))
    }

    /// Admits a fine-tuning spec unless the game did already; returns its hash, which the
    /// job must be posted with, and the admission's transaction when one was sent.
    pub async fn admit_finetune_spec(
        &self,
        spec: LmSpec::Spec,
        steps: u64,
    ) -> Result<(B256, Option<TxOutcome>), ChainError> {
        let (hash, admitted) = self.finetune_admission(&spec, steps).await?;
        if admitted {
            return Ok((hash, None));
        }
        let tx = send(self.lm_dispute_game().admitSpec(spec, U256::from(steps))).await?;
        Ok((hash, Some(tx)))
    }

    /// Worker, move 1: the op trace of the disputed step and each slot's data row.
    pub async fn lm_commit_op_trace(
        &self,
        job_id: JobId,
        spec: LmSpec::Spec,
        commitment: LmDisputeGame::Commitment,
        data: LmDisputeGame::DataRows,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let game = self.lm_dispute_game();
        let call = game.commitOpTrace(job_id, spec, commitment, data);
        self.transact(job_id, Action::DisputeMove, call).await
    }

    /// Challenger, move 1: the chunk of the op trace the worker must reveal.
    pub async fn lm_pick_chunk(&self, job_id: JobId, chunk: u64) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let game = self.lm_dispute_game();
        let call = game.pickChunk(job_id, U256::from(chunk));
        self.transact(job_id, Action::DisputeMove, call).await
    }

    /// Worker, move 2: the picked chunk's leaves and the siblings above its node.
    pub async fn lm_reveal_chunk(
        &self,
        job_id: JobId,
        leaves: Vec<B256>,
        proof: Vec<B256>,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let game = self.lm_dispute_game();
        let call = game.revealChunk(job_id, leaves, proof);
        self.transact(job_id, Action::DisputeMove, call).await
    }

    /// The height of the chunk nodes of an op trace of `leaves` leaves, as the game computes it.
    pub async fn lm_chunk_height(&self, leaves: usize) -> Result<usize, ChainError> {
        let h = self
            .lm_dispute_game()
            .chunkHeight(U256::from(leaves))
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(h.saturating_to())
    }

    /// The chunk the challenger picked in the open fine-tuning game of `job_id`.
    pub async fn lm_picked_chunk(&self, job_id: JobId) -> Result<Option<u64>, ChainError> {
        let game = self.lm_dispute_game();
        let event = self
            .last_job_event(game.ChunkPicked_filter(), job_id.to_u256())
            .await?;
        Ok(event.map(|e| e.chunk.saturating_to()))
    }

    /// The chunk the worker revealed in the open fine-tuning game of `job_id`: its index and
    /// leaves.
    pub async fn lm_revealed_chunk(
        &self,
        job_id: JobId,
    ) -> Result<Option<(u64, Vec<B256>)>, ChainError> {
        let game = self.lm_dispute_game();
        let event = self
            .last_job_event(game.ChunkRevealed_filter(), job_id.to_u256())
            .await?;
        Ok(event.map(|e| (e.chunk.saturating_to(), e.leaves)))
    }

    /// Challenger, move 2: disputes op `leaf`, opening its output and inputs.
    #[allow(clippy::too_many_arguments)]
    pub async fn lm_dispute_op(
        &self,
        job_id: JobId,
        spec: LmSpec::Spec,
        lens: Vec<u64>,
        leaf: u64,
        output: LmDisputeGame::LeafOpening,
        inputs: Vec<LmDisputeGame::LeafOpening>,
        entries: LmDisputeGame::Entries,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let lens = lens.into_iter().map(U256::from).collect();
        let game = self.lm_dispute_game();
        let call = game.disputeOp(
            job_id,
            spec,
            lens,
            U256::from(leaf),
            output,
            inputs,
            entries,
        );
        self.transact(job_id, Action::DisputeMove, call).await
    }

    /// Challenger, move 4: disputes one element of the revealed row.
    pub async fn lm_dispute_element(
        &self,
        job_id: JobId,
        spec: LmSpec::Spec,
        element: LmDisputeGame::ElementMove,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let game = self.lm_dispute_game();
        let call = game.disputeElement(job_id, spec, element);
        self.transact(job_id, Action::DisputeMove, call).await
    }

    /// The op trace the worker committed in the open fine-tuning game of `job_id`, from its
    /// event.
    pub async fn lm_op_trace(&self, job_id: JobId) -> Result<Option<LmCommit>, ChainError> {
        let game = self.lm_dispute_game();
        let event = self
            .last_job_event(game.OpTraceCommitted_filter(), job_id.to_u256())
            .await?;
        Ok(event.map(|e| LmCommit {
            nodes: e.nodes,
            lens: e.lens.into_iter().map(|l| l.saturating_to()).collect(),
        }))
    }
}
