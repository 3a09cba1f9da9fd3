// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAuditPool} from "./interfaces/IAuditPool.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {TraceMerkle} from "./libraries/TraceMerkle.sol";

/// @title AuditPool
/// @notice Pays the validators who audit jobs that nobody cheated on: at finalization the
///         market funds a job's pool with part of its fee (`JobMarket.AUDIT_SHARE_PERCENT`),
///         and every auditor who committed, during the job's challenge window, to one of the
///         audit leaves under its audit root and opens it after finalization takes an equal
///         share. See `IAuditPool` for why a commitment cannot be copied.
/// @dev Invariant: `address(this).balance == Σ_jobs (pool.amount − what its auditors
///      collected)` (a released pool's amount is zero). The pool holds no one's money but the
///      auditors' and, when none revealed, the requester's; each is sent straight to its owner
///      (the caller's own share, or the requester's refund), so there are no credits.
contract AuditPool is IAuditPool {
    /// @notice Length of a pool's reveal period, in percent of the market's dispute duration
    ///         when the pool is funded (9.6 hours with the default 24-hour duration): long enough
    ///         for an auditor to see the job finalized and reveal, short enough that the money
    ///         does not wait long for it.
    uint256 public constant REVEAL_PERCENT = 40;

    /// @notice The market whose jobs this pool audits; the only account that funds pools.
    IJobMarket public immutable market;
    /// @dev The market's stake manager (immutable there too), where an auditor's stake is.
    IStakeManager internal immutable _stakeManager;

    mapping(uint256 jobId => Pool) internal _pools;
    mapping(uint256 jobId => mapping(address auditor => bytes32)) internal _commitments;
    mapping(uint256 jobId => mapping(address auditor => AuditStatus)) internal _statuses;

    /// @param market_ The market; it funds pools once its admin sets this contract as its
    ///        `auditor`.
    constructor(IJobMarket market_) {
        if (address(market_) == address(0)) revert ZeroAddress();
        market = market_;
        _stakeManager = market_.stakeManager();
    }

    /// @inheritdoc IAuditPool
    /// @dev Why each rule: the status, because a commitment made after finalization could
    ///      copy an opening already revealed (reveals start only then); the worker, because it
    ///      knows every audit leaf without re-executing anything and would only take back
    ///      part of the fee it paid; the validator stake, because a share is per account, and
    ///      without a price per account one auditor (or the worker, through puppets) could
    ///      split itself into many and take most of the pool; one commitment per account, for
    ///      the same reason.
    function commitAudit(uint256 jobId, bytes32 commitment) external {
        IJobMarket.Job memory job = market.getJob(jobId);
        IJobMarket.JobStatus status = job.status;
        if (
            status != IJobMarket.JobStatus.Submitted && status != IJobMarket.JobStatus.Disputed
                && status != IJobMarket.JobStatus.Demanded
        ) revert AuditCommitClosed(jobId, uint8(status));
        if (job.auditRoot == bytes32(0)) revert NotAudited(jobId);
        if (commitment == bytes32(0)) revert ZeroCommitment();
        if (msg.sender == job.worker) revert SelfAudit(jobId);
        uint256 minStake = market.getParameters().minValidatorStake;
        uint256 free = _stakeManager.freeStakeOf(msg.sender);
        if (free < minStake) revert ValidatorStakeTooLow(free, minStake);
        if (_statuses[jobId][msg.sender] != AuditStatus.None) revert AlreadyCommitted(jobId, msg.sender);
        _statuses[jobId][msg.sender] = AuditStatus.Committed;
        _commitments[jobId][msg.sender] = commitment;
        emit AuditCommitted(jobId, msg.sender, commitment);
    }

    /// @inheritdoc IAuditPool
    /// @dev `msg.value` is a share of a job's fee, below `ProtocolLimits.MAX_PAYMENT` < 2^96.
    function fund(uint256 jobId) external payable {
        if (msg.sender != address(market)) revert NotMarket(msg.sender);
        Pool storage pool = _pools[jobId];
        if (pool.revealEnd != 0) revert AlreadyFunded(jobId);
        uint256 revealEnd =
            block.timestamp + uint256(market.getParameters().maxDisputeDuration) * REVEAL_PERCENT / 100;
        pool.amount = uint96(msg.value);
        pool.revealEnd = uint40(revealEnd);
        emit AuditFunded(jobId, msg.value, revealEnd);
    }

    /// @inheritdoc IAuditPool
    /// @dev The commitment binds the caller's address, so a commitment copied from another
    ///      auditor's transaction opens only for that auditor; and the job is finalized before
    ///      the first reveal, so a revealed `auditLeaf` comes too late to be committed by anyone.
    ///      The leaf count is the job's step count: one audit leaf per step.
    function revealAudit(uint256 jobId, uint256 step, bytes32 auditLeaf, bytes32[] calldata proof) external {
        Pool storage pool = _pools[jobId];
        uint256 revealEnd = pool.revealEnd;
        if (revealEnd == 0) revert NotFunded(jobId);
        if (block.timestamp > revealEnd) revert RevealPeriodOver(jobId, revealEnd);
        AuditStatus status = _statuses[jobId][msg.sender];
        if (status != AuditStatus.Committed) revert NotCommitted(jobId, msg.sender, status);
        bytes32 committed = _commitments[jobId][msg.sender];
        bytes32 revealed = auditCommitment(msg.sender, jobId, step, auditLeaf);
        if (committed != revealed) revert CommitmentMismatch(committed, revealed);
        IJobMarket.Job memory job = market.getJob(jobId);
        if (!TraceMerkle.verify(job.auditRoot, auditLeaf, step, job.steps, proof)) {
            revert NotInAuditRoot(jobId, step, auditLeaf);
        }
        _statuses[jobId][msg.sender] = AuditStatus.Revealed;
        ++pool.revealed;
        emit AuditRevealed(jobId, msg.sender, step, auditLeaf);
    }

    /// @inheritdoc IAuditPool
    /// @dev Shares are fixed only once the reveal period is over, when the number of revealers
    ///      is final. The caller is paid in its own call: one that refuses ETH undoes only its
    ///      own collection.
    function collectAudit(uint256 jobId) external {
        Pool storage pool = _pools[jobId];
        Pool memory p = pool;
        if (block.timestamp <= p.revealEnd) revert RevealPeriodOpen(jobId, p.revealEnd);
        AuditStatus status = _statuses[jobId][msg.sender];
        if (status != AuditStatus.Revealed) revert NotRevealed(jobId, msg.sender, status);
        uint256 amount = _shareOf(p);
        _statuses[jobId][msg.sender] = AuditStatus.Collected;
        pool.collected = p.collected + 1;
        emit AuditCollected(jobId, msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc IAuditPool
    /// @dev To the requester, not back to the worker: a worker that committed an audit root
    ///      nobody can open (garbage, or roots it never serves the paths of) starves its
    ///      auditors, and must not get the share back for it. The requester paid the fee; the
    ///      protocol, which keeps the rest of it, gains nothing from an unaudited job either.
    function releaseAudit(uint256 jobId) external {
        Pool storage pool = _pools[jobId];
        Pool memory p = pool;
        if (p.revealEnd == 0) revert NotFunded(jobId);
        if (block.timestamp <= p.revealEnd) revert RevealPeriodOpen(jobId, p.revealEnd);
        if (p.revealed != 0) revert AuditorsRevealed(jobId, p.revealed);
        if (p.amount == 0) revert NothingToRelease(jobId);
        address requester = market.getJob(jobId).requester;
        pool.amount = 0;
        emit AuditReleased(jobId, requester, p.amount);
        // To the job's requester as the market recorded it, never to an address of the caller's
        // choosing; a requester that refuses ETH keeps only its own refund here.
        // slither-disable-next-line arbitrary-send-eth
        (bool ok,) = requester.call{value: p.amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc IAuditPool
    function getPool(uint256 jobId) external view returns (Pool memory) {
        return _pools[jobId];
    }

    /// @inheritdoc IAuditPool
    function auditStatusOf(uint256 jobId, address auditor) external view returns (AuditStatus) {
        return _statuses[jobId][auditor];
    }

    /// @inheritdoc IAuditPool
    function commitmentOf(uint256 jobId, address auditor) external view returns (bytes32) {
        return _commitments[jobId][auditor];
    }

    /// @inheritdoc IAuditPool
    function auditCommitment(address auditor, uint256 jobId, uint256 step, bytes32 auditLeaf)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(auditor, jobId, step, auditLeaf));
    }

    /// @dev The next collector's share of pool `p`: `amount / revealed`, and to the last of
    ///      the `revealed` collectors also the remainder `amount % revealed`, so that the shares
    ///      add up to `amount` exactly (nothing is stranded by the rounding).
    function _shareOf(Pool memory p) internal pure returns (uint256 share) {
        share = uint256(p.amount) / p.revealed;
        if (uint256(p.collected) + 1 == p.revealed) share += uint256(p.amount) % p.revealed;
    }
}
