// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IJobMarket} from "../interfaces/IJobMarket.sol";

/// @title RewardPools
/// @notice The bookkeeping of a conviction's reward pool (`IJobMarket.RewardPool`): who may
///         join it and what each claimant collects. Linked (external functions) to keep the
///         market under EIP-170's size limit; it runs in the market's storage and moves no ETH.
library RewardPools {
    /// @dev `claims[account]`: 0 never claimed, 1 claimed and not collected, 2 collected.
    uint256 internal constant CLAIMED = 1;
    uint256 internal constant COLLECTED = 2;

    /// @notice Opens the pool of job `jobId` with `reward` wei, `winner` as its first claimant,
    ///         claimable until `claimEnd`.
    function open(
        IJobMarket.RewardPool storage pool,
        mapping(address => uint256) storage claims,
        address winner,
        uint256 reward,
        uint256 claimEnd
    ) internal {
        pool.remaining = uint96(reward);
        pool.claimants = 1;
        pool.convictedBlock = uint64(block.number);
        pool.claimEnd = uint40(claimEnd);
        claims[winner] = CLAIMED;
    }

    /// @notice Adds the caller as a claimant of job `jobId`'s pool, for a challenge commitment
    ///         it made in block `committedAt`; returns the number of claimants.
    function join(
        IJobMarket.RewardPool storage pool,
        mapping(address => uint256) storage claims,
        uint256 jobId,
        bytes32 commitment,
        uint256 committedAt
    ) external returns (uint256 claimants) {
        uint256 claimEnd = pool.claimEnd;
        if (claimEnd == 0) revert IJobMarket.NoRewardPool(jobId);
        if (block.timestamp > claimEnd) revert IJobMarket.ClaimPeriodOver(jobId, claimEnd);
        if (claims[msg.sender] != 0) revert IJobMarket.AlreadyClaimed(jobId, msg.sender);
        // Zero (no commitment) is refused by the caller's consumption of it.
        if (committedAt >= pool.convictedBlock) revert IJobMarket.CommitmentTooLate(commitment);
        claims[msg.sender] = CLAIMED;
        claimants = pool.claimants + 1;
        pool.claimants = uint32(claimants);
    }

    /// @notice Marks the caller's share of job `jobId`'s pool collected and returns it:
    ///         an equal part of what remains, so the last claimant takes the rounding.
    function collect(
        IJobMarket.RewardPool storage pool,
        mapping(address => uint256) storage claims,
        uint256 jobId
    ) external returns (uint256 share) {
        if (block.timestamp <= pool.claimEnd) {
            revert IJobMarket.ClaimPeriodOpen(jobId, pool.claimEnd);
        }
        if (claims[msg.sender] != CLAIMED) revert IJobMarket.NotClaimant(jobId, msg.sender);
        claims[msg.sender] = COLLECTED;
        share = pool.remaining / pool.claimants;
        pool.remaining -= uint96(share);
        --pool.claimants;
    }
}
