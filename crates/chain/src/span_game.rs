//! Split inference's disputes (`SpanDisputeGame`, docs/split-inference.md "Disputes"): the
//! receipt a span server signs with each answer, and every move of a dispute of one. The moves
//! are sent as they are (no journal as a job's are): each is guarded by the game's phase, so a
//! move sent twice is refused, not played twice.

use alloy::{
    primitives::{Address, B256, Bytes, Signature, U256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
    sol_types::{Eip712Domain, SolStruct, SolValue, eip712_domain},
};

use crate::game::{GameView, Phase};
use crate::market::{TxOutcome, send, send_receipt};
use crate::payments::{digest_signer, sign_digest};
use crate::span::{LmSpec, SpanDisputeGame};
use crate::{ChainError, Market};

alloy::sol! {
    /// A span server's receipt, as `SpanDisputeGame.RECEIPT_TYPEHASH` defines it: for the model
    /// `model` (`model_key`), its blocks `start..end` turned the `positions` input rows whose
    /// row root is `input` into the output rows whose row root is `output`; it signed this at
    /// `issuedAt` (Unix seconds), and it can be disputed for the game's `receiptWindow` after.
    #[derive(Debug, PartialEq, Eq)]
    struct SpanReceipt {
        bytes32 model;
        uint32 start;
        uint32 end;
        uint32 positions;
        bytes32 input;
        bytes32 output;
        uint64 issuedAt;
    }
}

/// The EIP-712 domain of the `SpanDisputeGame` at `contract` on chain `chain_id`.
pub fn receipt_domain(chain_id: u64, contract: Address) -> Eip712Domain {
    eip712_domain! {
        name: "Pedals SpanDisputeGame",
        version: "1",
        chain_id: chain_id,
        verifying_contract: contract,
    }
}

/// A receipt's `model`: `keccak256(abi.encode(arch, modelRoot))`, the model's architecture and
/// the state hash of its tensors (`pedals_lm::dispute::model_state`).
pub fn model_key(arch: &LmSpec::Arch, model_root: B256) -> B256 {
    alloy::primitives::keccak256((arch.clone(), model_root).abi_encode_params())
}

impl SpanReceipt {
    /// The digest the server signs.
    pub fn digest(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }

    /// Signs it as `server`.
    pub fn sign(
        &self,
        domain: &Eip712Domain,
        server: &PrivateKeySigner,
    ) -> Result<Signature, ChainError> {
        sign_digest(&self.digest(domain), server)
    }

    /// The account that signed `signature` over it, refusing a high-`s` signature as the
    /// contract's ECDSA does.
    pub fn signer(&self, domain: &Eip712Domain, signature: &Signature) -> Option<Address> {
        digest_signer(&self.digest(domain), signature)
    }

    fn to_abi(&self) -> SpanDisputeGame::Receipt {
        SpanDisputeGame::Receipt {
            model: self.model,
            start: self.start,
            end: self.end,
            positions: self.positions,
            input: self.input,
            output: self.output,
            issuedAt: self.issuedAt,
        }
    }
}

/// How a decided span dispute paid out (`SpanDisputeSettled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanSettlement {
    /// The disputed server.
    pub server: Address,
    /// Whether the server lost.
    pub server_lost: bool,
    /// What was slashed from its stake, in wei.
    pub slashed: U256,
    /// What the winner is owed, in wei.
    pub paid: U256,
}

fn id_u256(id: u64) -> U256 {
    U256::from(id)
}

impl Market {
    /// Split inference's dispute game binding.
    pub fn span_dispute_game(&self) -> SpanDisputeGame::SpanDisputeGameInstance<DynProvider> {
        SpanDisputeGame::new(self.deployment().span_dispute_game, self.provider().clone())
    }

    /// The EIP-712 domain of this deployment's span receipts.
    pub fn receipt_domain(&self) -> Eip712Domain {
        receipt_domain(
            self.deployment().chain_id,
            self.deployment().span_dispute_game,
        )
    }

