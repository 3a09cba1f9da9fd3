//! Both sides of the dispute game (docs/protocol.md). Each player looks at the game's phase
//! on-chain and, when it is its turn, makes the one move that phase calls for, from its own op
//! trace of the disputed step. A player holds no state of its own between moves: after a
//! restart it reads the phase and carries on, and a move sent twice is refused by the contract's
//! phase guard, not played twice.

use pedals_core::JobId;
use std::sync::Arc;

use alloy::primitives::{B256, Bytes, U256};
use pedals_chain::{DisputeGame, GameBase, GameView, Market, Phase, TxOutcome};
use pedals_core::{MerkleProof, MerkleTree, TraceCommitment, hash_row};
use pedals_ml::dispute::{
    OpKind, OpTrace, Operand, Program, input_rows, mat_row, mat_row_hashes, program,
};
use pedals_ml::{Dataset, JobSpec, MlpState};
use tracing::info;

use crate::DisputeError;
use crate::rows::{self, first_difference};

/// Everything a player needs about the disputed step: the job, its data, the state before the
/// step, and the player's own op trace of it (the honest one for a challenger, the one it
/// committed to for a worker).
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The job's spec.
    pub spec: JobSpec,
    /// The job's dataset.
    pub dataset: Arc<Dataset>,
    /// The disputed step.
    pub step: u64,
    /// The state before the step (`h_step`).
    pub state: MlpState,
    /// This player's op trace of the step.
    pub trace: OpTrace,
    /// The step's program.
    pub program: Program,
}

impl StepContext {
    /// A context; builds the program of the spec's model.
    pub fn new(
        spec: JobSpec,
        dataset: Arc<Dataset>,
        step: u64,
        state: MlpState,
        trace: OpTrace,
    ) -> Result<Self, DisputeError> {
        let program = program(&spec.train.model)?;
        Ok(Self {
            spec,
            dataset,
            step,
            state,
            trace,
            program,
        })
    }
}

/// What a call to a player did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// It made a move (the transaction's facts).
    Moved(&'static str, TxOutcome),
    /// It is the other side's turn.
    Waiting,
    /// No game is open on the job.
    NoGame,
}

/// The spec's fields as the contract rebuilds its canonical bytes from them.
pub fn spec_args(spec: &JobSpec) -> Result<DisputeGame::Spec, DisputeError> {
    let d = spec.dispute.ok_or_else(|| {
        DisputeError::Job("the spec carries no dispute commitments: it cannot be disputed".into())
    })?;
    let m = &spec.train.model;
    let small = |v: usize, what: &str| {
        u32::try_from(v).map_err(|_| DisputeError::Job(format!("{what} {v} does not fit u32")))
    };
    Ok(DisputeGame::Spec {
        layers: m
            .layers
            .iter()
            .map(|&w| small(w, "a width"))
            .collect::<Result<_, _>>()?,
        batch: small(m.batch, "the batch")?,
        lrQ12: m.lr_q12 as u32,
        momentumQ12: m.momentum_q12 as u32,
        seed: spec.train.seed,
        checkpointEvery: spec.train.checkpoint_every,
        datasetCid: spec.dataset.clone(),
        modelCid: spec.model.clone(),
        samples: d.samples,
        dataRoot: d.data_root,
        initHash: d.init_hash,
    })
}

