// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IStakeManager} from "./IStakeManager.sol";

/// @title IJobMarket
/// @notice The Pedals job market: requesters escrow ETH for a job, staked providers claim it
///         against collateral and submit a commitment to their work, validators may challenge
///         it during a window, and every payout is a pull credit.
/// @dev Lifecycle (docs/architecture.md):
///      Posted ─claim→ Claimed ─submit→ Submitted ─window ends→ Finalized
///      Posted ─cancel→ Cancelled; Claimed ─deadline→ Expired; Submitted ─challenge→ Disputed
///      Disputed ─worker lost→ Resolved; Disputed ─challenger lost or timed out→ Submitted
///      Submitted ─demandData→ Demanded ─state published→ Submitted; Demanded ─deadline→ Resolved
///      A zk job (postZkJob) has no claim and no window: Posted ─valid proof→ Finalized, paid in
///      the same transaction; Posted ─cancel→ Cancelled.
interface IJobMarket {
    /// @notice States of a job. `None` means the job does not exist.
    enum JobStatus {
        None,
        Posted,
        Claimed,
        Submitted,
        Disputed,
        Finalized,
        Cancelled,
        Expired,
        Resolved,
        /// Someone demanded that the state after one step be published on-chain (`demandData`).
        Demanded
    }

    /// @notice How a job's result is verified: a challenge window with re-execution by
    ///         validators, or a Groth16 proof checked when the result is submitted.
    ///         `OptimisticInference` is a batch-inference job under the challenge window: its
    ///         trace's leaves after the first are hashes of output blobs, not states, and only
    ///         such a job's demands may be met with a blob (`IDataAvailability.publishBlob`).
    enum Verification {
        Optimistic,
        Zk,
        OptimisticInference
    }

    /// @notice Admin-set parameters; each lies inside the bounds of `ProtocolLimits`.
    struct MarketParams {
        /// Protocol fee, in basis points of the payment, snapshotted per job at posting.
        uint16 protocolFeeBps;
        /// Provider collateral, in basis points of the payment, locked at claim.
        uint16 collateralBps;
        /// Share of the collateral paid to the requester when a job expires.
        uint16 expiryPenaltyBps;
        /// Share of the seized collateral shared by the challengers who convict a worker (at most
        /// `ProtocolLimits.MAX_CHALLENGER_REWARD_BPS`); the rest goes to the requester.
        uint16 challengerRewardBps;
        /// Shortest challenge window a job may choose, in seconds.
        uint32 minChallengeWindow;
        /// Longest challenge window a job may choose, in seconds.
        uint32 maxChallengeWindow;
        /// Time a resolver has to decide a dispute before anyone may time it out, in seconds.
        uint32 maxDisputeDuration;
        /// The bond of a job's first challenge or demand, in wei; it doubles with each one the
        /// worker defeats (`challengeBondOf`).
        uint96 challengeBond;
        /// Minimum total stake of a provider that claims a job, in wei.
        uint96 minProviderStake;
        /// Minimum free stake of a validator that challenges, in wei.
        uint96 minValidatorStake;
    }

    /// @notice What a requester posts.
    struct JobRequest {
        /// sha2-256 digest of the canonical job spec (model, dataset, hyperparameters, seed, steps),
        /// so that the spec's CIDv1 (raw codec) is derivable from it. A zk job: the job
        /// commitment `c_job = H(4, c_w, c_x)` to the model and the input batch (docs/zk.md),
        /// below the BN254 scalar modulus; the circuit fixes the rest.
        bytes32 specHash;
        /// Binary CIDv1 of the initial model.
        bytes modelCid;
        /// Binary CIDv1 of the dataset.
        bytes datasetCid;
        /// Number of training steps the result must cover (a zk job: the samples in its batch).
        uint32 steps;
        /// Verification mode.
        Verification verification;
        /// Last timestamp at which a provider may claim.
        uint40 claimDeadline;
        /// Last timestamp at which the worker may submit.
        uint40 deliveryDeadline;
        /// Challenge window after submission, in seconds (zero for a zk job).
        uint32 challengeWindow;
    }