    /// The bond a challenger posts to open a span dispute.
    pub async fn span_dispute_bond(&self) -> Result<U256, ChainError> {
        self.span_dispute_game()
            .bond()
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// Opens a dispute of `receipt`, signed by its server, posting the game's bond; returns
    /// the dispute's id.
    pub async fn open_span_dispute(
        &self,
        arch: LmSpec::Arch,
        model_root: B256,
        receipt: &SpanReceipt,
        signature: &Signature,
    ) -> Result<(u64, TxOutcome), ChainError> {
        let game = self.span_dispute_game();
        let bond = self.span_dispute_bond().await?;
        let sig: Bytes = signature.as_bytes().to_vec().into();
        let call = game
            .open(arch, model_root, receipt.to_abi(), sig)
            .value(bond);
        let r = send_receipt(call).await?;
        let id = r
            .inner
            .logs()
            .iter()
            .find_map(|l| {
                l.log_decode::<SpanDisputeGame::SpanDisputeOpened>()
                    .ok()
                    .map(|e| e.inner.data.id)
            })
            .ok_or_else(|| ChainError::Decode("open emitted no SpanDisputeOpened".into()))?;
        Ok((id.saturating_to(), TxOutcome::from_receipt(&r)?))
    }

    /// The phase of span dispute `id`, whose move it is and its time left.
    pub async fn span_game_of(&self, id: u64) -> Result<GameView, ChainError> {
        let g = self
            .span_dispute_game()
            .gameOf(id_u256(id))
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

    /// Server, move 1: every leaf of its span's op trace.
    pub async fn span_commit_trace(
        &self,
        id: u64,
        leaves: Vec<B256>,
    ) -> Result<TxOutcome, ChainError> {
        send(self.span_dispute_game().commitTrace(id_u256(id), leaves)).await
    }

    /// Challenger, move 1: the disputed op's output and inputs.
    #[allow(clippy::too_many_arguments)]
    pub async fn span_dispute_op(
        &self,
        id: u64,
        arch: LmSpec::Arch,
        model_root: B256,
        leaf: u64,
        output: SpanDisputeGame::LeafOpening,
        inputs: Vec<SpanDisputeGame::LeafOpening>,
        model_entries: Vec<B256>,
    ) -> Result<TxOutcome, ChainError> {
        let game = self.span_dispute_game();
        let call = game.disputeOp(
            id_u256(id),
            arch,
            model_root,
            U256::from(leaf),
            output,
            inputs,
            model_entries,
        );
        send(call).await
    }

    /// Server, move 2: the disputed output's row hashes.
    pub async fn span_reveal_row_hashes(
        &self,
        id: u64,
        hashes: Vec<B256>,
    ) -> Result<TxOutcome, ChainError> {
        send(
            self.span_dispute_game()
                .revealRowHashes(id_u256(id), hashes),
        )
        .await
    }

    /// Challenger, move 2: the row to open.
    pub async fn span_pick_row(&self, id: u64, row: u64) -> Result<TxOutcome, ChainError> {
        send(
            self.span_dispute_game()
                .pickRow(id_u256(id), U256::from(row)),
        )
        .await
    }

    /// Challenger: the chunk of the disputed output's rows to open (an output of more than
    /// `2^ROW_CHUNK_LOG` rows).
    pub async fn span_pick_row_chunk(&self, id: u64, chunk: u64) -> Result<TxOutcome, ChainError> {
        let call = self.span_dispute_game();
        send(call.pickRowChunk(id_u256(id), U256::from(chunk))).await
    }

    /// Server: the picked chunk's row hashes, with the siblings above its node.
    pub async fn span_reveal_row_chunk(
        &self,
        id: u64,
        hashes: Vec<B256>,
        proof: Vec<B256>,
    ) -> Result<TxOutcome, ChainError> {
        let call = self.span_dispute_game();
        send(call.revealRowChunk(id_u256(id), hashes, proof)).await
    }

    /// Server, move 3: the picked row.
    pub async fn span_reveal_row(
        &self,
        id: u64,
        opening: crate::span::GameBase::RowOpening,
    ) -> Result<TxOutcome, ChainError> {
        send(self.span_dispute_game().revealRow(id_u256(id), opening)).await
    }

    /// Challenger, move 3: the element, with its input rows.
    pub async fn span_dispute_element(
        &self,
        id: u64,
        arch: LmSpec::Arch,
        model_root: B256,
        element: SpanDisputeGame::ElementMove,
    ) -> Result<TxOutcome, ChainError> {
        let game = self.span_dispute_game();
        send(game.disputeElement(id_u256(id), arch, model_root, element)).await
    }

    /// Decides span dispute `id` against the side whose clock ran out.
    pub async fn span_timeout(&self, id: u64) -> Result<TxOutcome, ChainError> {
        send(self.span_dispute_game().timeout(id_u256(id))).await
    }

    /// What the game owes `account` (won bonds, rewards).
    pub async fn span_owed(&self, account: Address) -> Result<U256, ChainError> {
        self.span_dispute_game()
            .owed(account)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// Takes what the game owes the sender.
    pub async fn span_withdraw(&self) -> Result<TxOutcome, ChainError> {
        send(self.span_dispute_game().withdraw()).await
    }

    /// The ids of the span disputes opened against `server`, oldest first.
    pub async fn span_disputes_against(&self, server: Address) -> Result<Vec<u64>, ChainError> {
        let from = self.deployment().deployment_block;
        Ok(self.span_disputes_against_since(server, from).await?.0)
    }

    /// The ids of the span disputes opened against `server` from block `from` on, oldest
    /// first, and the block to ask from next time (a daemon's cursor: each block is read
    /// once).
    pub async fn span_disputes_against_since(
        &self,
        server: Address,
        from: u64,
    ) -> Result<(Vec<u64>, u64), ChainError> {
        let latest = self
            .provider()
            .get_block_number()
            .await
            .map_err(ChainError::from_rpc)?;
        if latest < from {
            return Ok((Vec::new(), from));
        }
        let game = self.span_dispute_game();
        let events = game
            .SpanDisputeOpened_filter()
            .topic2(server.into_word())
            .from_block(from)
            .to_block(latest)
            .query()
            .await
            .map_err(ChainError::from_contract)?;
        let ids = events
            .into_iter()
            .map(|(e, _)| e.id.saturating_to())
            .collect();
        Ok((ids, latest + 1))
    }

    /// The receipt disputed in span dispute `id`, with its server.
    pub async fn span_dispute_receipt(
        &self,
        id: u64,
    ) -> Result<Option<(Address, SpanReceipt)>, ChainError> {
        let game = self.span_dispute_game();
        let event = self
            .last_job_event(game.SpanDisputeOpened_filter(), id_u256(id))
            .await?;
        Ok(event.map(|e| {
            let r = e.receipt;
            let receipt = SpanReceipt {
                model: r.model,
                start: r.start,
                end: r.end,
                positions: r.positions,
                input: r.input,
                output: r.output,
                issuedAt: r.issuedAt,
            };
            (e.server, receipt)
        }))
    }

    /// The leaves the server committed in span dispute `id`.
    pub async fn span_trace_leaves(&self, id: u64) -> Result<Option<Vec<B256>>, ChainError> {
        let game = self.span_dispute_game();
        let event = self
            .last_job_event(game.SpanTraceCommitted_filter(), id_u256(id))
            .await?;
        Ok(event.map(|e| e.leaves))
    }

    /// The row hashes the server revealed in span dispute `id`, from its `RowHashesRevealed`
    /// event (not the transaction's calldata: the server may move through a contract).
    pub async fn span_revealed_row_hashes(&self, id: u64) -> Result<Option<Vec<B256>>, ChainError> {
        let game = self.span_dispute_game();
        let event = self
            .last_job_event(game.RowHashesRevealed_filter(), id_u256(id))
            .await?;
        Ok(event.map(|e| e.rowHashes))
    }

    /// The row hashes of the chunk the server revealed in span dispute `id`, from its
    /// `RowChunkRevealed` event.
    pub async fn span_revealed_row_chunk(&self, id: u64) -> Result<Option<Vec<B256>>, ChainError> {
        let game = self.span_dispute_game();
        let event = self
            .last_job_event(game.RowChunkRevealed_filter(), id_u256(id))
            .await?;
        Ok(event.map(|e| e.rowHashes))
    }

    /// The row the server revealed in span dispute `id` (its packed bytes), from its
    /// `RowRevealed` event.
    pub async fn span_revealed_row(&self, id: u64) -> Result<Option<Bytes>, ChainError> {
        let game = self.span_dispute_game();
        let event = self
            .last_job_event(game.RowRevealed_filter(), id_u256(id))
            .await?;
        Ok(event.map(|e| e.values))
    }

    /// How span dispute `id` paid out, once decided.
    pub async fn span_settlement(&self, id: u64) -> Result<Option<SpanSettlement>, ChainError> {
        let game = self.span_dispute_game();
        let event = self
            .last_job_event(game.SpanDisputeSettled_filter(), id_u256(id))
            .await?;
        Ok(event.map(|e| SpanSettlement {
            server: e.server,
            server_lost: e.serverLost,
            slashed: e.slashed,
            paid: e.paid,
        }))
    }
}