/// A row packed as the contract reads it (i32 little-endian).
pub fn packed(row: &[i32]) -> Bytes {
    row.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn unpack(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn siblings(p: &MerkleProof) -> Vec<B256> {
    p.siblings.clone()
}

/// The worker's side: commits its op trace, reveals row hashes and rows when asked.
pub async fn defend(
    market: &Market,
    job_id: JobId,
    ctx: &StepContext,
    job_trace: &TraceCommitment,
) -> Result<Turn, DisputeError> {
    let view = market.game_of(job_id).await?;
    if view.phase == Phase::None {
        return Ok(Turn::NoGame);
    }
    if !view.worker_to_move {
        return Ok(Turn::Waiting);
    }
    let spec = spec_args(&ctx.spec)?;
    let trace = &ctx.trace;
    let outcome = match view.phase {
        Phase::Commit => {
            let commitment = DisputeGame::Commitment {
                leaves: trace.leaves.clone(),
                stateInProof: siblings(&job_trace.proof(ctx.step)?),
                stateOutProof: siblings(&job_trace.proof(ctx.step + 1)?),
            };
            (
                "commitOpTrace",
                market.commit_op_trace(job_id, spec, commitment).await?,
            )
        }
        Phase::RevealRowHashes => {
            let hashes = rows::revealed(&mat_row_hashes(output_tensor(ctx, &view)?)?)?;
            (
                "revealRowHashes",
                market.reveal_row_hashes(job_id, hashes).await?,
            )
        }
        Phase::RevealRowChunk => {
            let all = mat_row_hashes(output_tensor(ctx, &view)?)?;
            let (hashes, proof) = rows::chunk_opening(&all, view.row as usize)?;
            (
                "revealRowChunk",
                market.reveal_row_chunk(job_id, hashes, proof).await?,
            )
        }
        Phase::RevealRow => {
            let t = output_tensor(ctx, &view)?;
            let row = view.row as usize;
            let tree = MerkleTree::new(&mat_row_hashes(t)?)?;
            let opening = GameBase::RowOpening {
                row: packed(mat_row(t, row)),
                proof: siblings(&tree.proof(row)?),
            };
            ("revealRow", market.reveal_row(job_id, opening).await?)
        }
        _ => return Ok(Turn::Waiting),
    };
    info!(target: "pedals::dispute", job = %job_id, step = ctx.step, mv = outcome.0, gas = outcome.1.gas_used, "worker moved");
    Ok(Turn::Moved(outcome.0, outcome.1))
}

fn output_tensor<'a>(
    ctx: &'a StepContext,
    view: &GameView,
) -> Result<&'a pedals_ml::exact::Mat, DisputeError> {
    ctx.trace
        .tensor(view.leaf as usize)
        .ok_or_else(|| DisputeError::Job(format!("leaf {} holds no tensor", view.leaf)))
}

/// The challenger's side: names the first op it disagrees with, the first differing row, then
/// the first differing element, from its own (honest) op trace.
pub async fn challenge(
    market: &Market,
    job_id: JobId,
    ctx: &StepContext,
) -> Result<Turn, DisputeError> {
    let view = market.game_of(job_id).await?;
    if view.phase == Phase::None {
        return Ok(Turn::NoGame);
    }
    if view.worker_to_move {
        return Ok(Turn::Waiting);
    }
    let spec = spec_args(&ctx.spec)?;
    let outcome = match view.phase {
        Phase::NameOp => ("disputeOp", name_op(market, job_id, ctx, spec).await?),
        Phase::PickRowChunk => {
            let theirs = market.revealed_row_hashes(job_id).await?.ok_or_else(|| {
                DisputeError::Job("the worker's row chunk nodes are not on-chain".into())
            })?;
            let chunk = rows::pick_chunk(&theirs, &mat_row_hashes(output_tensor(ctx, &view)?)?)?;
            (
                "pickRowChunk",
                market.pick_row_chunk(job_id, chunk as u64).await?,
            )
        }
        Phase::PickRow => {
            let ours = mat_row_hashes(output_tensor(ctx, &view)?)?;
            let theirs = match rows::chunked(ours.len()) {
                true => market.revealed_row_chunk(job_id).await?,
                false => market.revealed_row_hashes(job_id).await?,
            }
            .ok_or_else(|| DisputeError::Job("the worker's row hashes are not on-chain".into()))?;
            let row = rows::pick_row(&theirs, &ours, view.row as usize);
            ("pickRow", market.pick_row(job_id, row as u64).await?)
        }
        Phase::NameElement => (
            "disputeElement",
            name_element(market, job_id, ctx, &view, spec).await?,
        ),
        _ => return Ok(Turn::Waiting),
    };
    info!(target: "pedals::dispute", job = %job_id, step = ctx.step, mv = outcome.0, gas = outcome.1.gas_used, "challenger moved");
    Ok(Turn::Moved(outcome.0, outcome.1))
}