    /// @notice A job as stored. Packed into six slots.
    struct Job {
        address requester;
        uint96 payment;
        /// The claiming worker. Zero for a zk job: its prover is in `ZkResultAccepted`.
        address worker;
        uint96 collateral;
        JobStatus status;
        Verification verification;
        /// The zk circuit (architecture and batch) whose verifier checks the result; zero for an
        /// optimistic job.
        uint8 zkCircuit;
        /// Protocol fee rate, fixed when the job is posted.
        uint16 feeBps;
        /// Expiry penalty rate, fixed when the job is claimed.
        uint16 expiryPenaltyBps;
        /// Challenger reward rate, fixed when the job is claimed.
        uint16 challengerRewardBps;
        uint32 steps;
        uint40 claimDeadline;
        uint40 deliveryDeadline;
        uint32 challengeWindow;
        uint40 windowEnd;
        bytes32 specHash;
        /// The worker's trace root, from submission (zero for a zk job).
        bytes32 traceRoot;
        /// The root over the audit leaves of the job's steps that auditors open (zero: the job
        /// is not audited).
        bytes32 auditRoot;
    }

    /// @notice The open challenge of a disputed job.
    struct Challenge {
        address challenger;
        uint40 openedAt;
        uint32 step;
        /// Time the resolver has, fixed when the dispute opens.
        uint24 disputeDuration;
        address resolver;
        uint96 bond;
        bytes32 claimedStateHash;
    }

    /// @notice The open data-availability demand of a job: the state after `step` must be
    ///         published on-chain through `publisher` (the market's `DataAvailability`
    ///         contract when the demand was made) before `deadline`, or the worker loses its
    ///         collateral (`claimUnavailable`).
    struct DataDemand {
        address demander;
        uint40 openedAt;
        uint40 deadline;
        address publisher;
        uint96 bond;
        uint32 step;
    }

    /// @notice The reward of a conviction, shared equally by every account that committed a
    ///         challenge of the job in a block before the conviction and claims it before
    ///         `claimEnd` (the convicting challenger is the first claimant). Each claimant then
    ///         collects `remaining / claimants`, so the last one collects the rounding.
    struct RewardPool {
        /// Wei not yet collected.
        uint96 remaining;
        /// Claimants that have not collected yet.
        uint32 claimants;
        /// The block of the conviction: commitments from this block on do not qualify.
        uint64 convictedBlock;
        /// Last timestamp at which a share may be claimed; collecting starts after it.
        uint40 claimEnd;
    }

