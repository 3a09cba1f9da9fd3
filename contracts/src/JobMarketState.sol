// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IJobMarket} from "./interfaces/IJobMarket.sol";

/// @title JobMarketState
/// @notice The job market's constants, storage and read-only views; `JobMarket` holds every
///         state change. A base of its own so that each file fits in a head.
abstract contract JobMarketState is IJobMarket {
    /// @notice Share of the market's dispute duration that a worker has to publish a demanded
    ///         state, in percent (9.6 hours with the default 24-hour duration).
    uint256 public constant AVAILABILITY_PERCENT = 40;
    /// @notice Share of the market's dispute duration during which the challengers who
    ///         committed before a conviction claim their share of its reward, in percent.
    uint256 public constant REWARD_CLAIM_PERCENT = 40;
    /// @notice The bond of a job's challenges and demands doubles with each one its worker
    ///         defeats, at most this many times (256 times the base bond).
    uint256 public constant MAX_BOND_DOUBLINGS = 8;
    /// @notice Share of a finalized job's protocol fee paid to its audit pool, in percent: the
    ///         wage of the validators who re-executed a step of a job that nobody cheated on,
    ///         where no conviction would ever pay them (the verifier's dilemma).
    uint256 public constant AUDIT_SHARE_PERCENT = 50;

    /// @notice Receiver of protocol fees.
    address public feeRecipient;
    /// @notice Contract that decides disputes; zero disables challenges.
    address public resolver;
    /// @notice Contract that checks states published for data-availability demands
    ///         (`DataAvailability`); zero disables demands.
    address public publisher;
    /// @notice The audit pool (`AuditPool`) that finalized jobs with an audit root fund; zero:
    ///         no job is audited.
    address public auditor;

    MarketParams internal _params;

    /// @dev Global counters, packed into one slot that is never zero after deployment.
    struct Totals {
        uint64 nextJobId;
        uint96 feesAccrued;
        uint96 escrowed;
    }

    Totals internal _totals;

    mapping(uint256 jobId => Job) internal _jobs;
    mapping(uint256 jobId => Challenge) internal _challenges;
    mapping(address account => uint256) internal _credits;
    mapping(bytes32 commitment => uint256 blockNumber) internal _commitments;
    mapping(uint8 circuit => address verifier) internal _zkVerifiers;
    mapping(uint256 jobId => DataDemand) internal _demands;
    mapping(uint256 jobId => RewardPool) internal _pools;
    /// @dev See `RewardPools`.
    mapping(uint256 jobId => mapping(address claimant => uint256)) internal _claims;
    /// @dev Challenges a job's worker won and demands it met.
    mapping(uint256 jobId => uint256) internal _defeats;
    mapping(uint8 circuit => bytes32 codeHash) internal _zkCodeHashes;

    // ─────────────────────────────────────────── views ───────────────────────────────────────────────

    /// @inheritdoc IJobMarket
    function getJob(uint256 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    /// @inheritdoc IJobMarket
    function getChallenge(uint256 jobId) external view returns (Challenge memory) {
        return _challenges[jobId];
    }

    /// @inheritdoc IJobMarket
    function getDemand(uint256 jobId) external view returns (DataDemand memory) {
        return _demands[jobId];
    }

    /// @inheritdoc IJobMarket
    function getRewardPool(uint256 jobId) external view returns (RewardPool memory) {
        return _pools[jobId];
    }

    /// @inheritdoc IJobMarket
    function claimOf(uint256 jobId, address account) external view returns (uint256) {
        return _claims[jobId][account];
    }

    /// @inheritdoc IJobMarket
    function challengeBondOf(uint256 jobId) external view returns (uint256) {
        return _bondOf(jobId);
    }

    /// @inheritdoc IJobMarket
    function getParameters() external view returns (MarketParams memory) {
        return _params;
    }

    /// @inheritdoc IJobMarket
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @inheritdoc IJobMarket
    function feesAccrued() external view returns (uint256) {
        return _totals.feesAccrued;
    }

    /// @inheritdoc IJobMarket
    function totalEscrowed() external view returns (uint256) {
        return _totals.escrowed;
    }

    /// @inheritdoc IJobMarket
    function zkVerifierOf(uint8 circuit) external view returns (address) {
        return _zkVerifiers[circuit];
    }

    /// @inheritdoc IJobMarket
    function nextJobId() external view returns (uint256) {
        return _totals.nextJobId;
    }

    // ─────────────────────────────────────────── internal ────────────────────────────────────────────

    /// @dev The bond of job `jobId`'s next challenge or demand: each one its worker defeated
    ///      doubles it (up to `MAX_BOND_DOUBLINGS` times), so delaying a job's settlement by `k`
    ///      disputes costs a griefer `challengeBond · (2^k − 1)` or more.
    function _bondOf(uint256 jobId) internal view returns (uint256) {
        uint256 defeats = _defeats[jobId];
        if (defeats > MAX_BOND_DOUBLINGS) defeats = MAX_BOND_DOUBLINGS;
        return uint256(_params.challengeBond) << defeats;
    }
}
