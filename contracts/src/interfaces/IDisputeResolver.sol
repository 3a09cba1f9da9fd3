// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IDisputeResolver
/// @notice A contract that decides challenges of the job market. The market tells it when a
///         dispute opens; it answers, within the market's dispute deadline, by calling
///         `IJobMarket.resolveDispute`. The dispute game of the protocol implements this.
interface IDisputeResolver {
    /// @notice Called by the market in the transaction that opens a dispute.
    /// @param jobId The disputed job.
    /// @param step Index of the disputed step: the transition from state `step` to `step + 1`.
    /// @param worker The worker whose result is challenged.
    /// @param challenger The validator who challenged.
    /// @param traceRoot The worker's committed trace root over `[h_0 .. h_N]`.
    /// @param claimedStateHash The challenger's claim for `h_{step+1}`.
    /// @param deadline Timestamp from which anyone may time the dispute out at the market.
    function disputeOpened(
        uint256 jobId,
        uint256 step,
        address worker,
        address challenger,
        bytes32 traceRoot,
        bytes32 claimedStateHash,
        uint256 deadline
    ) external;

    /// @notice The step count of the training job whose spec hash is `specHash`, if the resolver
    ///         can adjudicate its every dispute (zero otherwise): the market posts an optimistic
    ///         training job only with that spec hash and that many steps.
    function admittedSteps(bytes32 specHash) external view returns (uint256);
}