    /// @notice A requester posted job `jobId`, escrowing `payment`, as `request` describes.
    event JobPosted(uint256 indexed jobId, address indexed requester, uint256 payment, JobRequest request);
    /// @notice The requester cancelled job `jobId` before any claim; `refund` was credited.
    event JobCancelled(uint256 indexed jobId, uint256 refund);
    /// @notice `worker` claimed job `jobId`, locking `collateral` of its stake.
    event JobClaimed(uint256 indexed jobId, address indexed worker, uint256 collateral);
    /// @notice The worker submitted its result; the challenge window runs until `windowEnd`.
    event ResultSubmitted(
        uint256 indexed jobId,
        address indexed worker,
        uint256 steps,
        bytes32 traceRoot,
        bytes32 finalStateHash,
        bytes resultCid,
        uint256 windowEnd
    );
    /// @notice Job `jobId` finalized: the worker was credited `workerPayout`, the protocol `fee`.
    event JobFinalized(uint256 indexed jobId, address indexed worker, uint256 workerPayout, uint256 fee);
    /// @notice Job `jobId` expired undelivered: the requester was credited `refund` plus `penalty`
    ///         taken from the worker's collateral; the rest of the collateral was released.
    event JobExpired(uint256 indexed jobId, address indexed worker, uint256 refund, uint256 penalty);
    /// @notice `committer` committed to a challenge of job `jobId` without revealing it.
    event ChallengeCommitted(uint256 indexed jobId, address indexed committer, bytes32 commitment);
    /// @notice `challenger` revealed a challenge of step `step` and job `jobId` moved to Disputed.
    event ChallengeOpened(
        uint256 indexed jobId,
        address indexed challenger,
        uint256 step,
        bytes32 claimedStateHash,
        uint256 bond,
        address resolver,
        uint256 deadline
    );
    /// @notice The dispute of job `jobId` ended. When `workerLost`, the challenger was credited
    ///         `challengerPayout` (its bond; the reward is pooled, `RewardPoolOpened`) and the
    ///         requester `requesterPayout`; otherwise the worker was
    ///         credited the bond and the job went back to Submitted until `windowEnd` (zero when
    ///         the worker lost).
    event DisputeResolved(
        uint256 indexed jobId,
        bool workerLost,
        bool timedOut,
        uint256 challengerPayout,
        uint256 requesterPayout,
        uint256 windowEnd
    );
    /// @notice `demander` demanded, with `bond`, that the state after step `step` of job `jobId`
    ///         be published on-chain by `deadline`.
    event DataDemanded(
        uint256 indexed jobId, address indexed demander, uint256 step, uint256 bond, uint256 deadline
    );
    /// @notice The demanded state of job `jobId` is wholly on-chain (the publisher's events hold
    ///         it): the demander's bond went to the worker and the window runs until `windowEnd`.
    event DataPublished(uint256 indexed jobId, uint256 step, uint256 windowEnd);
    /// @notice The demanded state of job `jobId` was not published in time: the worker's
    ///         collateral was seized; the demander was credited `demanderPayout` (its bond; the
    ///         reward is pooled), the requester `requesterPayout`.
    event DataUnavailable(
        uint256 indexed jobId, address indexed demander, uint256 demanderPayout, uint256 requesterPayout
    );
    /// @notice Job `jobId` is a zk job: circuit `circuit`'s verifier checks its result against
    ///         the job commitment posted as its spec hash.
    /// @notice A conviction's reward is held for the challengers who committed before it.
    event RewardPoolOpened(uint256 indexed jobId, uint256 reward, uint256 claimEnd);
    /// @notice `claimant` joined the pool of job `jobId`, which now has `claimants` claimants.
    event RewardClaimed(uint256 indexed jobId, address indexed claimant, uint256 claimants);
    /// @notice `claimant` collected its share of the pool of job `jobId`.
    event RewardCollected(uint256 indexed jobId, address indexed claimant, uint256 share);
    event ZkJobPosted(uint256 indexed jobId, uint8 indexed circuit);
    /// @notice `worker` proved zk job `jobId`: its logits, committed in `outputCommitment`, are
    ///         the blob `resultCid`. `JobFinalized` follows in the same transaction.
    event ZkResultAccepted(
        uint256 indexed jobId, address indexed worker, bytes32 outputCommitment, bytes resultCid
    );
    /// @notice The admin registered `verifier` as zk circuit `circuit`, for good.
    event ZkCircuitRegistered(uint8 indexed circuit, address indexed verifier);
    /// @notice `account` withdrew `amount` of its credit.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice The fee recipient withdrew `amount` of accrued fees.
    event FeesWithdrawn(address indexed recipient, uint256 amount);
    /// @notice The admin changed the market parameters.
    event ParametersUpdated(MarketParams oldParams, MarketParams newParams);
    /// @notice The admin changed the fee recipient.
    event FeeRecipientUpdated(address indexed oldRecipient, address indexed newRecipient);
    /// @notice The admin changed the data-availability publisher (zero disables new demands).
    event PublisherUpdated(address indexed oldPublisher, address indexed newPublisher);
    /// @notice The admin changed the dispute resolver (zero disables new challenges).
    event ResolverUpdated(address indexed oldResolver, address indexed newResolver);
    /// @notice The admin changed the audit pool (zero: no job is audited from now on).
    event AuditorUpdated(address indexed oldAuditor, address indexed newAuditor);

