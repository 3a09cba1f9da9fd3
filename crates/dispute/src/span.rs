//! Both sides of split inference's dispute game (`SpanDisputeGame`, docs/split-inference.md
//! "Disputes"), as [`crate::lm`] plays the fine-tuning game: each call reads the dispute's
//! phase on-chain and makes the one move it calls for, from the player's own trace of the
//! span's forward pass, holding nothing between calls. The server's trace is the one its
//! receipt committed to; the challenger's is the honest one, re-executed from the same input.

use std::ops::Range;

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use pedals_chain::span::{GameBase, LmSpec, SpanDisputeGame};
use pedals_chain::{GameView, Market, Phase, SpanReceipt, TxOutcome, model_key};
use pedals_lm::ExactModel;
use pedals_lm::dispute::{OpTrace, ProgramOp, Source, StepInputs, input_rows, model_state};
use tracing::info;

use crate::DisputeError;
use crate::game::{Turn, packed};
use crate::lm::{entries, lm, proof, row_hashes};
use crate::rows::{self, first_difference};

/// Everything a player needs about a disputed span answer: the model's architecture and
/// commitment, the span's program over the session's input rows, and the player's own trace
/// of it.
#[derive(Clone)]
pub struct SpanContext {
    /// The model's architecture, as the game builds the program from it.
    pub arch: LmSpec::Arch,
    /// The state hash of the model's tensors.
    pub model_root: B256,
    /// The span's blocks.
    pub blocks: Range<usize>,
    /// What the span's trace is a function of.
    pub inputs: StepInputs,
    /// This player's trace.
    pub trace: OpTrace,
}

impl std::fmt::Debug for SpanContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanContext")
            .field("blocks", &self.blocks)
            .field("leaves", &self.trace.leaves.len())
            .finish_non_exhaustive()
    }
}

/// The architecture of `model` as the span game takes it.
pub fn span_arch(model: &ExactModel) -> LmSpec::Arch {
    let a = pedals_lm::finetune_job::Arch::of(&model.config);
    LmSpec::Arch {
        gpt2: a.family == pedals_lm::Family::Gpt2,
        vocab: a.vocab,
        hidden: a.hidden,
        layers: a.layers,
        heads: a.heads,
        kvHeads: a.kv_heads,
        headDim: a.head_dim,
        intermediate: a.intermediate,
        context: a.context,
        epsQ40: a.eps_q40,
        tied: a.tied,
        qkvBias: a.qkv_bias,
        outBias: a.out_bias,
        mlpBias: a.mlp_bias,
    }
}

impl SpanContext {
    /// The honest context of blocks `blocks` of `model` over a session's `input` rows (every
    /// position the span was sent, from 0).
    pub fn new(
        model: &ExactModel,
        blocks: Range<usize>,
        input: &[i32],
    ) -> Result<Self, DisputeError> {
        let inputs = StepInputs::span(model, blocks.clone(), input).map_err(lm)?;
        let trace = OpTrace::run(&inputs).map_err(lm)?;
        let model_root = model_state(model)
            .map_err(lm)?
            .state_hash()
            .map_err(|e| DisputeError::Job(e.to_string()))?;
        Ok(Self {
            arch: span_arch(model),
            model_root,
            blocks,
            inputs,
            trace,
        })
    }

    /// The receipt of this trace issued at `issued_at` (Unix seconds): what a server signs for
    /// the answer it gave.
    pub fn receipt(&self, issued_at: u64) -> SpanReceipt {
        let leaves = &self.trace.leaves;
        SpanReceipt {
            model: model_key(&self.arch, self.model_root),
            start: self.blocks.start as u32,
            end: self.blocks.end as u32,
            positions: self.inputs.program.input.map_or(0, |(rows, _)| rows) as u32,
            input: leaves[0],
            output: *leaves.last().expect("a span program has ops"),
            issuedAt: issued_at,
        }
    }

    /// The output tensor of leaf `leaf` and its op.
    fn output(&self, leaf: usize) -> Result<(&ProgramOp, &[i32]), DisputeError> {
        let op = self
            .inputs
            .program
            .op(leaf)
            .ok_or_else(|| DisputeError::Job(format!("no op at leaf {leaf}")))?;
        let t = self
            .trace
            .tensors
            .get(leaf - 1)
            .ok_or_else(|| DisputeError::Job(format!("leaf {leaf} holds no tensor")))?;
        Ok((op, t))
    }

