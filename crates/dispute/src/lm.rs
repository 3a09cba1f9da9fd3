//! Both sides of the fine-tuning game (`LmDisputeGame`, docs/protocol.md §9), as
//! [`crate::game`] plays the MLP game: each call looks at the phase on-chain and makes the one
//! move it calls for, from the player's own op trace of the disputed step, and holds nothing
//! between calls. The `market` passed in is switched to the fine-tuning game here, so a
//! caller may pass its ordinary client.

use std::sync::Arc;

use alloy::primitives::{B256, U256};
use pedals_chain::lm::{LmDisputeGame, LmSpec};
use pedals_chain::{GameBase, GameKind, GameView, Market, Phase};
use pedals_core::{JobId, MerkleTree, TraceCommitment, chunks, hash_row};
use pedals_lm::dispute::{OpKind, OpTrace, ProgramOp, Source, StepInputs, data_row, input_rows};
use pedals_lm::{FinetuneInputs, FinetuneSpec, JobState, Method};
use tracing::info;

use crate::DisputeError;
use crate::game::{Turn, packed};
use crate::rows::{self, first_difference};

/// Everything a player needs about a disputed fine-tuning step: the spec, the job's model and
/// data, the step's inputs and the player's own op trace of it (the honest one for a
/// challenger, the one it committed to for a worker).
#[derive(Clone)]
pub struct LmStepContext {
    /// The job's spec.
    pub spec: FinetuneSpec,
    /// The job's model, run and examples.
    pub job: Arc<FinetuneInputs>,
    /// The disputed step.
    pub step: u64,
    /// What the step's op trace is a function of.
    pub inputs: StepInputs,
    /// This player's op trace of the step.
    pub trace: OpTrace,
}

impl std::fmt::Debug for LmStepContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmStepContext")
            .field("spec", &self.spec)
            .field("step", &self.step)
            .field("leaves", &self.trace.leaves.len())
            .finish_non_exhaustive()
    }
}

