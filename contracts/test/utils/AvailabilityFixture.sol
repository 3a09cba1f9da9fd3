// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataAvailability} from "../../src/interfaces/IDataAvailability.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {Fixture} from "./Fixture.sol";
import {StateBuilder} from "./StateBuilder.sol";

/// @notice The fixture's job with a real state in its trace: four tensors in name order,
///         `a.weight` (5 rows x 3 columns), `b.bias` (one row of 4), `c.empty` (0 x 3, no rows,
///         root zero) and `d.scale` (a scalar), whose state hash is `h_STATE_STEP` and the
///         final `h_STEPS`, with helpers to demand it on the market and open and publish it on
///         the market's publisher (the fixture's `DataAvailability`).
abstract contract AvailabilityFixture is Fixture {
    uint256 internal constant BOND = 0.1 ether;
    uint256 internal constant COLLATERAL = 0.5 ether; // 5000 bps of PAYMENT
    /// @notice `AVAILABILITY_PERCENT` (40%) of the 1-day dispute duration.
    uint256 internal constant AVAILABILITY = 1 days * 40 / 100;
    uint256 internal constant MIN_WINDOW = 10 seconds;
    /// @notice A demanded step whose state (and the next) the fixture knows.
    uint256 internal constant STATE_STEP = 7;
    /// @notice Rows of each tensor, in order.
    uint256 internal constant WEIGHT_ROWS = 5;

    /// @notice The entries of the state and its hash.
    bytes32[] internal entries;
    bytes32 internal stateHash;

    function setUp() public virtual override {
        super.setUp();
        entries = StateBuilder.entries(state());
        stateHash = StateBuilder.stateHash(entries);
        setTraceLeaf(STATE_STEP, stateHash);
        setTraceLeaf(STEPS, stateHash);
    }

    // ─────────────────────────────────────────── the state ───────────────────────────────────────────

    /// @notice The fixture's state, tensors in name order.
    function state() internal pure returns (StateBuilder.Tensor[] memory ts) {
        ts = new StateBuilder.Tensor[](4);
        ts[0] = StateBuilder.tensor("a.weight", StateBuilder.dims2(5, 3), 100);
        ts[1] = StateBuilder.tensor("b.bias", StateBuilder.dims1(4), -7);
        ts[2] = StateBuilder.tensor("c.empty", StateBuilder.dims2(0, 3), 0);
        ts[3] = StateBuilder.tensor("d.scale", new uint32[](0), 65_536);
    }

    /// @notice Every run of the state, `2^log2Rows` rows each.
    function runs(uint8 log2Rows) internal pure returns (IDataAvailability.RowRun[] memory) {
        return StateBuilder.allRuns(state(), log2Rows);
    }

    /// @notice The run of tensor `t` of the state from row `first`.
    function runOf(uint256 t, uint256 first, uint8 log2Rows)
        internal
        pure
        returns (IDataAvailability.RowRun[] memory r)
    {
        r = new IDataAvailability.RowRun[](1);
        r[0] = StateBuilder.run(state()[t], first, log2Rows);
    }

    /// @notice `h_{step+1}`, or zero after the last step.
    function nextOf(uint256 step) internal view returns (bytes32) {
        return step < STEPS ? trace[step + 1] : bytes32(0);
    }

    /// @notice The proof of `h_{step+1}`, or none after the last step.
    function nextProofOf(uint256 step) internal view returns (bytes32[] memory) {
        return step < STEPS ? traceProof(step + 1) : new bytes32[](0);
    }

    // ─────────────────────────────────────────── actions ─────────────────────────────────────────────

    /// @notice `who` demands the state after `step` of `jobId` with the bond of a first demand.
    function demand(address who, uint256 jobId, uint256 step) internal {
        vm.prank(who);
        market.demandData{value: BOND}(jobId, step);
    }

    /// @notice `who` demands again, with the bond the market asks now (doubled for each demand
    ///         the worker met and each challenge it won).
    function demandAgain(address who, uint256 jobId, uint256 step) internal {
        uint256 bond = market.challengeBondOf(jobId);
        vm.prank(who);
        market.demandData{value: bond}(jobId, step);
    }

    /// @notice A job submitted with the fixture's trace, whose `STATE_STEP` the validator demanded.
    function postClaimSubmitDemand() internal returns (uint256 jobId) {
        jobId = postClaimSubmitDemand(IJobMarket.Verification.Optimistic);
    }

    /// @notice The same for a job with verification `v`.
    function postClaimSubmitDemand(IJobMarket.Verification v) internal returns (uint256 jobId) {
        jobId = postClaimSubmit(v);
        demand(validator, jobId, STATE_STEP);
    }

    /// @notice The worker opens the demanded state of `jobId` (at `step`) with honest proofs.
    function openAt(uint256 jobId, uint256 step) internal {
        bytes32[] memory proof = traceProof(step);
        bytes32[] memory nextProof = nextProofOf(step);
        bytes32 next = nextOf(step);
        vm.prank(provider);
        availability.openState(jobId, entries, proof, next, nextProof);
    }

    /// @notice The worker publishes `rs`.
    function publish(uint256 jobId, IDataAvailability.RowRun[] memory rs) internal {
        vm.prank(provider);
        availability.publishRows(jobId, entries, rs);
    }

    /// @notice `publishRows` with `rs` reverts with `BadPublication(what)`.
    function expectBadPublication(uint256 jobId, IDataAvailability.RowRun[] memory rs, string memory what)
        internal
    {
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, what));
        publish(jobId, rs);
    }

    // ─────────────────────────────────────────── checks ──────────────────────────────────────────────

    function assertStatus(uint256 jobId, IJobMarket.JobStatus expected, string memory m) internal view {
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(expected), m);
    }

    /// @notice The publication cursor of `jobId`'s demand.
    function assertCursor(uint256 jobId, uint256 tensor, uint256 row, string memory m) internal view {
        IDataAvailability.Cursor memory c = availability.cursorOf(jobId);
        vm.assertEq(c.tensor, tensor, string.concat(m, ": tensor"));
        vm.assertEq(c.row, row, string.concat(m, ": row"));
        vm.assertEq(c.demandOpenedAt, market.getDemand(jobId).openedAt, string.concat(m, ": demand"));
    }

    /// @notice The state hash opened for `jobId`'s demand (zero before `openState`).
    function openedHash(uint256 jobId) internal view returns (bytes32) {
        return availability.cursorOf(jobId).stateHash;
    }

    /// @notice The demand of `jobId` is gone (all zero), and so is its publication cursor.
    function assertNoDemand(uint256 jobId) internal view {
        IJobMarket.DataDemand memory d = market.getDemand(jobId);
        vm.assertEq(d.demander, address(0), "no demander");
        vm.assertEq(d.bond, 0, "no bond");
        vm.assertEq(d.deadline, 0, "no deadline");
        vm.assertEq(d.publisher, address(0), "no publisher");
        assertNoCursor(jobId);
    }

    /// @notice The publication cursor of `jobId` is all zero.
    function assertNoCursor(uint256 jobId) internal view {
        IDataAvailability.Cursor memory c = availability.cursorOf(jobId);
        vm.assertEq(c.stateHash, bytes32(0), "no state hash");
        vm.assertEq(c.demandOpenedAt, 0, "no cursor demand");
        vm.assertEq(c.tensor, 0, "no cursor tensor");
        vm.assertEq(c.row, 0, "no cursor row");
    }

    /// @notice `NoOpenDemand(jobId)`, the publisher's refusal of a job without an open demand.
    function noOpenDemand(uint256 jobId) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IDataAvailability.NoOpenDemand.selector, jobId);
    }

    function wrongStatus(uint256 jobId, IJobMarket.JobStatus expected, IJobMarket.JobStatus actual)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(IJobMarket.WrongStatus.selector, jobId, expected, actual);
    }
}
