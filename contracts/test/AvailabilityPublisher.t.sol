// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {DataAvailability} from "../src/DataAvailability.sol";
import {JobMarket} from "../src/JobMarket.sol";
import {IDataAvailability} from "../src/interfaces/IDataAvailability.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {AvailabilityFixture} from "./utils/AvailabilityFixture.sol";

/// @notice A market that says whatever the test sets about one job and its demand, to reach
///         the publisher's cursor reset, which JobMarket never needs (see
///         `test_cursor_leftByAnEarlierDemand_isReset`).
contract StubMarket {
    IJobMarket.Job internal _job;
    IJobMarket.DataDemand internal _demand;
    uint256 public met;

    function set(IJobMarket.Job memory job, IJobMarket.DataDemand memory demand) external {
        _job = job;
        _demand = demand;
    }

    function getJob(uint256) external view returns (IJobMarket.Job memory) {
        return _job;
    }

    function getDemand(uint256) external view returns (IJobMarket.DataDemand memory) {
        return _demand;
    }

    function demandMet(uint256) external {
        met++;
    }
}

/// @notice The market's publisher: `setPublisher` and the publisher each demand snapshots,
///         `demandMet` (the publisher's report), `NoOpenDemand` from every publication call
///         (no demand, a job in another status, a demand of another publisher, past the
///         deadline), and the publication cursor (`cursorOf`) across demands.
contract AvailabilityPublisherTest is AvailabilityFixture {
    uint256 internal constant T0 = 1_700_000_000;
    uint256 internal constant WINDOW_END = T0 + WINDOW;
    uint256 internal constant DEADLINE = T0 + AVAILABILITY;
    bytes32 internal constant DEFAULT_ADMIN_ROLE = 0x00;

    /// @notice A second publisher for the same market, which the admin may swap in.
    DataAvailability internal other;

    function setUp() public override {
        super.setUp();
        other = new DataAvailability(market);
    }

    // ─────────────────────────────────────────── deployment ──────────────────────────────────────────

    function test_deployment_publisherOfTheMarket() public {
        vm.assertEq(address(availability.market()), address(market), "the publisher's market");
        vm.assertEq(market.publisher(), address(availability), "the market's publisher");
        // A market starts without one: demands are disabled until the admin sets it.
        JobMarket fresh = new JobMarket(admin, pauser, stakes, treasury, defaultParams());
        vm.assertEq(fresh.publisher(), address(0), "no publisher at first");
        assertNoCursor(1);
    }

    // ─────────────────────────────────────────── setPublisher ────────────────────────────────────────

    /// @notice The admin swaps the publisher: the event, the view, and new demands snapshot it.
    function test_setPublisher_succeeds() public {
        vm.expectEmit(address(market));
        emit IJobMarket.PublisherUpdated(address(availability), address(other));
        vm.prank(admin);
        market.setPublisher(address(other));
        vm.assertEq(market.publisher(), address(other), "publisher");
        uint256 jobId = postClaimSubmitDemand();
        vm.assertEq(market.getDemand(jobId).publisher, address(other), "snapshotted");
    }

    function test_setPublisher_notAdmin_reverts() public {
        address[3] memory callers = [stranger, pauser, address(availability)];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], DEFAULT_ADMIN_ROLE
                )
            );
            vm.prank(callers[i]);
            market.setPublisher(callers[i]);
        }
        vm.assertEq(market.publisher(), address(availability), "unchanged");
    }

    /// @notice Zero disables new demands (checked after the job's own checks, before the bond);
    ///         setting a publisher again enables them.
    function test_setPublisher_zeroDisablesDemands() public {
        uint256 jobId = postClaimSubmit();
        vm.expectEmit(address(market));
        emit IJobMarket.PublisherUpdated(address(availability), address(0));
        vm.prank(admin);
        market.setPublisher(address(0));

        vm.expectRevert(IJobMarket.DemandsDisabled.selector);
        demand(validator, jobId, STATE_STEP);
        vm.expectRevert(IJobMarket.DemandsDisabled.selector);
        vm.prank(validator);
        market.demandData{value: BOND - 1}(jobId, STATE_STEP);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DemandStepOutOfRange.selector, STEPS + 1, STEPS));
        demand(validator, jobId, STEPS + 1);
        vm.expectRevert(IJobMarket.SelfChallenge.selector);
        demand(provider, jobId, STATE_STEP);
        assertStatus(jobId, IJobMarket.JobStatus.Submitted, "not demanded");

        vm.prank(admin);
        market.setPublisher(address(availability));
        demand(validator, jobId, STATE_STEP);
        assertStatus(jobId, IJobMarket.JobStatus.Demanded, "demanded again");
    }

    /// @notice An open demand keeps its publisher when demands are disabled: it is still met.
    function test_setPublisher_zero_openDemandStillMet() public {
        uint256 jobId = postClaimSubmitDemand();
        vm.prank(admin);
        market.setPublisher(address(0));
        openAt(jobId, STATE_STEP);
        publish(jobId, runs(2));
        assertStatus(jobId, IJobMarket.JobStatus.Submitted, "met");
        vm.assertEq(market.creditOf(provider), BOND, "bond to the worker");
    }

    // ─────────────────────────────────────────── demandMet ───────────────────────────────────────────

    /// @notice The market takes its publisher's word: the bond goes to the worker, the job is
    ///         back in Submitted with its window extended, and the demand is gone.
    function test_demandMet_byThePublisher_succeeds() public {
        uint256 jobId = postClaimSubmitDemand();
        vm.warp(T0 + 300);
        vm.expectEmit(address(market));
        emit IJobMarket.DataPublished(jobId, STATE_STEP, WINDOW_END + 300);
        vm.prank(address(availability));
        market.demandMet(jobId);
        assertStatus(jobId, IJobMarket.JobStatus.Submitted, "met");
        assertNoDemand(jobId);
        vm.assertEq(market.getJob(jobId).windowEnd, WINDOW_END + 300, "window end");
        vm.assertEq(market.creditOf(provider), BOND, "bond to the worker");
        vm.assertEq(market.totalEscrowed(), PAYMENT, "payment only");
    }

    /// @notice Only the demand's publisher: not the worker, the demander, the admin, anyone, or
    ///         another publisher of the same market.
    function test_demandMet_notThePublisher_reverts() public {
        uint256 jobId = postClaimSubmitDemand();
        address[5] memory callers = [provider, validator, admin, stranger, address(other)];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotPublisher.selector, jobId, callers[i]));
            vm.prank(callers[i]);
            market.demandMet(jobId);
        }
        assertStatus(jobId, IJobMarket.JobStatus.Demanded, "still demanded");
    }

    /// @notice The admin swaps the publisher mid-demand: the new one can neither publish for the
    ///         open demand nor report it met; the old one still meets it. The next demand is the
    ///         new publisher's, and the old one refuses it.
    function test_demandMet_publisherSwappedMidDemand() public {
        uint256 jobId = postClaimSubmitDemand();
        openAt(jobId, STATE_STEP);
        publish(jobId, runOf(0, 0, 2));
        vm.prank(admin);
        market.setPublisher(address(other));

        bytes32[] memory proof = traceProof(STATE_STEP);
        vm.expectRevert(noOpenDemand(jobId));
        other.openState(jobId, entries, proof, nextOf(STATE_STEP), nextProofOf(STATE_STEP));
        vm.expectRevert(noOpenDemand(jobId));
        other.publishBlob(jobId, "", proof);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotPublisher.selector, jobId, address(other)));
        vm.prank(address(other));
        market.demandMet(jobId);

        publish(jobId, _rest());
        assertStatus(jobId, IJobMarket.JobStatus.Submitted, "met by the old publisher");
        vm.assertEq(market.creditOf(provider), BOND, "bond to the worker");

        demandAgain(stranger, jobId, STATE_STEP);
        vm.assertEq(market.getDemand(jobId).publisher, address(other), "the new publisher's demand");
        vm.expectRevert(noOpenDemand(jobId));
        openAt(jobId, STATE_STEP);
        vm.prank(provider);
        other.openState(jobId, entries, proof, nextOf(STATE_STEP), nextProofOf(STATE_STEP));
        vm.prank(provider);
        other.publishRows(jobId, entries, runs(3));
        assertStatus(jobId, IJobMarket.JobStatus.Submitted, "met by the new publisher");
        vm.assertEq(market.creditOf(provider), 3 * BOND, "both bonds to the worker, the second doubled");
    }

    /// @notice The deadline itself counts; one second later even the publisher cannot report it.
    function test_demandMet_afterDeadline_reverts() public {
        uint256 jobId = postClaimSubmitDemand();
        vm.warp(DEADLINE + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DemandDeadlinePassed.selector, jobId, DEADLINE));
        vm.prank(address(availability));
        market.demandMet(jobId);
        vm.warp(DEADLINE);
        vm.prank(address(availability));
        market.demandMet(jobId);
        vm.assertEq(market.getJob(jobId).windowEnd, WINDOW_END + AVAILABILITY, "window: + the whole demand");
    }

    /// @notice Without an open demand there is nothing to meet: a job in another status, met
    ///         already, claimed unmet, or one that does not exist.
    function test_demandMet_withoutDemand_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Demanded, IJobMarket.JobStatus.Submitted));
        vm.prank(address(availability));
        market.demandMet(jobId);

        demand(validator, jobId, STATE_STEP);
        vm.prank(address(availability));
        market.demandMet(jobId);
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Demanded, IJobMarket.JobStatus.Submitted));
        vm.prank(address(availability));
        market.demandMet(jobId);

        uint256 unmet = postClaimSubmitDemand();
        vm.warp(DEADLINE + 1);
        market.claimUnavailable(unmet);
        vm.expectRevert(wrongStatus(unmet, IJobMarket.JobStatus.Demanded, IJobMarket.JobStatus.Resolved));
        vm.prank(address(availability));
        market.demandMet(unmet);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 99));
        vm.prank(address(availability));
        market.demandMet(99);
    }

    // ─────────────────────────────────────────── NoOpenDemand ────────────────────────────────────────

    /// @notice No demand: a job that does not exist, or one posted, claimed or submitted.
    function test_publication_noDemand_reverts() public {
        _expectNoOpenDemand(availability, 99);
        uint256 posted = post();
        _expectNoOpenDemand(availability, posted);
        uint256 claimed = postAndClaim();
        _expectNoOpenDemand(availability, claimed);
        uint256 submitted = postClaimSubmit();
        _expectNoOpenDemand(availability, submitted);
    }

    /// @notice A job whose status is no longer Demanded: its demand met (and the job then
    ///         disputed or finalized) or claimed unmet, with a cursor left behind.
    function test_publication_wrongStatus_reverts() public {
        uint256 met = postClaimSubmitDemand();
        openAt(met, STATE_STEP);
        publish(met, runs(3));
        _expectNoOpenDemand(availability, met);
        stakeAs(stranger, 1 ether);
        openChallenge(stranger, met, STATE_STEP);
        _expectNoOpenDemand(availability, met);

        uint256 finalized = postClaimSubmit();
        vm.warp(WINDOW_END);
        market.finalize(finalized);
        _expectNoOpenDemand(availability, finalized);

        uint256 unmet = postClaimSubmitDemand();
        openAt(unmet, STATE_STEP);
        publish(unmet, runOf(0, 0, 2));
        vm.warp(WINDOW_END + AVAILABILITY + 1);
        market.claimUnavailable(unmet);
        // The market does not tell the publisher: the cursor stays, but nothing can use it.
        IDataAvailability.Cursor memory c = availability.cursorOf(unmet);
        vm.assertEq(c.stateHash, stateHash, "left behind");
        vm.assertEq(c.row, 4, "left behind at row 4");
        _expectNoOpenDemand(availability, unmet);
    }

    /// @notice A demand made while another publisher was set is that publisher's alone.
    function test_publication_anotherPublishersDemand_reverts() public {
        vm.prank(admin);
        market.setPublisher(address(other));
        uint256 jobId = postClaimSubmitDemand();
        vm.prank(admin);
        market.setPublisher(address(availability));
        _expectNoOpenDemand(availability, jobId);
        _expectNoOpenDemand(other, 99);

        bytes32[] memory proof = traceProof(STATE_STEP);
        other.openState(jobId, entries, proof, nextOf(STATE_STEP), nextProofOf(STATE_STEP));
        vm.assertEq(other.cursorOf(jobId).stateHash, stateHash, "opened on its publisher");
        assertNoCursor(jobId);
        _expectNoOpenDemand(availability, jobId);
    }

    /// @notice Past the deadline the demand is closed to every call, opened or not.
    function test_publication_pastDeadline_reverts() public {
        uint256 opened = postClaimSubmitDemand();
        openAt(opened, STATE_STEP);
        publish(opened, runOf(0, 0, 1));
        uint256 unopened = postClaimSubmitDemand();
        vm.warp(DEADLINE + 1);
        _expectNoOpenDemand(availability, opened);
        _expectNoOpenDemand(availability, unopened);
        assertCursor(opened, 0, 2, "kept");
    }

    // ─────────────────────────────────────────── cursorOf ────────────────────────────────────────────

    /// @notice The cursor of two successive demands on one job: zero until the first call for a
    ///         demand, then that demand's (its `openedAt`, the state hash, tensor and row),
    ///         deleted when the demand is met, so the next demand starts from nothing.
    function test_cursorOf_twoSuccessiveDemands() public {
        uint256 jobId = postClaimSubmitDemand();
        assertNoCursor(jobId);
        vm.warp(T0 + 10);
        openAt(jobId, STATE_STEP);
        IDataAvailability.Cursor memory c = availability.cursorOf(jobId);
        vm.assertEq(c.stateHash, stateHash, "opened");
        vm.assertEq(c.demandOpenedAt, T0, "first demand");
        publish(jobId, runOf(0, 0, 2));
        assertCursor(jobId, 0, 4, "four rows in");
        publish(jobId, _rest());
        assertNoCursor(jobId);

        vm.warp(T0 + 100);
        demandAgain(stranger, jobId, STEPS);
        assertNoCursor(jobId);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.StateNotOpened.selector, jobId));
        publish(jobId, runs(3));
        openAt(jobId, STEPS);
        c = availability.cursorOf(jobId);
        vm.assertEq(c.demandOpenedAt, T0 + 100, "second demand");
        vm.assertEq(c.stateHash, stateHash, "opened again");
        assertCursor(jobId, 0, 0, "from the start");
        publish(jobId, runOf(0, 0, 0));
        assertCursor(jobId, 0, 1, "one row in");
        publish(jobId, _restFrom(1));
        assertNoCursor(jobId);
        vm.assertEq(market.creditOf(provider), 3 * BOND, "both demands met, the second bond doubled");
    }

    /// @notice A cursor left by an earlier demand is reset at the first call for a later one.
    ///         With JobMarket only a demand claimed unmet leaves one, on a job that is then
    ///         Resolved for good, so a market that says whatever the test sets stands in for it.
    function test_cursor_leftByAnEarlierDemand_isReset() public {
        // A batch-inference job, whose demands a blob may meet (at the end).
        uint256 jobId = postClaimSubmitDemand(IJobMarket.Verification.OptimisticInference);
        StubMarket stub = new StubMarket();
        DataAvailability da = new DataAvailability(IJobMarket(address(stub)));
        IJobMarket.Job memory job = market.getJob(jobId);
        IJobMarket.DataDemand memory d = market.getDemand(jobId);
        d.publisher = address(da);
        stub.set(job, d);
        bytes32[] memory proof = traceProof(STATE_STEP);
        da.openState(jobId, entries, proof, nextOf(STATE_STEP), nextProofOf(STATE_STEP));
        da.publishRows(jobId, entries, runOf(0, 0, 2));
        vm.assertEq(da.cursorOf(jobId).row, 4, "first demand: four rows in");

        d.openedAt += 50;
        stub.set(job, d);
        vm.assertEq(da.cursorOf(jobId).row, 4, "stored until a call for the later demand");
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.StateNotOpened.selector, jobId));
        da.publishRows(jobId, entries, runOf(0, 4, 2));
        da.openState(jobId, entries, proof, nextOf(STATE_STEP), nextProofOf(STATE_STEP));
        IDataAvailability.Cursor memory c = da.cursorOf(jobId);
        vm.assertEq(c.demandOpenedAt, d.openedAt, "the later demand's");
        vm.assertEq(c.tensor, 0, "tensor reset");
        vm.assertEq(c.row, 0, "row reset");
        da.publishRows(jobId, entries, runs(3));
        vm.assertEq(stub.met(), 1, "reported met once");
        vm.assertEq(da.cursorOf(jobId).demandOpenedAt, 0, "deleted");

        // A blob meets a demand whose earlier one was opened: the reset lets it through.
        vm.assertEq(da.cursorOf(jobId).stateHash, bytes32(0), "nothing opened");
        da.openState(jobId, entries, proof, nextOf(STATE_STEP), nextProofOf(STATE_STEP));
        d.openedAt += 50;
        setTraceLeaf(STATE_STEP, keccak256("outputs"));
        job.traceRoot = traceRoot;
        stub.set(job, d);
        da.publishBlob(jobId, "outputs", traceProof(STATE_STEP));
        vm.assertEq(stub.met(), 2, "reported met twice");
    }

    // ─────────────────────────────────────────── helpers ─────────────────────────────────────────────

    /// @notice `openState`, `publishRows` and `publishBlob` of `da` revert `NoOpenDemand(jobId)`,
    ///         with honest arguments, as anyone.
    function _expectNoOpenDemand(DataAvailability da, uint256 jobId) internal {
        bytes32[] memory proof = traceProof(STATE_STEP);
        bytes32 next = nextOf(STATE_STEP);
        bytes32[] memory nextProof = nextProofOf(STATE_STEP);
        IDataAvailability.RowRun[] memory rs = runs(3);
        vm.expectRevert(noOpenDemand(jobId));
        da.openState(jobId, entries, proof, next, nextProof);
        vm.expectRevert(noOpenDemand(jobId));
        da.publishRows(jobId, entries, rs);
        vm.expectRevert(noOpenDemand(jobId));
        da.publishBlob(jobId, "", proof);
    }

    /// @notice The runs that follow the weight's first four rows (in runs of 4).
    function _rest() internal pure returns (IDataAvailability.RowRun[] memory) {
        return _tail(runs(2), 1);
    }

    /// @notice The runs of one row that follow the weight's first `rows` rows.
    function _restFrom(uint256 rows) internal pure returns (IDataAvailability.RowRun[] memory) {
        return _tail(runs(0), rows);
    }

    function _tail(IDataAvailability.RowRun[] memory rs, uint256 from)
        internal
        pure
        returns (IDataAvailability.RowRun[] memory out)
    {
        out = new IDataAvailability.RowRun[](rs.length - from);
        for (uint256 i = from; i < rs.length; ++i) {
            out[i - from] = rs[i];
        }
    }
}
