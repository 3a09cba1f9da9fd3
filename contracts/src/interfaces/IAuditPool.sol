// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IJobMarket} from "./IJobMarket.sol";

/// @title IAuditPool
/// @notice Paid auditing of jobs nobody cheated on (the verifier's dilemma): a challenge pays
///         only when it convicts, so where every worker is honest nobody would be paid to check
///         them, and soon nobody would. A finalized job that its worker committed an audit root
///         for (`IJobMarket.Job.auditRoot`, the Merkle root over the audit leaves of its
///         steps) sends `AUDIT_SHARE_PERCENT` of its protocol fee here; the validators who proved
///         they re-executed one of its steps share it equally.
/// @dev Lifecycle of one auditor of one job:
///      None ─commitAudit (job Submitted, Disputed or Demanded)→ Committed
///      Committed ─revealAudit (pool funded, until revealEnd)→ Revealed
///      Revealed ─collectAudit (after revealEnd)→ Collected
///      A pool nobody revealed in goes to the job's requester (`releaseAudit`).
///      The proof of work is the audit leaf `auditLeaf_i` of a step `i` (the row root of the
///      step's first-layer bias gradient, docs/commitments.md §8): only someone who ran the
///      step's forward and backward passes can compute it (the worker serves the siblings of
///      its path, never the leaves).
///      It is committed to, bound to the auditor, while the job can still be challenged, and
///      revealed only once the job is finalized, when nobody can commit any more: a revealed
///      value cannot be copied into a commitment in time, and a copied commitment names its
///      author.
interface IAuditPool {
    /// @notice Where one auditor stands in one job's audit. `None`: no commitment.
    enum AuditStatus {
        None,
        Committed,
        Revealed,
        Collected
    }

    /// @notice A job's audit pool, one slot; all zero until the market funds it at finalization.
    struct Pool {
        /// Wei the market funded the pool with; what is paid out never changes it, except that
        /// `releaseAudit` sets it to zero.
        uint96 amount;
        /// Last timestamp at which an auditor may reveal; collecting starts after it. Non-zero
        /// exactly when the pool is funded.
        uint40 revealEnd;
        /// Auditors who revealed a valid opening.
        uint32 revealed;
        /// Auditors who collected their share.
        uint32 collected;
    }

    /// @notice `auditor` committed to an opening of job `jobId`'s audit root.
    event AuditCommitted(uint256 indexed jobId, address indexed auditor, bytes32 commitment);
    /// @notice The market funded job `jobId`'s pool with `amount` at its finalization;
    ///         reveals are accepted until `revealEnd`.
    event AuditFunded(uint256 indexed jobId, uint256 amount, uint256 revealEnd);
    /// @notice `auditor` opened leaf `step` of job `jobId`'s audit root: `auditLeaf`, the audit
    ///         leaf of that step.
    event AuditRevealed(uint256 indexed jobId, address indexed auditor, uint256 step, bytes32 auditLeaf);
    /// @notice `auditor` was sent `amount`, its share of job `jobId`'s pool.
    event AuditCollected(uint256 indexed jobId, address indexed auditor, uint256 amount);
    /// @notice Nobody revealed in job `jobId`'s pool: its `amount` was sent to the job's
    ///         requester.
    event AuditReleased(uint256 indexed jobId, address indexed requester, uint256 amount);