/// The first op whose output leaf differs from the worker's, and the move that disputes it.
async fn name_op(
    market: &Market,
    job_id: JobId,
    ctx: &StepContext,
    spec: DisputeGame::Spec,
) -> Result<TxOutcome, DisputeError> {
    let theirs = market
        .op_trace_leaves(job_id)
        .await?
        .ok_or_else(|| DisputeError::Job("the worker's op trace is not on-chain".into()))?;
    let ours = &ctx.trace.leaves;
    if theirs.len() != ours.len() {
        return Err(DisputeError::Job(
            "the worker's op trace has another length".into(),
        ));
    }
    let last = ours.len() - 1;
    // Leaf 0 is h_i, agreed; the state hash (last) differs if nothing before it does.
    let leaf = (1..last).find(|&k| theirs[k] != ours[k]).unwrap_or(last);
    let tree = MerkleTree::new(&theirs)?;
    let open = |k: usize| -> Result<DisputeGame::LeafOpening, DisputeError> {
        Ok(DisputeGame::LeafOpening {
            root: theirs[k],
            proof: siblings(&tree.proof(k)?),
        })
    };
    let op = ctx
        .program
        .op(leaf)
        .ok_or_else(|| DisputeError::Job(format!("no op at leaf {leaf}")))?;
    let mut inputs = Vec::with_capacity(op.inputs.len());
    let mut needs_state = false;
    for input in &op.inputs {
        match input {
            Operand::Leaf(l) => inputs.push(open(*l)?),
            Operand::State(_) | Operand::Data => {
                needs_state |= matches!(input, Operand::State(_));
                inputs.push(DisputeGame::LeafOpening {
                    root: B256::ZERO,
                    proof: Vec::new(),
                });
            }
        }
    }
    let output = if op.kind == OpKind::StateHash {
        DisputeGame::LeafOpening {
            root: B256::ZERO,
            proof: Vec::new(),
        }
    } else {
        open(leaf)?
    };
    let entries = if needs_state {
        ctx.trace
            .entries_in
            .iter()
            .flat_map(|e| [e.name_hash, e.shape_hash, e.root])
            .collect()
    } else {
        Vec::new()
    };
    info!(target: "pedals::dispute", job = %job_id, leaf, op = %op.name, "disputing the first op that differs");
    Ok(market
        .dispute_op(job_id, spec, leaf as u64, output, inputs, entries)
        .await?)
}

/// The first element of the revealed row that differs, with its input rows opened.
async fn name_element(
    market: &Market,
    job_id: JobId,
    ctx: &StepContext,
    view: &GameView,
    spec: DisputeGame::Spec,
) -> Result<TxOutcome, DisputeError> {
    let revealed = market
        .revealed_row(job_id)
        .await?
        .ok_or_else(|| DisputeError::Job("the worker's row is not on-chain".into()))?;
    let leaf = view.leaf as usize;
    let r = view.row as usize;
    let ours = mat_row(output_tensor(ctx, view)?, r);
    let col = first_difference(&unpack(&revealed), ours).unwrap_or(0);
    let op = ctx
        .program
        .op(leaf)
        .ok_or_else(|| DisputeError::Job(format!("no op at leaf {leaf}")))?;
    let sample = ctx.trace.samples.get(r).copied().unwrap_or(0);
    let idx = input_rows(op.kind, r, col, sample);
    let model_state = ctx.state.to_model_state()?;
    let mut input_rows_out = Vec::with_capacity(op.inputs.len());
    let mut proofs = Vec::with_capacity(op.inputs.len());
    for (input, &i) in op.inputs.iter().zip(&idx) {
        let (row, hashes) = match input {
            Operand::Leaf(l) => {
                let t = ctx
                    .trace
                    .tensor(*l)
                    .ok_or_else(|| DisputeError::Job(format!("leaf {l} holds no tensor")))?;
                (mat_row(t, i).to_vec(), mat_row_hashes(t)?)
            }
            Operand::State(name) => {
                let t = model_state
                    .tensor(name)
                    .ok_or_else(|| DisputeError::Job(format!("the state has no {name}")))?;
                let cols = t.shape.last().copied().unwrap_or(1) as usize;
                (
                    t.data[i * cols..(i + 1) * cols].to_vec(),
                    pedals_core::row_hashes(t)?,
                )
            }
            Operand::Data => {
                let hashes: Vec<B256> = (0..ctx.dataset.len())
                    .map(|s| hash_row(&ctx.dataset.dispute_row(s)))
                    .collect();
                (ctx.dataset.dispute_row(i), hashes)
            }
        };
        let tree = MerkleTree::new(&hashes)?;
        input_rows_out.push(packed(&row));
        proofs.push(siblings(&tree.proof(i)?));
    }
    info!(target: "pedals::dispute", job = %job_id, leaf, row = r, col, "disputing an element");
    let element = DisputeGame::ElementMove {
        col: U256::from(col),
        row: revealed,
        inputRows: input_rows_out,
        inputProofs: proofs,
    };
    Ok(market.dispute_element(job_id, spec, element).await?)
}