    /// The row hashes of an input of an op.
    fn input_hashes(&self, source: Source, cols: usize) -> Vec<B256> {
        match source {
            Source::Leaf(0) => row_hashes(&self.inputs.input, cols),
            Source::Leaf(k) => row_hashes(&self.trace.tensors[k - 1], cols),
            Source::Model(m) => row_hashes(&self.inputs.model.tensors[m].data, cols),
            Source::State(_) | Source::Data(_) => Vec::new(),
        }
    }
}

/// Opens a dispute of `receipt` (signed by its server) as `market`'s account; returns its id.
pub async fn open_span_dispute(
    market: &Market,
    ctx: &SpanContext,
    receipt: &SpanReceipt,
    signature: &alloy::primitives::Signature,
) -> Result<u64, DisputeError> {
    let (id, tx) = market
        .open_span_dispute(ctx.arch.clone(), ctx.model_root, receipt, signature)
        .await?;
    info!(target: "pedals::dispute", dispute = id, gas = tx.gas_used, blocks = ?ctx.blocks, "opened a span dispute");
    Ok(id)
}

/// Signs this context's receipt, issued at `issued_at`, as `server` (for the trace it holds).
pub fn sign_receipt(
    market: &Market,
    ctx: &SpanContext,
    server: &PrivateKeySigner,
    issued_at: u64,
) -> Result<(SpanReceipt, alloy::primitives::Signature), DisputeError> {
    let receipt = ctx.receipt(issued_at);
    let sig = receipt.sign(&market.receipt_domain(), server)?;
    Ok((receipt, sig))
}

/// The server's side: commits every leaf of its trace, then row hashes and rows when asked.
pub async fn defend_span(
    market: &Market,
    id: u64,
    ctx: &SpanContext,
) -> Result<Turn, DisputeError> {
    let view = market.span_game_of(id).await?;
    if view.phase == Phase::None {
        return Ok(Turn::NoGame);
    }
    if !view.worker_to_move {
        return Ok(Turn::Waiting);
    }
    let outcome: (&'static str, TxOutcome) = match view.phase {
        Phase::Commit => (
            "commitTrace",
            market
                .span_commit_trace(id, ctx.trace.leaves.clone())
                .await?,
        ),
        Phase::RevealRowHashes => {
            let (op, t) = ctx.output(view.leaf as usize)?;
            let hashes = rows::revealed(&row_hashes(t, op.cols))?;
            (
                "revealRowHashes",
                market.span_reveal_row_hashes(id, hashes).await?,
            )
        }
        Phase::RevealRowChunk => {
            let (op, t) = ctx.output(view.leaf as usize)?;
            let (hashes, proof) = rows::chunk_opening(&row_hashes(t, op.cols), view.row as usize)?;
            (
                "revealRowChunk",
                market.span_reveal_row_chunk(id, hashes, proof).await?,
            )
        }
        Phase::RevealRow => {
            let (op, t) = ctx.output(view.leaf as usize)?;
            let r = view.row as usize;
            let opening = GameBase::RowOpening {
                row: packed(&t[r * op.cols..(r + 1) * op.cols]),
                proof: proof(&row_hashes(t, op.cols), r)?,
            };
            ("revealRow", market.span_reveal_row(id, opening).await?)
        }
        _ => return Ok(Turn::Waiting),
    };
    info!(target: "pedals::dispute", dispute = id, mv = outcome.0, gas = outcome.1.gas_used, "span server moved");
    Ok(Turn::Moved(outcome.0, outcome.1))
}

/// The challenger's side: names the first op whose output differs from its own trace, then
/// the first differing row and element.
pub async fn challenge_span(
    market: &Market,
    id: u64,
    ctx: &SpanContext,
) -> Result<Turn, DisputeError> {
    let view = market.span_game_of(id).await?;
    if view.phase == Phase::None {
        return Ok(Turn::NoGame);
    }
    if view.worker_to_move {
        return Ok(Turn::Waiting);
    }
    let outcome: (&'static str, TxOutcome) = match view.phase {
        Phase::NameOp => ("disputeOp", name_op(market, id, ctx).await?),
        Phase::PickRowChunk => {
            let theirs = market.span_revealed_row_hashes(id).await?.ok_or_else(|| {
                DisputeError::Job("the server's row chunk nodes are not on-chain".into())
            })?;
            let (op, t) = ctx.output(view.leaf as usize)?;
            let chunk = rows::pick_chunk(&theirs, &row_hashes(t, op.cols))?;
            let tx = market.span_pick_row_chunk(id, chunk as u64).await?;
            ("pickRowChunk", tx)
        }
        Phase::PickRow => {
            let (op, t) = ctx.output(view.leaf as usize)?;
            let ours = row_hashes(t, op.cols);
            let theirs = match rows::chunked(ours.len()) {
                true => market.span_revealed_row_chunk(id).await?,
                false => market.span_revealed_row_hashes(id).await?,
            }
            .ok_or_else(|| DisputeError::Job("the server's row hashes are not on-chain".into()))?;
            let row = rows::pick_row(&theirs, &ours, view.row as usize);
            ("pickRow", market.span_pick_row(id, row as u64).await?)
        }
        Phase::NameElement => (
            "disputeElement",
            name_element(market, id, ctx, &view).await?,
        ),
        _ => return Ok(Turn::Waiting),
    };
    info!(target: "pedals::dispute", dispute = id, mv = outcome.0, gas = outcome.1.gas_used, "span challenger moved");
    Ok(Turn::Moved(outcome.0, outcome.1))
}

