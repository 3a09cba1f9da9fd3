// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAuditPool} from "../src/interfaces/IAuditPool.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {AuditFixture} from "./utils/AuditFixture.sol";

/// @notice The audit pool's life: auditors commit while the job can be challenged, reveal an
///         audit leaf under its audit root once it is finalized, and share the pool; copies,
///         late commitments, bad openings, the worker and unstaked accounts get nothing; a pool
///         nobody opened goes to the requester. The market's side (the fee split, the
///         auditor setting, a broken pool) is in AuditFunding.t.sol.
contract AuditPoolTest is AuditFixture {
    bytes32 internal constant GUESS = keccak256("an audit leaf nobody computed");

    function _status(uint256 jobId, address who) internal view returns (IAuditPool.AuditStatus) {
        return auditPool.auditStatusOf(jobId, who);
    }

    // ─────────────────────────────────────────── the honest path ─────────────────────────────────

    /// @notice An auditor who re-executed step 3 commits during the window, reveals after
    ///         finalization and collects the whole audit share, to the wei, which the fee
    ///         recipient's fees are short of.
    function test_honestAuditor_collectsTheAuditShare() public {
        uint256 jobId = postClaimSubmitAudited();
        bytes32 c = auditPool.auditCommitment(validator, jobId, STEP, auditLeaves[STEP]);
        vm.expectEmit(address(auditPool));
        emit IAuditPool.AuditCommitted(jobId, validator, c);
        commitAuditAs(validator, jobId, STEP);
        vm.assertEq(
            uint256(_status(jobId, validator)), uint256(IAuditPool.AuditStatus.Committed), "committed"
        );
        vm.assertEq(auditPool.commitmentOf(jobId, validator), c, "commitment");

        uint256 windowEnd = market.getJob(jobId).windowEnd;
        vm.warp(windowEnd);
        vm.expectEmit(address(market));
        emit IJobMarket.JobFinalized(jobId, provider, PAYMENT - FEE, FEE - AUDIT);
        vm.expectEmit(address(auditPool));
        emit IAuditPool.AuditFunded(jobId, AUDIT, windowEnd + REVEAL_PERIOD);
        market.finalize(jobId);
        vm.assertEq(market.feesAccrued(), FEE - AUDIT, "the fees, less the audit share");
        vm.assertEq(market.creditOf(provider), PAYMENT - FEE, "the worker's payout is unchanged");
        vm.assertEq(address(auditPool).balance, AUDIT, "the pool holds the share");
        vm.assertEq(address(market).balance, market.creditOf(provider) + FEE - AUDIT, "the market, the rest");
        IAuditPool.Pool memory p = auditPool.getPool(jobId);
        vm.assertEq(p.amount, AUDIT, "amount");
        vm.assertEq(p.revealEnd, windowEnd + REVEAL_PERIOD, "reveal end");

        vm.expectEmit(address(auditPool));
        emit IAuditPool.AuditRevealed(jobId, validator, STEP, auditLeaves[STEP]);
        revealAuditAs(validator, jobId, STEP);
        vm.assertEq(auditPool.getPool(jobId).revealed, 1, "revealed");
        vm.assertEq(uint256(_status(jobId, validator)), uint256(IAuditPool.AuditStatus.Revealed), "revealed");

        afterRevealPeriod(jobId);
        vm.expectEmit(address(auditPool));
        emit IAuditPool.AuditCollected(jobId, validator, AUDIT);
        vm.assertEq(collectAuditAs(validator, jobId), AUDIT, "the whole share, to the wei");
        vm.assertEq(address(auditPool).balance, 0, "the pool is empty");
        vm.assertEq(
            uint256(_status(jobId, validator)), uint256(IAuditPool.AuditStatus.Collected), "collected"
        );
        uint256 before = treasury.balance;
        vm.prank(treasury);
        market.withdrawFees();
        vm.assertEq(treasury.balance - before, FEE - AUDIT, "the fee recipient gets the rest");
    }

    /// @notice Two auditors of an odd share split it: the first collects half rounded down,
    ///         the last the rest, so the pool pays out exactly its amount.
    function test_twoAuditors_splitTheShare_theLastTakesTheRemainder() public {
        // fee = (1 ether + 80) / 40, its half odd.
        uint256 jobId = postClaimSubmitAudited(1 ether + 80);
        uint256 share = (1 ether + 80) / 40 / 2;
        vm.assertEq(share % 2, 1, "an odd share");
        commitAuditAs(validator, jobId, STEP);
        commitAuditAs(auditor2, jobId, 40);
        finalizeJob(jobId);
        vm.assertEq(auditPool.getPool(jobId).amount, share, "funded");
        revealAuditAs(auditor2, jobId, 40);
        revealAuditAs(validator, jobId, STEP);
        afterRevealPeriod(jobId);
        uint256 first = collectAuditAs(auditor2, jobId);
        uint256 last = collectAuditAs(validator, jobId);
        vm.assertEq(first, share / 2, "the first: half, rounded down");
        vm.assertEq(last, share - share / 2, "the last: the rest");
        vm.assertEq(first + last, share, "exactly the pool");
        vm.assertEq(address(auditPool).balance, 0, "nothing stranded");
        vm.assertEq(auditPool.getPool(jobId).collected, 2, "both collected");
    }

    // ─────────────────────────────────────────── copies ──────────────────────────────────────────

    /// @notice Copying is worthless: the same commitment bytes sent by another account open
    ///         only for their author; a revealed audit leaf comes after the last moment to
    ///         commit; revealing without a commitment fails; the honest auditor keeps the whole
    ///         share.
    function test_copiedCommitmentOrOpening_isWorthless() public {
        uint256 jobId = postClaimSubmitAudited();
        bytes32 c = auditPool.auditCommitment(validator, jobId, STEP, auditLeaves[STEP]);
        vm.prank(validator);
        auditPool.commitAudit(jobId, c);
        // The copier sends the validator's commitment from the mempool as its own.
        vm.prank(auditor2);
        auditPool.commitAudit(jobId, c);
        finalizeJob(jobId);
        revealAuditAs(validator, jobId, STEP); // now everyone knows o_3

        bytes32[] memory proof = auditProof(STEP);
        bytes32 copied = auditPool.auditCommitment(auditor2, jobId, STEP, auditLeaves[STEP]);
        vm.prank(auditor2);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.CommitmentMismatch.selector, c, copied));
        auditPool.revealAudit(jobId, STEP, auditLeaves[STEP], proof);
        // Too late to commit what it just learned, with the copied commitment or afresh.
        address late = newAuditor("late copier");
        bytes32 fresh = auditPool.auditCommitment(late, jobId, STEP, auditLeaves[STEP]);
        vm.prank(late);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditPool.AuditCommitClosed.selector, jobId, uint8(IJobMarket.JobStatus.Finalized)
            )
        );
        auditPool.commitAudit(jobId, fresh);
        vm.prank(late);
        vm.expectRevert(
            abi.encodeWithSelector(IAuditPool.NotCommitted.selector, jobId, late, IAuditPool.AuditStatus.None)
        );
        auditPool.revealAudit(jobId, STEP, auditLeaves[STEP], proof);

        afterRevealPeriod(jobId);
        vm.prank(auditor2);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditPool.NotRevealed.selector, jobId, auditor2, IAuditPool.AuditStatus.Committed
            )
        );
        auditPool.collectAudit(jobId);
        vm.assertEq(collectAuditAs(validator, jobId), AUDIT, "the honest auditor keeps it all");
    }

    /// @notice A commitment is accepted only while the job can be challenged (Submitted,
    ///         Disputed or Demanded): not before submission, not after finalization.
    function test_commitAudit_outsideTheWindow_reverts() public {
        uint256 claimed = postAndClaim();
        bytes32 c = keccak256("c");
        vm.prank(validator);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditPool.AuditCommitClosed.selector, claimed, uint8(IJobMarket.JobStatus.Claimed)
            )
        );
        auditPool.commitAudit(claimed, c);
        vm.prank(validator);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditPool.AuditCommitClosed.selector, 99, uint8(IJobMarket.JobStatus.None)
            )
        );
        auditPool.commitAudit(99, c);

        uint256 jobId = postClaimSubmitAudited();
        finalizeJob(jobId);
        vm.prank(validator);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditPool.AuditCommitClosed.selector, jobId, uint8(IJobMarket.JobStatus.Finalized)
            )
        );
        auditPool.commitAudit(jobId, c);
    }

    /// @notice While a dispute or a data demand extends the window, auditors may still commit.
    function test_commitAudit_whileDisputedOrDemanded_succeeds() public {
        uint256 jobId = postClaimSubmitAudited();
        stakeAs(stranger, 1 ether);
        openChallenge(stranger, jobId, 7);
        commitAuditAs(validator, jobId, STEP);
        vm.roll(block.number + 1);
        resolver.decide(jobId, false);
        uint256 bond = market.challengeBondOf(jobId);
        vm.prank(stranger);
        market.demandData{value: bond}(jobId, 5);
        commitAuditAs(auditor2, jobId, 5);
        vm.assertEq(uint256(_status(jobId, auditor2)), uint256(IAuditPool.AuditStatus.Committed), "demanded");
    }

    // ─────────────────────────────────────────── who may audit ───────────────────────────────────

    /// @notice The worker knows every audit leaf without re-executing: it cannot audit.
    function test_commitAudit_byTheWorker_reverts() public {
        uint256 jobId = postClaimSubmitAudited();
        bytes32 c = auditPool.auditCommitment(provider, jobId, STEP, auditLeaves[STEP]);
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.SelfAudit.selector, jobId));
        auditPool.commitAudit(jobId, c);
    }

    /// @notice A share is per account, so every account must hold the validator stake, free.
    function test_commitAudit_withoutValidatorStake_reverts() public {
        uint256 jobId = postClaimSubmitAudited();
        bytes32 c = auditPool.auditCommitment(stranger, jobId, STEP, auditLeaves[STEP]);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.ValidatorStakeTooLow.selector, 0, 0.5 ether));
        auditPool.commitAudit(jobId, c);
        stakeAs(stranger, 0.4 ether);
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAuditPool.ValidatorStakeTooLow.selector, 0.4 ether, 0.5 ether)
        );
        auditPool.commitAudit(jobId, c);
        stakeAs(stranger, 0.1 ether);
        vm.prank(stranger);
        auditPool.commitAudit(jobId, c);
    }

    /// @notice One commitment per auditor and job, never zero, and only for an audited job.
    function test_commitAudit_twiceZeroOrUnaudited_reverts() public {
        uint256 jobId = postClaimSubmitAudited();
        vm.prank(validator);
        vm.expectRevert(IAuditPool.ZeroCommitment.selector);
        auditPool.commitAudit(jobId, bytes32(0));
        commitAuditAs(validator, jobId, STEP);
        bytes32 again = auditPool.auditCommitment(validator, jobId, 4, auditLeaves[4]);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.AlreadyCommitted.selector, jobId, validator));
        auditPool.commitAudit(jobId, again);

        uint256 unaudited = postClaimSubmit();
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.NotAudited.selector, unaudited));
        auditPool.commitAudit(unaudited, again);
    }

    // ─────────────────────────────────────────── reveals ─────────────────────────────────────────

    /// @notice Reveals start once the market funds the pool (the job finalized), not when the
    ///         window ends, and end at `revealEnd`, inclusive.
    function test_revealAudit_beforeFundingOrAfterRevealEnd_reverts() public {
        uint256 jobId = postClaimSubmitAudited();
        commitAuditAs(validator, jobId, STEP);
        commitAuditAs(auditor2, jobId, 4);
        bytes32[] memory proof = auditProof(STEP);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.NotFunded.selector, jobId));
        auditPool.revealAudit(jobId, STEP, auditLeaves[STEP], proof);
        vm.warp(market.getJob(jobId).windowEnd);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.NotFunded.selector, jobId));
        auditPool.revealAudit(jobId, STEP, auditLeaves[STEP], proof);

        market.finalize(jobId);
        uint256 revealEnd = auditPool.getPool(jobId).revealEnd;
        vm.warp(revealEnd);
        revealAuditAs(validator, jobId, STEP); // the last second
        vm.warp(revealEnd + 1);
        proof = auditProof(4);
        vm.prank(auditor2);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.RevealPeriodOver.selector, jobId, revealEnd));
        auditPool.revealAudit(jobId, 4, auditLeaves[4], proof);
    }

    /// @notice An audit leaf that is not the step's, a proof that is not its path, or a step
    ///         that is not the root's: each reverts, and the auditor may still reveal rightly.
    function test_revealAudit_wrongOpRootProofOrStep_reverts() public {
        uint256 jobId = postClaimSubmitAudited();
        commitAuditAs(validator, jobId, STEP);
        commitAuditAs(auditor2, jobId, STEP, GUESS); // did not re-execute: guessed
        address third = newAuditor("third");
        commitAuditAs(third, jobId, STEP + 1, auditLeaves[STEP]); // the root of another step
        address fourth = newAuditor("fourth");
        commitAuditAs(fourth, jobId, STEPS, auditLeaves[STEP]); // a step past the last
        finalizeJob(jobId);

        bytes32[] memory proof = auditProof(STEP);
        _expectNotInRoot(auditor2, jobId, STEP, GUESS, proof);
        _expectNotInRoot(third, jobId, STEP + 1, auditLeaves[STEP], proof);
        _expectNotInRoot(third, jobId, STEP + 1, auditLeaves[STEP], auditProof(STEP + 1));
        _expectNotInRoot(fourth, jobId, STEPS, auditLeaves[STEP], proof);
        _expectNotInRoot(validator, jobId, STEP, auditLeaves[STEP], auditProof(STEP + 1));
        bytes32[] memory tampered = auditProof(STEP);
        tampered[2] ^= bytes32(uint256(1));
        _expectNotInRoot(validator, jobId, STEP, auditLeaves[STEP], tampered);
        bytes32[] memory short = new bytes32[](proof.length - 1);
        _expectNotInRoot(validator, jobId, STEP, auditLeaves[STEP], short);
        // A reveal of something else than the commitment fails before the proof is looked at.
        bytes32 committed = auditPool.commitmentOf(jobId, validator);
        bytes32 other = auditPool.auditCommitment(validator, jobId, 4, auditLeaves[4]);
        proof = auditProof(4);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.CommitmentMismatch.selector, committed, other));
        auditPool.revealAudit(jobId, 4, auditLeaves[4], proof);

        revealAuditAs(validator, jobId, STEP);
        vm.assertEq(auditPool.getPool(jobId).revealed, 1, "only the honest auditor revealed");
    }

    function _expectNotInRoot(
        address who,
        uint256 jobId,
        uint256 step,
        bytes32 auditLeaf,
        bytes32[] memory proof
    ) internal {
        vm.prank(who);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.NotInAuditRoot.selector, jobId, step, auditLeaf));
        auditPool.revealAudit(jobId, step, auditLeaf, proof);
    }

    // ─────────────────────────────────────────── collect and release ─────────────────────────────

    /// @notice Shares are paid only after the reveal period, once per auditor, and only to
    ///         auditors who revealed.
    function test_collectAudit_earlyTwiceOrUnrevealed_reverts() public {
        uint256 jobId = postClaimSubmitAudited();
        commitAuditAs(validator, jobId, STEP);
        commitAuditAs(auditor2, jobId, 4);
        finalizeJob(jobId);
        revealAuditAs(validator, jobId, STEP);
        uint256 revealEnd = auditPool.getPool(jobId).revealEnd;
        vm.warp(revealEnd);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.RevealPeriodOpen.selector, jobId, revealEnd));
        auditPool.collectAudit(jobId);

        vm.warp(revealEnd + 1);
        vm.assertEq(collectAuditAs(validator, jobId), AUDIT, "the one revealer");
        vm.prank(validator);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditPool.NotRevealed.selector, jobId, validator, IAuditPool.AuditStatus.Collected
            )
        );
        auditPool.collectAudit(jobId);
        vm.prank(auditor2);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditPool.NotRevealed.selector, jobId, auditor2, IAuditPool.AuditStatus.Committed
            )
        );
        auditPool.collectAudit(jobId);
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAuditPool.NotRevealed.selector, jobId, stranger, IAuditPool.AuditStatus.None
            )
        );
        auditPool.collectAudit(jobId);
    }

    /// @notice A pool nobody opened (here: its only auditor did not reveal) goes to the
    ///         requester, once, after the reveal period; anyone may send it.
    function test_releaseAudit_nobodyRevealed_paysTheRequester() public {
        uint256 jobId = postClaimSubmitAudited();
        commitAuditAs(validator, jobId, STEP);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.NotFunded.selector, jobId));
        auditPool.releaseAudit(jobId);
        finalizeJob(jobId);
        uint256 revealEnd = auditPool.getPool(jobId).revealEnd;
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.RevealPeriodOpen.selector, jobId, revealEnd));
        auditPool.releaseAudit(jobId);

        vm.warp(revealEnd + 1);
        uint256 before = requester.balance;
        vm.expectEmit(address(auditPool));
        emit IAuditPool.AuditReleased(jobId, requester, AUDIT);
        vm.prank(stranger);
        auditPool.releaseAudit(jobId);
        vm.assertEq(requester.balance - before, AUDIT, "the requester");
        vm.assertEq(address(auditPool).balance, 0, "empty");
        vm.assertEq(auditPool.getPool(jobId).amount, 0, "released");
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.NothingToRelease.selector, jobId));
        auditPool.releaseAudit(jobId);
    }

    /// @notice A pool someone opened is the revealers', not the requester's.
    function test_releaseAudit_afterAReveal_reverts() public {
        uint256 jobId = postClaimSubmitAudited();
        commitAuditAs(validator, jobId, STEP);
        finalizeJob(jobId);
        revealAuditAs(validator, jobId, STEP);
        afterRevealPeriod(jobId);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.AuditorsRevealed.selector, jobId, 1));
        auditPool.releaseAudit(jobId);
    }
}
