//! Debug builds only: the dishonest workers that the data-availability tests play. None of
//! this exists in a release build, so no release binary can cheat with it.

use alloy::primitives::{B256, keccak256};
use pedals_core::{Cid, TraceCommitment, checkpoint_hash};
use pedals_store::Store;

use crate::{NodeError, StoreSource};

/// A worker that trained honestly up to step `from` and made up the rest: the state hashes
/// after `from` are invented, and the last leaf and the result are the state after `from`
/// (so the requester's check of the result against the final state hash passes). Stores that
/// trace and result in place of the honest ones; returns the trace root and the result's CID.
pub(crate) fn fabricate(
    source: &StoreSource,
    store: &Store,
    id: u64,
    from: u64,
    mut hashes: Vec<B256>,
) -> Result<(B256, Cid), NodeError> {
    let steps = hashes.len() as u64 - 1;
    let from = from.min(steps);
    let state = source.state_after(id, from).map_err(NodeError::Job)?;
    for (i, h) in hashes.iter_mut().enumerate().skip(from as usize + 1) {
        *h = keccak256(format!("job {id}: made-up state {i}"));
    }
    hashes[steps as usize] = checkpoint_hash(&state);
    let root = TraceCommitment::new(hashes.clone())?.root();
    let result = store.put_resumable_checkpoint(id, steps, &state, &hashes, &[])?;
    Ok((root, result))
}

/// A language-model worker that lies about a chunk: its first completion gets one more
/// token (id 7) in front, so the bytes still parse and the trace built from them is
/// consistent, but a re-run of the chunk gives other bytes.
pub(crate) fn falsify_chunk(bytes: &[u8]) -> Vec<u8> {
    const AT: &[u8] = b"\"tokens\":[";
    let Some(i) = bytes.windows(AT.len()).position(|w| w == AT) else {
        return bytes.to_vec();
    };
    let cut = i + AT.len();
    let insert: &[u8] = if bytes.get(cut) == Some(&b']') {
        b"7"
    } else {
        b"7,"
    };
    [&bytes[..cut], insert, &bytes[cut..]].concat()
}

/// A fine-tuning worker that lies about a step: one value of the first adapter (or of the
/// first weight's masters) moves by one unit after the step, and training goes on from there,
/// so every later state and the trace are consistent with the lie but a re-run of the step
/// gives another state.
pub(crate) fn falsify_state(state: &mut pedals_lm::JobState) {
    match state {
        pedals_lm::JobState::Lora(s) => {
            if let Some(a) = s.adapters.iter_mut().flatten().flatten().next() {
                a.a[0] = a.a[0].wrapping_add(1);
            }
        }
        pedals_lm::JobState::Full(s) => {
            if let Some(w) = s.w.iter_mut().flatten().next() {
                *w = w.wrapping_add(1);
            }
        }
    }
}

/// The op trace of a fine-tuning worker whose state after the step is `claimed` rather than
/// what the step computes: the new state tensors that differ are taken as the outputs of the
/// ops that produce them, and every later op is computed from them, so the trace ends at the
/// claimed state's hash and the lie sits in one op the game can narrow to.
pub(crate) fn lie_in_trace(
    ctx: &mut pedals_dispute::lm::LmStepContext,
    claimed: &pedals_lm::JobState,
) -> Result<(), String> {
    let want = ctx.job.model_state(claimed).map_err(|e| e.to_string())?;
    let program = &ctx.inputs.program;
    for _ in 0..program.new_state.len() {
        let differs = program
            .new_state
            .iter()
            .zip(&want.tensors)
            .find(|(k, t)| ctx.trace.tensors[**k - 1] != t.data);
        let Some((&leaf, t)) = differs else {
            return Ok(());
        };
        let mut outputs = ctx.trace.tensors[..leaf].to_vec();
        outputs[leaf - 1] = t.data.clone();
        ctx.trace = pedals_lm::dispute::OpTrace::run_from(&ctx.inputs, outputs)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
