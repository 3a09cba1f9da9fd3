// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {JobMarket} from "../src/JobMarket.sol";
import {StakeManager} from "../src/StakeManager.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {IStakeManager} from "../src/interfaces/IStakeManager.sol";
import {ProtocolLimits} from "../src/libraries/ProtocolLimits.sol";
import {Fixture} from "./utils/Fixture.sol";
import {EtherRefuser} from "./utils/EtherRefuser.sol";

/// @notice A requester contract whose receive() re-enters `withdraw`.
contract ReentrantRequester {
    JobMarket internal immutable market;
    /// When true, the reentrant call's failure is swallowed so the outer withdrawal can finish.
    bool public swallow;
    uint256 public received;
    uint256 public reentryAttempts;
    bytes public reentryError;

    constructor(JobMarket market_) {
        market = market_;
    }

    function setSwallow(bool swallow_) external {
        swallow = swallow_;
    }

    function post(IJobMarket.JobRequest calldata r) external payable returns (uint256) {
        return market.postJob{value: msg.value}(r);
    }

    function cancel(uint256 jobId) external {
        market.cancelJob(jobId);
    }

    function withdraw() external {
        market.withdraw();
    }

    receive() external payable {
        received += msg.value;
        if (reentryAttempts > 0) return;
        reentryAttempts++;
        if (swallow) {
            try market.withdraw() {}
            catch (bytes memory err) {
                reentryError = err;
            }
        } else {
            market.withdraw();
        }
    }
}