    /// @notice A zero address where a contract is required.
    error ZeroAddress();
    /// @notice Only the market may fund a pool.
    error NotMarket(address caller);
    /// @notice Job `jobId` has no audit root (or does not exist): there is nothing to audit.
    error NotAudited(uint256 jobId);
    /// @notice Job `jobId` is in status `status` (an `IJobMarket.JobStatus`): audits are
    ///         committed only while it is Submitted, Disputed or Demanded (its challenge window is
    ///         open or extended).
    /// @dev A `uint8`, not the enum: so the ABI names no type of `IJobMarket`'s, whose bindings
    ///      (`sol!` over several ABIs in one Rust module) would then be generated twice.
    error AuditCommitClosed(uint256 jobId, uint8 status);
    /// @notice A commitment must not be zero (zero reads as no commitment).
    error ZeroCommitment();
    /// @notice The worker of job `jobId` cannot audit its own result.
    error SelfAudit(uint256 jobId);
    /// @notice The auditor's free stake is below the market's `minValidatorStake`.
    error ValidatorStakeTooLow(uint256 freeStake, uint256 minimum);
    /// @notice `auditor` already committed to an audit of job `jobId`; one per auditor and job.
    error AlreadyCommitted(uint256 jobId, address auditor);
    /// @notice Job `jobId`'s pool is funded already.
    error AlreadyFunded(uint256 jobId);
    /// @notice Job `jobId` is not finalized yet, so its pool is not funded: reveal after
    ///         `IJobMarket.finalize`.
    error NotFunded(uint256 jobId);
    /// @notice The reveal period of job `jobId`'s pool ended at `revealEnd`.
    error RevealPeriodOver(uint256 jobId, uint256 revealEnd);
    /// @notice The reveal period of job `jobId`'s pool runs until `revealEnd`: collect or release
    ///         after it.
    error RevealPeriodOpen(uint256 jobId, uint256 revealEnd);
    /// @notice `auditor` is `status` in job `jobId`'s audit, and this call needs `Committed`.
    error NotCommitted(uint256 jobId, address auditor, AuditStatus status);
    /// @notice The reveal hashes to `revealed`, not to the caller's commitment `committed`.
    error CommitmentMismatch(bytes32 committed, bytes32 revealed);
    /// @notice `auditLeaf` is not leaf `step` of job `jobId`'s audit root under the given proof.
    error NotInAuditRoot(uint256 jobId, uint256 step, bytes32 auditLeaf);
    /// @notice `auditor` is `status` in job `jobId`'s audit, and this call needs `Revealed`.
    error NotRevealed(uint256 jobId, address auditor, AuditStatus status);
    /// @notice `revealed` auditors revealed in job `jobId`'s pool: it is theirs, not the
    ///         requester's.
    error AuditorsRevealed(uint256 jobId, uint256 revealed);
    /// @notice Job `jobId`'s pool holds nothing to release (released already, or funded with 0).
    error NothingToRelease(uint256 jobId);
    /// @notice An ETH transfer failed; the state was not changed.
    error TransferFailed();

    /// @notice The market whose jobs this pool audits.
    function market() external view returns (IJobMarket);

    /// @notice Commits to an opening of job `jobId`'s audit root, while the job is Submitted,
    ///         Disputed or Demanded. The caller must not be the job's worker and must hold the
    ///         market's `minValidatorStake` of free stake; one commitment per auditor and job.
    /// @param commitment `auditCommitment(msg.sender, jobId, step, auditLeaf)`.
    function commitAudit(uint256 jobId, bytes32 commitment) external;

    /// @notice Funds job `jobId`'s pool with `msg.value` and opens its reveal period
    ///         (`REVEAL_PERCENT` of the market's dispute duration). The market only, once per
    ///         job, when it finalizes the job.
    function fund(uint256 jobId) external payable;

    /// @notice Opens the caller's commitment: `auditLeaf` is leaf `step` of the job's audit root
    ///         (a tree of `steps` leaves), as `proof` (the siblings, bottom-up) shows. The pool
    ///         must be funded (the job finalized) and its reveal period running. Broadcast it
    ///         only once the finalization is in a block: a reveal sent alongside `finalize` shows
    ///         `auditLeaf` while commitments are still open, to anyone who can commit first.
    function revealAudit(uint256 jobId, uint256 step, bytes32 auditLeaf, bytes32[] calldata proof) external;

    /// @notice Sends the caller, who revealed, its share of job `jobId`'s pool after the reveal
    ///         period: `amount / revealed`, the last collector the rounding.
    function collectAudit(uint256 jobId) external;

    /// @notice Sends the whole pool of job `jobId` to the job's requester when nobody revealed
    ///         in it by the end of its reveal period. Anyone may call.
    function releaseAudit(uint256 jobId) external;

    /// @notice Job `jobId`'s pool (all zero until it is funded).
    function getPool(uint256 jobId) external view returns (Pool memory);

    /// @notice Where `auditor` stands in job `jobId`'s audit.
    function auditStatusOf(uint256 jobId, address auditor) external view returns (AuditStatus);

    /// @notice `auditor`'s commitment for job `jobId` (zero when none).
    function commitmentOf(uint256 jobId, address auditor) external view returns (bytes32);

    /// @notice The commitment `auditor` sends to audit leaf `step` of job `jobId`'s audit root:
    ///         `keccak256(abi.encode(auditor, jobId, step, auditLeaf))`.
    function auditCommitment(address auditor, uint256 jobId, uint256 step, bytes32 auditLeaf)
        external
        pure
        returns (bytes32);
}
