// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {DataAvailability} from "../../src/DataAvailability.sol";
import {IAuditPool} from "../../src/interfaces/IAuditPool.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {Fixture} from "../utils/Fixture.sol";
import {InvariantTest} from "../utils/Test.sol";
import {AuditActions} from "./AuditActions.sol";
import {Handler, Slasher} from "./Handler.sol";
import {HandlerState} from "./HandlerState.sol";

/// @notice Invariants of JobMarket, StakeManager, the market's DataAvailability publishers and
///         its AuditPool under random sequences of the handler's actions (docs/architecture.md,
///         "Where the money is"): both contracts stay solvent to the wei (the publishers hold
///         nothing), no job is both paid and refunded, no slash or seizure reaches beyond what it
///         may take, the escrow is exactly the live jobs' payments and bonds, every open data
///         demand is backed by its bond and has its publication cursor on its own publisher only,
///         disputes end at the deadline they opened with, the audit pool holds exactly what it
///         owes (no auditor collects twice, no pool pays out more than its amount), forbidden
///         calls revert, and once everything settles and everyone withdraws or collects, every
///         contract is empty.
contract InvariantsTest is Fixture, InvariantTest {
    Handler internal handler;
    Slasher internal slasher;
    address internal sink;
    /// @notice A second publisher, which the handler's admin swaps in and out.
    DataAvailability internal otherAvailability;

    function setUp() public override {
        super.setUp();
        sink = makeAddr("sink");
        slasher = new Slasher(stakes, sink);
        bytes32 slasherRole = stakes.SLASHER_ROLE(); // before the prank: a getter is a call
        vm.prank(admin);
        stakes.grantRole(slasherRole, address(slasher));
        otherAvailability = new DataAvailability(market);
        handler = new Handler(
            market, stakes, resolver, slasher, [availability, otherAvailability], auditPool, admin, treasury
        );

        // Each action once, and the lifecycle's main road more often, so that runs reach disputes.
        bytes4[46] memory weighted = [
            Handler.stake.selector,
            Handler.requestUnstake.selector,
            Handler.withdrawStake.selector,
            Handler.slash.selector,
            Handler.post.selector,
            Handler.post.selector,
            Handler.cancel.selector,
            Handler.claim.selector,
            Handler.claim.selector,
            Handler.claim.selector,
            Handler.submit.selector,
            Handler.submit.selector,
            Handler.finalize.selector,
            Handler.finalize.selector,
            Handler.expire.selector,
            Handler.commitAndChallenge.selector,
            Handler.commitAndChallenge.selector,
            Handler.commitAndChallenge.selector,
            Handler.resolve.selector,
            Handler.resolve.selector,
            Handler.timeoutDispute.selector,
            Handler.demandData.selector,
            Handler.demandData.selector,
            Handler.meetDemand.selector,
            Handler.meetDemand.selector,
            Handler.publishPart.selector,
            Handler.claimUnavailable.selector,
            Handler.setPublisher.selector,
            Handler.withdraw.selector,
            Handler.withdrawFees.selector,
            Handler.warp.selector,
            Handler.warp.selector,
            Handler.setParameters.selector,
            Handler.tryIllegal.selector,
            Handler.commitOnly.selector,
            Handler.claimReward.selector,
            Handler.collectReward.selector,
            AuditActions.commitAudit.selector,
            AuditActions.commitAudit.selector,
            AuditActions.commitAudit.selector,
            AuditActions.revealAudit.selector,
            AuditActions.revealAudit.selector,
            AuditActions.tryCopyAudit.selector,
            AuditActions.collectAudit.selector,
            AuditActions.releaseAudit.selector,
            AuditActions.setAuditor.selector
        ];
        bytes4[] memory selectors = new bytes4[](weighted.length);
        for (uint256 i; i < weighted.length; i++) {
            selectors[i] = weighted[i];
        }
        targetSelector(address(handler), selectors);
    }

    // ─────────────────────────────────────────── (1) solvency ────────────────────────────────────

    /// @notice The market holds exactly the escrow, the fees and every credit.
    function invariant_marketSolvent() public view {
        uint256 credits;
        for (uint256 i; i < handler.actorCount(); i++) {
            credits += market.creditOf(handler.actorAt(i));
        }
        vm.assertEq(
            address(market).balance,
            market.totalEscrowed() + market.feesAccrued() + credits,
            "market balance != escrow + fees + credits"
        );
    }

    /// @notice The stake manager holds exactly every account's staked and unbonding stake.
    function invariant_stakeManagerSolvent() public view {
        uint256 total;
        for (uint256 i; i < handler.stakerCount(); i++) {
            IStakeManager.Account memory a = stakes.accountOf(handler.stakerAt(i));
            total += uint256(a.staked) + a.unbonding;
        }
        vm.assertEq(address(stakes).balance, total, "stake manager balance != staked + unbonding");
    }

    /// @notice Locked collateral never exceeds the stake it is part of, and it is exactly the
    ///         collateral of the worker's unsettled jobs.
    function invariant_lockedWithinStakedAndMatchesLiveJobs() public view {
        uint256 n = handler.jobCount();
        for (uint256 i; i < handler.stakerCount(); i++) {
            address who = handler.stakerAt(i);
            IStakeManager.Account memory a = stakes.accountOf(who);
            vm.assertLe(a.locked, a.staked, "locked > staked");
            uint256 live;
            for (uint256 jobId = 1; jobId <= n; jobId++) {
                IJobMarket.Job memory j = market.getJob(jobId);
                if (j.worker == who && _isClaimedAndLive(j.status)) live += j.collateral;
            }
            vm.assertEq(a.locked, live, "locked != collateral of the worker's live jobs");
        }
    }

    /// @notice Every wei that entered each contract, less every wei that left, is still there
    ///         (written as sums, so that a broken ledger fails the assertion rather than underflows).
    function invariant_ethConserved() public view {
        vm.assertEq(
            address(market).balance + handler.ghost_withdrawn() + handler.ghost_feesWithdrawn()
                + handler.ghost_auditFundedTotal(),
            handler.ghost_payments() + handler.ghost_bondsPosted() + handler.ghost_seized(),
            "market: balance + out != in"
        );
        vm.assertEq(
            address(auditPool).balance + handler.ghost_auditPaidTotal(),
            handler.ghost_auditFundedTotal(),
            "audit pool: balance + out != in"
        );
        vm.assertEq(handler.brokenAuditor().balance, 0, "the broken auditor holds ETH");
        vm.assertEq(
            address(stakes).balance + handler.ghost_stakeWithdrawn() + handler.ghost_seized()
                + handler.ghost_slashed(),
            handler.ghost_staked(),
            "stake manager: balance + out != in"
        );
        vm.assertEq(
            handler.ghost_slashed(),
            address(slasher).balance + sink.balance,
            "slashed ETH neither kept by the slasher nor forwarded"
        );
        vm.assertEq(sink.balance, handler.ghost_slashForwarded(), "forwarded slashes");
        vm.assertEq(address(availability).balance, 0, "a publisher holds ETH");
        vm.assertEq(address(otherAvailability).balance, 0, "a publisher holds ETH");
    }

    // ─────────────────────────────────────────── credits ─────────────────────────────────────────

    /// @notice Outstanding credits are every credit ever paid less every withdrawal; fees likewise;
    ///         and every settlement moved credits, fees and escrow by exactly its amounts.
    function invariant_creditsMatchGhostLedger() public view {
        uint256 credits;
        for (uint256 i; i < handler.actorCount(); i++) {
            credits += market.creditOf(handler.actorAt(i));
        }
        vm.assertEq(
            credits + handler.ghost_withdrawn(), handler.ghost_credited(), "credits + withdrawn != paid"
        );
        vm.assertEq(
            handler.ghost_credited(),
            handler.ghost_workerPayouts() + handler.ghost_refunds() + handler.ghost_expiryPenalties()
                + handler.ghost_challengerPayouts() + handler.ghost_requesterCompensation()
                + handler.ghost_bondsToWorkers() + handler.ghost_demanderPayouts()
                + handler.ghost_demandBondsToWorkers() + handler.ghost_rewardsCollected(),
            "credit kinds do not add up"
        );
        vm.assertEq(
            market.feesAccrued() + handler.ghost_feesWithdrawn(), handler.ghost_feesAccrued(), "fees ledger"
        );
        vm.assertEq(handler.ghost_creditMismatches(), 0, "a settlement moved credits by the wrong amount");
        vm.assertEq(handler.ghost_rewardMismatches(), 0, "a reward pool moved other than specified");
    }

    // ─────────────────────────────────────────── (2) paid xor refunded ───────────────────────────

    /// @notice No job is both paid and refunded, none is settled twice, and a terminal status
    ///         says which of the two happened.
    function invariant_noJobPaidAndRefunded() public view {
        vm.assertEq(handler.ghost_doubleSettlements(), 0, "a job was settled twice");
        uint256 n = handler.jobCount();
        for (uint256 jobId = 1; jobId <= n; jobId++) {
            bool paid = handler.ghost_paid(jobId);
            bool refunded = handler.ghost_refunded(jobId);
            vm.assertFalse(paid && refunded, "job both paid and refunded");
            IJobMarket.JobStatus s = market.getJob(jobId).status;
            vm.assertEq(paid, s == IJobMarket.JobStatus.Finalized, "paid <=> Finalized");
            vm.assertEq(
                refunded,
                s == IJobMarket.JobStatus.Cancelled || s == IJobMarket.JobStatus.Expired
                    || s == IJobMarket.JobStatus.Resolved,
                "refunded <=> Cancelled, Expired or Resolved"
            );
        }
    }

    // ─────────────────────────────────────────── (3) slashes and seizures ────────────────────────

    /// @notice No slash took more than free + unbonding stake or touched the lock, no seizure
    ///         took more than was locked, and each took exactly what it should.
    function invariant_slashesAndSeizuresBounded() public view {
        vm.assertEq(handler.ghost_slashesExceedingStake(), 0, "slash exceeded free + unbonding stake");
        vm.assertEq(handler.ghost_slashMismatches(), 0, "slash moved other than its amount");
        vm.assertEq(handler.ghost_slashesWronglyRefused(), 0, "slash within free + unbonding refused");
        vm.assertEq(handler.ghost_seizuresExceedingLocked(), 0, "seizure exceeded locked collateral");
        vm.assertEq(handler.ghost_seizureMismatches(), 0, "seizure other than the penalty or collateral");
        vm.assertEq(handler.ghost_lockMismatches(), 0, "lock moved other than by claim or release");
        vm.assertEq(handler.ghost_stakeMismatches(), 0, "stake moved other than by its call");
    }

    // ─────────────────────────────────────────── escrow ──────────────────────────────────────────

    /// @notice The escrow is the payment of every live job plus the bond of every open challenge
    ///         and of every open data demand plus what remains in every reward pool, and each job's share is what the handler paid in
    ///         for it and has not seen paid out.
    function invariant_escrowMatchesLiveJobs() public view {
        uint256 sum;
        uint256 ghostSum;
        uint256 n = handler.jobCount();
        for (uint256 jobId = 1; jobId <= n; jobId++) {
            IJobMarket.Job memory j = market.getJob(jobId);
            uint256 share;
            if (j.status == IJobMarket.JobStatus.Posted || _isClaimedAndLive(j.status)) share += j.payment;
            IJobMarket.Challenge memory c = market.getChallenge(jobId);
            if (j.status == IJobMarket.JobStatus.Disputed) share += c.bond;
            else vm.assertEq(c.bond, 0, "a challenge outlived its dispute");
            IJobMarket.DataDemand memory d = market.getDemand(jobId);
            if (j.status == IJobMarket.JobStatus.Demanded) share += d.bond;
            // A conviction's reward stays escrowed until its claimants collect it.
            share += market.getRewardPool(jobId).remaining;
            vm.assertEq(share, handler.ghost_jobEscrow(jobId), "a job's escrow != what was paid in for it");
            sum += share;
            ghostSum += handler.ghost_jobEscrow(jobId);
        }
        vm.assertEq(market.totalEscrowed(), sum, "escrow != live payments + open bonds");
        vm.assertEq(market.totalEscrowed(), ghostSum, "escrow != the jobs' ghost escrow");
    }

    /// @notice A job is in Demanded exactly while it has a demand, whose demander is not zero,
    ///         whose publisher is one of the two, and whose bond is what the market escrows for
    ///         the job beyond its payment; a publisher holds a cursor only for an open demand made
    ///         through it (or one claimed unmet), never past the state's last tensor; every
    ///         publication that met a demand reopened the window as specified.
    function invariant_demandBackedByItsBond() public view {
        uint256 n = handler.jobCount();
        for (uint256 jobId = 1; jobId <= n; jobId++) {
            IJobMarket.Job memory j = market.getJob(jobId);
            IJobMarket.DataDemand memory d = market.getDemand(jobId);
            if (j.status == IJobMarket.JobStatus.Demanded) {
                vm.assertTrue(d.demander != address(0), "a demanded job without a demander");
                vm.assertTrue(d.demander != j.worker, "the worker demanded its own job");
                vm.assertGt(d.bond, 0, "a demand without a bond");
                vm.assertEq(
                    d.bond, handler.ghost_jobEscrow(jobId) - j.payment, "demand bond != escrow beyond payment"
                );
                vm.assertLe(d.step, j.steps, "demanded step past the last");
                vm.assertTrue(
                    d.publisher == address(availability) || d.publisher == address(otherAvailability),
                    "a demand without one of the publishers"
                );
            } else {
                vm.assertEq(d.demander, address(0), "a demand outlived its status");
                vm.assertEq(d.bond, 0, "a demand's bond outlived its status");
                vm.assertEq(d.publisher, address(0), "a demand's publisher outlived its status");
            }
            vm.assertTrue(HandlerState.cursorValid(availability, jobId, j.status, d), "a stray cursor");
            vm.assertTrue(HandlerState.cursorValid(otherAvailability, jobId, j.status, d), "a stray cursor");
        }
        vm.assertEq(handler.ghost_demandMismatches(), 0, "a demand, publication or claim went wrong");
    }

    /// @notice Every action whose preconditions the handler checked succeeded, and every call
    ///         that the status guards, clocks or access checks forbid reverted.
    function invariant_callsSucceedExactlyWhenAllowed() public view {
        vm.assertEq(
            handler.ghost_unexpectedReverts(),
            0,
            string.concat(
                "a call with its preconditions met reverted (the last: ",
                string(abi.encodePacked(handler.lastUnexpectedRevertAction())),
                " ",
                _selectorOf(handler.lastUnexpectedRevertData()),
                ")"
            )
        );
        vm.assertEq(handler.ghost_illegalCallsSucceeded(), 0, "a forbidden call succeeded");
    }

    /// @notice A dispute can be timed out exactly from the deadline the market announced when it
    ///         opened (to the resolver and in `ChallengeOpened`), never before and always after.
    function invariant_disputeDeadlineHonoured() public view {
        vm.assertEq(
            handler.ghost_timeoutsBeforeAnnouncedDeadline(),
            0,
            "dispute timed out before its announced deadline"
        );
        vm.assertEq(
            handler.ghost_timeoutsRefusedAfterAnnouncedDeadline(),
            0,
            "dispute could not be timed out after its announced deadline"
        );
    }

    // ─────────────────────────────────────────── audits ──────────────────────────────────────────

    /// @notice The audit pool holds exactly what it owes: for every job, the amount it was
    ///         funded with less what its auditors collected (a released pool reads zero), both
    ///         as the pool reports it and as the handler saw the ETH move; no job's pool paid
    ///         out more than it was funded with, nor more collectors than revealers.
    function invariant_auditPoolHoldsWhatItOwes() public view {
        uint256 owed;
        uint256 ghostOwed;
        uint256 n = handler.jobCount();
        for (uint256 jobId = 1; jobId <= n; jobId++) {
            IAuditPool.Pool memory p = auditPool.getPool(jobId);
            uint256 funded = handler.ghost_auditFunded(jobId);
            uint256 paid = handler.ghost_auditPaid(jobId);
            uint256 collected = handler.ghost_auditCollected(jobId);
            vm.assertLe(paid, funded, "a pool paid out more than its amount");
            vm.assertLe(collected, p.amount, "auditors collected more than the pool's amount");
            vm.assertLe(p.collected, p.revealed, "more collections than revealers");
            vm.assertTrue(p.amount == funded || (p.amount == 0 && p.revealed == 0), "amount != funded");
            if (p.revealed != 0 && p.collected == p.revealed) {
                vm.assertEq(collected, p.amount, "a fully collected pool did not pay exactly its amount");
            }
            owed += p.amount - collected;
            ghostOwed += funded - paid;
        }
        vm.assertEq(address(auditPool).balance, owed, "pool balance != sum of (amount - paid)");
        vm.assertEq(address(auditPool).balance, ghostOwed, "pool balance != funded - paid");
    }

    /// @notice No auditor collected twice, and every audit call did what the rules say.
    function invariant_auditorsCollectOnce() public view {
        vm.assertEq(handler.ghost_auditDoubleCollects(), 0, "an auditor collected twice");
        vm.assertEq(handler.ghost_auditMismatches(), 0, "an audit call moved other than specified");
        vm.assertEq(handler.ghost_auditIllegalSucceeded(), 0, "a forbidden audit call succeeded");
    }

    // ─────────────────────────────────────────── (4) wind-down ───────────────────────────────────

    /// @notice Called by forge after each run: settles every job, has everyone withdraw and
    ///         unstake, and checks that both contracts end empty with every invariant intact.
    function afterInvariant() public virtual {
        handler.windDown();
        vm.assertEq(market.totalEscrowed(), 0, "escrow left after wind-down");
        vm.assertEq(market.feesAccrued(), 0, "fees left after wind-down");
        vm.assertEq(address(market).balance, 0, "market not empty after wind-down");
        vm.assertEq(address(stakes).balance, 0, "stake manager not empty after wind-down");
        vm.assertEq(address(auditPool).balance, 0, "audit pool not empty after wind-down");
        uint256 n = handler.jobCount();
        for (uint256 jobId = 1; jobId <= n; jobId++) {
            IJobMarket.JobStatus s = market.getJob(jobId).status;
            vm.assertTrue(
                s >= IJobMarket.JobStatus.Finalized && s != IJobMarket.JobStatus.Demanded,
                "a job is still live after wind-down"
            );
        }
        invariant_marketSolvent();
        invariant_stakeManagerSolvent();
        invariant_ethConserved();
        invariant_creditsMatchGhostLedger();
        invariant_noJobPaidAndRefunded();
        invariant_escrowMatchesLiveJobs();
        invariant_demandBackedByItsBond();
        invariant_slashesAndSeizuresBounded();
        invariant_callsSucceedExactlyWhenAllowed();
        invariant_auditPoolHoldsWhatItOwes();
        invariant_auditorsCollectOnce();
    }

    function _isClaimedAndLive(IJobMarket.JobStatus s) internal pure returns (bool) {
        return s == IJobMarket.JobStatus.Claimed || s == IJobMarket.JobStatus.Submitted
            || s == IJobMarket.JobStatus.Disputed || s == IJobMarket.JobStatus.Demanded;
    }

    /// @dev The revert's selector, in hex, for the failure message.
    function _selectorOf(bytes memory data) internal pure returns (string memory) {
        if (data.length < 4) return "(no selector)";
        return Strings.toHexString(uint256(uint32(bytes4(data))), 4);
    }
}
