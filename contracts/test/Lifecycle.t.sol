// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice The happy path and the two dispute outcomes, end to end, checked to the wei.
contract LifecycleTest is Fixture {
    function test_lifecycle_happyPath_succeeds() public {
        uint256 jobId = postClaimSubmit();
        vm.warp(block.timestamp + WINDOW);
        market.finalize(jobId);
        uint256 fee = PAYMENT * 250 / 10_000;
        vm.assertEq(market.creditOf(provider), PAYMENT - fee, "worker credit");
        vm.assertEq(market.feesAccrued(), fee, "fees");
        uint256 before = provider.balance;
        vm.prank(provider);
        market.withdraw();
        vm.assertEq(provider.balance - before, PAYMENT - fee, "worker paid");
        vm.prank(treasury);
        market.withdrawFees();
        vm.assertEq(treasury.balance, fee, "treasury paid");
        vm.assertEq(address(market).balance, 0, "market empty");
        vm.assertEq(stakes.accountOf(provider).locked, 0, "collateral released");
    }

    function test_lifecycle_workerLoses_succeeds() public {
        uint256 jobId = postClaimSubmitChallenge();
        resolver.decide(jobId, true);
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Resolved), "resolved");
        // collateral 0.5 ether: half pooled for the challengers, half to the requester.
        vm.assertEq(market.creditOf(validator), 0.1 ether, "challenger: its bond");
        vm.assertEq(market.getRewardPool(jobId).remaining, 0.25 ether, "the reward pool");
        vm.warp(market.getRewardPool(jobId).claimEnd + 1);
        vm.prank(validator);
        market.collectReward(jobId);
        vm.assertEq(market.creditOf(validator), 0.1 ether + 0.25 ether, "challenger: bond + reward");
        vm.assertEq(market.creditOf(requester), PAYMENT + 0.25 ether, "requester");
        vm.assertEq(stakes.accountOf(provider).staked, 1.5 ether, "slashed");
        vm.assertEq(address(market).balance, 0.1 ether + 0.25 ether + PAYMENT + 0.25 ether, "solvent");
    }
}
