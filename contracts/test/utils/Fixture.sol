// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AuditPool} from "../../src/AuditPool.sol";
import {DataAvailability} from "../../src/DataAvailability.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {StakeManager} from "../../src/StakeManager.sol";
import {IDisputeResolver} from "../../src/interfaces/IDisputeResolver.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {ProtocolLimits} from "../../src/libraries/ProtocolLimits.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";
import {Test} from "./Test.sol";

/// @notice A resolver that decides whatever its owner tells it: stands in for the dispute game
///         (a later contract) so the market's side of the resolver interface can be tested.
contract ScriptedResolver is IDisputeResolver {
    IJobMarket public immutable market;
    uint256 public opened;
    uint256 public lastJobId;
    uint256 public lastStep;
    address public lastWorker;
    address public lastChallenger;
    bytes32 public lastTraceRoot;
    bytes32 public lastClaimedStateHash;
    uint256 public lastDeadline;

    /// @notice The spec hashes the market may post training jobs with, and their step counts.
    mapping(bytes32 specHash => uint256 steps) public admittedSteps;

    constructor(IJobMarket market_) {
        market = market_;
    }

    function admit(bytes32 specHash, uint256 steps) external {
        admittedSteps[specHash] = steps;
    }

    function disputeOpened(
        uint256 jobId,
        uint256 step,
        address worker,
        address challenger,
        bytes32 traceRoot,
        bytes32 claimedStateHash,
        uint256 deadline
    ) external {
        require(msg.sender == address(market), "only market");
        opened++;
        lastJobId = jobId;
        lastStep = step;
        lastWorker = worker;
        lastChallenger = challenger;
        lastTraceRoot = traceRoot;
        lastClaimedStateHash = claimedStateHash;
        lastDeadline = deadline;
    }

    function decide(uint256 jobId, bool workerLost) external {
        market.resolveDispute(jobId, workerLost);
    }
}

