// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {Fixture} from "./Fixture.sol";

/// @notice The fixture with a staked validator and a second staked auditor, and helpers that
///         commit to, reveal and collect audits of the fixture's audit tree (`auditLeaves`).
abstract contract AuditFixture is Fixture {
    /// The fixture's fee (250 bps of `PAYMENT`) and the audit share of it (50%).
    uint256 internal constant FEE = 0.025 ether;
    uint256 internal constant AUDIT = FEE / 2;
    /// The reveal period: 40% of the fixture's 1-day dispute duration.
    uint256 internal constant REVEAL_PERIOD = 1 days * 40 / 100;
    uint256 internal constant STEP = 3;

    address internal auditor2;

    function setUp() public virtual override {
        super.setUp();
        auditor2 = makeAddr("auditor2");
        vm.deal(auditor2, 100 ether);
        stakeAs(validator, 1 ether);
        stakeAs(auditor2, 1 ether);
    }

    /// @notice A new account named `name`, funded and holding the validator stake.
    function newAuditor(string memory name) internal returns (address who) {
        who = makeAddr(name);
        vm.deal(who, 10 ether);
        stakeAs(who, 1 ether);
    }

    /// @notice A job of `payment` wei, claimed and submitted with the fixture's audit root.
    function postClaimSubmitAudited(uint256 payment) internal returns (uint256 jobId) {
        IJobMarket.JobRequest memory r = request();
        bytes memory resultCid = cid("result");
        vm.deal(requester, requester.balance + payment);
        vm.prank(requester);
        jobId = market.postJob{value: payment}(r);
        stakeAs(provider, 2 ether);
        vm.prank(provider);
        market.claimJob(jobId);
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, auditRoot, trace[STEPS], finalProof, resultCid);
    }

    /// @notice `who` commits to `auditLeaf` as leaf `step` of job `jobId`'s audit root.
    function commitAuditAs(address who, uint256 jobId, uint256 step, bytes32 auditLeaf) internal {
        bytes32 c = auditPool.auditCommitment(who, jobId, step, auditLeaf); // before the prank: a call
        vm.prank(who);
        auditPool.commitAudit(jobId, c);
    }

    /// @notice `who` commits to the real audit leaf of `step`.
    function commitAuditAs(address who, uint256 jobId, uint256 step) internal {
        commitAuditAs(who, jobId, step, auditLeaves[step]);
    }

    /// @notice `who` reveals the real audit leaf of `step` with its proof.
    function revealAuditAs(address who, uint256 jobId, uint256 step) internal {
        bytes32[] memory proof = auditProof(step);
        vm.prank(who);
        auditPool.revealAudit(jobId, step, auditLeaves[step], proof);
    }

    /// @notice Waits out job `jobId`'s challenge window and finalizes it.
    function finalizeJob(uint256 jobId) internal {
        vm.warp(market.getJob(jobId).windowEnd);
        market.finalize(jobId);
    }

    /// @notice Waits out job `jobId`'s reveal period.
    function afterRevealPeriod(uint256 jobId) internal {
        vm.warp(uint256(auditPool.getPool(jobId).revealEnd) + 1);
    }

    /// @notice `who` collects its share of job `jobId`'s pool; returns what it received.
    function collectAuditAs(address who, uint256 jobId) internal returns (uint256 received) {
        uint256 before = who.balance;
        vm.prank(who);
        auditPool.collectAudit(jobId);
        received = who.balance - before;
    }
}
