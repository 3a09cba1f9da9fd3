// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {AuditPool} from "../src/AuditPool.sol";
import {IAuditPool} from "../src/interfaces/IAuditPool.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {AuditFixture} from "./utils/AuditFixture.sol";
import {EtherRefuser} from "./utils/EtherRefuser.sol";

/// @notice Exposes the pool's share arithmetic to the fuzzer.
contract AuditPoolHarness is AuditPool {
    constructor(IJobMarket market_) AuditPool(market_) {}

    function shareOf(Pool memory p) external pure returns (uint256) {
        return _shareOf(p);
    }
}

/// @notice The market's side of auditing: which jobs fund the pool and with what, the
///         auditor setting, a pool that refuses its funding, the pool's own guards, and the
///         share arithmetic under any amount and any number of revealers.
contract AuditFundingTest is AuditFixture {
    bytes32 internal constant DEFAULT_ADMIN_ROLE = 0x00;

    /// @dev The market's credits, fees and escrow are exactly its balance.
    function _assertSolvent(string memory m) internal view {
        vm.assertEq(
            address(market).balance,
            market.totalEscrowed() + market.feesAccrued() + market.creditOf(provider)
                + market.creditOf(requester),
            m
        );
    }

    // ─────────────────────────────────────────── what is audited ─────────────────────────────────

    /// @notice A job submitted with a zero audit root is not audited: its whole fee goes to the
    ///         fees, its pool stays empty and nobody can commit to it.
    function test_finalize_zeroAuditRoot_wholeFeeToFees() public {
        uint256 jobId = postClaimSubmit();
        vm.assertEq(market.getJob(jobId).auditRoot, bytes32(0), "no audit root");
        vm.warp(market.getJob(jobId).windowEnd);
        vm.expectEmit(address(market));
        emit IJobMarket.JobFinalized(jobId, provider, PAYMENT - FEE, FEE);
        market.finalize(jobId);
        vm.assertEq(market.feesAccrued(), FEE, "the whole fee");
        vm.assertEq(address(auditPool).balance, 0, "nothing to the pool");
        vm.assertEq(auditPool.getPool(jobId).revealEnd, 0, "not funded");
        _assertSolvent("solvent");
    }

    /// @notice With no auditor set, even a job with an audit root pays its whole fee to fees;
    ///         the admin's setting applies at finalization, not at submission.
    function test_finalize_noAuditor_wholeFeeToFees() public {
        uint256 jobId = postClaimSubmitAudited();
        vm.expectEmit(address(market));
        emit IJobMarket.AuditorUpdated(address(auditPool), address(0));
        vm.prank(admin);
        market.setAuditor(address(0));
        finalizeJob(jobId);
        vm.assertEq(market.feesAccrued(), FEE, "the whole fee");
        vm.assertEq(address(auditPool).balance, 0, "nothing to the pool");
    }

    /// @notice A pool whose `fund` reverts (the admin's mistake) never freezes the worker's
    ///         payment: the job finalizes and the share stays a fee.
    function test_finalize_brokenPool_stillPaysTheWorker_shareToFees() public {
        EtherRefuser broken = new EtherRefuser();
        vm.prank(admin);
        market.setAuditor(address(broken));
        uint256 jobId = postClaimSubmitAudited();
        vm.warp(market.getJob(jobId).windowEnd);
        vm.expectEmit(address(market));
        emit IJobMarket.JobFinalized(jobId, provider, PAYMENT - FEE, FEE - AUDIT);
        market.finalize(jobId);
        vm.assertEq(
            uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Finalized), "finalized"
        );
        vm.assertEq(market.creditOf(provider), PAYMENT - FEE, "the worker is paid");
        vm.assertEq(market.feesAccrued(), FEE, "the share stayed a fee");
        vm.assertEq(address(broken).balance, 0, "the broken pool got nothing");
        vm.assertEq(stakes.accountOf(provider).locked, 0, "collateral released");
        _assertSolvent("solvent");
        vm.prank(provider);
        market.withdraw();
    }

    /// @notice A job whose fee is zero funds its pool with nothing: revealers collect zero
    ///         and there is nothing to release.
    function test_finalize_zeroFee_fundsAnEmptyPool() public {
        IJobMarket.MarketParams memory p = defaultParams();
        p.protocolFeeBps = 0;
        vm.prank(admin);
        market.setParameters(p);
        uint256 jobId = postClaimSubmitAudited();
        uint256 other = postClaimSubmitAudited();
        commitAuditAs(validator, jobId, STEP);
        finalizeJob(jobId);
        finalizeJob(other);
        vm.assertEq(auditPool.getPool(jobId).amount, 0, "empty");
        revealAuditAs(validator, jobId, STEP);
        afterRevealPeriod(jobId);
        vm.assertEq(collectAuditAs(validator, jobId), 0, "a zero share");
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.NothingToRelease.selector, other));
        auditPool.releaseAudit(other);
    }

    // ─────────────────────────────────────────── settings and guards ─────────────────────────────

    /// @notice Only the admin sets the auditor; the deployment sets the pool; the constants.
    function test_setAuditor_onlyAdmin() public {
        vm.assertEq(market.auditor(), address(auditPool), "the fixture's pool");
        vm.assertEq(market.AUDIT_SHARE_PERCENT(), 50, "half the fee");
        vm.assertEq(auditPool.REVEAL_PERCENT(), 40, "40% of the dispute duration");
        vm.assertEq(address(auditPool.market()), address(market), "its market");
        address[2] memory callers = [stranger, pauser];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], DEFAULT_ADMIN_ROLE
                )
            );
            vm.prank(callers[i]);
            market.setAuditor(callers[i]);
        }
        vm.expectEmit(address(market));
        emit IJobMarket.AuditorUpdated(address(auditPool), stranger);
        vm.prank(admin);
        market.setAuditor(stranger);
        vm.assertEq(market.auditor(), stranger, "set");
    }

    /// @notice Only the market funds a pool, and only once.
    function test_fund_notMarketOrTwice_reverts() public {
        uint256 jobId = postClaimSubmitAudited();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.NotMarket.selector, stranger));
        auditPool.fund{value: 1 ether}(jobId);
        finalizeJob(jobId);
        vm.deal(address(market), address(market).balance + 1);
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(IAuditPool.AlreadyFunded.selector, jobId));
        auditPool.fund{value: 1}(jobId);
    }

    /// @notice An auditor that refuses ETH cannot collect (`TransferFailed`, nothing changes),
    ///         and a requester that refuses it cannot be released to: each blocks only its own
    ///         money, which stays in the pool.
    function test_refusedPayouts_revertAndChangeNothing() public {
        EtherRefuser refuser = new EtherRefuser();
        uint256 jobId = postClaimSubmitAudited();
        bytes32 c = auditPool.auditCommitment(address(refuser), jobId, STEP, auditLeaves[STEP]);
        refuser.exec{value: 1 ether}(address(stakes), abi.encodeCall(stakes.stake, ()));
        refuser.exec(address(auditPool), abi.encodeCall(auditPool.commitAudit, (jobId, c)));
        finalizeJob(jobId);
        bytes32[] memory proof = auditProof(STEP);
        refuser.exec(
            address(auditPool), abi.encodeCall(auditPool.revealAudit, (jobId, STEP, auditLeaves[STEP], proof))
        );
        afterRevealPeriod(jobId);
        vm.expectRevert(IAuditPool.TransferFailed.selector);
        refuser.exec(address(auditPool), abi.encodeCall(auditPool.collectAudit, (jobId)));
        vm.assertEq(
            uint256(auditPool.auditStatusOf(jobId, address(refuser))),
            uint256(IAuditPool.AuditStatus.Revealed),
            "still uncollected"
        );
        vm.assertEq(auditPool.getPool(jobId).collected, 0, "nothing collected");
        vm.assertEq(address(auditPool).balance, AUDIT, "the share stays in the pool");

        // A job whose requester refuses ETH, audited by nobody.
        IJobMarket.JobRequest memory r = request();
        bytes memory resultCid = cid("result");
        uint256 other = abi.decode(
            refuser.exec{value: PAYMENT}(address(market), abi.encodeCall(market.postJob, (r))), (uint256)
        );
        vm.prank(provider);
        market.claimJob(other);
        vm.prank(provider);
        market.submitResult(other, STEPS, traceRoot, auditRoot, trace[STEPS], finalProof, resultCid);
        finalizeJob(other);
        afterRevealPeriod(other);
        vm.expectRevert(IAuditPool.TransferFailed.selector);
        auditPool.releaseAudit(other);
        vm.assertEq(auditPool.getPool(other).amount, AUDIT, "not released");
    }

    function test_constructor_zeroMarket_reverts() public {
        vm.expectRevert(IAuditPool.ZeroAddress.selector);
        new AuditPool(IJobMarket(address(0)));
    }

    /// @notice The commitment is the documented hash, which an off-chain auditor computes.
    function test_auditCommitment_isTheDocumentedHash() public view {
        vm.assertEq(
            auditPool.auditCommitment(validator, 7, STEP, auditLeaves[STEP]),
            keccak256(abi.encode(validator, uint256(7), uint256(STEP), auditLeaves[STEP])),
            "keccak256(abi.encode(auditor, jobId, step, auditLeaf))"
        );
    }

    // ─────────────────────────────────────────── shares ──────────────────────────────────────────

    /// @notice For any amount and any number of revealers, the shares add up to the amount
    ///         exactly, each is the equal share, and only the last adds the rounding.
    function testFuzz_shares_addUpToTheAmount(uint96 amount, uint256 revealers) public {
        revealers = bound(revealers, 1, 300);
        AuditPoolHarness h = new AuditPoolHarness(market);
        IAuditPool.Pool memory p =
            IAuditPool.Pool({amount: amount, revealEnd: 1, revealed: uint32(revealers), collected: 0});
        uint256 sum;
        for (uint256 i = 0; i < revealers; ++i) {
            p.collected = uint32(i);
            uint256 share = h.shareOf(p);
            uint256 equal = uint256(amount) / revealers;
            if (i + 1 < revealers) vm.assertEq(share, equal, "an equal share");
            else vm.assertEq(share, uint256(amount) - equal * (revealers - 1), "the last: the rest");
            vm.assertLt(share - equal, revealers, "the rounding is less than one wei per revealer");
            sum += share;
        }
        vm.assertEq(sum, amount, "the shares add up to the amount");
    }

    /// @notice End to end: a pool funded with any amount and opened by up to six auditors pays
    ///         out exactly its amount, whatever order they collect in.
    function testFuzz_pool_paysOutExactlyItsAmount(uint96 amount, uint256 n, uint256 order) public {
        n = bound(n, 1, 6);
        uint256 jobId = postClaimSubmitAudited();
        address[] memory auditors = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            auditors[i] = newAuditor(string.concat("auditor", vm.toString(i)));
            commitAuditAs(auditors[i], jobId, i * 11);
        }
        vm.deal(address(market), address(market).balance + amount);
        vm.prank(address(market));
        auditPool.fund{value: amount}(jobId);
        for (uint256 i = 0; i < n; ++i) {
            revealAuditAs(auditors[i], jobId, i * 11);
        }
        afterRevealPeriod(jobId);
        uint256 paid;
        for (uint256 i = 0; i < n; ++i) {
            paid += collectAuditAs(auditors[(i + order % n) % n], jobId);
        }
        vm.assertEq(paid, amount, "exactly the amount");
        vm.assertEq(address(auditPool).balance, 0, "nothing stranded");
    }
}