impl LmStepContext {
    /// The honest context of the step that `state` is at.
    pub fn new(
        spec: FinetuneSpec,
        job: Arc<FinetuneInputs>,
        state: &JobState,
    ) -> Result<Self, DisputeError> {
        let inputs = job.step_inputs(state).map_err(lm)?;
        let trace = OpTrace::run(&inputs).map_err(lm)?;
        Ok(Self {
            spec,
            job,
            step: state.step(),
            inputs,
            trace,
        })
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

    /// The hash of every dataset row, in order: the leaves of the spec's `data_root`.
    fn data_row_hashes(&self) -> Vec<B256> {
        self.job
            .examples
            .iter()
            .map(|e| hash_row(&data_row(e)))
            .collect()
    }
}

pub(crate) fn lm(e: pedals_lm::LmError) -> DisputeError {
    DisputeError::Job(e.to_string())
}

fn root(s: &str, what: &str) -> Result<B256, DisputeError> {
    s.parse()
        .map_err(|_| DisputeError::Job(format!("the spec's {what} {s:?} is not a 32-byte hash")))
}

/// The spec's fields as the contract rebuilds its canonical bytes from them (`job`: the
/// spec's loaded files, whose run names the adapted projections).
pub fn lm_spec_args(s: &FinetuneSpec, job: &FinetuneInputs) -> Result<LmSpec::Spec, DisputeError> {
    let a = &s.arch;
    let targets = job
        .run
        .lora
        .targets
        .iter()
        .map(|t| 1u8 << t.index())
        .fold(0, |m, b| m | b);
    Ok(LmSpec::Spec {
        model: s.model.clone(),
        dataset: s.dataset.clone(),
        count: s.count,
        arch: LmSpec::Arch {
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
        },
        full: s.method == Method::Full,
        rank: s.rank,
        alpha: s.alpha,
        targets,
        lrQ32: s.lr_q32,
        lrEndQ32: s.lr_end_q32,
        beta1Q30: s.beta1_q30,
        beta2Q30: s.beta2_q30,
        epsQ32: s.eps_q32,
        warmup: s.warmup,
        steps: s.steps,
        batch: s.batch,
        seed: s.seed,
        modelRoot: root(&s.model_root, "model_root")?,
        dataRoot: root(&s.data_root, "data_root")?,
        initHash: root(&s.init_hash, "init_hash")?,
    })
}

pub(crate) fn row_hashes(data: &[i32], cols: usize) -> Vec<B256> {
    data.chunks(cols.max(1)).map(hash_row).collect()
}

pub(crate) fn proof(leaves: &[B256], i: usize) -> Result<Vec<B256>, DisputeError> {
    Ok(MerkleTree::new(leaves)?.proof(i)?.siblings)
}

pub(crate) fn entries(st: &pedals_core::ModelState) -> Result<Vec<B256>, DisputeError> {
    Ok(st
        .state_entries()?
        .iter()
        .flat_map(|e| [e.name_hash, e.shape_hash, e.root])
        .collect())
}

/// The worker's side: commits its op trace by its chunk nodes with the batch's data rows,
/// reveals the chunk the challenger picked, then row hashes and rows when asked.
pub async fn defend_lm(
    market: &Market,
    job_id: JobId,
    ctx: &LmStepContext,
    job_trace: &TraceCommitment,
) -> Result<Turn, DisputeError> {
    let market = market.playing(GameKind::Lm);
    let view = market.game_of(job_id).await?;
    if view.phase == Phase::None {
        return Ok(Turn::NoGame);
    }
    if !view.worker_to_move {
        return Ok(Turn::Waiting);
    }
    let outcome = match view.phase {
        Phase::Commit => {
            let leaves = &ctx.trace.leaves;
            let tree = MerkleTree::new(leaves)?;
            let height = market.lm_chunk_height(leaves.len()).await?;
            let last = leaves.len() - 1;
            let commitment = LmDisputeGame::Commitment {
                nodes: tree.level(height),
                stateIn: leaves[0],
                stateOut: leaves[last],
                stateInProof: job_trace.proof(ctx.step)?.siblings,
                stateOutProof: job_trace.proof(ctx.step + 1)?.siblings,
                firstLeafProof: tree.proof(0)?.siblings,
                lastLeafProof: tree.proof(last)?.siblings,
            };
            let all = ctx.data_row_hashes();
            let data = LmDisputeGame::DataRows {
                rows: ctx.inputs.data.iter().map(|d| packed(d)).collect(),
                proofs: ctx
                    .inputs
                    .samples
                    .iter()
                    .map(|&s| proof(&all, s))
                    .collect::<Result<_, _>>()?,
            };
            let spec = lm_spec_args(&ctx.spec, &ctx.job)?;
            let tx = market
                .lm_commit_op_trace(job_id, spec, commitment, data)
                .await?;
            ("commitOpTrace", tx)
        }
        Phase::RevealChunk => {
            let leaves = &ctx.trace.leaves;
            let height = market.lm_chunk_height(leaves.len()).await?;
            let chunk = market
                .lm_picked_chunk(job_id)
                .await?
                .ok_or_else(|| DisputeError::Job("no chunk was picked".into()))?
                as usize;
            let first = (chunk << height).min(leaves.len());
            let opened = leaves[first..((chunk + 1) << height).min(leaves.len())].to_vec();
            let proof = MerkleTree::new(leaves)?.node_proof(height, chunk);
            (
                "revealChunk",
                market.lm_reveal_chunk(job_id, opened, proof).await?,
            )
        }
        Phase::RevealRowHashes => {
            let (op, t) = ctx.output(view.leaf as usize)?;
            let hashes = rows::revealed(&row_hashes(t, op.cols))?;
            (
                "revealRowHashes",
                market.reveal_row_hashes(job_id, hashes).await?,
            )
        }
        Phase::RevealRowChunk => {
            let (op, t) = ctx.output(view.leaf as usize)?;
            let (hashes, proof) = rows::chunk_opening(&row_hashes(t, op.cols), view.row as usize)?;
            (
                "revealRowChunk",
                market.reveal_row_chunk(job_id, hashes, proof).await?,
            )
        }
        Phase::RevealRow => {
            let (op, t) = ctx.output(view.leaf as usize)?;
            let r = view.row as usize;
            let opening = GameBase::RowOpening {
                row: packed(&t[r * op.cols..(r + 1) * op.cols]),
                proof: proof(&row_hashes(t, op.cols), r)?,
            };
            ("revealRow", market.reveal_row(job_id, opening).await?)
        }
        _ => return Ok(Turn::Waiting),
    };
    info!(target: "pedals::dispute", job = %job_id, step = ctx.step, mv = outcome.0, gas = outcome.1.gas_used, "fine-tuning worker moved");
    Ok(Turn::Moved(outcome.0, outcome.1))
}

/// The challenger's side: picks the first op-trace chunk whose node differs from its own,
/// names the first op of it whose output differs, then the first differing row and element.
pub async fn challenge_lm(
    market: &Market,
    job_id: JobId,
    ctx: &LmStepContext,
) -> Result<Turn, DisputeError> {
    let market = market.playing(GameKind::Lm);
    let view = market.game_of(job_id).await?;
    if view.phase == Phase::None {
        return Ok(Turn::NoGame);
    }
    if view.worker_to_move {
        return Ok(Turn::Waiting);
    }
    let outcome = match view.phase {
        Phase::PickChunk => ("pickChunk", pick_chunk(&market, job_id, ctx).await?),
        Phase::NameOp => ("disputeOp", name_op(&market, job_id, ctx).await?),
        Phase::PickRowChunk => {
            let theirs = market.revealed_row_hashes(job_id).await?.ok_or_else(|| {
                DisputeError::Job("the worker's row chunk nodes are not on-chain".into())
            })?;
            let (op, t) = ctx.output(view.leaf as usize)?;
            let chunk = rows::pick_chunk(&theirs, &row_hashes(t, op.cols))?;
            (
                "pickRowChunk",
                market.pick_row_chunk(job_id, chunk as u64).await?,
            )
        }
        Phase::PickRow => {
            let (op, t) = ctx.output(view.leaf as usize)?;
            let ours = row_hashes(t, op.cols);
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
            name_element(&market, job_id, ctx, &view).await?,
        ),
        _ => return Ok(Turn::Waiting),
    };
    info!(target: "pedals::dispute", job = %job_id, step = ctx.step, mv = outcome.0, gas = outcome.1.gas_used, "fine-tuning challenger moved");
    Ok(Turn::Moved(outcome.0, outcome.1))
}

fn zero_opening() -> LmDisputeGame::LeafOpening {
    LmDisputeGame::LeafOpening {
        root: B256::ZERO,
        proof: Vec::new(),
    }
}

/// The worker's committed chunk nodes, checked against this side's batch and trace length;
/// with the chunks' height.
async fn their_nodes(
    market: &Market,
    job_id: JobId,
    ctx: &LmStepContext,
) -> Result<(pedals_chain::LmCommit, usize), DisputeError> {
    let theirs = market
        .lm_op_trace(job_id)
        .await?
        .ok_or_else(|| DisputeError::Job("the worker's op trace is not on-chain".into()))?;
    let n = ctx.trace.leaves.len();
    let height = market.lm_chunk_height(n).await?;
    let lens: Vec<u64> = ctx.inputs.data.iter().map(|d| d.len() as u64 - 1).collect();
    if theirs.nodes.len() != n.div_ceil(1 << height) || theirs.lens != lens {
        return Err(DisputeError::Job(
            "the worker's op trace is of another batch or length".into(),
        ));
    }
    Ok((theirs, height))
}

/// The first chunk whose node differs from this side's, and the move that picks it.
async fn pick_chunk(
    market: &Market,
    job_id: JobId,
    ctx: &LmStepContext,
) -> Result<pedals_chain::TxOutcome, DisputeError> {
    let (theirs, height) = their_nodes(market, job_id, ctx).await?;
    let ours = MerkleTree::new(&ctx.trace.leaves)?.level(height);
    // The last chunk holds h_(i+1), which differs if nothing before it does.
    let chunk = first_difference(&theirs.nodes, &ours).unwrap_or(ours.len() - 1);
    info!(target: "pedals::dispute", job = %job_id, chunk, of = ours.len(), "picking the first op-trace chunk that differs");
    Ok(market.lm_pick_chunk(job_id, chunk as u64).await?)
}

/// The first op whose output leaf differs from the worker's (in the chunk it revealed), and
/// the move that disputes it. The worker's leaves before that chunk are this side's own (their
/// nodes agree); a leaf is proven within its chunk, then its chunk node among the worker's.
async fn name_op(
    market: &Market,
    job_id: JobId,
    ctx: &LmStepContext,
) -> Result<pedals_chain::TxOutcome, DisputeError> {
    let (theirs, height) = their_nodes(market, job_id, ctx).await?;
    let (chunk, revealed) = market
        .lm_revealed_chunk(job_id)
        .await?
        .ok_or_else(|| DisputeError::Job("the worker's chunk is not on-chain".into()))?;
    let (chunk, ours) = (chunk as usize, &ctx.trace.leaves);
    let n = ours.len();
    let span = |c: usize| (c << height).min(n)..((c + 1) << height).min(n);
    if revealed.len() != span(chunk).len() {
        return Err(DisputeError::Job(
            "the worker revealed a chunk of another width".into(),
        ));
    }
    let chunk_of = |c: usize| -> Result<&[B256], DisputeError> {
        match c.cmp(&chunk) {
            std::cmp::Ordering::Less => Ok(&ours[span(c)]),
            std::cmp::Ordering::Equal => Ok(&revealed),
            std::cmp::Ordering::Greater => Err(DisputeError::Job(format!(
                "chunk {c} of the worker's op trace is not revealed"
            ))),
        }
    };
    let leaf_of = |k: usize| chunk_of(k >> height).map(|c| c[k - (k >> height << height)]);
    let last = n - 1;
    // Leaf 0 is h_i, agreed; the state hash (last) differs if nothing before it does.
    let leaf = span(chunk)
        .filter(|&k| k > 0 && k < last)
        .find(|&k| leaf_of(k).is_ok_and(|l| l != ours[k]))
        .unwrap_or(last);
    let open = |k: usize| -> Result<LmDisputeGame::LeafOpening, DisputeError> {
        let c = k >> height;
        let mut proof = chunks::chunk_proof(chunk_of(c)?, k - (c << height), height)?;
        proof.extend(chunks::level_proof(&theirs.nodes, c, height));
        Ok(LmDisputeGame::LeafOpening {
            root: leaf_of(k)?,
            proof,
        })
    };
    let op = ctx
        .inputs
        .program
        .op(leaf)
        .ok_or_else(|| DisputeError::Job(format!("no op at leaf {leaf}")))?;
    let state = entries(&ctx.inputs.state)?;
    let (output, inputs, model) = if op.kind == OpKind::StateHash {
        let inputs = ctx
            .inputs
            .program
            .new_state
            .iter()
            .map(|&k| open(k))
            .collect::<Result<_, _>>()?;
        (zero_opening(), inputs, Vec::new())
    } else {
        let inputs = op
            .inputs
            .iter()
            .map(|o| match o.source {
                Source::Leaf(k) => open(k),
                _ => Ok(zero_opening()),
            })
            .collect::<Result<_, _>>()?;
        let reads_model = op
            .inputs
            .iter()
            .any(|o| matches!(o.source, Source::Model(_)));
        let model = if reads_model {
            entries(&ctx.inputs.model)?
        } else {
            Vec::new()
        };
        (open(leaf)?, inputs, model)
    };
    info!(target: "pedals::dispute", job = %job_id, leaf, op = %op.name, "disputing the first fine-tuning op that differs");
    let spec = lm_spec_args(&ctx.spec, &ctx.job)?;
    let entries = LmDisputeGame::Entries { state, model };
    Ok(market
        .lm_dispute_op(
            job_id,
            spec,
            theirs.lens,
            leaf as u64,
            output,
            inputs,
            entries,
        )
        .await?)
}

/// The first element of the revealed row that differs, with its input rows opened.
async fn name_element(
    market: &Market,
    job_id: JobId,
    ctx: &LmStepContext,
    view: &GameView,
) -> Result<pedals_chain::TxOutcome, DisputeError> {
    let revealed = market
        .revealed_row(job_id)
        .await?
        .ok_or_else(|| DisputeError::Job("the worker's row is not on-chain".into()))?;
    let (leaf, r) = (view.leaf as usize, view.row as usize);
    let (op, t) = ctx.output(leaf)?;
    let theirs: Vec<i32> = revealed
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let col = first_difference(&theirs, &t[r * op.cols..(r + 1) * op.cols]).unwrap_or(0);
    let inputs = &ctx.inputs;
    let tensors = &ctx.trace.tensors;
    let rows = inputs.element_rows(tensors, op, r, col).ok_or_else(|| {
        DisputeError::Job(format!("element ({r}, {col}) of {} has no inputs", op.name))
    })?;
    let (sample, data) = inputs.data_for(op);
    let index = input_rows(op, &inputs.params, r, col, sample, data);
    let (mut input_rows_out, mut proofs) = (Vec::new(), Vec::new());
    for ((o, row), &i) in op.inputs.iter().zip(&rows).zip(&index) {
        let hashes = match o.source {
            Source::Leaf(k) => row_hashes(&tensors[k - 1], o.cols),
            Source::Model(m) => row_hashes(&inputs.model.tensors[m].data, o.cols),
            Source::State(s) => row_hashes(&inputs.state.tensors[s].data, o.cols),
            Source::Data(_) => ctx.data_row_hashes(),
        };
        input_rows_out.push(packed(row));
        proofs.push(proof(&hashes, i)?);
    }
    info!(target: "pedals::dispute", job = %job_id, leaf, row = r, col, "disputing a fine-tuning element");
    let element = LmDisputeGame::ElementMove {
        col: U256::from(col),
        row: revealed,
        inputRows: input_rows_out,
        inputProofs: proofs,
    };
    let spec = lm_spec_args(&ctx.spec, &ctx.job)?;
    Ok(market.lm_dispute_element(job_id, spec, element).await?)
}
