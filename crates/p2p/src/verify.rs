//! Checking a checkpoint's openings against the trace root its worker posted.

use pedals_core::{B256, verify_transition};

use crate::{network::TraceClaim, protocol::CheckpointOpening};

/// Checks a checkpoint's openings against the job's trace claim; returns `h_step` and
/// `h_(step+1)`.
pub(crate) fn verify_opening(
    claim: &TraceClaim,
    step: u64,
    opening: &CheckpointOpening,
) -> Result<(B256, Option<B256>), String> {
    let hash = pedals_core::checkpoint_hash(&opening.state);
    if step < claim.steps {
        let (next_hash, next_proof) = opening
            .next
            .as_ref()
            .ok_or("it has no opening of the next state")?;
        verify_transition(
            &claim.root,
            claim.steps,
            step,
            &hash,
            &opening.proof,
            next_hash,
            next_proof,
        )
        .map_err(|e| e.to_string())?;
        Ok((hash, Some(*next_hash)))
    } else if step == claim.steps {
        let proof = &opening.proof;
        if proof.index != step || proof.leaf_count != claim.steps + 1 {
            return Err(format!(
                "the proof is for leaf {} of {}, not the last of {}",
                proof.index,
                proof.leaf_count,
                claim.steps + 1
            ));
        }
        if !proof.verify(&claim.root, &hash) {
            return Err("the state's hash and its proof do not lead to the trace root".into());
        }
        Ok((hash, None))
    } else {
        Err(format!(
            "step {step} is past the trace's {} steps",
            claim.steps
        ))
    }
}