contract JobMarketTest is Fixture {
    uint256 internal constant T0 = 1_700_000_000;
    uint256 internal constant BOND = 0.1 ether;
    uint256 internal constant COLLATERAL = 0.5 ether; // 5000 bps of PAYMENT
    uint256 internal constant FEE = 0.025 ether; // 250 bps of PAYMENT
    uint256 internal constant DISPUTE = 1 days;
    uint256 internal constant STEP = 7;
    uint256 internal constant CLAIM_DEADLINE = T0 + 1 hours;
    uint256 internal constant DELIVERY_DEADLINE = T0 + 1 days;
    uint256 internal constant WINDOW_END = T0 + WINDOW;
    uint256 internal constant BPS = ProtocolLimits.BPS;
    bytes32 internal constant DEFAULT_ADMIN_ROLE = 0x00;

    // ───────────────────────────────────────── helpers ─────────────────────────────────────────

    function _wrongStatus(uint256 jobId, IJobMarket.JobStatus expected, IJobMarket.JobStatus actual)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(IJobMarket.WrongStatus.selector, jobId, expected, actual);
    }

    function _unauthorized(address who, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, role);
    }

    function _outOfBounds(string memory name, uint256 value, uint256 min, uint256 max)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(IJobMarket.ParameterOutOfBounds.selector, name, value, min, max);
    }

    function _assertStatus(uint256 jobId, IJobMarket.JobStatus expected, string memory m) internal view {
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(expected), m);
    }

    function _setParams(IJobMarket.MarketParams memory p) internal {
        vm.prank(admin);
        market.setParameters(p);
    }

    function _postWith(IJobMarket.JobRequest memory r, uint256 payment) internal returns (uint256 jobId) {
        vm.deal(requester, requester.balance + payment);
        vm.prank(requester);
        jobId = market.postJob{value: payment}(r);
    }

    function _expectPostRevert(IJobMarket.JobRequest memory r, uint256 payment, bytes memory err) internal {
        vm.deal(requester, requester.balance + payment);
        vm.expectRevert(err);
        vm.prank(requester);
        market.postJob{value: payment}(r);
    }

    function _postPaid(uint256 payment, uint32 window) internal returns (uint256) {
        IJobMarket.JobRequest memory r = request();
        r.challengeWindow = window;
        return _postWith(r, payment);
    }

    function _claim(address who, uint256 jobId) internal {
        vm.prank(who);
        market.claimJob(jobId);
    }

    function _submit(address who, uint256 jobId) internal {
        bytes memory resultCid = cid("result");
        vm.prank(who);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
    }

    function _stakeExtra(address who, uint256 amount) internal {
        vm.deal(who, who.balance + amount);
        stakeAs(who, amount);
    }

    function _commit(address who, uint256 jobId, uint256 step, bytes32 claimed, bytes32 salt)
        internal
        returns (bytes32 c)
    {
        c = commitment(who, jobId, step, claimed, salt);
        vm.prank(who);
        market.commitChallenge(jobId, c);
    }

    /// @dev Commits now, reveals one block later at the same timestamp, with `bond`.
    function _challenge(address who, uint256 jobId, uint256 bond) internal {
        _commit(who, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.deal(who, who.balance + bond);
        vm.prank(who);
        market.challenge{value: bond}(jobId, STEP, WRONG_HASH, SALT);
    }

    function _sumCredits() internal view returns (uint256 s) {
        address[6] memory accounts = [requester, provider, validator, stranger, treasury, admin];
        for (uint256 i; i < accounts.length; i++) {
            s += market.creditOf(accounts[i]);
        }
    }

    /// @dev The market's balance is exactly what it owes: escrow, fees and credits.
    function _assertSolvent(string memory m) internal view {
        vm.assertEq(address(market).balance, market.totalEscrowed() + market.feesAccrued() + _sumCredits(), m);
    }

    /// @dev Waits out the claim period of `jobId`'s reward pool and collects `who`'s share.
    function _collectAs(address who, uint256 jobId) internal returns (uint256 share) {
        uint256 claimEnd = market.getRewardPool(jobId).claimEnd;
        if (block.timestamp <= claimEnd) vm.warp(claimEnd + 1);
        uint256 before = market.creditOf(who);
        vm.prank(who);
        market.collectReward(jobId);
        share = market.creditOf(who) - before;
    }

    function _withdrawAs(address who) internal returns (uint256 paid) {
        uint256 before = who.balance;
        vm.prank(who);
        market.withdraw();
        paid = who.balance - before;
    }

    // ─────────────────────────────────────── constructor ───────────────────────────────────────

    function test_constructor_setsState_succeeds() public view {
        vm.assertEq(address(market.stakeManager()), address(stakes), "stake manager");
        vm.assertEq(market.feeRecipient(), treasury, "fee recipient");
        vm.assertEq(market.resolver(), address(resolver), "resolver");
        vm.assertEq(market.nextJobId(), 1, "first id");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        vm.assertEq(market.feesAccrued(), 0, "fees");
        vm.assertTrue(market.hasRole(DEFAULT_ADMIN_ROLE, admin), "admin");
        vm.assertTrue(market.hasRole(market.PAUSER_ROLE(), pauser), "pauser");
        vm.assertFalse(market.hasRole(market.PAUSER_ROLE(), admin), "admin is not pauser");
        vm.assertEq(market.PAUSER_ROLE(), keccak256("PAUSER_ROLE"), "role id");
        vm.assertFalse(market.paused(), "not paused");
        vm.assertEq(
            keccak256(abi.encode(market.getParameters())), keccak256(abi.encode(defaultParams())), "params"
        );
    }

    function test_constructor_emitsEvents_succeeds() public {
        IJobMarket.MarketParams memory zero;
        vm.expectEmit();
        emit IJobMarket.FeeRecipientUpdated(address(0), treasury);
        vm.expectEmit();
        emit IJobMarket.ParametersUpdated(zero, defaultParams());
        new JobMarket(admin, pauser, stakes, treasury, defaultParams());
    }

    function test_constructor_zeroAdmin_reverts() public {
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        new JobMarket(address(0), pauser, stakes, treasury, defaultParams());
    }

    function test_constructor_zeroPauser_reverts() public {
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        new JobMarket(admin, address(0), stakes, treasury, defaultParams());
    }

    function test_constructor_zeroStakeManager_reverts() public {
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        new JobMarket(admin, pauser, StakeManager(address(0)), treasury, defaultParams());
    }

    function test_constructor_zeroFeeRecipient_reverts() public {
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        new JobMarket(admin, pauser, stakes, address(0), defaultParams());
    }

    function test_constructor_paramsOutOfBounds_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.collateralBps = 0;
        vm.expectRevert(_outOfBounds("collateralBps", 0, 1000, 30_000));
        new JobMarket(admin, pauser, stakes, treasury, p);
    }

    // ───────────────────────────────────────── receive ─────────────────────────────────────────

    function test_receive_fromStranger_reverts() public {
        vm.prank(stranger);
        (bool ok, bytes memory ret) = address(market).call{value: 1 ether}("");
        vm.assertFalse(ok, "rejected");
        vm.assertEq(
            keccak256(ret),
            keccak256(abi.encodeWithSelector(IJobMarket.UnexpectedEther.selector, stranger)),
            "UnexpectedEther"
        );
        vm.assertEq(address(market).balance, 0, "nothing held");
    }

    function test_receive_fromAdminOrResolver_reverts() public {
        vm.deal(admin, 1 ether);
        vm.deal(address(resolver), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnexpectedEther.selector, admin));
        vm.prank(admin);
        payable(address(market)).transfer(1 ether);
        vm.prank(address(resolver));
        (bool ok,) = address(market).call{value: 1 ether}("");
        vm.assertFalse(ok, "rejected");
    }

    function test_receive_fromStakeManager_succeeds() public {
        vm.deal(address(stakes), 1 ether);
        vm.prank(address(stakes));
        (bool ok,) = address(market).call{value: 1 ether}("");
        vm.assertTrue(ok, "accepted");
        vm.assertEq(address(market).balance, 1 ether, "held");
    }

    // ───────────────────────────────────────── postJob ─────────────────────────────────────────

    function test_postJob_succeeds() public {
        IJobMarket.JobRequest memory r = request();
        vm.expectEmit(address(market));
        emit IJobMarket.JobPosted(1, requester, PAYMENT, r);
        vm.prank(requester);
        uint256 jobId = market.postJob{value: PAYMENT}(r);

        vm.assertEq(jobId, 1, "id");
        vm.assertEq(market.nextJobId(), 2, "next id");
        vm.assertEq(market.totalEscrowed(), PAYMENT, "escrow");
        vm.assertEq(address(market).balance, PAYMENT, "held");
        vm.assertEq(requester.balance, 100 ether - PAYMENT, "paid");
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(job.requester, requester, "requester");
        vm.assertEq(job.payment, PAYMENT, "payment");
        vm.assertEq(job.worker, address(0), "no worker");
        vm.assertEq(job.collateral, 0, "no collateral");
        vm.assertEq(uint256(job.status), uint256(IJobMarket.JobStatus.Posted), "status");
        vm.assertEq(uint256(job.verification), uint256(IJobMarket.Verification.Optimistic), "verification");
        vm.assertEq(job.feeBps, 250, "fee snapshot");
        vm.assertEq(job.expiryPenaltyBps, 0, "no penalty snapshot before a claim");
        vm.assertEq(job.challengerRewardBps, 0, "no reward snapshot before a claim");
        vm.assertEq(job.steps, STEPS, "steps");
        vm.assertEq(job.claimDeadline, CLAIM_DEADLINE, "claim deadline");
        vm.assertEq(job.deliveryDeadline, DELIVERY_DEADLINE, "delivery deadline");
        vm.assertEq(job.challengeWindow, WINDOW, "window");
        vm.assertEq(job.windowEnd, 0, "no window yet");
        vm.assertEq(job.specHash, SPEC_HASH, "spec");
        vm.assertEq(job.traceRoot, bytes32(0), "no trace root");

        uint256 second = post();
        vm.assertEq(second, 2, "ids increase");
        vm.assertEq(market.totalEscrowed(), 2 * PAYMENT, "escrow adds up");
    }

    function test_postJob_limitsInclusive_succeeds() public {
        IJobMarket.JobRequest memory r = request();
        r.modelCid = new bytes(ProtocolLimits.MAX_CID_LENGTH);
        r.modelCid[0] = 0x01;
        r.datasetCid = hex"0155"; // two bytes is the shortest accepted
        r.steps = type(uint32).max;
        resolver.admit(r.specHash, r.steps);
        r.claimDeadline = uint40(block.timestamp + 1);
        r.deliveryDeadline = uint40(block.timestamp + ProtocolLimits.MAX_JOB_DURATION);
        r.challengeWindow = uint32(ProtocolLimits.MIN_CHALLENGE_WINDOW);
        uint256 jobId = _postWith(r, ProtocolLimits.MAX_PAYMENT);
        vm.assertEq(market.getJob(jobId).payment, ProtocolLimits.MAX_PAYMENT, "max payment");
        r.challengeWindow = uint32(ProtocolLimits.MAX_CHALLENGE_WINDOW);
        uint256 minJob = _postWith(r, ProtocolLimits.MIN_PAYMENT);
        vm.assertEq(market.getJob(minJob).payment, ProtocolLimits.MIN_PAYMENT, "min payment");
        vm.assertEq(market.totalEscrowed(), ProtocolLimits.MAX_PAYMENT + ProtocolLimits.MIN_PAYMENT, "escrow");
    }

    function test_postJob_zeroPayment_reverts() public {
        _expectPostRevert(request(), 0, abi.encodeWithSelector(IJobMarket.ZeroPayment.selector));
    }

    function test_postJob_paymentTooSmall_reverts() public {
        uint256 min = ProtocolLimits.MIN_PAYMENT;
        vm.assertEq(min, 1 gwei, "min payment");
        _expectPostRevert(
            request(), min - 1, abi.encodeWithSelector(IJobMarket.PaymentTooSmall.selector, min - 1, min)
        );
        _expectPostRevert(request(), 1, abi.encodeWithSelector(IJobMarket.PaymentTooSmall.selector, 1, min));
        vm.assertEq(market.nextJobId(), 1, "nothing posted");
        vm.assertEq(market.totalEscrowed(), 0, "nothing escrowed");
        vm.assertEq(address(market).balance, 0, "nothing held");
    }

    function test_postJob_exactlyMinPayment_succeeds() public {
        uint256 min = ProtocolLimits.MIN_PAYMENT;
        IJobMarket.JobRequest memory r = request();
        vm.expectEmit(address(market));
        emit IJobMarket.JobPosted(1, requester, min, r);
        uint256 jobId = _postWith(r, min);
        vm.assertEq(market.getJob(jobId).payment, min, "payment");
        vm.assertEq(market.totalEscrowed(), min, "escrow");
        vm.assertEq(address(market).balance, min, "held");
    }

    function test_postJob_paymentTooLarge_reverts() public {
        uint256 max = ProtocolLimits.MAX_PAYMENT;
        _expectPostRevert(
            request(), max + 1, abi.encodeWithSelector(IJobMarket.PaymentTooLarge.selector, max + 1, max)
        );
    }

    function test_postJob_zeroSteps_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.steps = 0;
        _expectPostRevert(r, PAYMENT, abi.encodeWithSelector(IJobMarket.ZeroSteps.selector));
    }

    function test_postJob_zeroSpecHash_reverts() public {
        // A training job's spec must be admitted first; a batch-inference job's is checked here.
        IJobMarket.JobRequest memory r = request(IJobMarket.Verification.OptimisticInference);
        r.specHash = bytes32(0);
        _expectPostRevert(r, PAYMENT, abi.encodeWithSelector(IJobMarket.ZeroHash.selector));
    }

    function test_postJob_emptyModelCid_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.modelCid = "";
        _expectPostRevert(r, PAYMENT, abi.encodeWithSelector(IJobMarket.InvalidCid.selector));
    }

    function test_postJob_oneByteCid_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.modelCid = hex"01";
        _expectPostRevert(r, PAYMENT, abi.encodeWithSelector(IJobMarket.InvalidCid.selector));
    }

    function test_postJob_cidTooLong_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.modelCid = new bytes(ProtocolLimits.MAX_CID_LENGTH + 1);
        r.modelCid[0] = 0x01;
        _expectPostRevert(r, PAYMENT, abi.encodeWithSelector(IJobMarket.InvalidCid.selector));
    }

    function test_postJob_cidNotV1_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.modelCid[0] = 0x12; // a CIDv0 multihash prefix, or anything but 0x01
        _expectPostRevert(r, PAYMENT, abi.encodeWithSelector(IJobMarket.InvalidCid.selector));
    }

    function test_postJob_invalidDatasetCid_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.datasetCid = "";
        _expectPostRevert(r, PAYMENT, abi.encodeWithSelector(IJobMarket.InvalidCid.selector));
        r = request();
        r.datasetCid[0] = 0x00;
        _expectPostRevert(r, PAYMENT, abi.encodeWithSelector(IJobMarket.InvalidCid.selector));
        r = request();
        r.datasetCid = new bytes(ProtocolLimits.MAX_CID_LENGTH + 1);
        r.datasetCid[0] = 0x01;
        _expectPostRevert(r, PAYMENT, abi.encodeWithSelector(IJobMarket.InvalidCid.selector));
    }

    function test_postJob_zkVerification_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.verification = IJobMarket.Verification.Zk;
        _expectPostRevert(
            r,
            PAYMENT,
            abi.encodeWithSelector(IJobMarket.UnsupportedVerification.selector, IJobMarket.Verification.Zk)
        );
    }

    /// @notice A batch-inference job (`OptimisticInference`) is posted, claimed, submitted and
    ///         finalized exactly like a training one: same escrow, collateral, window and payout.
    function test_postJob_optimisticInference_succeeds() public {
        IJobMarket.JobRequest memory r = request(IJobMarket.Verification.OptimisticInference);
        vm.expectEmit(address(market));
        emit IJobMarket.JobPosted(1, requester, PAYMENT, r);
        vm.prank(requester);
        uint256 jobId = market.postJob{value: PAYMENT}(r);
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(
            uint256(job.verification), uint256(IJobMarket.Verification.OptimisticInference), "verification"
        );
        vm.assertEq(uint256(job.status), uint256(IJobMarket.JobStatus.Posted), "posted");
        vm.assertEq(market.totalEscrowed(), PAYMENT, "escrow");

        stakeAs(provider, 2 ether);
        vm.expectEmit(address(market));
        emit IJobMarket.JobClaimed(jobId, provider, COLLATERAL);
        _claim(provider, jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Claimed, "claimed");
        vm.assertEq(stakes.accountOf(provider).locked, COLLATERAL, "locked");

        bytes memory resultCid = cid("result");
        vm.warp(T0 + 100);
        vm.expectEmit(address(market));
        emit IJobMarket.ResultSubmitted(
            jobId, provider, STEPS, traceRoot, FINAL_HASH, resultCid, T0 + 100 + WINDOW
        );
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
        _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "submitted");

        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.ChallengeWindowOpen.selector, jobId, T0 + 100 + WINDOW)
        );
        market.finalize(jobId);
        vm.warp(T0 + 100 + WINDOW);
        vm.expectEmit(address(market));
        emit IJobMarket.JobFinalized(jobId, provider, PAYMENT - FEE, FEE);
        vm.prank(stranger);
        market.finalize(jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Finalized, "finalized");
        vm.assertEq(market.creditOf(provider), PAYMENT - FEE, "worker credit");
        vm.assertEq(market.feesAccrued(), FEE, "fee");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        vm.assertEq(stakes.accountOf(provider).locked, 0, "released");
        _assertSolvent("solvent");
    }

    function test_postJob_claimDeadlineInPast_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.claimDeadline = uint40(block.timestamp - 1);
        _expectPostRevert(
            r,
            PAYMENT,
            abi.encodeWithSelector(IJobMarket.DeadlineInPast.selector, block.timestamp - 1, block.timestamp)
        );
    }

    function test_postJob_claimDeadlineNow_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.claimDeadline = uint40(block.timestamp);
        _expectPostRevert(
            r,
            PAYMENT,
            abi.encodeWithSelector(IJobMarket.DeadlineInPast.selector, block.timestamp, block.timestamp)
        );
    }

    function test_postJob_deliveryEqualsClaimDeadline_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.deliveryDeadline = r.claimDeadline;
        _expectPostRevert(
            r,
            PAYMENT,
            abi.encodeWithSelector(
                IJobMarket.InvalidDeliveryDeadline.selector,
                CLAIM_DEADLINE,
                CLAIM_DEADLINE,
                T0 + ProtocolLimits.MAX_JOB_DURATION
            )
        );
    }

    function test_postJob_deliveryBeforeClaimDeadline_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.deliveryDeadline = r.claimDeadline - 1;
        _expectPostRevert(
            r,
            PAYMENT,
            abi.encodeWithSelector(
                IJobMarket.InvalidDeliveryDeadline.selector,
                CLAIM_DEADLINE,
                CLAIM_DEADLINE - 1,
                T0 + ProtocolLimits.MAX_JOB_DURATION
            )
        );
    }

    function test_postJob_deliveryBeyondMaxDuration_reverts() public {
        IJobMarket.JobRequest memory r = request();
        uint256 latest = T0 + ProtocolLimits.MAX_JOB_DURATION;
        r.deliveryDeadline = uint40(latest + 1);
        _expectPostRevert(
            r,
            PAYMENT,
            abi.encodeWithSelector(
                IJobMarket.InvalidDeliveryDeadline.selector, CLAIM_DEADLINE, latest + 1, latest
            )
        );
    }

    function test_postJob_windowBelowMin_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.challengeWindow = 9;
        _expectPostRevert(
            r,
            PAYMENT,
            abi.encodeWithSelector(
                IJobMarket.ChallengeWindowOutOfBounds.selector, 9, 10, ProtocolLimits.MAX_CHALLENGE_WINDOW
            )
        );
    }

    function test_postJob_windowAboveMax_reverts() public {
        IJobMarket.JobRequest memory r = request();
        r.challengeWindow = uint32(ProtocolLimits.MAX_CHALLENGE_WINDOW + 1);
        _expectPostRevert(
            r,
            PAYMENT,
            abi.encodeWithSelector(
                IJobMarket.ChallengeWindowOutOfBounds.selector,
                ProtocolLimits.MAX_CHALLENGE_WINDOW + 1,
                10,
                ProtocolLimits.MAX_CHALLENGE_WINDOW
            )
        );
    }

    function test_postJob_windowOutsideAdminBounds_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.minChallengeWindow = 1 hours;
        p.maxChallengeWindow = 2 hours;
        _setParams(p);
        IJobMarket.JobRequest memory r = request();
        r.challengeWindow = 1 hours - 1;
        _expectPostRevert(
            r,
            PAYMENT,
            abi.encodeWithSelector(
                IJobMarket.ChallengeWindowOutOfBounds.selector, 1 hours - 1, 1 hours, 2 hours
            )
        );
        r.challengeWindow = 2 hours + 1;
        _expectPostRevert(
            r,
            PAYMENT,
            abi.encodeWithSelector(
                IJobMarket.ChallengeWindowOutOfBounds.selector, 2 hours + 1, 1 hours, 2 hours
            )
        );
    }

    function test_postJob_whilePaused_reverts() public {
        vm.prank(pauser);
        market.pause();
        _expectPostRevert(request(), PAYMENT, abi.encodeWithSelector(bytes4(keccak256("EnforcedPause()"))));
    }

    function test_postJob_feeSnapshotAtPosting_succeeds() public {
        uint256 jobId = post();
        IJobMarket.MarketParams memory p = defaultParams();
        p.protocolFeeBps = 1000;
        _setParams(p);
        stakeAs(provider, 2 ether);
        _claim(provider, jobId);
        _submit(provider, jobId);
        vm.warp(WINDOW_END);
        market.finalize(jobId);
        vm.assertEq(market.feesAccrued(), FEE, "fee of the posting time");
        vm.assertEq(market.creditOf(provider), PAYMENT - FEE, "worker");
    }

    // ──────────────────────────────────────── cancelJob ────────────────────────────────────────

    function test_cancelJob_succeeds() public {
        uint256 jobId = post();
        vm.expectEmit(address(market));
        emit IJobMarket.JobCancelled(jobId, PAYMENT);
        vm.prank(requester);
        market.cancelJob(jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Cancelled, "cancelled");
        vm.assertEq(market.creditOf(requester), PAYMENT, "refund credited");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        _assertSolvent("solvent");
        vm.assertEq(_withdrawAs(requester), PAYMENT, "refunded");
        vm.assertEq(address(market).balance, 0, "empty");
    }

    function test_cancelJob_afterClaimDeadline_succeeds() public {
        uint256 jobId = post();
        vm.warp(DELIVERY_DEADLINE + 1);
        vm.prank(requester);
        market.cancelJob(jobId);
        vm.assertEq(market.creditOf(requester), PAYMENT, "refund credited");
    }

    function test_cancelJob_nonRequester_reverts() public {
        uint256 jobId = post();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotRequester.selector, jobId, stranger));
        vm.prank(stranger);
        market.cancelJob(jobId);
    }

    function test_cancelJob_nonexistent_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 42));
        vm.prank(requester);
        market.cancelJob(42);
    }

    /// @notice Attack: the requester cannot pull the escrow from under a worker once claimed.
    function test_cancelJob_afterClaim_reverts() public {
        uint256 jobId = postAndClaim();
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Posted, IJobMarket.JobStatus.Claimed));
        vm.prank(requester);
        market.cancelJob(jobId);
        _submit(provider, jobId);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Posted, IJobMarket.JobStatus.Submitted));
        vm.prank(requester);
        market.cancelJob(jobId);
        vm.assertEq(market.totalEscrowed(), PAYMENT, "escrow intact");
        vm.assertEq(market.creditOf(requester), 0, "no refund");
    }

    function test_cancelJob_twice_reverts() public {
        uint256 jobId = post();
        vm.prank(requester);
        market.cancelJob(jobId);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Posted, IJobMarket.JobStatus.Cancelled));
        vm.prank(requester);
        market.cancelJob(jobId);
        vm.assertEq(market.creditOf(requester), PAYMENT, "refunded once");
    }

    // ──────────────────────────────────────── claimJob ─────────────────────────────────────────

    function test_claimJob_succeeds() public {
        uint256 jobId = post();
        stakeAs(provider, 2 ether);
        vm.expectEmit(address(market));
        emit IJobMarket.JobClaimed(jobId, provider, COLLATERAL);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralLocked(provider, COLLATERAL);
        _claim(provider, jobId);
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(job.worker, provider, "worker");
        vm.assertEq(job.collateral, COLLATERAL, "collateral");
        vm.assertEq(uint256(job.status), uint256(IJobMarket.JobStatus.Claimed), "status");
        vm.assertEq(job.expiryPenaltyBps, 5000, "penalty snapshot");
        vm.assertEq(job.challengerRewardBps, 5000, "reward snapshot");
        vm.assertEq(stakes.accountOf(provider).locked, COLLATERAL, "locked");
        vm.assertEq(stakes.freeStakeOf(provider), 2 ether - COLLATERAL, "free");
    }

    function test_claimJob_atClaimDeadline_succeeds() public {
        uint256 jobId = post();
        stakeAs(provider, 2 ether);
        vm.warp(CLAIM_DEADLINE);
        _claim(provider, jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Claimed, "claimed");
    }

    function test_claimJob_afterDeadline_reverts() public {
        uint256 jobId = post();
        stakeAs(provider, 2 ether);
        vm.warp(CLAIM_DEADLINE + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.ClaimDeadlinePassed.selector, jobId, CLAIM_DEADLINE)
        );
        _claim(provider, jobId);
    }

    function test_claimJob_nonStaked_reverts() public {
        uint256 jobId = post();
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.StakeBelowMinimum.selector, 0, 0.5 ether));
        _claim(stranger, jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Posted, "still posted");
        vm.assertEq(market.getJob(jobId).worker, address(0), "no worker");
    }

    function test_claimJob_stakeBelowMinimum_reverts() public {
        uint256 jobId = post();
        stakeAs(provider, 0.5 ether - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.StakeBelowMinimum.selector, 0.5 ether - 1, 0.5 ether)
        );
        _claim(provider, jobId);
    }

    function test_claimJob_insufficientFreeStake_reverts() public {
        uint256 first = post();
        uint256 second = post();
        stakeAs(provider, 0.6 ether);
        _claim(provider, first);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, COLLATERAL, 0.1 ether)
        );
        _claim(provider, second);
        _assertStatus(second, IJobMarket.JobStatus.Posted, "still posted");
    }

    function test_claimJob_secondClaim_reverts() public {
        uint256 jobId = postAndClaim();
        stakeAs(stranger, 2 ether);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Posted, IJobMarket.JobStatus.Claimed));
        _claim(stranger, jobId);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Posted, IJobMarket.JobStatus.Claimed));
        _claim(provider, jobId);
        vm.assertEq(market.getJob(jobId).worker, provider, "first claimant keeps it");
        vm.assertEq(stakes.accountOf(provider).locked, COLLATERAL, "locked once");
    }

    function test_claimJob_nonexistent_reverts() public {
        stakeAs(provider, 2 ether);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 1));
        _claim(provider, 1);
    }

    function test_claimJob_cancelled_reverts() public {
        uint256 jobId = post();
        vm.prank(requester);
        market.cancelJob(jobId);
        stakeAs(provider, 2 ether);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Posted, IJobMarket.JobStatus.Cancelled));
        _claim(provider, jobId);
    }

    function test_claimJob_whilePaused_reverts() public {
        uint256 jobId = post();
        stakeAs(provider, 2 ether);
        vm.prank(pauser);
        market.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        _claim(provider, jobId);
    }

    /// @dev The smallest payment still backs non-zero collateral at the smallest collateral rate,
    ///      so every job that can be posted can also be claimed.
    function test_claimJob_minPaymentMinCollateral_succeeds() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.collateralBps = uint16(ProtocolLimits.MIN_COLLATERAL_BPS);
        _setParams(p);
        uint256 jobId = _postWith(request(), ProtocolLimits.MIN_PAYMENT);
        uint256 collateral = ProtocolLimits.MIN_PAYMENT * ProtocolLimits.MIN_COLLATERAL_BPS / BPS;
        vm.assertGt(collateral, 0, "non-zero collateral");
        stakeAs(provider, 2 ether);
        vm.expectEmit(address(market));
        emit IJobMarket.JobClaimed(jobId, provider, collateral);
        _claim(provider, jobId);
        vm.assertEq(market.getJob(jobId).collateral, collateral, "collateral");
        vm.assertEq(stakes.accountOf(provider).locked, collateral, "locked");
    }

    // ────────────────────────────────────── submitResult ───────────────────────────────────────

    function test_submitResult_succeeds() public {
        uint256 jobId = postAndClaim();
        bytes memory resultCid = cid("result");
        vm.warp(T0 + 100);
        vm.expectEmit(address(market));
        emit IJobMarket.ResultSubmitted(
            jobId, provider, STEPS, traceRoot, FINAL_HASH, resultCid, T0 + 100 + WINDOW
        );
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, auditRoot, FINAL_HASH, finalProof, resultCid);
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(uint256(job.status), uint256(IJobMarket.JobStatus.Submitted), "status");
        vm.assertEq(job.windowEnd, T0 + 100 + WINDOW, "window end");
        vm.assertEq(job.traceRoot, traceRoot, "trace root");
        vm.assertEq(job.auditRoot, auditRoot, "audit root");
    }

    function test_submitResult_atDeliveryDeadline_succeeds() public {
        uint256 jobId = postAndClaim();
        vm.warp(DELIVERY_DEADLINE);
        _submit(provider, jobId);
        vm.assertEq(market.getJob(jobId).windowEnd, DELIVERY_DEADLINE + WINDOW, "window end");
    }

    function test_submitResult_nonWorker_reverts() public {
        uint256 jobId = postAndClaim();
        bytes memory resultCid = cid("result");
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotWorker.selector, jobId, stranger));
        vm.prank(stranger);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotWorker.selector, jobId, requester));
        vm.prank(requester);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
    }

    function test_submitResult_late_reverts() public {
        uint256 jobId = postAndClaim();
        bytes memory resultCid = cid("result");
        vm.warp(DELIVERY_DEADLINE + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.DeliveryDeadlinePassed.selector, jobId, DELIVERY_DEADLINE)
        );
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
    }

    function test_submitResult_stepsMismatch_reverts() public {
        uint256 jobId = postAndClaim();
        bytes memory resultCid = cid("result");
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.StepsMismatch.selector, STEPS, STEPS - 1));
        vm.prank(provider);
        market.submitResult(jobId, STEPS - 1, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.StepsMismatch.selector, STEPS, STEPS + 1));
        vm.prank(provider);
        market.submitResult(jobId, STEPS + 1, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
    }

    function test_submitResult_zeroTraceRoot_reverts() public {
        uint256 jobId = postAndClaim();
        bytes memory resultCid = cid("result");
        vm.expectRevert(IJobMarket.ZeroHash.selector);
        vm.prank(provider);
        market.submitResult(jobId, STEPS, bytes32(0), bytes32(0), FINAL_HASH, finalProof, resultCid);
    }

    function test_submitResult_zeroFinalHash_reverts() public {
        uint256 jobId = postAndClaim();
        bytes memory resultCid = cid("result");
        vm.expectRevert(IJobMarket.ZeroHash.selector);
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), bytes32(0), finalProof, resultCid);
    }

    /// @notice The final state hash must be leaf `steps` of the trace root (of `steps + 1`
    ///         leaves): a forged sibling, a proof too short or too long, none, or the proof of
    ///         another leaf is refused.
    function test_submitResult_wrongFinalProof_reverts() public {
        uint256 jobId = postAndClaim();
        bytes memory resultCid = cid("result");
        bytes32[] memory forged = finalProof;
        forged[0] = keccak256("forged");
        bytes32[] memory short = new bytes32[](finalProof.length - 1);
        bytes32[] memory long = new bytes32[](finalProof.length + 1);
        for (uint256 i = 0; i < short.length; ++i) {
            short[i] = finalProof[i];
        }
        for (uint256 i = 0; i < finalProof.length; ++i) {
            long[i] = finalProof[i];
        }
        bytes32[][5] memory wrong = [forged, short, long, new bytes32[](0), traceProof(STEPS - 1)];
        for (uint256 i = 0; i < wrong.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.FinalStateNotInTrace.selector, FINAL_HASH));
            vm.prank(provider);
            market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, wrong[i], resultCid);
        }
        _assertStatus(jobId, IJobMarket.JobStatus.Claimed, "still claimed");
    }

    /// @notice A final hash that is not the trace's last leaf is refused: one not in the trace,
    ///         a leaf of another step with its own proof, or the right hash against another root.
    function test_submitResult_wrongFinalHash_reverts() public {
        uint256 jobId = postAndClaim();
        bytes memory resultCid = cid("result");
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.FinalStateNotInTrace.selector, WRONG_HASH));
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), WRONG_HASH, finalProof, resultCid);

        bytes32 earlier = trace[STEPS - 1];
        bytes32[] memory earlierProof = traceProof(STEPS - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.FinalStateNotInTrace.selector, earlier));
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), earlier, earlierProof, resultCid);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.FinalStateNotInTrace.selector, FINAL_HASH));
        vm.prank(provider);
        market.submitResult(
            jobId, STEPS, keccak256("another root"), bytes32(0), FINAL_HASH, finalProof, resultCid
        );
        _submit(provider, jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "the honest proof goes through");
    }

    function test_submitResult_invalidResultCid_reverts() public {
        uint256 jobId = postAndClaim();
        bytes memory tooLong = new bytes(ProtocolLimits.MAX_CID_LENGTH + 1);
        tooLong[0] = 0x01;
        bytes memory notV1 = cid("result");
        notV1[0] = 0x00;
        vm.expectRevert(IJobMarket.InvalidCid.selector);
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, "");
        vm.expectRevert(IJobMarket.InvalidCid.selector);
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, tooLong);
        vm.expectRevert(IJobMarket.InvalidCid.selector);
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, notV1);
    }

    function test_submitResult_wrongStatus_reverts() public {
        uint256 jobId = post();
        bytes memory resultCid = cid("result");
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Claimed, IJobMarket.JobStatus.Posted));
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);

        stakeAs(provider, 2 ether);
        _claim(provider, jobId);
        _submit(provider, jobId);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Claimed, IJobMarket.JobStatus.Submitted));
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 99));
        vm.prank(provider);
        market.submitResult(99, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
    }

    /// @notice Attack: a worker who lets the job expire cannot then submit.
    function test_submitResult_afterExpiry_reverts() public {
        uint256 jobId = postAndClaim();
        bytes memory resultCid = cid("result");
        vm.warp(DELIVERY_DEADLINE + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.DeliveryDeadlinePassed.selector, jobId, DELIVERY_DEADLINE)
        );
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
        market.expire(jobId);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Claimed, IJobMarket.JobStatus.Expired));
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
        _assertStatus(jobId, IJobMarket.JobStatus.Expired, "expired");
    }

    // ──────────────────────────────────────── finalize ─────────────────────────────────────────

    function test_finalize_succeeds() public {
        uint256 jobId = postClaimSubmit();
        vm.warp(WINDOW_END);
        vm.expectEmit(address(market));
        emit IJobMarket.JobFinalized(jobId, provider, PAYMENT - FEE, FEE);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralReleased(provider, COLLATERAL);
        vm.prank(stranger); // anyone may finalize
        market.finalize(jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Finalized, "finalized");
        vm.assertEq(market.creditOf(provider), PAYMENT - FEE, "worker credit");
        vm.assertEq(market.feesAccrued(), FEE, "fee");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        vm.assertEq(market.creditOf(requester), 0, "requester");
        vm.assertEq(stakes.accountOf(provider).locked, 0, "released");
        vm.assertEq(stakes.accountOf(provider).staked, 2 ether, "not slashed");
        _assertSolvent("solvent");
    }

    function test_finalize_windowOpen_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowOpen.selector, jobId, WINDOW_END));
        market.finalize(jobId);
        vm.warp(WINDOW_END - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowOpen.selector, jobId, WINDOW_END));
        market.finalize(jobId);
    }

    function test_finalize_wrongStatus_reverts() public {
        uint256 jobId = post();
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Posted));
        market.finalize(jobId);
        stakeAs(provider, 2 ether);
        _claim(provider, jobId);
        vm.warp(WINDOW_END);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Claimed));
        market.finalize(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 99));
        market.finalize(99);
    }

    function test_finalize_whileDisputed_reverts() public {
        uint256 jobId = postClaimSubmitChallenge();
        vm.warp(WINDOW_END + 10 days);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Disputed));
        market.finalize(jobId);
    }

    /// @notice Attack: nobody can finalize twice, and nobody can withdraw twice.
    function test_finalize_twice_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.warp(WINDOW_END);
        market.finalize(jobId);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Finalized));
        vm.prank(provider);
        market.finalize(jobId);
        vm.assertEq(_withdrawAs(provider), PAYMENT - FEE, "paid once");
        vm.expectRevert(IJobMarket.NothingToWithdraw.selector);
        vm.prank(provider);
        market.withdraw();
        vm.prank(treasury);
        market.withdrawFees();
        vm.expectRevert(IJobMarket.NothingToWithdraw.selector);
        vm.prank(treasury);
        market.withdrawFees();
        vm.assertEq(address(market).balance, 0, "empty");
    }

    // ───────────────────────────────────────── expire ──────────────────────────────────────────

    function test_expire_succeeds() public {
        uint256 jobId = postAndClaim();
        vm.warp(DELIVERY_DEADLINE + 1);
        uint256 penalty = COLLATERAL / 2;
        vm.expectEmit(address(market));
        emit IJobMarket.JobExpired(jobId, provider, PAYMENT, penalty);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralSeized(provider, penalty);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralReleased(provider, COLLATERAL - penalty);
        vm.prank(stranger); // anyone may expire
        market.expire(jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Expired, "expired");
        vm.assertEq(market.creditOf(requester), PAYMENT + penalty, "refund + penalty");
        vm.assertEq(market.creditOf(provider), 0, "worker");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        vm.assertEq(market.feesAccrued(), 0, "no fee");
        IStakeManager.Account memory a = stakes.accountOf(provider);
        vm.assertEq(a.staked, 2 ether - penalty, "penalty taken");
        vm.assertEq(a.locked, 0, "rest released");
        vm.assertEq(address(stakes).balance, 2 ether - penalty, "stake manager");
        vm.assertEq(address(market).balance, PAYMENT + penalty, "market");
        _assertSolvent("solvent");
    }

    function test_expire_beforeDeadline_reverts() public {
        uint256 jobId = postAndClaim();
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.DeliveryDeadlineNotPassed.selector, jobId, DELIVERY_DEADLINE)
        );
        market.expire(jobId);
    }

    function test_expire_atDeadline_reverts() public {
        uint256 jobId = postAndClaim();
        vm.warp(DELIVERY_DEADLINE);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.DeliveryDeadlineNotPassed.selector, jobId, DELIVERY_DEADLINE)
        );
        market.expire(jobId);
    }

    /// @notice Claiming a job to sit on it is never free: no penalty below the protocol's floor.
    function test_setParameters_expiryPenaltyBelowMinimum_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.expiryPenaltyBps = uint16(ProtocolLimits.MIN_EXPIRY_PENALTY_BPS - 1);
        _expectParamRevert(p, _outOfBounds("expiryPenaltyBps", 999, 1000, 5000));
        p.expiryPenaltyBps = 0;
        _expectParamRevert(p, _outOfBounds("expiryPenaltyBps", 0, 1000, 5000));
    }

    function test_expire_fullPenalty_succeeds() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.expiryPenaltyBps = uint16(BPS);
        p.challengerRewardBps = 0;
        _setParams(p);
        uint256 jobId = postAndClaim();
        vm.warp(DELIVERY_DEADLINE + 1);
        vm.expectEmit(address(market));
        emit IJobMarket.JobExpired(jobId, provider, PAYMENT, COLLATERAL);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralSeized(provider, COLLATERAL);
        market.expire(jobId);
        vm.assertEq(market.creditOf(requester), PAYMENT + COLLATERAL, "refund + all collateral");
        vm.assertEq(stakes.accountOf(provider).staked, 2 ether - COLLATERAL, "all taken");
        vm.assertEq(stakes.accountOf(provider).locked, 0, "nothing locked");
        vm.assertEq(address(market).balance, PAYMENT + COLLATERAL, "market");
        _assertSolvent("solvent");
    }

    /// @dev The worker accepts the penalty rate in force when it claims: a later change applies
    ///      only to jobs claimed after it.
    function test_expire_penaltyChangedAfterClaim_succeeds() public {
        uint256 early = postAndClaim(); // claimed at the default 5000 bps
        IJobMarket.MarketParams memory p = defaultParams();
        p.expiryPenaltyBps = uint16(BPS);
        p.challengerRewardBps = 0;
        _setParams(p);
        uint256 late = post();
        _claim(provider, late); // claimed at 10000 bps
        vm.assertEq(market.getJob(early).expiryPenaltyBps, 5000, "early snapshot");
        vm.assertEq(market.getJob(late).expiryPenaltyBps, BPS, "late snapshot");
        // Lowering the rate after both claims moves neither.
        p.expiryPenaltyBps = uint16(ProtocolLimits.MIN_EXPIRY_PENALTY_BPS);
        _setParams(p);

        vm.warp(DELIVERY_DEADLINE + 1);
        uint256 earlyPenalty = COLLATERAL / 2;
        vm.expectEmit(address(market));
        emit IJobMarket.JobExpired(early, provider, PAYMENT, earlyPenalty);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralSeized(provider, earlyPenalty);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralReleased(provider, COLLATERAL - earlyPenalty);
        market.expire(early);
        vm.assertEq(market.creditOf(requester), PAYMENT + earlyPenalty, "early: rate at its claim");

        vm.expectEmit(address(market));
        emit IJobMarket.JobExpired(late, provider, PAYMENT, COLLATERAL);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralSeized(provider, COLLATERAL);
        market.expire(late);
        vm.assertEq(
            market.creditOf(requester), 2 * PAYMENT + earlyPenalty + COLLATERAL, "late: rate at its claim"
        );
        IStakeManager.Account memory a = stakes.accountOf(provider);
        vm.assertEq(a.staked, 2 ether - earlyPenalty - COLLATERAL, "penalties taken");
        vm.assertEq(a.locked, 0, "nothing locked");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        _assertSolvent("solvent");
    }

    function test_expire_wrongStatus_reverts() public {
        uint256 jobId = post();
        vm.warp(DELIVERY_DEADLINE + 1);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Claimed, IJobMarket.JobStatus.Posted));
        market.expire(jobId);

        uint256 submitted = postClaimSubmit();
        vm.warp(block.timestamp + 2 days);
        vm.expectRevert(_wrongStatus(submitted, IJobMarket.JobStatus.Claimed, IJobMarket.JobStatus.Submitted));
        market.expire(submitted);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 99));
        market.expire(99);
    }

    function test_expire_twice_reverts() public {
        uint256 jobId = postAndClaim();
        vm.warp(DELIVERY_DEADLINE + 1);
        market.expire(jobId);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Claimed, IJobMarket.JobStatus.Expired));
        market.expire(jobId);
        vm.assertEq(market.creditOf(requester), PAYMENT + COLLATERAL / 2, "credited once");
    }

    // ───────────────────────────────────── commitChallenge ─────────────────────────────────────

    function test_commitChallenge_succeeds() public {
        uint256 jobId = postClaimSubmit();
        bytes32 c = commitment(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.expectEmit(address(market));
        emit IJobMarket.ChallengeCommitted(jobId, validator, c);
        vm.prank(validator);
        market.commitChallenge(jobId, c);
    }

    function test_commitChallenge_whileDisputed_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge();
        bytes32 c = commitment(stranger, jobId, STEP, WRONG_HASH, SALT);
        vm.expectEmit(address(market));
        emit IJobMarket.ChallengeCommitted(jobId, stranger, c);
        vm.prank(stranger);
        market.commitChallenge(jobId, c);
    }

    function test_commitChallenge_duplicateKeepsFirstBlock_succeeds() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        // Committing the same hash again does not move it to this block.
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
        _assertStatus(jobId, IJobMarket.JobStatus.Disputed, "disputed");
    }

    function test_commitChallenge_nonexistent_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 7));
        vm.prank(validator);
        market.commitChallenge(7, keccak256("c"));
    }

    function test_commitChallenge_wrongStatus_reverts() public {
        uint256 jobId = post();
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Posted));
        vm.prank(validator);
        market.commitChallenge(jobId, keccak256("c"));

        stakeAs(provider, 2 ether);
        _claim(provider, jobId);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Claimed));
        vm.prank(validator);
        market.commitChallenge(jobId, keccak256("c"));

        _submit(provider, jobId);
        vm.warp(WINDOW_END);
        market.finalize(jobId);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Finalized));
        vm.prank(validator);
        market.commitChallenge(jobId, keccak256("c"));
    }

    function test_commitChallenge_zeroCommitment_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.expectRevert(IJobMarket.ZeroHash.selector);
        vm.prank(validator);
        market.commitChallenge(jobId, bytes32(0));
    }

    // ──────────────────────────────────────── challenge ────────────────────────────────────────

    function test_challenge_succeeds() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.warp(T0 + 60);
        uint256 deadline = T0 + 60 + DISPUTE;
        vm.expectEmit(address(market));
        emit IJobMarket.ChallengeOpened(jobId, validator, STEP, WRONG_HASH, BOND, address(resolver), deadline);
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);

        _assertStatus(jobId, IJobMarket.JobStatus.Disputed, "disputed");
        vm.assertEq(market.totalEscrowed(), PAYMENT + BOND, "bond escrowed");
        vm.assertEq(address(market).balance, PAYMENT + BOND, "held");
        IJobMarket.Challenge memory c = market.getChallenge(jobId);
        vm.assertEq(c.challenger, validator, "challenger");
        vm.assertEq(c.openedAt, T0 + 60, "openedAt");
        vm.assertEq(c.step, STEP, "step");
        vm.assertEq(c.disputeDuration, DISPUTE, "duration snapshot");
        vm.assertEq(c.resolver, address(resolver), "resolver");
        vm.assertEq(c.bond, BOND, "bond");
        vm.assertEq(c.claimedStateHash, WRONG_HASH, "claimed");
        vm.assertEq(resolver.opened(), 1, "resolver told");
        vm.assertEq(resolver.lastJobId(), jobId, "jobId");
        vm.assertEq(resolver.lastStep(), STEP, "step told");
        vm.assertEq(resolver.lastWorker(), provider, "worker");
        vm.assertEq(resolver.lastChallenger(), validator, "challenger told");
        vm.assertEq(resolver.lastTraceRoot(), traceRoot, "trace root");
        vm.assertEq(resolver.lastClaimedStateHash(), WRONG_HASH, "claimed told");
        vm.assertEq(resolver.lastDeadline(), deadline, "deadline");
        _assertSolvent("solvent");
    }

    function test_challenge_lastStep_succeeds() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEPS - 1, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEPS - 1, WRONG_HASH, SALT);
        vm.assertEq(market.getChallenge(jobId).step, STEPS - 1, "last step");
    }

    function test_challenge_noCommitment_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        bytes32 c = commitment(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.CommitmentNotFound.selector, c));
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
    }

    function test_challenge_revealDiffersFromCommitment_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        bytes32 other = commitment(validator, jobId, STEP + 1, WRONG_HASH, SALT);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.CommitmentNotFound.selector, other));
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP + 1, WRONG_HASH, SALT);
    }

    function test_challenge_commitmentSameBlock_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        bytes32 c = _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.CommitmentTooRecent.selector, c));
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
    }

    function test_challenge_bondTooSmall_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongBond.selector, BOND, BOND - 1));
        vm.prank(validator);
        market.challenge{value: BOND - 1}(jobId, STEP, WRONG_HASH, SALT);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongBond.selector, BOND, 0));
        vm.prank(validator);
        market.challenge(jobId, STEP, WRONG_HASH, SALT);
    }

    function test_challenge_bondTooLarge_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongBond.selector, BOND, BOND + 1));
        vm.prank(validator);
        market.challenge{value: BOND + 1}(jobId, STEP, WRONG_HASH, SALT);
    }

    function test_challenge_stepOutOfRange_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEPS, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.StepOutOfRange.selector, STEPS, STEPS));
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEPS, WRONG_HASH, SALT);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.StepOutOfRange.selector, type(uint256).max, STEPS));
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, type(uint256).max, WRONG_HASH, SALT);
    }

    function test_challenge_zeroClaimedHash_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, bytes32(0), SALT);
        vm.roll(block.number + 1);
        vm.expectRevert(IJobMarket.ZeroHash.selector);
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, bytes32(0), SALT);
    }

    function test_challenge_selfChallenge_reverts() public {
        uint256 jobId = postClaimSubmit();
        _commit(provider, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.expectRevert(IJobMarket.SelfChallenge.selector);
        vm.prank(provider);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
    }

    function test_challenge_validatorStakeTooLow_reverts() public {
        uint256 jobId = postClaimSubmit();
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ValidatorStakeTooLow.selector, 0, 0.5 ether));
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);

        stakeAs(validator, 0.5 ether - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.ValidatorStakeTooLow.selector, 0.5 ether - 1, 0.5 ether)
        );
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);

        // Unbonding stake does not count: only free stake does.
        stakeAs(validator, 1 ether);
        vm.prank(validator);
        stakes.requestUnstake(1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.ValidatorStakeTooLow.selector, 0.5 ether - 1, 0.5 ether)
        );
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
    }

    function test_challenge_validatorCollateralLocked_reverts() public {
        // A provider whose stake is all locked as collateral has no free stake to validate with.
        uint256 jobId = postClaimSubmit();
        uint256 other = post();
        stakeAs(validator, 0.5 ether);
        _claim(validator, other);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ValidatorStakeTooLow.selector, 0, 0.5 ether));
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
    }

    function test_challenge_resolverUnset_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        vm.prank(admin);
        market.setResolver(address(0));
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.expectRevert(IJobMarket.DisputesDisabled.selector);
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
    }

    function test_challenge_windowClosed_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.warp(WINDOW_END + 1 days);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, jobId, WINDOW_END));
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
    }

    /// @notice Attack: a challenge at the last second of the window. windowEnd - 1 is inside the
    ///         window (and finalize is refused there); windowEnd is outside.
    function test_challenge_lastSecondOfWindow_succeeds() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.warp(WINDOW_END - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowOpen.selector, jobId, WINDOW_END));
        market.finalize(jobId);
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
        _assertStatus(jobId, IJobMarket.JobStatus.Disputed, "disputed");
    }

    function test_challenge_atWindowEnd_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.warp(WINDOW_END);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, jobId, WINDOW_END));
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
        market.finalize(jobId); // and at windowEnd the job finalizes
        _assertStatus(jobId, IJobMarket.JobStatus.Finalized, "finalized");
    }

    function test_challenge_alreadyDisputed_reverts() public {
        uint256 jobId = postClaimSubmitChallenge();
        stakeAs(stranger, 1 ether);
        _commit(stranger, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Disputed));
        vm.prank(stranger);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
    }

    function test_challenge_wrongStatus_reverts() public {
        uint256 jobId = postAndClaim();
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Claimed));
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 99));
        vm.prank(validator);
        market.challenge{value: BOND}(99, STEP, WRONG_HASH, SALT);
    }

    /// @notice Attack: a copier replays the validator's reveal with its own address. The
    ///         commitment binds the sender, so the copier has none.
    function test_challenge_copiedRevealByOtherSender_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        stakeAs(stranger, 1 ether);
        bytes32 theirs = _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        // The copier even copies the commit transaction itself.
        vm.prank(stranger);
        market.commitChallenge(jobId, theirs);
        vm.roll(block.number + 1);
        bytes32 copied = commitment(stranger, jobId, STEP, WRONG_HASH, SALT);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.CommitmentNotFound.selector, copied));
        vm.prank(stranger);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
        // The validator's own reveal still goes through.
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
        vm.assertEq(market.getChallenge(jobId).challenger, validator, "the original challenger");
    }

    /// @notice Attack: a copier who commits the revealed parameters after seeing the reveal is too
    ///         late: the job is Disputed already, and the copier gets nothing.
    function test_challenge_copiedAfterReveal_reverts() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        stakeAs(stranger, 1 ether);
        openChallenge(validator, jobId, STEP);
        _commit(stranger, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        uint256 before = stranger.balance;
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Disputed));
        vm.prank(stranger);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
        resolver.decide(jobId, true);
        vm.assertEq(market.creditOf(stranger), 0, "copier gets nothing");
        vm.assertEq(stranger.balance, before, "copier's bond not taken");
        vm.assertEq(market.creditOf(validator), BOND, "challenger: its bond back");
        vm.assertEq(
            _collectAs(validator, jobId), COLLATERAL / 2, "challenger: the reward, unclaimed by others"
        );
    }

    function test_challenge_whilePaused_succeeds() public {
        uint256 jobId = postClaimSubmit();
        vm.prank(pauser);
        market.pause();
        stakeAs(validator, 1 ether);
        openChallenge(validator, jobId, STEP);
        _assertStatus(jobId, IJobMarket.JobStatus.Disputed, "disputed");
    }

    function test_challenge_secondRoundAfterChallengerLost_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge();
        stakeAs(stranger, 1 ether);
        bytes32 salt2 = keccak256("salt 2");
        _commit(stranger, jobId, 3, WRONG_HASH, salt2); // committed while Disputed
        resolver.decide(jobId, false);
        vm.roll(block.number + 1);
        vm.assertEq(market.challengeBondOf(jobId), 2 * BOND, "the bond doubled with the worker's win");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongBond.selector, 2 * BOND, BOND));
        market.challenge{value: BOND}(jobId, 3, WRONG_HASH, salt2);
        vm.prank(stranger);
        market.challenge{value: 2 * BOND}(jobId, 3, WRONG_HASH, salt2);
        vm.assertEq(market.getChallenge(jobId).challenger, stranger, "second challenger");
        vm.assertEq(resolver.opened(), 2, "two disputes");
        resolver.decide(jobId, true);
        vm.assertEq(market.creditOf(provider), BOND, "first bond");
        vm.assertEq(market.creditOf(stranger), 2 * BOND, "second challenger: its bond back");
        vm.assertEq(market.creditOf(requester), PAYMENT + COLLATERAL / 2, "requester");
        vm.assertEq(market.totalEscrowed(), COLLATERAL / 2, "the reward pool");
        vm.assertEq(_collectAs(stranger, jobId), COLLATERAL / 2, "second challenger: the reward");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        _assertSolvent("solvent");
    }

    function test_challenge_commitmentConsumed_reverts() public {
        uint256 jobId = postClaimSubmitChallenge();
        resolver.decide(jobId, false);
        vm.roll(block.number + 1);
        bytes32 c = commitment(validator, jobId, STEP, WRONG_HASH, SALT);
        uint256 bond = market.challengeBondOf(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.CommitmentNotFound.selector, c));
        vm.prank(validator);
        market.challenge{value: bond}(jobId, STEP, WRONG_HASH, SALT);
    }

    // ───────────────────────────────────── resolveDispute ──────────────────────────────────────

    function test_resolveDispute_workerLost_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge();
        uint256 reward = COLLATERAL / 2;
        vm.expectEmit(address(market));
        // windowEnd is zero when the worker lost: the job never returns to Submitted.
        emit IJobMarket.RewardPoolOpened(jobId, reward, block.timestamp + DISPUTE * 40 / 100);
        vm.expectEmit(address(market));
        emit IJobMarket.DisputeResolved(jobId, true, false, BOND, PAYMENT + COLLATERAL - reward, 0);
        vm.expectEmit(address(stakes));
        emit IStakeManager.CollateralSeized(provider, COLLATERAL);
        resolver.decide(jobId, true);

        _assertStatus(jobId, IJobMarket.JobStatus.Resolved, "resolved");
        vm.assertEq(market.creditOf(validator), BOND, "challenger: its bond at once");
        vm.assertEq(market.creditOf(requester), PAYMENT + COLLATERAL - reward, "requester");
        vm.assertEq(market.creditOf(provider), 0, "worker");
        vm.assertEq(market.totalEscrowed(), reward, "the reward, pooled");
        vm.assertEq(_collectAs(validator, jobId), reward, "challenger: the reward after the claim period");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        vm.assertEq(market.feesAccrued(), 0, "no fee");
        vm.assertEq(market.getChallenge(jobId).challenger, address(0), "challenge cleared");
        IStakeManager.Account memory a = stakes.accountOf(provider);
        vm.assertEq(a.staked, 2 ether - COLLATERAL, "collateral seized");
        vm.assertEq(a.locked, 0, "nothing locked");
        vm.assertEq(address(stakes).balance, 2 ether - COLLATERAL + 1 ether, "stake manager");
        vm.assertEq(address(market).balance, PAYMENT + BOND + COLLATERAL, "market");
        _assertSolvent("solvent");

        uint256 vBefore = validator.balance;
        uint256 rBefore = requester.balance;
        vm.assertEq(_withdrawAs(validator), BOND + reward, "challenger paid");
        vm.assertEq(_withdrawAs(requester), PAYMENT + COLLATERAL - reward, "requester paid");
        vm.assertEq(validator.balance - vBefore, BOND + reward, "challenger balance");
        vm.assertEq(requester.balance - rBefore, PAYMENT + COLLATERAL - reward, "requester balance");
        vm.assertEq(address(market).balance, 0, "empty");
    }

    function test_resolveDispute_challengerLost_succeeds() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        uint256 openedAt = WINDOW_END - 10; // ten seconds left in the window
        vm.warp(openedAt);
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);

        uint256 decidedAt = openedAt + 5 hours;
        vm.warp(decidedAt);
        uint256 newEnd = decidedAt + 10;
        vm.expectEmit(address(market));
        emit IJobMarket.DisputeResolved(jobId, false, false, 0, 0, newEnd);
        resolver.decide(jobId, false);

        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(uint256(job.status), uint256(IJobMarket.JobStatus.Submitted), "back to Submitted");
        vm.assertEq(job.windowEnd, newEnd, "remaining window restored");
        vm.assertEq(market.creditOf(provider), BOND, "worker gets the bond");
        vm.assertEq(market.creditOf(validator), 0, "challenger gets nothing");
        vm.assertEq(market.totalEscrowed(), PAYMENT, "payment still escrowed");
        vm.assertEq(market.getChallenge(jobId).challenger, address(0), "challenge cleared");
        vm.assertEq(stakes.accountOf(provider).locked, COLLATERAL, "collateral still locked");
        vm.assertEq(stakes.accountOf(validator).staked, 1 ether, "validator stake untouched");
        _assertSolvent("solvent");

        vm.warp(newEnd - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowOpen.selector, jobId, newEnd));
        market.finalize(jobId);
        vm.warp(newEnd);
        market.finalize(jobId);
        vm.assertEq(market.creditOf(provider), BOND + PAYMENT - FEE, "worker total");
        vm.assertEq(market.feesAccrued(), FEE, "fee");
        vm.assertEq(_withdrawAs(provider), BOND + PAYMENT - FEE, "worker paid");
        vm.prank(treasury);
        market.withdrawFees();
        vm.assertEq(address(market).balance, 0, "empty");
    }

    /// @dev The worker accepts the challenger reward rate in force when it claims: a later change
    ///      applies only to jobs claimed after it.
    function test_resolveDispute_rewardChangedAfterClaim_succeeds() public {
        uint256 early = postAndClaim(); // claimed at the default 5000 bps
        IJobMarket.MarketParams memory p = defaultParams();
        p.challengerRewardBps = 0;
        _setParams(p);
        uint256 late = post();
        _claim(provider, late); // claimed at 0 bps
        vm.assertEq(market.getJob(early).challengerRewardBps, 5000, "early snapshot");
        vm.assertEq(market.getJob(late).challengerRewardBps, 0, "late snapshot");
        _submit(provider, early);
        _submit(provider, late);
        stakeAs(validator, 1 ether);
        _challenge(validator, early, BOND);
        _challenge(validator, late, BOND);
        // Changing the rate after the claims (and mid-dispute) moves neither.
        p.challengerRewardBps = 2500;
        _setParams(p);

        uint256 earlyReward = COLLATERAL / 2;
        vm.expectEmit(address(market));
        emit IJobMarket.DisputeResolved(early, true, false, BOND, PAYMENT + COLLATERAL - earlyReward, 0);
        resolver.decide(early, true);
        vm.assertEq(market.creditOf(requester), PAYMENT + COLLATERAL - earlyReward, "early: requester");
        vm.assertEq(market.getRewardPool(early).remaining, earlyReward, "early: pool");

        vm.expectEmit(address(market));
        emit IJobMarket.DisputeResolved(late, true, false, BOND, PAYMENT + COLLATERAL, 0);
        resolver.decide(late, true);
        vm.assertEq(market.getRewardPool(late).remaining, 0, "late: an empty pool");
        vm.assertEq(market.creditOf(requester), 2 * PAYMENT + 2 * COLLATERAL - earlyReward, "late: requester");
        vm.assertEq(_collectAs(validator, early), earlyReward, "early: challenger's reward");
        vm.assertEq(_collectAs(validator, late), 0, "late: no reward");
        vm.assertEq(market.creditOf(validator), 2 * BOND + earlyReward, "challenger");
        vm.assertEq(stakes.accountOf(provider).staked, 2 ether - 2 * COLLATERAL, "both seized");
        vm.assertEq(stakes.accountOf(provider).locked, 0, "nothing locked");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        _assertSolvent("solvent");
    }

    function test_resolveDispute_lastSecond_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge(); // opened at T0
        uint256 deadline = T0 + DISPUTE;
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeNotExpired.selector, jobId, deadline));
        market.timeoutDispute(jobId);
        uint256 reward = COLLATERAL / 2;
        vm.expectEmit(address(market));
        emit IJobMarket.DisputeResolved(jobId, true, false, BOND, PAYMENT + COLLATERAL - reward, 0);
        resolver.decide(jobId, true);
        _assertStatus(jobId, IJobMarket.JobStatus.Resolved, "resolved");
        vm.assertEq(market.creditOf(validator), BOND, "challenger");
        vm.assertEq(market.getRewardPool(jobId).remaining, reward, "the reward in its pool");
        _assertSolvent("solvent");
    }

    function test_resolveDispute_lastSecondChallengerLost_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge(); // opened at T0
        uint256 deadline = T0 + DISPUTE;
        vm.warp(deadline - 1);
        uint256 newEnd = WINDOW_END + DISPUTE - 1;
        vm.expectEmit(address(market));
        emit IJobMarket.DisputeResolved(jobId, false, false, 0, 0, newEnd);
        resolver.decide(jobId, false);
        _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "back to Submitted");
        vm.assertEq(market.getJob(jobId).windowEnd, newEnd, "window restored");
        vm.assertEq(market.creditOf(provider), BOND, "worker gets the bond");
    }

    /// @dev From the deadline on only timeoutDispute settles the dispute: the two never overlap.
    function test_resolveDispute_atDeadline_reverts() public {
        uint256 jobId = postClaimSubmitChallenge(); // opened at T0
        uint256 deadline = T0 + DISPUTE;
        vm.warp(deadline);
        bytes memory expired = abi.encodeWithSelector(IJobMarket.DisputeExpired.selector, jobId, deadline);
        vm.expectRevert(expired);
        resolver.decide(jobId, true);
        vm.expectRevert(expired);
        resolver.decide(jobId, false);
        _assertStatus(jobId, IJobMarket.JobStatus.Disputed, "still disputed");
        vm.assertEq(stakes.accountOf(provider).locked, COLLATERAL, "collateral still locked");

        // The same second, anyone may time it out.
        vm.expectEmit(address(market));
        emit IJobMarket.DisputeResolved(jobId, false, true, 0, 0, WINDOW_END + DISPUTE);
        vm.prank(stranger);
        market.timeoutDispute(jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "timed out");
        vm.assertEq(market.creditOf(provider), BOND, "worker gets the bond");
        vm.assertEq(market.creditOf(validator), 0, "challenger loses");
        _assertSolvent("solvent");
    }

    function test_resolveDispute_afterDeadline_reverts() public {
        uint256 jobId = postClaimSubmitChallenge();
        uint256 deadline = T0 + DISPUTE;
        vm.warp(deadline + 30 days);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeExpired.selector, jobId, deadline));
        resolver.decide(jobId, true);
        market.timeoutDispute(jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "timed out");
    }

    /// @dev Shortening maxDisputeDuration mid-dispute does not cut the resolver's time short.
    function test_resolveDispute_durationShortenedMidDispute_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge(); // opened at T0 with DISPUTE
        IJobMarket.MarketParams memory p = defaultParams();
        p.maxDisputeDuration = uint32(ProtocolLimits.MIN_DISPUTE_DURATION);
        _setParams(p);
        vm.warp(T0 + DISPUTE - 1); // long past the new duration, inside the dispute's own
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeNotExpired.selector, jobId, T0 + DISPUTE));
        market.timeoutDispute(jobId);
        resolver.decide(jobId, true);
        _assertStatus(jobId, IJobMarket.JobStatus.Resolved, "resolved");
    }

    function test_resolveDispute_nonResolver_reverts() public {
        uint256 jobId = postClaimSubmitChallenge();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotResolver.selector, jobId, stranger));
        vm.prank(stranger);
        market.resolveDispute(jobId, true);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotResolver.selector, jobId, admin));
        vm.prank(admin);
        market.resolveDispute(jobId, false);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotResolver.selector, jobId, validator));
        vm.prank(validator);
        market.resolveDispute(jobId, true);
    }

    function test_resolveDispute_resolverReplacedMidDispute_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge();
        address next = makeAddr("next resolver");
        vm.prank(admin);
        market.setResolver(next);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotResolver.selector, jobId, next));
        vm.prank(next);
        market.resolveDispute(jobId, true);
        resolver.decide(jobId, true); // the resolver of the dispute still decides it
        _assertStatus(jobId, IJobMarket.JobStatus.Resolved, "resolved");
    }

    function test_resolveDispute_wrongStatus_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Disputed, IJobMarket.JobStatus.Submitted));
        resolver.decide(jobId, true);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 99));
        resolver.decide(99, true);
    }

    function test_resolveDispute_twice_reverts() public {
        uint256 jobId = postClaimSubmitChallenge();
        resolver.decide(jobId, true);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Disputed, IJobMarket.JobStatus.Resolved));
        resolver.decide(jobId, true);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Resolved));
        market.finalize(jobId);
    }

    // ───────────────────────────────────── timeoutDispute ──────────────────────────────────────

    function test_timeoutDispute_atDeadline_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge(); // opened at T0
        uint256 deadline = T0 + DISPUTE;
        vm.warp(deadline);
        uint256 newEnd = WINDOW_END + DISPUTE;
        vm.expectEmit(address(market));
        emit IJobMarket.DisputeResolved(jobId, false, true, 0, 0, newEnd);
        vm.prank(stranger); // anyone may time a dispute out
        market.timeoutDispute(jobId);
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(uint256(job.status), uint256(IJobMarket.JobStatus.Submitted), "back to Submitted");
        vm.assertEq(job.windowEnd, newEnd, "window restored");
        vm.assertEq(market.creditOf(provider), BOND, "worker gets the bond");
        vm.assertEq(market.creditOf(validator), 0, "challenger loses");
        vm.assertEq(market.totalEscrowed(), PAYMENT, "escrow");
        vm.assertEq(market.getChallenge(jobId).challenger, address(0), "challenge cleared");
        _assertSolvent("solvent");
        // The resolver cannot decide a dispute that is over.
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Disputed, IJobMarket.JobStatus.Submitted));
        resolver.decide(jobId, true);
    }

    function test_timeoutDispute_tooEarly_reverts() public {
        uint256 jobId = postClaimSubmitChallenge();
        uint256 deadline = T0 + DISPUTE;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeNotExpired.selector, jobId, deadline));
        market.timeoutDispute(jobId);
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeNotExpired.selector, jobId, deadline));
        market.timeoutDispute(jobId);
    }

    /// @dev Changing maxDisputeDuration while a dispute is open moves neither of its deadlines.
    function test_timeoutDispute_durationChangedMidDispute_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge(); // opened at T0 with DISPUTE
        uint256 deadline = T0 + DISPUTE;
        IJobMarket.MarketParams memory p = defaultParams();

        // Shortened: the timeout is not brought forward.
        p.maxDisputeDuration = uint32(ProtocolLimits.MIN_DISPUTE_DURATION);
        _setParams(p);
        vm.assertEq(market.getChallenge(jobId).disputeDuration, DISPUTE, "snapshot kept");
        vm.warp(T0 + ProtocolLimits.MIN_DISPUTE_DURATION);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeNotExpired.selector, jobId, deadline));
        market.timeoutDispute(jobId);
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeNotExpired.selector, jobId, deadline));
        market.timeoutDispute(jobId);

        // Lengthened: the timeout is not pushed back, nor the resolver's deadline.
        p.maxDisputeDuration = uint32(ProtocolLimits.MAX_DISPUTE_DURATION);
        _setParams(p);
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeExpired.selector, jobId, deadline));
        resolver.decide(jobId, true);
        market.timeoutDispute(jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "timed out at the original deadline");
        vm.assertEq(market.getJob(jobId).windowEnd, WINDOW_END + DISPUTE, "window restored");
        vm.assertEq(market.creditOf(provider), BOND, "worker gets the bond");
        _assertSolvent("solvent");
    }

    /// @dev A dispute opened after a change takes the new duration.
    function test_timeoutDispute_newDurationForLaterDispute_succeeds() public {
        uint256 duration = 2 hours;
        IJobMarket.MarketParams memory p = defaultParams();
        p.maxDisputeDuration = uint32(duration);
        _setParams(p);
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.expectEmit(address(market));
        emit IJobMarket.ChallengeOpened(
            jobId, validator, STEP, WRONG_HASH, BOND, address(resolver), T0 + duration
        );
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
        vm.assertEq(market.getChallenge(jobId).disputeDuration, duration, "snapshot");
        vm.assertEq(resolver.lastDeadline(), T0 + duration, "resolver told");
        vm.warp(T0 + duration);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeExpired.selector, jobId, T0 + duration));
        resolver.decide(jobId, false);
        market.timeoutDispute(jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "timed out");
    }

    function test_timeoutDispute_wrongStatus_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.warp(T0 + 30 days);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Disputed, IJobMarket.JobStatus.Submitted));
        market.timeoutDispute(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 99));
        market.timeoutDispute(99);
    }

    function test_timeoutDispute_afterResolution_reverts() public {
        uint256 jobId = postClaimSubmitChallenge();
        resolver.decide(jobId, true);
        vm.warp(T0 + DISPUTE);
        vm.expectRevert(_wrongStatus(jobId, IJobMarket.JobStatus.Disputed, IJobMarket.JobStatus.Resolved));
        market.timeoutDispute(jobId);
    }

    // ──────────────────────────────────────── withdraw ─────────────────────────────────────────

    function test_withdraw_succeeds() public {
        uint256 jobId = post();
        vm.prank(requester);
        market.cancelJob(jobId);
        uint256 before = requester.balance;
        vm.expectEmit(address(market));
        emit IJobMarket.Withdrawn(requester, PAYMENT);
        vm.prank(requester);
        market.withdraw();
        vm.assertEq(requester.balance - before, PAYMENT, "paid");
        vm.assertEq(market.creditOf(requester), 0, "credit cleared");
        vm.assertEq(address(market).balance, 0, "empty");
    }

    function test_withdraw_nothing_reverts() public {
        vm.expectRevert(IJobMarket.NothingToWithdraw.selector);
        vm.prank(stranger);
        market.withdraw();
    }

    function test_withdraw_twice_reverts() public {
        uint256 jobId = post();
        vm.prank(requester);
        market.cancelJob(jobId);
        _withdrawAs(requester);
        vm.expectRevert(IJobMarket.NothingToWithdraw.selector);
        vm.prank(requester);
        market.withdraw();
    }

    function test_withdraw_whilePaused_succeeds() public {
        uint256 jobId = post();
        vm.prank(requester);
        market.cancelJob(jobId);
        vm.prank(pauser);
        market.pause();
        vm.assertEq(_withdrawAs(requester), PAYMENT, "paid while paused");
    }

    function test_withdraw_recipientRefusesEther_reverts() public {
        EtherRefuser caller = new EtherRefuser();
        IJobMarket.JobRequest memory r = request();
        vm.deal(address(this), PAYMENT);
        bytes memory ret =
            caller.exec{value: PAYMENT}(address(market), abi.encodeCall(JobMarket.postJob, (r)));
        uint256 jobId = abi.decode(ret, (uint256));
        caller.exec(address(market), abi.encodeCall(JobMarket.cancelJob, (jobId)));
        vm.expectRevert(IJobMarket.TransferFailed.selector);
        caller.exec(address(market), abi.encodeCall(JobMarket.withdraw, ()));
        vm.assertEq(market.creditOf(address(caller)), PAYMENT, "credit kept");
        vm.assertEq(address(market).balance, PAYMENT, "still held");
    }

    /// @notice Attack: a requester contract re-enters withdraw from receive(). The reentrant call
    ///         fails on the guard and the total paid equals the credit, once.
    function test_withdraw_reentrancy_reverts() public {
        // Someone else's money sits in the market for the attacker to aim at.
        uint256 victimJob = post();
        vm.prank(requester);
        market.cancelJob(victimJob);

        ReentrantRequester attacker = new ReentrantRequester(market);
        attacker.setSwallow(true);
        IJobMarket.JobRequest memory r = request();
        vm.deal(address(this), PAYMENT);
        uint256 jobId = attacker.post{value: PAYMENT}(r);
        attacker.cancel(jobId);
        vm.assertEq(market.creditOf(address(attacker)), PAYMENT, "credit");

        attacker.withdraw();
        vm.assertEq(attacker.received(), PAYMENT, "paid the credit once");
        vm.assertEq(address(attacker).balance, PAYMENT, "attacker balance");
        vm.assertEq(attacker.reentryAttempts(), 1, "re-entered");
        vm.assertEq(
            keccak256(attacker.reentryError()),
            keccak256(abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)),
            "guard error"
        );
        vm.assertEq(market.creditOf(address(attacker)), 0, "credit cleared");
        vm.assertEq(address(market).balance, PAYMENT, "the victim's credit is intact");
        vm.assertEq(market.creditOf(requester), PAYMENT, "victim credit");
    }

    function test_withdraw_reentrancyPropagated_reverts() public {
        ReentrantRequester attacker = new ReentrantRequester(market);
        IJobMarket.JobRequest memory r = request();
        vm.deal(address(this), PAYMENT);
        uint256 jobId = attacker.post{value: PAYMENT}(r);
        attacker.cancel(jobId);
        vm.expectRevert(IJobMarket.TransferFailed.selector);
        attacker.withdraw();
        vm.assertEq(market.creditOf(address(attacker)), PAYMENT, "credit kept");
        vm.assertEq(address(market).balance, PAYMENT, "nothing left");
    }

    // ────────────────────────────────────── withdrawFees ───────────────────────────────────────

    function test_withdrawFees_succeeds() public {
        uint256 jobId = postClaimSubmit();
        vm.warp(WINDOW_END);
        market.finalize(jobId);
        vm.expectEmit(address(market));
        emit IJobMarket.FeesWithdrawn(treasury, FEE);
        vm.prank(treasury);
        market.withdrawFees();
        vm.assertEq(treasury.balance, FEE, "paid");
        vm.assertEq(market.feesAccrued(), 0, "cleared");
        _assertSolvent("solvent");
    }

    function test_withdrawFees_nonRecipient_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.warp(WINDOW_END);
        market.finalize(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotFeeRecipient.selector, stranger));
        vm.prank(stranger);
        market.withdrawFees();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotFeeRecipient.selector, admin));
        vm.prank(admin);
        market.withdrawFees();
    }

    function test_withdrawFees_nothingAccrued_reverts() public {
        vm.expectRevert(IJobMarket.NothingToWithdraw.selector);
        vm.prank(treasury);
        market.withdrawFees();
    }

    function test_withdrawFees_recipientRefusesEther_reverts() public {
        EtherRefuser caller = new EtherRefuser();
        vm.prank(admin);
        market.setFeeRecipient(address(caller));
        uint256 jobId = postClaimSubmit();
        vm.warp(WINDOW_END);
        market.finalize(jobId);
        vm.expectRevert(IJobMarket.TransferFailed.selector);
        caller.exec(address(market), abi.encodeCall(JobMarket.withdrawFees, ()));
        vm.assertEq(market.feesAccrued(), FEE, "fees kept");
    }

    // ───────────────────────────────────── setParameters ───────────────────────────────────────

    function test_setParameters_succeeds() public {
        IJobMarket.MarketParams memory p = IJobMarket.MarketParams({
            protocolFeeBps: 1000,
            collateralBps: 30_000,
            expiryPenaltyBps: 5000,
            challengerRewardBps: 5000,
            minChallengeWindow: uint32(ProtocolLimits.MAX_CHALLENGE_WINDOW),
            maxChallengeWindow: uint32(ProtocolLimits.MAX_CHALLENGE_WINDOW),
            maxDisputeDuration: uint32(ProtocolLimits.MAX_DISPUTE_DURATION),
            challengeBond: uint96(ProtocolLimits.MAX_CHALLENGE_BOND),
            minProviderStake: uint96(ProtocolLimits.MAX_MIN_STAKE),
            minValidatorStake: uint96(ProtocolLimits.MAX_MIN_STAKE)
        });
        vm.expectEmit(address(market));
        emit IJobMarket.ParametersUpdated(defaultParams(), p);
        _setParams(p);
        vm.assertEq(keccak256(abi.encode(market.getParameters())), keccak256(abi.encode(p)), "upper bounds");

        IJobMarket.MarketParams memory low = IJobMarket.MarketParams({
            protocolFeeBps: 0,
            collateralBps: 1000,
            expiryPenaltyBps: 1000,
            challengerRewardBps: 0,
            minChallengeWindow: uint32(ProtocolLimits.MIN_CHALLENGE_WINDOW),
            maxChallengeWindow: uint32(ProtocolLimits.MIN_CHALLENGE_WINDOW),
            maxDisputeDuration: uint32(ProtocolLimits.MIN_DISPUTE_DURATION),
            challengeBond: uint96(ProtocolLimits.MIN_CHALLENGE_BOND),
            minProviderStake: 0,
            minValidatorStake: 0
        });
        _setParams(low);
        vm.assertEq(keccak256(abi.encode(market.getParameters())), keccak256(abi.encode(low)), "lower bounds");
    }

    function test_setParameters_notAdmin_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        vm.expectRevert(_unauthorized(stranger, DEFAULT_ADMIN_ROLE));
        vm.prank(stranger);
        market.setParameters(p);
        vm.expectRevert(_unauthorized(pauser, DEFAULT_ADMIN_ROLE));
        vm.prank(pauser);
        market.setParameters(p);
    }

    function _expectParamRevert(IJobMarket.MarketParams memory p, bytes memory err) internal {
        vm.expectRevert(err);
        vm.prank(admin);
        market.setParameters(p);
    }

    function test_setParameters_protocolFeeTooHigh_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.protocolFeeBps = 1001;
        _expectParamRevert(p, _outOfBounds("protocolFeeBps", 1001, 0, 1000));
    }

    function test_setParameters_collateralTooLow_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.collateralBps = 999;
        _expectParamRevert(p, _outOfBounds("collateralBps", 999, 1000, 30_000));
    }

    function test_setParameters_collateralTooHigh_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.collateralBps = 30_001;
        _expectParamRevert(p, _outOfBounds("collateralBps", 30_001, 1000, 30_000));
    }

    function test_setParameters_expiryPenaltyTooHigh_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.expiryPenaltyBps = 5001; // with the default reward of 5000 bps
        _expectParamRevert(p, _outOfBounds("expiryPenaltyBps", 5001, 1000, 5000));
        p.challengerRewardBps = 0;
        p.expiryPenaltyBps = 10_001;
        _expectParamRevert(p, _outOfBounds("expiryPenaltyBps", 10_001, 1000, 10_000));
    }

    function test_setParameters_challengerRewardTooHigh_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.challengerRewardBps = 5001;
        _expectParamRevert(p, _outOfBounds("challengerRewardBps", 5001, 0, 5000));
    }

    function test_setParameters_minWindowTooLow_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.minChallengeWindow = 9;
        _expectParamRevert(p, _outOfBounds("minChallengeWindow", 9, 10, 7 days));
    }

    function test_setParameters_minWindowTooHigh_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.minChallengeWindow = 7 days + 1;
        _expectParamRevert(p, _outOfBounds("minChallengeWindow", 7 days + 1, 10, 7 days));
    }

    function test_setParameters_maxWindowBelowMin_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.minChallengeWindow = 1 hours;
        p.maxChallengeWindow = 1 hours - 1;
        _expectParamRevert(p, _outOfBounds("maxChallengeWindow", 1 hours - 1, 1 hours, 7 days));
    }

    function test_setParameters_maxWindowTooHigh_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.maxChallengeWindow = 7 days + 1;
        _expectParamRevert(p, _outOfBounds("maxChallengeWindow", 7 days + 1, 10, 7 days));
    }

    function test_setParameters_disputeDurationTooShort_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.maxDisputeDuration = 59;
        _expectParamRevert(p, _outOfBounds("maxDisputeDuration", 59, 60, 7 days));
    }

    function test_setParameters_disputeDurationTooLong_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.maxDisputeDuration = 7 days + 1;
        _expectParamRevert(p, _outOfBounds("maxDisputeDuration", 7 days + 1, 60, 7 days));
    }

    function test_setParameters_bondTooSmall_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.challengeBond = 0.001 ether - 1;
        _expectParamRevert(p, _outOfBounds("challengeBond", 0.001 ether - 1, 0.001 ether, 100 ether));
    }

    function test_setParameters_bondTooLarge_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.challengeBond = 100 ether + 1;
        _expectParamRevert(p, _outOfBounds("challengeBond", 100 ether + 1, 0.001 ether, 100 ether));
    }

    function test_setParameters_minProviderStakeTooHigh_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.minProviderStake = 10_000 ether + 1;
        _expectParamRevert(p, _outOfBounds("minProviderStake", 10_000 ether + 1, 0, 10_000 ether));
    }

    function test_setParameters_minValidatorStakeTooHigh_reverts() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.minValidatorStake = 10_000 ether + 1;
        _expectParamRevert(p, _outOfBounds("minValidatorStake", 10_000 ether + 1, 0, 10_000 ether));
    }

    // ──────────────────────────────── setFeeRecipient / setResolver ────────────────────────────

    function test_setFeeRecipient_succeeds() public {
        vm.expectEmit(address(market));
        emit IJobMarket.FeeRecipientUpdated(treasury, stranger);
        vm.prank(admin);
        market.setFeeRecipient(stranger);
        vm.assertEq(market.feeRecipient(), stranger, "recipient");
        uint256 jobId = postClaimSubmit();
        vm.warp(WINDOW_END);
        market.finalize(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotFeeRecipient.selector, treasury));
        vm.prank(treasury);
        market.withdrawFees();
        uint256 before = stranger.balance;
        vm.prank(stranger);
        market.withdrawFees();
        vm.assertEq(stranger.balance - before, FEE, "new recipient paid");
    }

    function test_setFeeRecipient_zero_reverts() public {
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        vm.prank(admin);
        market.setFeeRecipient(address(0));
    }

    function test_setFeeRecipient_notAdmin_reverts() public {
        vm.expectRevert(_unauthorized(treasury, DEFAULT_ADMIN_ROLE));
        vm.prank(treasury);
        market.setFeeRecipient(treasury);
    }

    function test_setResolver_succeeds() public {
        address next = makeAddr("next resolver");
        vm.expectEmit(address(market));
        emit IJobMarket.ResolverUpdated(address(resolver), next);
        vm.prank(admin);
        market.setResolver(next);
        vm.assertEq(market.resolver(), next, "resolver");
    }

    function test_setResolver_zeroDisablesChallenges_succeeds() public {
        vm.expectEmit(address(market));
        emit IJobMarket.ResolverUpdated(address(resolver), address(0));
        vm.prank(admin);
        market.setResolver(address(0));
        vm.assertEq(market.resolver(), address(0), "disabled");
    }

    function test_setResolver_notAdmin_reverts() public {
        vm.expectRevert(_unauthorized(stranger, DEFAULT_ADMIN_ROLE));
        vm.prank(stranger);
        market.setResolver(stranger);
    }

    // ───────────────────────────────────── pause / unpause ─────────────────────────────────────

    function test_pause_succeeds() public {
        vm.expectEmit(address(market));
        emit Pausable.Paused(pauser);
        vm.prank(pauser);
        market.pause();
        vm.assertTrue(market.paused(), "paused");
        vm.expectEmit(address(market));
        emit Pausable.Unpaused(pauser);
        vm.prank(pauser);
        market.unpause();
        vm.assertFalse(market.paused(), "unpaused");
        post();
    }

    function test_pause_nonPauser_reverts() public {
        bytes32 role = market.PAUSER_ROLE();
        vm.expectRevert(_unauthorized(stranger, role));
        vm.prank(stranger);
        market.pause();
        vm.expectRevert(_unauthorized(admin, role));
        vm.prank(admin);
        market.pause();
    }

    function test_pause_twice_reverts() public {
        vm.prank(pauser);
        market.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(pauser);
        market.pause();
    }

    function test_unpause_nonPauser_reverts() public {
        bytes32 role = market.PAUSER_ROLE();
        vm.prank(pauser);
        market.pause();
        vm.expectRevert(_unauthorized(stranger, role));
        vm.prank(stranger);
        market.unpause();
    }

    function test_unpause_notPaused_reverts() public {
        vm.expectRevert(Pausable.ExpectedPause.selector);
        vm.prank(pauser);
        market.unpause();
    }

    /// @notice While paused only new posts and claims stop; every settlement still runs, so a
    ///         pause can never trap funds.
    function test_pause_onlyPostAndClaimBlocked_succeeds() public {
        vm.assertEq(Pausable.EnforcedPause.selector, bytes4(keccak256("EnforcedPause()")), "selector");
        stakeAs(provider, 5 ether);
        stakeAs(validator, 1 ether);
        uint256 toCancel = post();
        uint256 toClaim = post();
        uint256 toSubmit = post();
        uint256 toExpire = post();
        uint256 toChallenge = post();
        _claim(provider, toSubmit);
        _claim(provider, toExpire);
        _claim(provider, toChallenge);
        _submit(provider, toChallenge);
        _commit(validator, toChallenge, STEP, WRONG_HASH, SALT);
        IJobMarket.JobRequest memory r = request();

        vm.prank(pauser);
        market.pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(requester);
        market.postJob{value: PAYMENT}(r);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        _claim(provider, toClaim);

        vm.prank(requester);
        market.cancelJob(toCancel);
        _submit(provider, toSubmit);
        vm.roll(block.number + 1);
        vm.prank(validator);
        market.challenge{value: BOND}(toChallenge, STEP, WRONG_HASH, SALT);
        resolver.decide(toChallenge, false);
        vm.warp(DELIVERY_DEADLINE + 1);
        market.expire(toExpire);
        market.finalize(toSubmit);
        market.finalize(toChallenge);
        vm.warp(DELIVERY_DEADLINE + 1 + DISPUTE);
        vm.prank(requester);
        market.withdraw();
        vm.prank(provider);
        market.withdraw();
        vm.prank(treasury);
        market.withdrawFees();

        _assertStatus(toCancel, IJobMarket.JobStatus.Cancelled, "cancelled");
        _assertStatus(toClaim, IJobMarket.JobStatus.Posted, "not claimed");
        _assertStatus(toSubmit, IJobMarket.JobStatus.Finalized, "finalized");
        _assertStatus(toExpire, IJobMarket.JobStatus.Expired, "expired");
        _assertStatus(toChallenge, IJobMarket.JobStatus.Finalized, "challenged then finalized");
        vm.assertEq(address(market).balance, PAYMENT, "only the unclaimed job's escrow is left");
        _assertSolvent("solvent");
    }

    function test_pause_timeoutDisputeStillWorks_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge();
        vm.prank(pauser);
        market.pause();
        vm.warp(T0 + DISPUTE);
        market.timeoutDispute(jobId);
        _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "timed out");
    }

    // ───────────────────────────────────────── views ───────────────────────────────────────────

    function test_getJob_nonexistent_succeeds() public view {
        IJobMarket.Job memory job = market.getJob(12_345);
        vm.assertEq(uint256(job.status), uint256(IJobMarket.JobStatus.None), "none");
        vm.assertEq(job.requester, address(0), "no requester");
        IJobMarket.Challenge memory c = market.getChallenge(12_345);
        vm.assertEq(c.challenger, address(0), "no challenge");
    }

    // ───────────────────────────────────────── fuzz ────────────────────────────────────────────

    function testFuzz_postJob_payment(uint256 payment) public {
        // Half the runs probe around MIN_PAYMENT, which a bound up to MAX_PAYMENT would rarely reach.
        payment = payment % 2 == 0
            ? bound(payment, 0, 2 * ProtocolLimits.MIN_PAYMENT)
            : bound(payment, 0, ProtocolLimits.MAX_PAYMENT + 1 ether);
        IJobMarket.JobRequest memory r = request();
        if (payment == 0) {
            _expectPostRevert(r, 0, abi.encodeWithSelector(IJobMarket.ZeroPayment.selector));
        } else if (payment < ProtocolLimits.MIN_PAYMENT) {
            _expectPostRevert(
                r,
                payment,
                abi.encodeWithSelector(
                    IJobMarket.PaymentTooSmall.selector, payment, ProtocolLimits.MIN_PAYMENT
                )
            );
        } else if (payment > ProtocolLimits.MAX_PAYMENT) {
            _expectPostRevert(
                r,
                payment,
                abi.encodeWithSelector(
                    IJobMarket.PaymentTooLarge.selector, payment, ProtocolLimits.MAX_PAYMENT
                )
            );
        } else {
            uint256 jobId = _postWith(r, payment);
            vm.assertEq(market.getJob(jobId).payment, payment, "payment");
            vm.assertEq(market.totalEscrowed(), payment, "escrow");
            vm.assertEq(address(market).balance, payment, "held");
        }
    }

    function testFuzz_postJob_deadlines(uint256 claimOffset, uint256 deliveryOffset) public {
        uint256 maxDuration = ProtocolLimits.MAX_JOB_DURATION;
        claimOffset = bound(claimOffset, 0, maxDuration + 1);
        deliveryOffset = bound(deliveryOffset, 0, maxDuration + 2);
        IJobMarket.JobRequest memory r = request();
        r.claimDeadline = uint40(T0 + claimOffset);
        r.deliveryDeadline = uint40(T0 + deliveryOffset);
        if (claimOffset == 0) {
            _expectPostRevert(r, PAYMENT, abi.encodeWithSelector(IJobMarket.DeadlineInPast.selector, T0, T0));
        } else if (deliveryOffset <= claimOffset || deliveryOffset > maxDuration) {
            _expectPostRevert(
                r,
                PAYMENT,
                abi.encodeWithSelector(
                    IJobMarket.InvalidDeliveryDeadline.selector,
                    T0 + claimOffset,
                    T0 + deliveryOffset,
                    T0 + maxDuration
                )
            );
        } else {
            uint256 jobId = _postWith(r, PAYMENT);
            vm.assertEq(market.getJob(jobId).deliveryDeadline, T0 + deliveryOffset, "stored");
        }
    }

    function testFuzz_postJob_challengeWindow(uint256 window) public {
        uint256 lo = ProtocolLimits.MIN_CHALLENGE_WINDOW;
        uint256 hi = ProtocolLimits.MAX_CHALLENGE_WINDOW;
        window = bound(window, 0, hi + 1 days);
        IJobMarket.JobRequest memory r = request();
        r.challengeWindow = uint32(window);
        if (window < lo || window > hi) {
            _expectPostRevert(
                r,
                PAYMENT,
                abi.encodeWithSelector(IJobMarket.ChallengeWindowOutOfBounds.selector, window, lo, hi)
            );
        } else {
            uint256 jobId = _postWith(r, PAYMENT);
            vm.assertEq(market.getJob(jobId).challengeWindow, window, "stored");
        }
    }

    function testFuzz_claimJob_deadline(uint256 dt) public {
        dt = bound(dt, 0, 2 hours);
        uint256 jobId = post();
        stakeAs(provider, 2 ether);
        vm.warp(T0 + dt);
        if (dt > 1 hours) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.ClaimDeadlinePassed.selector, jobId, CLAIM_DEADLINE)
            );
            _claim(provider, jobId);
        } else {
            _claim(provider, jobId);
            _assertStatus(jobId, IJobMarket.JobStatus.Claimed, "claimed");
        }
    }

    function testFuzz_claimJob_collateralBps(uint256 payment, uint256 collateralBps, uint256 extraStake)
        public
    {
        payment = bound(payment, ProtocolLimits.MIN_PAYMENT, ProtocolLimits.MAX_PAYMENT);
        collateralBps =
            bound(collateralBps, ProtocolLimits.MIN_COLLATERAL_BPS, ProtocolLimits.MAX_COLLATERAL_BPS);
        IJobMarket.MarketParams memory p = defaultParams();
        p.collateralBps = uint16(collateralBps);
        p.minProviderStake = 0;
        _setParams(p);
        uint256 collateral = payment * collateralBps / BPS;
        extraStake = bound(extraStake, 0, 1 ether);
        // MIN_PAYMENT keeps the collateral well above one wei at any allowed rate.
        vm.assertGe(
            collateral, ProtocolLimits.MIN_PAYMENT * ProtocolLimits.MIN_COLLATERAL_BPS / BPS, "collateral"
        );
        uint256 jobId = _postPaid(payment, WINDOW);
        // One wei short of the collateral fails; exactly enough succeeds.
        _stakeExtra(provider, collateral - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, collateral, collateral - 1)
        );
        _claim(provider, jobId);
        _stakeExtra(provider, 1 + extraStake);
        _claim(provider, jobId);
        vm.assertEq(market.getJob(jobId).collateral, collateral, "collateral");
        vm.assertEq(stakes.accountOf(provider).locked, collateral, "locked");
        vm.assertEq(stakes.freeStakeOf(provider), extraStake, "free");
    }

    function testFuzz_submitResult_deadline(uint256 dt) public {
        dt = bound(dt, 0, 2 days);
        uint256 jobId = postAndClaim();
        bytes memory resultCid = cid("result");
        vm.warp(T0 + dt);
        if (dt > 1 days) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.DeliveryDeadlinePassed.selector, jobId, DELIVERY_DEADLINE)
            );
            vm.prank(provider);
            market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
        } else {
            vm.prank(provider);
            market.submitResult(jobId, STEPS, traceRoot, bytes32(0), FINAL_HASH, finalProof, resultCid);
            vm.assertEq(market.getJob(jobId).windowEnd, T0 + dt + WINDOW, "window end");
        }
    }

    /// @notice finalize succeeds iff now >= windowEnd, and then pays everyone to the wei.
    function testFuzz_finalize_iffWindowEnded(uint256 window, uint256 dt) public {
        window = bound(window, ProtocolLimits.MIN_CHALLENGE_WINDOW, ProtocolLimits.MAX_CHALLENGE_WINDOW);
        dt = bound(dt, 0, 2 * ProtocolLimits.MAX_CHALLENGE_WINDOW);
        uint256 jobId = _postPaid(PAYMENT, uint32(window));
        stakeAs(provider, 2 ether);
        _claim(provider, jobId);
        _submit(provider, jobId);
        vm.warp(T0 + dt);
        if (dt < window) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.ChallengeWindowOpen.selector, jobId, T0 + window)
            );
            market.finalize(jobId);
            _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "still submitted");
        } else {
            market.finalize(jobId);
            vm.assertEq(market.creditOf(provider), PAYMENT - FEE, "worker");
            vm.assertEq(market.feesAccrued(), FEE, "fee");
        }
        _assertSolvent("solvent");
    }

    /// @notice challenge succeeds iff now < windowEnd.
    function testFuzz_challenge_iffWindowOpen(uint256 window, uint256 dt) public {
        window = bound(window, ProtocolLimits.MIN_CHALLENGE_WINDOW, ProtocolLimits.MAX_CHALLENGE_WINDOW);
        dt = bound(dt, 0, 2 * ProtocolLimits.MAX_CHALLENGE_WINDOW);
        uint256 jobId = _postPaid(PAYMENT, uint32(window));
        stakeAs(provider, 2 ether);
        _claim(provider, jobId);
        _submit(provider, jobId);
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.warp(T0 + dt);
        if (dt >= window) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, jobId, T0 + window)
            );
            vm.prank(validator);
            market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
            market.finalize(jobId);
        } else {
            vm.prank(validator);
            market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
            _assertStatus(jobId, IJobMarket.JobStatus.Disputed, "disputed");
            vm.expectRevert(
                _wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Disputed)
            );
            market.finalize(jobId);
        }
        _assertSolvent("solvent");
    }

    function testFuzz_challenge_wrongBond(uint256 sent) public {
        sent = bound(sent, 0, 10 ether);
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commit(validator, jobId, STEP, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.deal(validator, 100 ether);
        if (sent != BOND) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongBond.selector, BOND, sent));
        }
        vm.prank(validator);
        market.challenge{value: sent}(jobId, STEP, WRONG_HASH, SALT);
        vm.assertEq(
            validator.balance, sent == BOND ? 100 ether - BOND : 100 ether, "bond taken only if exact"
        );
    }

    /// @notice A full finalize flow for any payment and fee rate, every balance to the wei.
    function testFuzz_finalize_paymentAndFee(uint256 payment, uint256 feeBps) public {
        payment = bound(payment, ProtocolLimits.MIN_PAYMENT, ProtocolLimits.MAX_PAYMENT);
        feeBps = bound(feeBps, 0, ProtocolLimits.MAX_PROTOCOL_FEE_BPS);
        IJobMarket.MarketParams memory p = defaultParams();
        p.protocolFeeBps = uint16(feeBps);
        _setParams(p);
        uint256 collateral = payment * 5000 / BPS;
        uint256 jobId = _postPaid(payment, WINDOW);
        _stakeExtra(provider, collateral + 0.5 ether);
        _claim(provider, jobId);
        _submit(provider, jobId);
        vm.warp(WINDOW_END);
        market.finalize(jobId);

        uint256 fee = payment * feeBps / BPS;
        vm.assertEq(market.creditOf(provider), payment - fee, "worker credit");
        vm.assertEq(market.feesAccrued(), fee, "fee");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        vm.assertEq(stakes.accountOf(provider).locked, 0, "released");
        vm.assertEq(stakes.accountOf(provider).staked, collateral + 0.5 ether, "stake intact");
        _assertSolvent("solvent");

        vm.assertEq(_withdrawAs(provider), payment - fee, "worker paid");
        if (fee == 0) {
            vm.expectRevert(IJobMarket.NothingToWithdraw.selector);
            vm.prank(treasury);
            market.withdrawFees();
        } else {
            uint256 before = treasury.balance;
            vm.prank(treasury);
            market.withdrawFees();
            vm.assertEq(treasury.balance - before, fee, "treasury paid");
        }
        vm.assertEq(address(market).balance, 0, "market empty");
    }

    function testFuzz_expire_penalty(uint256 payment, uint256 collateralBps, uint256 penaltyBps, uint256 dt)
        public
    {
        payment = bound(payment, ProtocolLimits.MIN_PAYMENT, ProtocolLimits.MAX_PAYMENT);
        collateralBps =
            bound(collateralBps, ProtocolLimits.MIN_COLLATERAL_BPS, ProtocolLimits.MAX_COLLATERAL_BPS);
        penaltyBps = bound(penaltyBps, ProtocolLimits.MIN_EXPIRY_PENALTY_BPS, BPS);
        dt = bound(dt, 0, 2 days);
        IJobMarket.MarketParams memory p = defaultParams();
        p.collateralBps = uint16(collateralBps);
        p.expiryPenaltyBps = uint16(penaltyBps);
        p.challengerRewardBps = 0; // the penalty may then reach the whole collateral
        _setParams(p);
        uint256 collateral = payment * collateralBps / BPS;
        uint256 stake = collateral + 0.5 ether;
        uint256 jobId = _postPaid(payment, WINDOW);
        _stakeExtra(provider, stake);
        _claim(provider, jobId);
        vm.warp(T0 + dt);
        if (dt <= 1 days) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobMarket.DeliveryDeadlineNotPassed.selector, jobId, DELIVERY_DEADLINE
                )
            );
            market.expire(jobId);
            return;
        }
        market.expire(jobId);
        uint256 penalty = collateral * penaltyBps / BPS;
        vm.assertEq(market.creditOf(requester), payment + penalty, "requester");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        IStakeManager.Account memory a = stakes.accountOf(provider);
        vm.assertEq(a.staked, stake - penalty, "penalty taken");
        vm.assertEq(a.locked, 0, "rest released");
        vm.assertEq(address(stakes).balance, stake - penalty, "stake manager");
        vm.assertEq(address(market).balance, payment + penalty, "market");
        _assertSolvent("solvent");
        uint256 before = requester.balance;
        vm.prank(requester);
        market.withdraw();
        vm.assertEq(requester.balance - before, payment + penalty, "requester paid");
        vm.assertEq(address(market).balance, 0, "market empty");
    }

    function testFuzz_resolveDispute_workerLost(
        uint256 payment,
        uint256 collateralBps,
        uint256 rewardBps,
        uint256 bond
    ) public {
        payment = bound(payment, ProtocolLimits.MIN_PAYMENT, ProtocolLimits.MAX_PAYMENT);
        collateralBps =
            bound(collateralBps, ProtocolLimits.MIN_COLLATERAL_BPS, ProtocolLimits.MAX_COLLATERAL_BPS);
        rewardBps = bound(rewardBps, 0, ProtocolLimits.MAX_CHALLENGER_REWARD_BPS);
        bond = bound(bond, ProtocolLimits.MIN_CHALLENGE_BOND, ProtocolLimits.MAX_CHALLENGE_BOND);
        IJobMarket.MarketParams memory p = defaultParams();
        p.collateralBps = uint16(collateralBps);
        p.challengerRewardBps = uint16(rewardBps);
        p.challengeBond = uint96(bond);
        _setParams(p);
        uint256 collateral = payment * collateralBps / BPS;
        uint256 stake = collateral + 0.5 ether;
        uint256 jobId = _postPaid(payment, WINDOW);
        _stakeExtra(provider, stake);
        _claim(provider, jobId);
        _submit(provider, jobId);
        stakeAs(validator, 1 ether);
        _challenge(validator, jobId, bond);
        vm.assertEq(market.totalEscrowed(), payment + bond, "escrow + bond");
        resolver.decide(jobId, true);

        uint256 reward = collateral * rewardBps / BPS;
        vm.assertEq(market.creditOf(validator), bond, "challenger: the bond at once");
        vm.assertEq(market.creditOf(requester), payment + collateral - reward, "requester");
        vm.assertEq(market.creditOf(provider), 0, "worker");
        vm.assertEq(market.totalEscrowed(), reward, "the reward waits in its pool");
        _assertSolvent("solvent, pool open");
        vm.assertEq(_collectAs(validator, jobId), reward, "the sole claimant collects the whole reward");
        vm.assertEq(market.totalEscrowed(), 0, "escrow");
        vm.assertEq(stakes.accountOf(provider).staked, stake - collateral, "seized");
        vm.assertEq(stakes.accountOf(provider).locked, 0, "unlocked");
        vm.assertEq(address(stakes).balance, stake - collateral + 1 ether, "stake manager");
        vm.assertEq(address(market).balance, payment + bond + collateral, "market");
        _assertSolvent("solvent");
        vm.assertEq(_withdrawAs(validator), bond + reward, "challenger paid");
        vm.assertEq(_withdrawAs(requester), payment + collateral - reward, "requester paid");
        vm.assertEq(address(market).balance, 0, "market empty");
    }

    /// @notice Whenever a challenge is opened and however long the resolver takes (within the
    ///         dispute's deadline), a lost challenge gives the job back exactly the rest of its window.
    function testFuzz_resolveDispute_challengerLostRestoresWindow(
        uint256 window,
        uint256 openAfter,
        uint256 decideAfter
    ) public {
        window = bound(window, ProtocolLimits.MIN_CHALLENGE_WINDOW, ProtocolLimits.MAX_CHALLENGE_WINDOW);
        openAfter = bound(openAfter, 0, window - 1);
        decideAfter = bound(decideAfter, 0, DISPUTE - 1); // resolveDispute is refused from the deadline on
        uint256 jobId = _postPaid(PAYMENT, uint32(window));
        stakeAs(provider, 2 ether);
        _claim(provider, jobId);
        _submit(provider, jobId);
        stakeAs(validator, 1 ether);
        vm.warp(T0 + openAfter);
        _challenge(validator, jobId, BOND);
        vm.warp(T0 + openAfter + decideAfter);
        resolver.decide(jobId, false);

        uint256 newEnd = T0 + window + decideAfter;
        vm.assertEq(market.getJob(jobId).windowEnd, newEnd, "window end");
        vm.assertEq(newEnd - block.timestamp, window - openAfter, "remaining window");
        vm.assertEq(market.creditOf(provider), BOND, "bond to worker");
        _assertSolvent("solvent");
        vm.warp(newEnd - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowOpen.selector, jobId, newEnd));
        market.finalize(jobId);
        vm.warp(newEnd);
        market.finalize(jobId);
        vm.assertEq(_withdrawAs(provider), BOND + PAYMENT - FEE, "worker paid");
    }

    /// @notice timeoutDispute succeeds iff now >= openedAt + maxDisputeDuration (as it was when
    ///         the dispute opened).
    function testFuzz_timeoutDispute_deadline(uint256 duration, uint256 dt) public {
        duration = bound(duration, ProtocolLimits.MIN_DISPUTE_DURATION, ProtocolLimits.MAX_DISPUTE_DURATION);
        dt = bound(dt, 0, 2 * ProtocolLimits.MAX_DISPUTE_DURATION);
        IJobMarket.MarketParams memory p = defaultParams();
        p.maxDisputeDuration = uint32(duration);
        _setParams(p);
        uint256 jobId = postClaimSubmitChallenge(); // opened at T0
        vm.warp(T0 + dt);
        if (dt < duration) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.DisputeNotExpired.selector, jobId, T0 + duration)
            );
            market.timeoutDispute(jobId);
            _assertStatus(jobId, IJobMarket.JobStatus.Disputed, "still disputed");
        } else {
            market.timeoutDispute(jobId);
            _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "timed out");
            vm.assertEq(market.getJob(jobId).windowEnd, WINDOW_END + dt, "window restored");
            vm.assertEq(market.creditOf(provider), BOND, "bond to worker");
        }
        _assertSolvent("solvent");
    }

    /// @notice At any time exactly one of resolveDispute and timeoutDispute is open: the resolver
    ///         before openedAt + the dispute's own duration, the timeout from then on, however
    ///         maxDisputeDuration changes meanwhile.
    function testFuzz_resolveDispute_iffBeforeDeadline(
        uint256 duration,
        uint256 changedTo,
        uint256 dt,
        bool workerLost
    ) public {
        uint256 lo = ProtocolLimits.MIN_DISPUTE_DURATION;
        uint256 hi = ProtocolLimits.MAX_DISPUTE_DURATION;
        duration = bound(duration, lo, hi);
        changedTo = bound(changedTo, lo, hi);
        dt = bound(dt, 0, 2 * hi);
        IJobMarket.MarketParams memory p = defaultParams();
        p.maxDisputeDuration = uint32(duration);
        _setParams(p);
        uint256 jobId = postClaimSubmitChallenge(); // opened at T0
        uint256 deadline = T0 + duration;
        p.maxDisputeDuration = uint32(changedTo);
        _setParams(p);
        vm.warp(T0 + dt);
        if (dt < duration) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeNotExpired.selector, jobId, deadline));
            market.timeoutDispute(jobId);
            resolver.decide(jobId, workerLost);
            _assertStatus(
                jobId, workerLost ? IJobMarket.JobStatus.Resolved : IJobMarket.JobStatus.Submitted, "resolved"
            );
        } else {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.DisputeExpired.selector, jobId, deadline));
            resolver.decide(jobId, workerLost);
            market.timeoutDispute(jobId);
            _assertStatus(jobId, IJobMarket.JobStatus.Submitted, "timed out");
            vm.assertEq(market.getJob(jobId).windowEnd, WINDOW_END + dt, "window restored");
        }
        _assertSolvent("solvent");
    }

    function testFuzz_setParameters_bps(uint256 feeBps, uint256 collateralBps, uint256 penaltyBps) public {
        feeBps = bound(feeBps, 0, type(uint16).max);
        collateralBps = bound(collateralBps, 0, type(uint16).max);
        penaltyBps = bound(penaltyBps, 0, type(uint16).max);
        IJobMarket.MarketParams memory p = defaultParams();
        p.protocolFeeBps = uint16(feeBps);
        p.collateralBps = uint16(collateralBps);
        p.expiryPenaltyBps = uint16(penaltyBps);
        bytes memory err;
        if (feeBps > 1000) {
            err = _outOfBounds("protocolFeeBps", feeBps, 0, 1000);
        } else if (collateralBps < 1000 || collateralBps > 30_000) {
            err = _outOfBounds("collateralBps", collateralBps, 1000, 30_000);
        } else if (penaltyBps < 1000 || penaltyBps > 5000) {
            // The default reward is 5000 bps: penalty + reward may not pass the whole collateral.
            err = _outOfBounds("expiryPenaltyBps", penaltyBps, 1000, 5000);
        }
        if (err.length != 0) {
            _expectParamRevert(p, err);
            vm.assertEq(
                keccak256(abi.encode(market.getParameters())),
                keccak256(abi.encode(defaultParams())),
                "unchanged"
            );
        } else {
            _setParams(p);
            vm.assertEq(keccak256(abi.encode(market.getParameters())), keccak256(abi.encode(p)), "set");
        }
    }
}
