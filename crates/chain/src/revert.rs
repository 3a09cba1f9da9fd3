//! One readable sentence, with what to do, for every custom error the contracts revert with.

use alloy::primitives::{U256, utils::format_ether};

use crate::{
    DataAvailability::DataAvailabilityErrors as D, JobMarket::JobMarketErrors as M, JobStatus,
    StakeManager::StakeManagerErrors as S,
};

fn eth(wei: U256) -> String {
    format!("{} ETH", format_ether(wei))
}

fn status(raw: u8) -> String {
    JobStatus::try_from(raw).map_or_else(|v| format!("unknown status {v}"), |s| s.to_string())
}

/// The sentence for a `DataAvailability` revert.
pub(crate) fn data_availability(e: &D) -> String {
    match e {
        D::NoOpenDemand(e) => format!(
            "job {} has no open demand to publish for (none was made, it was met already, or \
             its deadline passed)",
            e.jobId
        ),
        D::StateAlreadyOpened(e) => format!(
            "the demanded state of job {} is opened already; publish its rows",
            e.jobId
        ),
        D::StateNotOpened(e) => format!(
            "open the demanded state of job {} (openState) before publishing its rows",
            e.jobId
        ),
        D::BadPublication(e) => format!(
            "the published state does not match the job's commitments ({}); publish the \
             checkpoint whose hash is the trace's leaf",
            e.what
        ),
    }
}

/// The sentence for a `DisputeGame` revert: the spec admission's refusal in words, a move's
/// refusal as the contract names it.
pub(crate) fn dispute_game(e: &crate::DisputeGame::DisputeGameErrors) -> String {
    use crate::DisputeGame::DisputeGameErrors as G;
    match e {
        G::Inadmissible(e) => format!(
            "the dispute game cannot check a training job whose {} is {} (it admits {} to {}); \
             change the job file",
            e.field, e.value, e.min, e.max
        ),
        other => format!("{other:?}"),
    }
}