fn opening(leaves: &[B256], k: usize) -> Result<SpanDisputeGame::LeafOpening, DisputeError> {
    Ok(SpanDisputeGame::LeafOpening {
        root: leaves[k],
        proof: proof(leaves, k)?,
    })
}

/// The first op whose committed output differs from this side's, with its inputs opened in
/// the server's trace (they agree with this side's up to that op).
async fn name_op(market: &Market, id: u64, ctx: &SpanContext) -> Result<TxOutcome, DisputeError> {
    let theirs = market
        .span_trace_leaves(id)
        .await?
        .ok_or_else(|| DisputeError::Job("the server's trace is not on-chain".into()))?;
    let ours = &ctx.trace.leaves;
    if theirs.len() != ours.len() || theirs[0] != ours[0] {
        return Err(DisputeError::Job(
            "the server's trace is of another program or input".into(),
        ));
    }
    let leaf = first_difference(&theirs, ours).ok_or_else(|| {
        DisputeError::Job("the server's trace is this side's: there is nothing to dispute".into())
    })?;
    let (op, _) = ctx.output(leaf)?;
    let inputs = op
        .inputs
        .iter()
        .map(|o| match o.source {
            Source::Leaf(k) => opening(&theirs, k),
            _ => Ok(SpanDisputeGame::LeafOpening {
                root: B256::ZERO,
                proof: Vec::new(),
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let reads_model = op
        .inputs
        .iter()
        .any(|o| matches!(o.source, Source::Model(_)));
    let model = if reads_model {
        entries(&ctx.inputs.model)?
    } else {
        Vec::new()
    };
    info!(target: "pedals::dispute", dispute = id, leaf, op = %op.name, "disputing the first span op that differs");
    Ok(market
        .span_dispute_op(
            id,
            ctx.arch.clone(),
            ctx.model_root,
            leaf as u64,
            opening(&theirs, leaf)?,
            inputs,
            model,
        )
        .await?)
}

/// The first element of the revealed row that differs, with its input rows opened.
async fn name_element(
    market: &Market,
    id: u64,
    ctx: &SpanContext,
    view: &GameView,
) -> Result<TxOutcome, DisputeError> {
    let revealed = market
        .span_revealed_row(id)
        .await?
        .ok_or_else(|| DisputeError::Job("the server's row is not on-chain".into()))?;
    let (leaf, r) = (view.leaf as usize, view.row as usize);
    let (op, t) = ctx.output(leaf)?;
    let theirs: Vec<i32> = revealed
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let col = first_difference(&theirs, &t[r * op.cols..(r + 1) * op.cols]).unwrap_or(0);
    let rows = ctx
        .inputs
        .element_rows(&ctx.trace.tensors, op, r, col)
        .ok_or_else(|| {
            DisputeError::Job(format!("element ({r}, {col}) of {} has no inputs", op.name))
        })?;
    let index = input_rows(op, &ctx.inputs.params, r, col, 0, &[]);
    let (mut opened, mut proofs) = (Vec::new(), Vec::new());
    for ((o, row), &i) in op.inputs.iter().zip(&rows).zip(&index) {
        opened.push(packed(row));
        proofs.push(proof(&ctx.input_hashes(o.source, o.cols), i)?);
    }
    info!(target: "pedals::dispute", dispute = id, leaf, row = r, col, "disputing a span element");
    let element = SpanDisputeGame::ElementMove {
        col: U256::from(col),
        row: revealed,
        inputRows: opened,
        inputProofs: proofs,
    };
    Ok(market
        .span_dispute_element(id, ctx.arch.clone(), ctx.model_root, element)
        .await?)
}