    /// @notice Job `jobId` does not exist.
    error JobNotFound(uint256 jobId);
    /// @notice Job `jobId` is in status `actual`, and this call needs `expected`.
    error WrongStatus(uint256 jobId, JobStatus expected, JobStatus actual);
    /// @notice Only the job's requester may do this.
    error NotRequester(uint256 jobId, address caller);
    /// @notice Only the job's worker may do this.
    error NotWorker(uint256 jobId, address caller);
    /// @notice Only the resolver that opened the dispute may decide it.
    error NotResolver(uint256 jobId, address caller);
    /// @notice A job must escrow a non-zero payment.
    error ZeroPayment();
    /// @notice The payment is below `min`, too small to back any collateral.
    error PaymentTooSmall(uint256 payment, uint256 min);
    /// @notice The payment exceeds `max`.
    error PaymentTooLarge(uint256 payment, uint256 max);
    /// @notice A job must have at least one step.
    error ZeroSteps();
    /// @notice A commitment (spec hash, trace root, state hash) must not be zero.
    error ZeroHash();
    /// @notice A CID must be a non-empty binary CIDv1 of at most `ProtocolLimits.MAX_CID_LENGTH` bytes.
    error InvalidCid();
    /// @notice The verification mode is not supported by this market yet.
    error UnsupportedVerification(Verification verification);
    /// @notice The claim deadline must be in the future.
    error DeadlineInPast(uint256 deadline, uint256 nowTimestamp);
    /// @notice The delivery deadline must come after the claim deadline and within the maximum job duration.
    error InvalidDeliveryDeadline(uint256 claimDeadline, uint256 deliveryDeadline, uint256 latest);
    /// @notice The challenge window must lie in `[min, max]`.
    error ChallengeWindowOutOfBounds(uint256 window, uint256 min, uint256 max);
    /// @notice The claim deadline of job `jobId` passed at `deadline`.
    error ClaimDeadlinePassed(uint256 jobId, uint256 deadline);
    /// @notice The delivery deadline of job `jobId` passed at `deadline`.
    error DeliveryDeadlinePassed(uint256 jobId, uint256 deadline);
    /// @notice The delivery deadline of job `jobId` is `deadline`; it has not passed yet.
    error DeliveryDeadlineNotPassed(uint256 jobId, uint256 deadline);
    /// @notice The result must cover exactly the job's `expected` steps.
    error StepsMismatch(uint256 expected, uint256 submitted);
    /// @notice The challenge window of job `jobId` is open until `windowEnd`.
    error ChallengeWindowOpen(uint256 jobId, uint256 windowEnd);
    /// @notice The challenge window of job `jobId` closed at `windowEnd`.
    error ChallengeWindowClosed(uint256 jobId, uint256 windowEnd);
    /// @notice The challenged step must be below the job's step count.
    error StepOutOfRange(uint256 step, uint256 steps);
    /// @notice A challenge must carry exactly `expected` wei.
    error WrongBond(uint256 expected, uint256 sent);
    /// @notice No earlier-block commitment matches this reveal; commit first, then reveal in a later block.
    error CommitmentNotFound(bytes32 commitment);
    /// @notice The commitment was made in this block; reveal it in a later one.
    error CommitmentTooRecent(bytes32 commitment);
    /// @notice A worker cannot challenge its own result.
    error SelfChallenge();
    /// @notice No dispute resolver is configured, so challenges are disabled.
    error DisputesDisabled();
    /// @notice The dispute of job `jobId` passed its deadline `deadline`; it can only be timed out now.
    error DisputeExpired(uint256 jobId, uint256 deadline);
    /// @notice The dispute of job `jobId` can be timed out only from `deadline`.
    error DisputeNotExpired(uint256 jobId, uint256 deadline);
    /// @notice The validator's free stake is below the minimum.
    error ValidatorStakeTooLow(uint256 freeStake, uint256 minimum);
    /// @notice The caller has no credit to withdraw.
    error NothingToWithdraw();
    /// @notice Only the fee recipient may withdraw the fees.
    error NotFeeRecipient(address caller);
    /// @notice An ETH transfer failed; the state was not changed.
    error TransferFailed();
    /// @notice The market accepts plain ETH only from the stake manager.
    error UnexpectedEther(address sender);
    /// @notice A parameter lies outside `[min, max]`.
    error ParameterOutOfBounds(string name, uint256 value, uint256 min, uint256 max);
    /// @notice A zero address where an account or contract is required.
    error ZeroAddress();
    /// @notice Job `jobId` is a zk job: it has no claim; submit a proof with `submitZkResult`.
    error ZkJobNotClaimable(uint256 jobId);
    /// @notice Job `jobId` is not a zk job.
    error NotZkJob(uint256 jobId);
    /// @notice No verifier is registered as zk circuit `circuit`.
    error UnknownZkCircuit(uint8 circuit);
    /// @notice Zk circuit `circuit` is registered already; circuits are never replaced.
    error ZkCircuitTaken(uint8 circuit);
    /// @notice A verifier must be a deployed contract.
    error NoCode(address account);
    /// @notice A zk commitment must be a non-zero element of BN254's scalar field.
    error InvalidCommitment(bytes32 commitment);
    /// @notice The proof does not prove that the caller computed `outputCommitment` for job
    ///         `jobId`; nothing changed.
    error InvalidProof(uint256 jobId, bytes32 outputCommitment);