/// The sentence for a `JobMarket` revert.
pub(crate) fn job_market(e: &M) -> String {
    match e {
        M::JobNotFound(e) => format!("job {} does not exist; check the job id", e.jobId),
        M::WrongStatus(e) => format!(
            "job {} is {}, but this needs it {}",
            e.jobId,
            status(e.actual),
            status(e.expected)
        ),
        M::NotRequester(e) => format!(
            "only the requester of job {} may do this, not {}",
            e.jobId, e.caller
        ),
        M::NotWorker(e) => format!(
            "only the worker that claimed job {} may do this, not {}",
            e.jobId, e.caller
        ),
        M::NotResolver(e) => format!(
            "only the dispute's resolver may decide job {}, not {}",
            e.jobId, e.caller
        ),
        M::ZeroPayment(_) => "a job must escrow a payment; send ETH with the post".into(),
        M::PaymentTooSmall(e) => format!(
            "payment {} is below the minimum {}",
            eth(e.payment),
            eth(e.min)
        ),
        M::PaymentTooLarge(e) => format!(
            "payment {} is above the maximum {}",
            eth(e.payment),
            eth(e.max)
        ),
        M::ZeroSteps(_) => "a job needs at least one step".into(),
        M::FinalStateNotInTrace(e) => format!(
            "the final state hash {} is not the last leaf of the trace root; submit the proof \
             of h_N from the same trace",
            e.finalStateHash
        ),
        M::DemandStepOutOfRange(e) => format!(
            "step {} is past the job's {} steps; demand a step from 0 to {}",
            e.step, e.steps, e.steps
        ),
        M::DemandDeadlinePassed(e) => format!(
            "the demand on job {} had to be met by {}; it can only be claimed unmet now \
             (claimUnavailable)",
            e.jobId, e.deadline
        ),
        M::DemandDeadlineNotPassed(e) => format!(
            "the demand on job {} can still be met until {}; claim it unmet after that",
            e.jobId, e.deadline
        ),
        M::NotPublisher(e) => format!(
            "only the data-availability contract the demand on job {} was made with may report \
             it met, not {}",
            e.jobId, e.caller
        ),
        M::DemandsDisabled(_) => {
            "this market has no data-availability contract, so demands are disabled".into()
        }
        M::SpecNotAdmitted(e) => format!(
            "the dispute game has not admitted spec {}: admit it first (DisputeGame.admitSpec; \
             `pedals job post` does), which refuses a model the game cannot check",
            e.specHash
        ),
        M::NotDisputable(e) => format!(
            "job {} is a batch-inference job: it has no dispute game, so it cannot be \
             challenged (demand its data instead)",
            e.jobId
        ),
        M::VerifierCodeChanged(e) => format!(
            "the code of zk circuit {}'s verifier changed since it was registered: the market \
             no longer trusts it",
            e.circuit
        ),
        M::NoRewardPool(e) => format!("job {} has no conviction reward to claim", e.jobId),
        M::ClaimPeriodOver(e) => format!(
            "the reward of job {} could be claimed until {}; it is too late",
            e.jobId, e.claimEnd
        ),
        M::ClaimPeriodOpen(e) => format!(
            "the reward of job {} can be collected after {}, when its claim period ends",
            e.jobId, e.claimEnd
        ),
        M::AlreadyClaimed(e) => format!(
            "{} already claims a share of job {}'s reward",
            e.claimant, e.jobId
        ),
        M::NotClaimant(e) => format!(
            "{} has no uncollected share of job {}'s reward",
            e.caller, e.jobId
        ),
        M::CommitmentTooLate(_) => "the challenge was committed in the conviction's block or \
             later: only earlier commitments share the reward"
            .into(),
        M::ZeroHash(_) => "a commitment (spec hash, trace root or state hash) is zero".into(),
        M::InvalidCid(_) => {
            "a CID must be a binary CIDv1 (first byte 0x01) of 2 to 128 bytes".into()
        }
        M::UnsupportedVerification(e) => format!(
            "verification mode {} does not go through this call: post optimistic jobs with \
             postJob and zk jobs with postZkJob",
            e.verification
        ),
        M::ZkJobNotClaimable(e) => format!(
            "job {} is a zk job: nobody claims it; submit a proof instead",
            e.jobId
        ),
        M::NotZkJob(e) => format!(
            "job {} is not a zk job; submit its result with a trace root",
            e.jobId
        ),
        M::UnknownZkCircuit(e) => format!(
            "no verifier is registered as zk circuit {}; list the market's circuits and pick one",
            e.circuit
        ),
        M::ZkCircuitTaken(e) => format!(
            "zk circuit {} is registered already and is never replaced; register the new \
             verifier under a free number",
            e.circuit
        ),
        M::NoCode(e) => format!("{} has no contract code; deploy the verifier first", e.account),
        M::InvalidCommitment(e) => format!(
            "the job commitment {} is zero or not below the BN254 scalar field's modulus",
            e.commitment
        ),
        M::InvalidProof(e) => format!(
            "the proof does not show that this account computed output commitment {} for job \
             {}; nothing was changed",
            e.outputCommitment, e.jobId
        ),
        M::DeadlineInPast(e) => format!(
            "the claim deadline {} is not after the chain's time {}; pick a later deadline",
            e.deadline, e.nowTimestamp
        ),
        M::InvalidDeliveryDeadline(e) => format!(
            "the delivery deadline {} must be after the claim deadline {} and no later than {}",
            e.deliveryDeadline, e.claimDeadline, e.latest
        ),
        M::ChallengeWindowOutOfBounds(e) => format!(
            "a challenge window of {} s is outside the market's {}..={} s",
            e.window, e.min, e.max
        ),
        M::ClaimDeadlinePassed(e) => format!(
            "job {} could be claimed only until {}",
            e.jobId, e.deadline
        ),
        M::DeliveryDeadlinePassed(e) => format!(
            "the delivery deadline of job {} passed at {}; the job can only expire now",
            e.jobId, e.deadline
        ),
        M::DeliveryDeadlineNotPassed(e) => format!(
            "job {} can expire only after its delivery deadline {}",
            e.jobId, e.deadline
        ),
        M::StepsMismatch(e) => format!(
            "the result covers {} steps but the job has {}",
            e.submitted, e.expected
        ),
        M::ChallengeWindowOpen(e) => format!(
            "the challenge window of job {} is open until {}; finalize after that",
            e.jobId, e.windowEnd
        ),
        M::ChallengeWindowClosed(e) => format!(
            "the challenge window of job {} closed at {}",
            e.jobId, e.windowEnd
        ),
        M::StepOutOfRange(e) => format!(
            "step {} is out of range: the job has {} steps (0..{})",
            e.step, e.steps, e.steps
        ),
        M::WrongBond(e) => format!(
            "a challenge must carry exactly {}, not {}",
            eth(e.expected),
            eth(e.sent)
        ),
        M::CommitmentNotFound(_) => {
            "no earlier commitment matches this challenge; commit first, then reveal in a later block"
                .into()
        }
        M::CommitmentTooRecent(_) => {
            "the challenge was committed in this block; reveal it in a later block".into()
        }
        M::SelfChallenge(_) => "a worker cannot challenge its own result".into(),
        M::DisputesDisabled(_) => {
            "this market has no dispute resolver yet, so challenges are disabled".into()
        }
        M::DisputeExpired(e) => format!(
            "the dispute of job {} passed its deadline {}; it can only be timed out",
            e.jobId, e.deadline
        ),
        M::DisputeNotExpired(e) => format!(
            "the dispute of job {} can be timed out only from {}",
            e.jobId, e.deadline
        ),
        M::ValidatorStakeTooLow(e) => format!(
            "challenging needs {} of free stake; you have {}: stake more first",
            eth(e.minimum),
            eth(e.freeStake)
        ),
        M::NothingToWithdraw(_) => "there is nothing to withdraw for this account".into(),
        M::NotFeeRecipient(e) => format!("only the fee recipient may withdraw fees, not {}", e.caller),
        M::TransferFailed(_) => {
            "the ETH transfer to the caller failed; a contract caller must accept ETH".into()
        }
        M::UnexpectedEther(e) => format!("the market does not accept plain ETH from {}", e.sender),
        M::ParameterOutOfBounds(e) => format!(
            "parameter {} = {} is outside {}..={}",
            e.name, e.value, e.min, e.max
        ),
        M::ZeroAddress(_) => "an address argument is zero".into(),
        M::EnforcedPause(_) => {
            "the market is paused: new posts and claims are stopped; everything else works".into()
        }
        M::ExpectedPause(_) => "the market is not paused".into(),
        M::AccessControlUnauthorizedAccount(e) => format!(
            "{} lacks the role {} needed for this",
            e.account, e.neededRole
        ),
        M::AccessControlBadConfirmation(_) => "a role can only be renounced by its holder".into(),
        M::ReentrancyGuardReentrantCall(_) => "re-entrant call refused".into(),
    }
}