/// @notice Deploys StakeManager + JobMarket, DataAvailability as the market's publisher and
///         AuditPool as its auditor, as script/Deploy.s.sol does (with a scripted resolver for
///         the dispute game), with funded actors and helpers that walk a job through its
///         lifecycle.
abstract contract Fixture is Test {
    StakeManager internal stakes;
    JobMarket internal market;
    ScriptedResolver internal resolver;
    DataAvailability internal availability;
    AuditPool internal auditPool;

    address internal admin;
    address internal pauser;
    address internal treasury;
    address internal requester;
    address internal provider;
    address internal validator;
    address internal stranger;

    uint256 internal constant PAYMENT = 1 ether;
    uint32 internal constant STEPS = 100;
    uint32 internal constant WINDOW = 1 hours;
    uint256 internal constant UNBONDING = ProtocolLimits.MIN_UNBONDING_DELAY;
    bytes32 internal constant SPEC_HASH = keccak256("spec");
    /// @notice The final state hash `h_STEPS` of the fixture's step trace.
    bytes32 internal constant FINAL_HASH = keccak256("final state");
    bytes32 internal constant WRONG_HASH = keccak256("the challenger's state");
    bytes32 internal constant SALT = keccak256("salt");

    /// @notice The step trace `[h_0 .. h_STEPS]` that the fixture's worker submits: made-up state
    ///         hashes `keccak256(abi.encode("state", i))`, and `FINAL_HASH` last (`setTraceLeaf`
    ///         changes one), with its root and the proof of the last leaf that `submitResult` needs.
    bytes32[] internal trace;
    bytes32 internal traceRoot;
    bytes32[] internal finalProof;

    /// @notice The audit leaves `[o_0 .. o_{STEPS-1}]` of the fixture's steps (made up:
    ///         `keccak256(abi.encode("audit leaf", i))`), and the audit root over them that an
    ///         audited submission commits (`postClaimSubmitAudited`).
    bytes32[] internal auditLeaves;
    bytes32 internal auditRoot;

    function defaultParams() internal pure returns (IJobMarket.MarketParams memory) {
        return IJobMarket.MarketParams({
            protocolFeeBps: 250,
            collateralBps: 5000,
            expiryPenaltyBps: 5000,
            challengerRewardBps: 5000,
            minChallengeWindow: uint32(ProtocolLimits.MIN_CHALLENGE_WINDOW),
            maxChallengeWindow: uint32(ProtocolLimits.MAX_CHALLENGE_WINDOW),
            maxDisputeDuration: 1 days,
            challengeBond: 0.1 ether,
            minProviderStake: 0.5 ether,
            minValidatorStake: 0.5 ether
        });
    }

    function setUp() public virtual {
        admin = makeAddr("admin");
        pauser = makeAddr("pauser");
        treasury = makeAddr("treasury");
        requester = makeAddr("requester");
        provider = makeAddr("provider");
        validator = makeAddr("validator");
        stranger = makeAddr("stranger");

        stakes = new StakeManager(admin, UNBONDING);
        market = new JobMarket(admin, pauser, stakes, treasury, defaultParams());
        resolver = new ScriptedResolver(market);
        availability = new DataAvailability(market);
        auditPool = new AuditPool(market);
        vm.startPrank(admin);
        stakes.bindMarket(address(market));
        market.setResolver(address(resolver));
        market.setPublisher(address(availability));
        market.setAuditor(address(auditPool));
        vm.stopPrank();
        resolver.admit(SPEC_HASH, STEPS);

        vm.deal(requester, 100 ether);
        vm.deal(provider, 100 ether);
        vm.deal(validator, 100 ether);
        vm.deal(stranger, 100 ether);
        vm.warp(1_700_000_000);
        vm.roll(100);

        for (uint256 i = 0; i < STEPS; ++i) {
            trace.push(keccak256(abi.encode("state", i)));
        }
        trace.push(FINAL_HASH);
        _buildTrace();
        for (uint256 i = 0; i < STEPS; ++i) {
            auditLeaves.push(keccak256(abi.encode("audit leaf", i)));
        }
        auditRoot = MerkleBuilder.root(auditLeaves);
    }

    /// @notice The proof of `o_step` in the fixture's audit tree (`STEPS` leaves): the sibling
    ///         path a worker serves an auditor.
    function auditProof(uint256 step) internal view returns (bytes32[] memory) {
        return MerkleBuilder.proof(auditLeaves, step);
    }

    /// @notice Sets `h_step` of the fixture's trace to `h` and rebuilds its root and final proof.
    function setTraceLeaf(uint256 step, bytes32 h) internal {
        trace[step] = h;
        _buildTrace();
    }

    /// @notice The proof of `h_step` in the fixture's trace (`steps + 1` leaves).
    function traceProof(uint256 step) internal view returns (bytes32[] memory) {
        return MerkleBuilder.proof(trace, step);
    }

    function _buildTrace() private {
        traceRoot = MerkleBuilder.root(trace);
        finalProof = MerkleBuilder.proof(trace, STEPS);
    }

    /// @dev Calls the sha256 precompile: build CIDs before a `vm.prank`, which the call would consume.
    function cid(bytes memory tag) internal pure returns (bytes memory) {
        // A binary CIDv1, raw codec, sha2-256 multihash of `tag`.
        return abi.encodePacked(hex"01551220", sha256(tag));
    }

    /// @notice The fixture's request, for a training job (`Verification.Optimistic`).
    function request() internal view returns (IJobMarket.JobRequest memory) {
        return request(IJobMarket.Verification.Optimistic);
    }

    /// @notice The fixture's request with verification `v`.
    function request(IJobMarket.Verification v) internal view returns (IJobMarket.JobRequest memory) {
        return IJobMarket.JobRequest({
            specHash: SPEC_HASH,
            modelCid: cid("model"),
            datasetCid: cid("dataset"),
            steps: STEPS,
            verification: v,
            claimDeadline: uint40(block.timestamp + 1 hours),
            deliveryDeadline: uint40(block.timestamp + 1 days),
            challengeWindow: WINDOW
        });
    }

    function post() internal returns (uint256 jobId) {
        jobId = post(IJobMarket.Verification.Optimistic);
    }

    function post(IJobMarket.Verification v) internal returns (uint256 jobId) {
        IJobMarket.JobRequest memory r = request(v); // before the prank: sha256 is a call
        vm.prank(requester);
        jobId = market.postJob{value: PAYMENT}(r);
    }

    function stakeAs(address who, uint256 amount) internal {
        vm.prank(who);
        stakes.stake{value: amount}();
    }

    function postAndClaim() internal returns (uint256 jobId) {
        jobId = postAndClaim(IJobMarket.Verification.Optimistic);
    }

    function postAndClaim(IJobMarket.Verification v) internal returns (uint256 jobId) {
        jobId = post(v);
        stakeAs(provider, 2 ether);
        vm.prank(provider);
        market.claimJob(jobId);
    }

    function postClaimSubmit() internal returns (uint256 jobId) {
        jobId = postClaimSubmit(IJobMarket.Verification.Optimistic);
    }

    /// @notice A job posted, claimed and submitted without an audit root (not audited).
    function postClaimSubmit(IJobMarket.Verification v) internal returns (uint256 jobId) {
        jobId = postClaimSubmit(v, bytes32(0));
    }

    /// @notice A job posted, claimed and submitted with the fixture's audit root.
    function postClaimSubmitAudited() internal returns (uint256 jobId) {
        jobId = postClaimSubmit(IJobMarket.Verification.Optimistic, auditRoot);
    }

    function postClaimSubmit(IJobMarket.Verification v, bytes32 auditRoot_) internal returns (uint256 jobId) {
        jobId = postAndClaim(v);
        bytes memory resultCid = cid("result"); // before the prank: sha256 is a call
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, auditRoot_, trace[STEPS], finalProof, resultCid);
    }

    function commitment(address who, uint256 jobId, uint256 step, bytes32 claimed, bytes32 salt)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(who, jobId, step, claimed, salt));
    }

    /// @notice Commits and, one block later, reveals a challenge of `step` as `who`.
    function openChallenge(address who, uint256 jobId, uint256 step) internal {
        vm.prank(who);
        market.commitChallenge(jobId, commitment(who, jobId, step, WRONG_HASH, SALT));
        vm.roll(block.number + 1);
        uint256 bond = market.challengeBondOf(jobId); // doubled by each defeat the worker dealt
        vm.prank(who);
        market.challenge{value: bond}(jobId, step, WRONG_HASH, SALT);
    }

    function postClaimSubmitChallenge() internal returns (uint256 jobId) {
        jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        openChallenge(validator, jobId, 7);
    }
}
