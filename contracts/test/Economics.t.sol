// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAuditPool} from "../src/interfaces/IAuditPool.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {ProtocolLimits} from "../src/libraries/ProtocolLimits.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice The attacks of docs/economics.md, each played with real money flows: a worker's
///         puppet that convicts it first, self-conviction against expiry, unverifiable jobs,
///         challenges of batch-inference jobs, griefing by baseless challenges, and the
///         verifier's dilemma (who checks an honest job).
contract EconomicsTest is Fixture {
    uint256 internal constant BOND = 0.1 ether;
    /// The fixture's collateral: half the payment.
    uint256 internal constant COLLATERAL = PAYMENT / 2;
    bytes32 internal constant HONEST_HASH = keccak256("the honest state");

    address internal puppet;

    function setUp() public override {
        super.setUp();
        puppet = makeAddr("puppet");
        vm.deal(puppet, 100 ether);
    }

    function _commitAs(address who, uint256 jobId, uint256 step, bytes32 claimed, bytes32 salt) internal {
        vm.prank(who);
        market.commitChallenge(jobId, commitment(who, jobId, step, claimed, salt));
    }

    function _collectAs(address who, uint256 jobId) internal returns (uint256 share) {
        uint256 before = market.creditOf(who);
        vm.prank(who);
        market.collectReward(jobId);
        share = market.creditOf(who) - before;
    }

    // ─────────────────────────────────────────── self-conviction ─────────────────────────────────────

    /// @notice The worker's puppet reveals first and convicts it; the honest validator, which
    ///         committed while the puppet's dispute ran, still earns half the reward, and the
    ///         coalition of worker and puppet loses the collateral less that half.
    function test_aPuppetThatConvictsItsWorkerFirstSharesTheRewardWithTheHonestValidator() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(puppet, 1 ether);
        stakeAs(validator, 1 ether);
        uint256 workerStake = stakes.accountOf(provider).staked;
        openChallenge(puppet, jobId, 7);
        // The honest validator found step 3 wrong and commits while the job is disputed.
        _commitAs(validator, jobId, 3, HONEST_HASH, SALT);
        vm.roll(block.number + 1);
        // Its reveal cannot open a second dispute, and a late committer comes in the
        // conviction's block.
        vm.prank(validator);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.WrongStatus.selector,
                jobId,
                IJobMarket.JobStatus.Submitted,
                IJobMarket.JobStatus.Disputed
            )
        );
        market.challenge{value: BOND}(jobId, 3, HONEST_HASH, SALT);
        _commitAs(stranger, jobId, 3, HONEST_HASH, SALT); // in the conviction's block
        resolver.decide(jobId, true); // the worker concedes to its puppet
        vm.roll(block.number + 1);

        uint256 reward = COLLATERAL / 2;
        vm.assertEq(stakes.accountOf(provider).staked, workerStake - COLLATERAL, "the whole collateral");
        vm.assertEq(market.creditOf(puppet), BOND, "the puppet: only its bond, at once");

        vm.prank(validator);
        market.claimReward(jobId, 3, HONEST_HASH, SALT);
        vm.assertEq(market.getRewardPool(jobId).claimants, 2, "puppet and validator");
        vm.assertEq(market.claimOf(jobId, validator), 1, "the validator claims");
        vm.assertEq(market.claimOf(jobId, provider), 0, "the worker never does");
        stakeAs(stranger, 1 ether);
        bytes32 late = commitment(stranger, jobId, 3, HONEST_HASH, SALT);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.CommitmentTooLate.selector, late));
        market.claimReward(jobId, 3, HONEST_HASH, SALT);

        vm.warp(market.getRewardPool(jobId).claimEnd + 1);
        vm.assertEq(_collectAs(validator, jobId), reward / 2, "the honest validator: half the reward");
        vm.assertEq(market.claimOf(jobId, validator), 2, "collected");
        vm.assertEq(_collectAs(puppet, jobId), reward - reward / 2, "the puppet: the other half");
        vm.assertEq(market.totalEscrowed(), 0, "every wei paid out");
        // Worker and puppet together: -COLLATERAL + reward/2.
        vm.assertGe(COLLATERAL - (reward - reward / 2), COLLATERAL * 3 / 4, "the coalition loses 3/4");
        vm.assertEq(market.creditOf(requester), PAYMENT + COLLATERAL - reward, "requester");
    }

    /// @notice The pool's guards: the worker cannot join, nobody joins twice or after the
    ///         period, nobody collects before it or twice, and a job without a conviction has
    ///         no pool.
    function test_rewardPoolRefusesWhatItMust() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        stakeAs(provider, 1 ether);
        _commitAs(provider, jobId, 3, HONEST_HASH, SALT);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NoRewardPool.selector, jobId));
        market.claimReward(jobId, 3, HONEST_HASH, SALT);
        _commitAs(stranger, jobId, 1, HONEST_HASH, SALT);
        openChallenge(validator, jobId, 7);
        vm.roll(block.number + 1);
        resolver.decide(jobId, true);

        vm.prank(provider);
        vm.expectRevert(IJobMarket.SelfChallenge.selector);
        market.claimReward(jobId, 3, HONEST_HASH, SALT);
        uint256 claimEnd = market.getRewardPool(jobId).claimEnd;
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ClaimPeriodOpen.selector, jobId, claimEnd));
        market.collectReward(jobId);
        vm.warp(claimEnd + 1);
        stakeAs(stranger, 1 ether);
        vm.roll(block.number + 1);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ClaimPeriodOver.selector, jobId, claimEnd));
        market.claimReward(jobId, 1, HONEST_HASH, SALT);
        vm.assertEq(_collectAs(validator, jobId), COLLATERAL / 2, "the sole claimant");
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotClaimant.selector, jobId, validator));
        market.collectReward(jobId);
    }

    /// @notice A claimant that did not commit a challenge of this job, or lacks the stake,
    ///         cannot join; one that already joined cannot join again.
    function test_aClaimNeedsACommitmentAndStakeAndComesOnce() public {
        uint256 jobId = postClaimSubmit();
        stakeAs(validator, 1 ether);
        _commitAs(stranger, jobId, 3, HONEST_HASH, SALT);
        _commitAs(validator, jobId, 3, HONEST_HASH, SALT);
        openChallenge(validator, jobId, 7);
        vm.roll(block.number + 1);
        resolver.decide(jobId, true);

        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ValidatorStakeTooLow.selector, 0, 0.5 ether));
        market.claimReward(jobId, 3, HONEST_HASH, SALT);
        stakeAs(stranger, 1 ether);
        bytes32 other = commitment(stranger, jobId, 4, HONEST_HASH, SALT);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.CommitmentNotFound.selector, other));
        market.claimReward(jobId, 4, HONEST_HASH, SALT);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AlreadyClaimed.selector, jobId, validator));
        market.claimReward(jobId, 3, HONEST_HASH, SALT);
        vm.prank(stranger);
        market.claimReward(jobId, 3, HONEST_HASH, SALT);
        vm.assertEq(market.getRewardPool(jobId).claimants, 2, "challenger and one committer");
    }

    // ─────────────────────────────────────────── expiry ─────────────────────────────────────────────

    /// @notice For every reward rate the limits allow and the largest penalty they then allow,
    ///         a worker that cannot deliver loses no more by expiring than by submitting garbage
    ///         and convicting itself through a puppet that collects the whole reward.
    function testFuzz_selfConvictionNeverBeatsExpiry(uint256 rewardBps) public {
        rewardBps = bound(rewardBps, 0, ProtocolLimits.MAX_CHALLENGER_REWARD_BPS);
        IJobMarket.MarketParams memory p = defaultParams();
        p.challengerRewardBps = uint16(rewardBps);
        p.expiryPenaltyBps = uint16(ProtocolLimits.BPS - rewardBps);
        vm.prank(admin);
        market.setParameters(p);
        p.expiryPenaltyBps += 1;
        vm.prank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.ParameterOutOfBounds.selector,
                "expiryPenaltyBps",
                p.expiryPenaltyBps,
                ProtocolLimits.MIN_EXPIRY_PENALTY_BPS,
                ProtocolLimits.BPS - rewardBps
            )
        );
        market.setParameters(p);

        stakeAs(puppet, 1 ether);
        uint256 expired = postAndClaim();
        uint256 convicted = postClaimSubmit(); // stakes the provider's 2 ether again
        uint256 before = stakes.accountOf(provider).staked;
        openChallenge(puppet, convicted, 7);
        vm.roll(block.number + 1);
        resolver.decide(convicted, true);
        vm.warp(market.getRewardPool(convicted).claimEnd + 1);
        uint256 recovered = _collectAs(puppet, convicted);
        uint256 convictionLoss = before - stakes.accountOf(provider).staked - recovered;

        vm.warp(market.getJob(expired).deliveryDeadline + 1);
        uint256 beforeExpiry = stakes.accountOf(provider).staked;
        market.expire(expired);
        uint256 expiryLoss = beforeExpiry - stakes.accountOf(provider).staked;
        vm.assertGe(convictionLoss, expiryLoss, "self-conviction is never the cheaper exit");
    }

    // ─────────────────────────────────────────── admissibility ──────────────────────────────────────

    /// @notice A training job is posted only with a spec the game admitted, with the step count
    ///         it was admitted with, and only while the market has a game; a batch-inference
    ///         job (no game) needs no admission.
    function test_theMarketPostsOnlySpecsTheGameAdmitted() public {
        IJobMarket.JobRequest memory r = request();
        r.specHash = keccak256("a spec nobody admitted");
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpecNotAdmitted.selector, r.specHash));
        market.postJob{value: PAYMENT}(r);

        r = request();
        r.steps = STEPS + 1; // the admitted spec, with another step count
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpecNotAdmitted.selector, r.specHash));
        market.postJob{value: PAYMENT}(r);

        vm.prank(admin);
        market.setResolver(address(0));
        r = request();
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpecNotAdmitted.selector, r.specHash));
        market.postJob{value: PAYMENT}(r);

        r = request(IJobMarket.Verification.OptimisticInference);
        r.specHash = keccak256("an inference spec");
        vm.prank(requester);
        market.postJob{value: PAYMENT}(r);
    }

    /// @notice The game cannot adjudicate a batch-inference job, so nobody may challenge one:
    ///         before, its worker could never commit an op trace and lost to any challenger.
    function test_aBatchInferenceJobCannotBeChallenged() public {
        uint256 jobId = postClaimSubmit(IJobMarket.Verification.OptimisticInference);
        stakeAs(validator, 1 ether);
        _commitAs(validator, jobId, 7, WRONG_HASH, SALT);
        vm.roll(block.number + 1);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotDisputable.selector, jobId));
        market.challenge{value: BOND}(jobId, 7, WRONG_HASH, SALT);
    }

    // ─────────────────────────────────────────── the verifier's dilemma ────────────────────────────

    /// @notice Nobody cheats, so no challenge ever pays: without the audit pool, checking an
    ///         honest job earned nothing. Now the validator that re-executed a step of it is
    ///         paid half the fee, while one that only guessed an audit leaf, and the
    ///         challenger-in-waiting whose commitment never became a conviction, get nothing.
    function test_theVerifiersDilemma_theHonestAuditorOfAnHonestJobIsPaid() public {
        uint256 jobId = postClaimSubmitAudited();
        stakeAs(validator, 1 ether);
        stakeAs(puppet, 1 ether);
        stakeAs(stranger, 1 ether);
        // The validator re-executed step 12 and knows its audit leaf; the lazy one guesses.
        bytes32 honest = auditPool.auditCommitment(validator, jobId, 12, auditLeaves[12]);
        bytes32 guessed = auditPool.auditCommitment(puppet, jobId, 12, HONEST_HASH);
        vm.prank(validator);
        auditPool.commitAudit(jobId, honest);
        vm.prank(puppet);
        auditPool.commitAudit(jobId, guessed);
        // A watcher that only committed a challenge, in case the worker turned out to cheat.
        _commitAs(stranger, jobId, 12, HONEST_HASH, SALT);

        vm.warp(market.getJob(jobId).windowEnd);
        market.finalize(jobId);
        uint256 fee = PAYMENT * 250 / 10_000;
        uint256 share = fee * market.AUDIT_SHARE_PERCENT() / 100;
        bytes32[] memory proof = auditProof(12);
        vm.prank(validator);
        auditPool.revealAudit(jobId, 12, auditLeaves[12], proof);
        vm.prank(puppet);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.NotInAuditRoot.selector, jobId, 12, HONEST_HASH));
        auditPool.revealAudit(jobId, 12, HONEST_HASH, proof);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NoRewardPool.selector, jobId));
        market.claimReward(jobId, 12, HONEST_HASH, SALT);

        vm.warp(auditPool.getPool(jobId).revealEnd + 1);
        uint256 before = validator.balance;
        vm.prank(validator);
        auditPool.collectAudit(jobId);
        vm.assertEq(validator.balance - before, share, "the auditor: half the fee");
        vm.assertEq(market.creditOf(provider), PAYMENT - fee, "the honest worker: paid in full");
        vm.assertEq(market.feesAccrued(), fee - share, "the protocol: the other half");
        vm.prank(puppet);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditPool.NotRevealed.selector, jobId, puppet, IAuditPool.AuditStatus.Committed
            )
        );
        auditPool.collectAudit(jobId);
    }

    // ─────────────────────────────────────────── griefing ───────────────────────────────────────────

    /// @notice Each challenge the worker wins doubles the next bond, up to 256 times the base;
    ///         every lost bond is the worker's.
    function test_griefingCostsDoubleWithEachDefeat() public {
        uint256 jobId = postClaimSubmit();
        uint256 paid;
        for (uint256 i = 0; i < 10; ++i) {
            address griefer = makeAddr(string.concat("griefer", vm.toString(i)));
            vm.deal(griefer, 1000 ether);
            stakeAs(griefer, 1 ether);
            uint256 bond = market.challengeBondOf(jobId);
            vm.assertEq(bond, BOND << (i < 8 ? i : 8), "the bond of the next challenge");
            openChallenge(griefer, jobId, 7);
            paid += bond;
            vm.roll(block.number + 1);
            resolver.decide(jobId, false);
        }
        vm.assertEq(market.creditOf(provider), paid, "every lost bond to the worker");
        vm.assertEq(paid, BOND * (255 + 2 * 256), "1 + 2 + ... + 128, then 256 twice");
    }
}