/// The sentence for a `StakeManager` revert.
pub(crate) fn stake_manager(e: &S) -> String {
    match e {
        S::ZeroAmount(_) => "the amount must not be zero".into(),
        S::AmountTooLarge(e) => format!("{} does not fit a stake balance", eth(e.amount)),
        S::InsufficientFreeStake(e) => format!(
            "this needs {} of free stake but only {} is free (the rest is locked as collateral \
             or unbonding); stake more",
            eth(e.requested),
            eth(e.available)
        ),
        S::StakeBelowMinimum(e) => format!(
            "claiming needs at least {} staked; you have {}: stake first",
            eth(e.minimum),
            eth(e.staked)
        ),
        S::NothingUnbonding(_) => "nothing is unbonding; request an unstake first".into(),
        S::StillUnbonding(e) => format!(
            "the unbonding stake unlocks at {}",
            crate::human::utc(e.unbondsAt.saturating_to())
        ),
        S::NotMarket(_) => "only the bound job market may move collateral".into(),
        S::MarketAlreadyBound(_) => "the stake manager is bound to a market already".into(),
        S::ZeroAddress(_) => "an address argument is zero".into(),
        S::UnbondingDelayOutOfBounds(e) => format!(
            "an unbonding delay of {} s is outside {}..={} s",
            e.delay, e.min, e.max
        ),
        S::ExceedsLocked(e) => format!(
            "{} exceeds the locked collateral {}",
            eth(e.requested),
            eth(e.locked)
        ),
        S::SlashExceedsStake(e) => format!(
            "a slash of {} exceeds the slashable stake {}",
            eth(e.requested),
            eth(e.available)
        ),
        S::TransferFailed(_) => {
            "the ETH transfer to the caller failed; a contract caller must accept ETH".into()
        }
        S::AccessControlUnauthorizedAccount(e) => format!(
            "{} lacks the role {} needed for this",
            e.account, e.neededRole
        ),
        S::AccessControlBadConfirmation(_) => "a role can only be renounced by its holder".into(),
        S::ReentrancyGuardReentrantCall(_) => "re-entrant call refused".into(),
    }
}
