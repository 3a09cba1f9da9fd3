// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {JobMarketState} from "./JobMarketState.sol";
import {IAuditPool} from "./interfaces/IAuditPool.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IDisputeResolver} from "./interfaces/IDisputeResolver.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {IZkVerifier} from "./interfaces/IZkVerifier.sol";
import {ProtocolLimits} from "./libraries/ProtocolLimits.sol";
import {RewardPools} from "./libraries/RewardPools.sol";
import {TraceMerkle} from "./libraries/TraceMerkle.sol";

/// @title JobMarket
/// @notice Escrow, claims, results, challenge windows and payouts of Pedals jobs.
/// @dev Invariant: `address(this).balance == totalEscrowed + feesAccrued + Σ credits`, where
///      `totalEscrowed` is the payment of every unsettled job plus the bond of every open
///      challenge or demand plus what every reward pool has not paid out. Every payout is a
///      credit that its owner withdraws; nothing is pushed except the caller's own withdrawal
///      and a finalized job's audit share, to the admin's audit pool (`_fundAudit`).
contract JobMarket is AccessControl, Pausable, ReentrancyGuardTransient, JobMarketState {
    /// @notice Role that may pause and unpause new posts and claims.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice The stake manager that holds provider collateral.
    IStakeManager public immutable stakeManager;

    /// @param admin Holder of the default admin role (a timelock in production).
    /// @param pauser Holder of the pauser role.
    /// @param stakeManager_ The stake manager; it must bind this market before the first claim.
    /// @param feeRecipient_ Receiver of protocol fees.
    /// @param params Initial parameters.
    constructor(
        address admin,
        address pauser,
        IStakeManager stakeManager_,
        address feeRecipient_,
        MarketParams memory params
    ) {
        if (admin == address(0) || pauser == address(0) || address(stakeManager_) == address(0)) {
            revert ZeroAddress();
        }
        if (feeRecipient_ == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, pauser);
        stakeManager = stakeManager_;
        feeRecipient = feeRecipient_;
        emit FeeRecipientUpdated(address(0), feeRecipient_);
        _setParameters(params);
        _totals.nextJobId = 1;
    }

    /// @notice Accepts seized collateral from the stake manager only.
    receive() external payable {
        if (msg.sender != address(stakeManager)) revert UnexpectedEther(msg.sender);
    }

    // ─────────────────────────────────────────── requester ───────────────────────────────────────────

    /// @inheritdoc IJobMarket
    function postJob(JobRequest calldata r) external payable whenNotPaused returns (uint256 jobId) {
        if (r.verification == Verification.Zk) revert UnsupportedVerification(r.verification);
        MarketParams memory p = _params;
        if (r.challengeWindow < p.minChallengeWindow || r.challengeWindow > p.maxChallengeWindow) {
            revert ChallengeWindowOutOfBounds(r.challengeWindow, p.minChallengeWindow, p.maxChallengeWindow);
        }
        Job storage job;
        (jobId, job) = _post(r, p.protocolFeeBps);
        // A training job is posted only if the game can adjudicate its every step (and each of
        // the game's moves fits a block), with the step count its spec was admitted with (the
        // game rebuilds the spec from the job's steps); a batch-inference job has no game.
        if (r.verification == Verification.Optimistic) {
            address resolver_ = resolver;
            if (resolver_ == address(0) || IDisputeResolver(resolver_).admittedSteps(r.specHash) != r.steps) {
                revert SpecNotAdmitted(r.specHash);
            }
        }
        job.challengeWindow = r.challengeWindow;
        emit JobPosted(jobId, msg.sender, msg.value, r);
    }

    /// @inheritdoc IJobMarket
    function postZkJob(JobRequest calldata r, uint8 circuit)
        external
        payable
        whenNotPaused
        returns (uint256 jobId)
    {
        if (r.verification != Verification.Zk) revert UnsupportedVerification(r.verification);
        if (r.challengeWindow != 0) revert ChallengeWindowOutOfBounds(r.challengeWindow, 0, 0);
        if (_zkVerifiers[circuit] == address(0)) revert UnknownZkCircuit(circuit);
        // The spec hash is the job commitment c_job, the proof's first public input.
        if (uint256(r.specHash) >= ProtocolLimits.SNARK_SCALAR_FIELD) revert InvalidCommitment(r.specHash);
        Job storage job;
        (jobId, job) = _post(r, _params.protocolFeeBps);
        job.zkCircuit = circuit;
        emit JobPosted(jobId, msg.sender, msg.value, r);
        emit ZkJobPosted(jobId, circuit);
    }

    /// @inheritdoc IJobMarket
    function cancelJob(uint256 jobId) external {
        Job storage job = _jobAt(jobId, JobStatus.Posted);
        if (msg.sender != job.requester) revert NotRequester(jobId, msg.sender);
        uint256 refund = job.payment;
        job.status = JobStatus.Cancelled;
        _totals.escrowed -= uint96(refund);
        _credits[msg.sender] += refund;
        emit JobCancelled(jobId, refund);
    }

    // ─────────────────────────────────────────── provider ────────────────────────────────────────────

    /// @inheritdoc IJobMarket
    function claimJob(uint256 jobId) external whenNotPaused {
        Job storage job = _jobAt(jobId, JobStatus.Posted);
        if (job.verification == Verification.Zk) revert ZkJobNotClaimable(jobId);
        if (block.timestamp > job.claimDeadline) revert ClaimDeadlinePassed(jobId, job.claimDeadline);
        MarketParams memory p = _params;
        uint256 collateral = uint256(job.payment) * p.collateralBps / ProtocolLimits.BPS;
        job.worker = msg.sender;
        job.collateral = uint96(collateral);
        job.status = JobStatus.Claimed;
        // The worker accepts the penalty and reward rates in force now; later changes do not apply.
        job.expiryPenaltyBps = p.expiryPenaltyBps;
        job.challengerRewardBps = p.challengerRewardBps;
        emit JobClaimed(jobId, msg.sender, collateral);
        stakeManager.lockCollateral(msg.sender, collateral, p.minProviderStake);
    }

    /// @inheritdoc IJobMarket
    function submitResult(
        uint256 jobId,
        uint256 steps,
        bytes32 traceRoot,
        bytes32 auditRoot,
        bytes32 finalStateHash,
        bytes32[] calldata finalProof,
        bytes calldata resultCid
    ) external {
        Job storage job = _jobAt(jobId, JobStatus.Claimed);
        if (msg.sender != job.worker) revert NotWorker(jobId, msg.sender);
        if (block.timestamp > job.deliveryDeadline) {
            revert DeliveryDeadlinePassed(jobId, job.deliveryDeadline);
        }
        if (steps != job.steps) revert StepsMismatch(job.steps, steps);
        if (traceRoot == bytes32(0) || finalStateHash == bytes32(0)) revert ZeroHash();
        // The result is the trace's last state, so a demand of step `steps` delivers the result.
        if (!TraceMerkle.verify(traceRoot, finalStateHash, steps, steps + 1, finalProof)) {
            revert FinalStateNotInTrace(finalStateHash);
        }
        _checkCid(resultCid);
        uint256 windowEnd = block.timestamp + job.challengeWindow;
        job.status = JobStatus.Submitted;
        job.windowEnd = uint40(windowEnd);
        job.traceRoot = traceRoot;
        // Zero is the worker's choice not to be audited; a root nobody can open only starves the
        // auditors, and their share then goes to the requester (`AuditPool.releaseAudit`).
        job.auditRoot = auditRoot;
        emit ResultSubmitted(jobId, msg.sender, steps, traceRoot, finalStateHash, resultCid, windowEnd);
    }

    /// @inheritdoc IJobMarket
    function submitZkResult(
        uint256 jobId,
        bytes32 outputCommitment,
        bytes calldata resultCid,
        uint256[8] calldata proof
    ) external nonReentrant {
        Job storage job = _jobAt(jobId, JobStatus.Posted);
        if (job.verification != Verification.Zk) revert NotZkJob(jobId);
        if (block.timestamp > job.deliveryDeadline) {
            revert DeliveryDeadlinePassed(jobId, job.deliveryDeadline);
        }
        _checkCid(resultCid);
        address verifier = _zkVerifiers[job.zkCircuit];
        if (verifier.codehash != _zkCodeHashes[job.zkCircuit]) revert VerifierCodeChanged(job.zkCircuit);
        // The verifier refuses inputs at or above the field's modulus, so `c_out` needs no check
        // here. The last input binds the proof to this chain, market, job and caller (its top
        // 248 bits, below the modulus): a proof copied from the mempool, or made for another
        // job with the same commitments, is useless.
        uint256 binding = uint256(keccak256(abi.encode(block.chainid, address(this), jobId, msg.sender))) >> 8;
        bool ok = IZkVerifier(verifier)
            .verifyProof(
                [proof[0], proof[1]],
                [proof[2], proof[3], proof[4], proof[5]],
                [proof[6], proof[7]],
                [uint256(job.specHash), uint256(outputCommitment), binding]
            );
        if (!ok) revert InvalidProof(jobId, outputCommitment);

        uint256 payment = job.payment;
        uint256 fee = payment * job.feeBps / ProtocolLimits.BPS;
        uint256 payout = payment - fee;
        // The prover is not stored: it is in ZkResultAccepted, and a new slot would cost 22k
        // gas, more than a twentieth of the whole job.
        job.status = JobStatus.Finalized;
        Totals storage t = _totals;
        t.escrowed -= uint96(payment);
        t.feesAccrued += uint96(fee);
        emit ZkResultAccepted(jobId, msg.sender, outputCommitment, resultCid);
        emit JobFinalized(jobId, msg.sender, payout, fee);
        // The payout goes to the caller in its own call; a caller that refuses it only undoes
        // its own submission.
        // slither-disable-next-line arbitrary-send-eth
        (bool sent,) = msg.sender.call{value: payout}("");
        if (!sent) revert TransferFailed();
    }

    // ─────────────────────────────────────────── settlement ──────────────────────────────────────────

    /// @inheritdoc IJobMarket
    function finalize(uint256 jobId) external {
        Job storage job = _jobAt(jobId, JobStatus.Submitted);
        if (block.timestamp < job.windowEnd) revert ChallengeWindowOpen(jobId, job.windowEnd);
        uint256 payment = job.payment;
        uint256 fee = payment * job.feeBps / ProtocolLimits.BPS;
        uint256 payout = payment - fee;
        address worker = job.worker;
        uint256 collateral = job.collateral;
        // Audited: the worker committed an audit root and the market has an audit pool. The
        // share is of the fee as charged, rounded down, and the fees keep the rest: the two add
        // up to the fee exactly, so the division before the multiplication loses no wei.
        address pool = job.auditRoot != bytes32(0) ? auditor : address(0);
        // slither-disable-next-line divide-before-multiply
        uint256 audit = pool != address(0) ? fee * AUDIT_SHARE_PERCENT / 100 : 0;
        fee -= audit;
        job.status = JobStatus.Finalized;
        Totals storage t = _totals;
        t.escrowed -= uint96(payment);
        t.feesAccrued += uint96(fee);
        _credits[worker] += payout;
        emit JobFinalized(jobId, worker, payout, fee);
        stakeManager.releaseCollateral(worker, collateral);
        // Last, after every state change; the one write after it (`_fundAudit`) happens only when
        // the pool's call failed, so nothing the pool did in it survives.
        // slither-disable-next-line reentrancy-no-eth
        if (pool != address(0)) _fundAudit(pool, jobId, audit);
    }

    /// @inheritdoc IJobMarket
    function expire(uint256 jobId) external nonReentrant {
        Job storage job = _jobAt(jobId, JobStatus.Claimed);
        if (block.timestamp <= job.deliveryDeadline) {
            revert DeliveryDeadlineNotPassed(jobId, job.deliveryDeadline);
        }
        uint256 refund = job.payment;
        uint256 collateral = job.collateral;
        uint256 penalty = collateral * job.expiryPenaltyBps / ProtocolLimits.BPS;
        address worker = job.worker;
        address requester = job.requester;
        job.status = JobStatus.Expired;
        _totals.escrowed -= uint96(refund);
        _credits[requester] += refund + penalty;
        emit JobExpired(jobId, worker, refund, penalty);
        if (penalty != 0) stakeManager.seizeCollateral(worker, penalty);
        if (collateral != penalty) stakeManager.releaseCollateral(worker, collateral - penalty);
    }

    // ─────────────────────────────────────────── challenges ──────────────────────────────────────────

    /// @inheritdoc IJobMarket
    function commitChallenge(uint256 jobId, bytes32 commitment) external {
        Job storage job = _jobs[jobId];
        JobStatus status = job.status;
        if (status != JobStatus.Submitted && status != JobStatus.Disputed && status != JobStatus.Demanded) {
            if (status == JobStatus.None) revert JobNotFound(jobId);
            revert WrongStatus(jobId, JobStatus.Submitted, status);
        }
        if (commitment == bytes32(0)) revert ZeroHash();
        // slither-disable-next-line incorrect-equality
        if (_commitments[commitment] == 0) _commitments[commitment] = block.number;
        emit ChallengeCommitted(jobId, msg.sender, commitment);
    }

    /// @inheritdoc IJobMarket
    function challenge(uint256 jobId, uint256 step, bytes32 claimedStateHash, bytes32 salt) external payable {
        Job storage job = _jobAt(jobId, JobStatus.Submitted);
        if (block.timestamp >= job.windowEnd) revert ChallengeWindowClosed(jobId, job.windowEnd);
        if (step >= job.steps) revert StepOutOfRange(step, job.steps);
        if (claimedStateHash == bytes32(0)) revert ZeroHash();
        if (msg.sender == job.worker) revert SelfChallenge();
        if (job.verification != Verification.Optimistic) revert NotDisputable(jobId);
        address resolver_ = resolver;
        if (resolver_ == address(0)) revert DisputesDisabled();
        (uint256 deadline, uint256 duration) = _checkChallenger(jobId);
        _consumeCommitment(keccak256(abi.encode(msg.sender, jobId, step, claimedStateHash, salt)));

        job.status = JobStatus.Disputed;
        _totals.escrowed += uint96(msg.value);
        _challenges[jobId] = Challenge({
            challenger: msg.sender,
            openedAt: uint40(block.timestamp),
            step: uint32(step),
            disputeDuration: uint24(duration),
            resolver: resolver_,
            bond: uint96(msg.value),
            claimedStateHash: claimedStateHash
        });
        emit ChallengeOpened(jobId, msg.sender, step, claimedStateHash, msg.value, resolver_, deadline);
        IDisputeResolver(resolver_)
            .disputeOpened(jobId, step, job.worker, msg.sender, job.traceRoot, claimedStateHash, deadline);
    }

    /// @inheritdoc IJobMarket
    function resolveDispute(uint256 jobId, bool workerLost) external nonReentrant {
        Job storage job = _jobAt(jobId, JobStatus.Disputed);
        Challenge memory c = _challenges[jobId];
        if (msg.sender != c.resolver) revert NotResolver(jobId, msg.sender);
        uint256 deadline = uint256(c.openedAt) + c.disputeDuration;
        if (block.timestamp >= deadline) revert DisputeExpired(jobId, deadline);
        if (workerLost) _settleDisputeLost(jobId, job, c);
        else _settleChallengerLost(jobId, job, c, false);
    }

    /// @inheritdoc IJobMarket
    function timeoutDispute(uint256 jobId) external {
        Job storage job = _jobAt(jobId, JobStatus.Disputed);
        Challenge memory c = _challenges[jobId];
        uint256 deadline = uint256(c.openedAt) + c.disputeDuration;
        if (block.timestamp < deadline) revert DisputeNotExpired(jobId, deadline);
        _settleChallengerLost(jobId, job, c, true);
    }

    // ─────────────────────────────────────────── availability ────────────────────────────────────────

    /// @inheritdoc IJobMarket
    function demandData(uint256 jobId, uint256 step) external payable {
        Job storage job = _jobAt(jobId, JobStatus.Submitted);
        if (block.timestamp >= job.windowEnd) revert ChallengeWindowClosed(jobId, job.windowEnd);
        if (step > job.steps) revert DemandStepOutOfRange(step, job.steps);
        if (msg.sender == job.worker) revert SelfChallenge();
        address publisher_ = publisher;
        if (publisher_ == address(0)) revert DemandsDisabled();
        uint256 bond = _bondOf(jobId);
        if (msg.value != bond) revert WrongBond(bond, msg.value);
        uint256 deadline = block.timestamp + uint256(_params.maxDisputeDuration) * AVAILABILITY_PERCENT / 100;
        job.status = JobStatus.Demanded;
        _totals.escrowed += uint96(msg.value);
        _demands[jobId] = DataDemand({
            demander: msg.sender,
            openedAt: uint40(block.timestamp),
            deadline: uint40(deadline),
            publisher: publisher_,
            bond: uint96(msg.value),
            step: uint32(step)
        });
        emit DataDemanded(jobId, msg.sender, step, msg.value, deadline);
    }

    /// @inheritdoc IJobMarket
    function demandMet(uint256 jobId) external {
        Job storage job = _jobAt(jobId, JobStatus.Demanded);
        DataDemand storage d = _demands[jobId];
        if (msg.sender != d.publisher) revert NotPublisher(jobId, msg.sender);
        if (block.timestamp > d.deadline) revert DemandDeadlinePassed(jobId, d.deadline);
        _demandMet(jobId, job, d);
    }

    /// @dev The whole demanded state is on-chain: the bond goes to the worker, which paid for
    ///      the publication, and the window gets back the time the demand took, and at least the
    ///      market's shortest window from now, so that validators can check what was published.
    function _demandMet(uint256 jobId, Job storage job, DataDemand storage d) internal {
        uint256 step = d.step;
        uint256 bond = d.bond;
        uint256 windowEnd = uint256(job.windowEnd) + (block.timestamp - d.openedAt);
        uint256 review = block.timestamp + _params.minChallengeWindow;
        if (windowEnd < review) windowEnd = review;
        delete _demands[jobId];
        ++_defeats[jobId];
        job.status = JobStatus.Submitted;
        job.windowEnd = uint40(windowEnd);
        _totals.escrowed -= uint96(bond);
        _credits[job.worker] += bond;
        emit DataPublished(jobId, step, windowEnd);
    }

    /// @inheritdoc IJobMarket
    function claimUnavailable(uint256 jobId) external nonReentrant {
        Job storage job = _jobAt(jobId, JobStatus.Demanded);
        DataDemand memory d = _demands[jobId];
        if (block.timestamp <= d.deadline) revert DemandDeadlineNotPassed(jobId, d.deadline);
        delete _demands[jobId];
        (uint256 demanderPayout, uint256 requesterPayout) = _settleWorkerLost(jobId, job, d.demander, d.bond);
        emit DataUnavailable(jobId, d.demander, demanderPayout, requesterPayout);
        stakeManager.seizeCollateral(job.worker, job.collateral);
    }

    // ─────────────────────────────────────────── rewards ─────────────────────────────────────────────

    /// @inheritdoc IJobMarket
    function claimReward(uint256 jobId, uint256 step, bytes32 claimedStateHash, bytes32 salt) external {
        if (msg.sender == _jobs[jobId].worker) revert SelfChallenge();
        _checkValidatorStake();
        bytes32 commitment = keccak256(abi.encode(msg.sender, jobId, step, claimedStateHash, salt));
        uint256 claimants =
            RewardPools.join(_pools[jobId], _claims[jobId], jobId, commitment, _commitments[commitment]);
        _consumeCommitment(commitment);
        emit RewardClaimed(jobId, msg.sender, claimants);
    }

    /// @inheritdoc IJobMarket
    function collectReward(uint256 jobId) external {
        uint256 share = RewardPools.collect(_pools[jobId], _claims[jobId], jobId);
        _totals.escrowed -= uint96(share);
        _credits[msg.sender] += share;
        emit RewardCollected(jobId, msg.sender, share);
    }

    // ─────────────────────────────────────────── payouts ─────────────────────────────────────────────

    /// @inheritdoc IJobMarket
    function withdraw() external nonReentrant {
        uint256 amount = _credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        _credits[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc IJobMarket
    function withdrawFees() external nonReentrant {
        if (msg.sender != feeRecipient) revert NotFeeRecipient(msg.sender);
        uint256 amount = _totals.feesAccrued;
        if (amount == 0) revert NothingToWithdraw();
        _totals.feesAccrued = 0;
        emit FeesWithdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ─────────────────────────────────────────── admin ───────────────────────────────────────────────

    /// @inheritdoc IJobMarket
    function setParameters(MarketParams calldata params) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setParameters(params);
    }

    /// @inheritdoc IJobMarket
    function setFeeRecipient(address recipient) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (recipient == address(0)) revert ZeroAddress();
        address old = feeRecipient;
        feeRecipient = recipient;
        emit FeeRecipientUpdated(old, recipient);
    }

    /// @inheritdoc IJobMarket
    function setResolver(address resolver_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        address old = resolver;
        resolver = resolver_;
        emit ResolverUpdated(old, resolver_);
    }

    /// @inheritdoc IJobMarket
    function setPublisher(address publisher_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        address old = publisher;
        publisher = publisher_;
        emit PublisherUpdated(old, publisher_);
    }

    /// @inheritdoc IJobMarket
    function setAuditor(address auditor_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        address old = auditor;
        auditor = auditor_;
        emit AuditorUpdated(old, auditor_);
    }

    /// @inheritdoc IJobMarket
    function registerZkCircuit(uint8 circuit, address verifier) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (circuit == 0) revert UnknownZkCircuit(circuit);
        if (verifier.code.length == 0) revert NoCode(verifier);
        if (_zkVerifiers[circuit] != address(0)) revert ZkCircuitTaken(circuit);
        _zkVerifiers[circuit] = verifier;
        // Pinned: a verifier whose code changes (a metamorphic contract) stops being accepted.
        _zkCodeHashes[circuit] = verifier.codehash;
        emit ZkCircuitRegistered(circuit, verifier);
    }

    /// @inheritdoc IJobMarket
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @inheritdoc IJobMarket
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ─────────────────────────────────────────── internal ────────────────────────────────────────────

    /// @dev The checks and the storage every new job shares; escrows `msg.value`.
    function _post(JobRequest calldata r, uint16 feeBps) internal returns (uint256 jobId, Job storage job) {
        if (msg.value == 0) revert ZeroPayment();
        if (msg.value < ProtocolLimits.MIN_PAYMENT) {
            revert PaymentTooSmall(msg.value, ProtocolLimits.MIN_PAYMENT);
        }
        if (msg.value > ProtocolLimits.MAX_PAYMENT) {
            revert PaymentTooLarge(msg.value, ProtocolLimits.MAX_PAYMENT);
        }
        if (r.steps == 0) revert ZeroSteps();
        if (r.specHash == bytes32(0)) revert ZeroHash();
        _checkCid(r.modelCid);
        _checkCid(r.datasetCid);
        if (r.claimDeadline <= block.timestamp) revert DeadlineInPast(r.claimDeadline, block.timestamp);
        uint256 latest = block.timestamp + ProtocolLimits.MAX_JOB_DURATION;
        if (r.deliveryDeadline <= r.claimDeadline || r.deliveryDeadline > latest) {
            revert InvalidDeliveryDeadline(r.claimDeadline, r.deliveryDeadline, latest);
        }

        Totals memory t = _totals;
        jobId = t.nextJobId;
        _totals = Totals({
            nextJobId: t.nextJobId + 1, feesAccrued: t.feesAccrued, escrowed: t.escrowed + uint96(msg.value)
        });

        job = _jobs[jobId];
        job.requester = msg.sender;
        job.payment = uint96(msg.value);
        job.status = JobStatus.Posted;
        job.verification = r.verification;
        job.feeBps = feeBps;
        job.steps = r.steps;
        job.claimDeadline = r.claimDeadline;
        job.deliveryDeadline = r.deliveryDeadline;
        job.specHash = r.specHash;
    }

    /// @dev The status guard at the top of every state-machine entry point.
    function _jobAt(uint256 jobId, JobStatus expected) internal view returns (Job storage job) {
        job = _jobs[jobId];
        JobStatus actual = job.status;
        if (actual != expected) {
            if (actual == JobStatus.None) revert JobNotFound(jobId);
            revert WrongStatus(jobId, expected, actual);
        }
    }

    /// @dev Checks the caller's bond and stake; returns the deadline and duration of the
    ///      dispute it would open.
    function _checkChallenger(uint256 jobId) internal view returns (uint256 deadline, uint256 duration) {
        uint256 bond = _bondOf(jobId);
        if (msg.value != bond) revert WrongBond(bond, msg.value);
        _checkValidatorStake();
        duration = _params.maxDisputeDuration;
        deadline = block.timestamp + duration;
    }

    /// @dev A challenger or reward claimant needs the market's minimum free validator stake.
    function _checkValidatorStake() internal view {
        uint256 minStake = _params.minValidatorStake;
        uint256 free = stakeManager.freeStakeOf(msg.sender);
        if (free < minStake) revert ValidatorStakeTooLow(free, minStake);
    }

    /// @dev Deletes a commitment made in an earlier block, or reverts.
    function _consumeCommitment(bytes32 commitment) internal {
        uint256 committedAt = _commitments[commitment];
        // slither-disable-next-line incorrect-equality
        if (committedAt == 0) revert CommitmentNotFound(commitment);
        if (committedAt >= block.number) revert CommitmentTooRecent(commitment);
        delete _commitments[commitment];
    }

    /// @dev Worker lost a dispute: its collateral is seized; the challenger gets its bond back plus
    ///      the reward share of the collateral; the requester gets the payment and the rest.
    function _settleDisputeLost(uint256 jobId, Job storage job, Challenge memory c) internal {
        delete _challenges[jobId];
        (uint256 challengerPayout, uint256 requesterPayout) =
            _settleWorkerLost(jobId, job, c.challenger, c.bond);
        emit DisputeResolved(jobId, true, false, challengerPayout, requesterPayout, 0);
        stakeManager.seizeCollateral(job.worker, job.collateral);
    }

    /// @dev The accounting of a worker that lost (a dispute or a demand): its whole collateral
    ///      is seized; `winner` gets `bond` back and is the first claimant of a reward pool of
    ///      the reward share of the collateral, which every challenger that committed before
    ///      this block may join (so a worker's puppet that convicts it first shares the reward
    ///      with the honest validators instead of taking it); the requester gets the payment
    ///      and the rest. Returns the winner's bond and the requester's payout. The caller
    ///      seizes the collateral last.
    function _settleWorkerLost(uint256 jobId, Job storage job, address winner, uint256 bond)
        internal
        returns (uint256 winnerPayout, uint256 requesterPayout)
    {
        uint256 collateral = job.collateral;
        uint256 reward = collateral * job.challengerRewardBps / ProtocolLimits.BPS;
        uint256 claimEnd = block.timestamp + uint256(_params.maxDisputeDuration) * REWARD_CLAIM_PERCENT / 100;
        winnerPayout = bond;
        requesterPayout = uint256(job.payment) + (collateral - reward);
        job.status = JobStatus.Resolved;
        // The reward stays escrowed in the pool until its claimants collect it.
        _totals.escrowed = uint96(_totals.escrowed + reward - uint256(job.payment) - bond);
        RewardPools.open(_pools[jobId], _claims[jobId], winner, reward, claimEnd);
        _credits[winner] += winnerPayout;
        _credits[job.requester] += requesterPayout;
        emit RewardPoolOpened(jobId, reward, claimEnd);
    }

    /// @dev Challenger lost (or let the dispute time out): the bond goes to the worker and the job
    ///      returns to Submitted with the rest of its window, so other validators can still challenge.
    function _settleChallengerLost(uint256 jobId, Job storage job, Challenge memory c, bool timedOut)
        internal
    {
        uint256 windowEnd = uint256(job.windowEnd) + (block.timestamp - c.openedAt);
        ++_defeats[jobId];
        job.status = JobStatus.Submitted;
        job.windowEnd = uint40(windowEnd);
        _totals.escrowed -= c.bond;
        delete _challenges[jobId];
        _credits[job.worker] += c.bond;
        emit DisputeResolved(jobId, false, timedOut, 0, 0, windowEnd);
    }

    /// @dev Sends a finalized job's audit share to the audit pool, last (every state change is
    ///      made). The pool is the admin's choice and may be broken: if its `fund` fails, the
    ///      share is a fee like the rest, so that no pool can freeze a worker's payment.
    function _fundAudit(address pool, uint256 jobId, uint256 audit) internal {
        bytes4 selector = IAuditPool.fund.selector;
        bool ok;
        // `pool.call{value: audit}(abi.encodeCall(IAuditPool.fund, (jobId)))` without copying the
        // pool's return data, in fewer bytes than the encoder's (EIP-170).
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, selector)
            mstore(add(p, 4), jobId)
            ok := call(gas(), pool, audit, p, 0x24, 0, 0)
        }
        if (!ok) _totals.feesAccrued += uint96(audit);
    }

    function _setParameters(MarketParams memory p) internal {
        ProtocolLimits.checkParams(p);
        MarketParams memory old = _params;
        _params = p;
        emit ParametersUpdated(old, p);
    }

    function _checkCid(bytes calldata cid) internal pure {
        if (cid.length < 2 || cid.length > ProtocolLimits.MAX_CID_LENGTH || cid[0] != 0x01) {
            revert InvalidCid();
        }
    }
}