    /// @notice `finalStateHash` is not leaf `steps` of the trace root.
    error FinalStateNotInTrace(bytes32 finalStateHash);
    /// @notice The demanded step must lie in `[0, steps]`.
    error DemandStepOutOfRange(uint256 step, uint256 steps);
    /// @notice The demand of job `jobId` must be met by `deadline`, which passed.
    error DemandDeadlinePassed(uint256 jobId, uint256 deadline);
    /// @notice The demand of job `jobId` can be claimed unmet only after `deadline`.
    error DemandDeadlineNotPassed(uint256 jobId, uint256 deadline);
    /// @notice Only the publisher the demand of job `jobId` was made with may report it met.
    error NotPublisher(uint256 jobId, address caller);
    /// @notice No data-availability publisher is configured, so demands are disabled.
    error DemandsDisabled();

    /// @notice The dispute game cannot adjudicate the spec: admit it first
    ///         (`DisputeGame.admitSpec`), which says what it does not support.
    error SpecNotAdmitted(bytes32 specHash);
    /// @notice The job's verification has no dispute game (batch inference).
    error NotDisputable(uint256 jobId);
    /// @notice A zk verifier's code is no longer the code it was registered with.
    error VerifierCodeChanged(uint8 circuit);
    /// @notice No conviction has opened a reward pool for the job.
    error NoRewardPool(uint256 jobId);
    /// @notice The claim period of the job's reward pool is over.
    error ClaimPeriodOver(uint256 jobId, uint256 claimEnd);
    /// @notice The claim period of the job's reward pool still runs: collect after it.
    error ClaimPeriodOpen(uint256 jobId, uint256 claimEnd);
    /// @notice The caller already claimed a share of the job's pool.
    error AlreadyClaimed(uint256 jobId, address claimant);
    /// @notice The caller has no uncollected share of the job's pool.
    error NotClaimant(uint256 jobId, address caller);
    /// @notice The commitment was made in the conviction's block or later.
    error CommitmentTooLate(bytes32 commitment);

    /// @notice Posts a job and escrows `msg.value` as its payment.
    /// @return jobId The new job's id (ids start at 1).
    function postJob(JobRequest calldata request) external payable returns (uint256 jobId);

    /// @notice Posts a zk job and escrows `msg.value`: whoever first submits a valid proof of the
    ///         committed model on the committed batch is paid at once. `request.verification`
    ///         must be `Zk`, `request.specHash` the job commitment `c_job` and
    ///         `request.challengeWindow` zero; proofs are accepted until `request.deliveryDeadline`.
    /// @param circuit A registered zk circuit: the model's architecture and the batch size.
    /// @return jobId The new job's id.
    function postZkJob(JobRequest calldata request, uint8 circuit) external payable returns (uint256 jobId);

    /// @notice Submits a zk job's result with its proof. When the proof verifies, the job is
    ///         finalized and the caller paid the payment less the protocol fee, in this
    ///         transaction; otherwise the call reverts with `InvalidProof`.
    /// @param outputCommitment `c_out`, the Poseidon commitment to the logits.
    /// @param resultCid Binary CIDv1 of the logits blob.
    /// @param proof `[A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y]` for the public inputs
    ///        `c_job`, `c_out` and `keccak256(abi.encode(chainid, market, jobId, caller)) >> 8`:
    ///        bound to this chain, this market, this job and the caller.
    function submitZkResult(
        uint256 jobId,
        bytes32 outputCommitment,
        bytes calldata resultCid,
        uint256[8] calldata proof
    ) external;

    /// @notice Registers `verifier` as zk circuit `circuit` (1 to 255). Admin only, once per
    ///         circuit: a registered verifier is never replaced, so posted jobs keep theirs.
    function registerZkCircuit(uint8 circuit, address verifier) external;

    /// @notice The verifier of zk circuit `circuit` (zero when none).
    function zkVerifierOf(uint8 circuit) external view returns (address);

    /// @notice Cancels a job that nobody claimed yet and credits the full payment to the requester.
    function cancelJob(uint256 jobId) external;

    /// @notice Claims a job for the caller, a staked provider; locks its collateral.
    function claimJob(uint256 jobId) external;

    /// @notice Submits the worker's result and opens the challenge window.
    /// @param steps Steps covered; must equal the job's.
    /// @param traceRoot Merkle root over the state hashes `[h_0 .. h_N]`.
    /// @param auditRoot Merkle root over the audit leaves `[o_0 .. o_{N-1}]` of the steps
    ///        (docs/commitments.md §1), which the audit pool's auditors open; zero: the job is
    ///        not audited and its whole fee goes to the protocol.
    /// @param finalStateHash `h_N`, the hash of the final model and optimizer state.
    /// @param finalProof The siblings proving `h_N` as leaf `N` of `traceRoot` (of `N + 1` leaves).
    /// @param resultCid Binary CIDv1 of the trained model.
    function submitResult(
        uint256 jobId,
        uint256 steps,
        bytes32 traceRoot,
        bytes32 auditRoot,
        bytes32 finalStateHash,
        bytes32[] calldata finalProof,
        bytes calldata resultCid
    ) external;

    /// @notice Demands, with the exact bond `challengeBondOf(jobId)`, that the state after step `step`
    ///         (`0 ..= steps`; `steps` is the result) of a submitted job be published on-chain
    ///         through the publisher (`IDataAvailability`) within the availability period
    ///         (`AVAILABILITY_PERCENT` of the dispute duration). Anyone but the worker may call,
    ///         inside the challenge window, when no demand or dispute is open. Met: the bond goes
    ///         to the worker (it pays for the publication) and the window is extended. Unmet:
    ///         `claimUnavailable`.
    function demandData(uint256 jobId, uint256 step) external payable;

    /// @notice The demand's publisher reports that the demanded state is wholly on-chain,
    ///         before the deadline: the bond goes to the worker, which paid for the
    ///         publication, and the job returns to Submitted with its window extended by the
    ///         demand's duration, and to at least the market's shortest window from now.
    function demandMet(uint256 jobId) external;

    /// @notice After an unmet demand's deadline: the worker loses its collateral, the requester
    ///         gets its payment back and the demander its bond and the challenger reward.
    ///         Anyone may call.
    function claimUnavailable(uint256 jobId) external;

    /// @notice The open data demand of job `jobId` (all zero when there is none).
    function getDemand(uint256 jobId) external view returns (DataDemand memory);

    /// @notice Joins the reward pool of a convicted job by revealing a challenge commitment
    ///         of the caller's made in a block before the conviction (the same preimage as
    ///         `challenge`). The caller needs the free stake a challenge needs. Within the
    ///         pool's claim period; consumes the commitment.
    function claimReward(uint256 jobId, uint256 step, bytes32 claimedStateHash, bytes32 salt) external;

    /// @notice Credits the caller's share of a job's reward pool, after its claim period.
    function collectReward(uint256 jobId) external;

    /// @notice The reward pool of job `jobId` (all zero when there is none).
    function getRewardPool(uint256 jobId) external view returns (RewardPool memory);

    /// @notice Whether `account` claims a share of job `jobId`'s reward pool: 0 no, 1 yes and not
    ///         collected, 2 collected.
    function claimOf(uint256 jobId, address account) external view returns (uint256);

    /// @notice The bond the next challenge or demand of job `jobId` must carry:
    ///         `challengeBond · 2^min(defeats, MAX_BOND_DOUBLINGS)`, where `defeats` counts the
    ///         job's challenges its worker won and its demands it met.
    function challengeBondOf(uint256 jobId) external view returns (uint256);

    /// @notice Pays out a job whose challenge window ended without a pending dispute. Anyone may
    ///         call. An audited job (an audit pool set and a non-zero `auditRoot`) sends
    ///         `AUDIT_SHARE_PERCENT` of its fee to the audit pool (`IAuditPool.fund`) for the
    ///         auditors who re-executed a step of it; if the pool refuses it, the share stays a fee.
    function finalize(uint256 jobId) external;

    /// @notice Refunds a job whose worker missed the delivery deadline and takes the penalty
    ///         from its collateral. Anyone may call.
    function expire(uint256 jobId) external;

    /// @notice First half of a challenge: a hash binding the caller, the job, the step, the claimed
    ///         state hash and a salt, so that nobody can copy the challenge from the mempool.
    /// @param commitment `keccak256(abi.encode(msg.sender, jobId, step, claimedStateHash, salt))`.
    function commitChallenge(uint256 jobId, bytes32 commitment) external;

    /// @notice Second half of a challenge, in a later block than the commitment and inside the
    ///         window: posts the exact bond `challengeBondOf(jobId)` and moves the job to Disputed.
    ///         Only an `Optimistic` (training) job can be challenged (`NotDisputable`).
    function challenge(uint256 jobId, uint256 step, bytes32 claimedStateHash, bytes32 salt) external payable;

    /// @notice The resolver's verdict on the dispute of `jobId`, before the dispute's deadline.
    ///         A resolver must check `getChallenge(jobId)` names the dispute it decided: after a
    ///         timeout the same job may be challenged again.
    /// @param workerLost True when the worker's step was wrong.
    function resolveDispute(uint256 jobId, bool workerLost) external;

    /// @notice Ends a dispute that its resolver did not decide in time: the challenger, who bears
    ///         the burden of proof, loses. Anyone may call.
    function timeoutDispute(uint256 jobId) external;

    /// @notice Sends the caller all of its credit.
    function withdraw() external;

    /// @notice Sends the accrued protocol fees to the fee recipient, who must call.
    function withdrawFees() external;

    /// @notice Sets the market parameters. Admin only; each value within `ProtocolLimits`.
    function setParameters(MarketParams calldata params) external;

    /// @notice Sets the fee recipient. Admin only.
    function setFeeRecipient(address recipient) external;

    /// @notice Sets the data-availability publisher that checks published states; zero
    ///         disables new demands. Admin only; an open demand keeps the publisher it was made with.
    function setPublisher(address publisher) external;

    /// @notice Sets the dispute resolver; zero disables new challenges. Admin only.
    function setResolver(address resolver) external;

    /// @notice Sets the audit pool (`IAuditPool`) that finalized jobs fund; zero stops auditing
    ///         (their whole fee goes to the protocol). Admin only; a job finalized later funds the
    ///         pool set then.
    function setAuditor(address auditor) external;

    /// @notice Pauses new posts and claims. Pauser only. Nothing else is ever paused.
    function pause() external;

    /// @notice Lifts a pause. Pauser only.
    function unpause() external;

    /// @notice The stored job `jobId` (all zero when it does not exist).
    function getJob(uint256 jobId) external view returns (Job memory);

    /// @notice The open challenge of job `jobId` (all zero when there is none).
    function getChallenge(uint256 jobId) external view returns (Challenge memory);

    /// @notice The current market parameters.
    function getParameters() external view returns (MarketParams memory);

    /// @notice The stake manager that holds provider collateral and validator stake.
    function stakeManager() external view returns (IStakeManager);

    /// @notice Credit `account` can withdraw.
    function creditOf(address account) external view returns (uint256);

    /// @notice Fees accrued and not yet withdrawn.
    function feesAccrued() external view returns (uint256);

    /// @notice Escrow and bonds held for jobs that have not settled.
    function totalEscrowed() external view returns (uint256);

    /// @notice Id the next posted job will get.
    function nextJobId() external view returns (uint256);
}
