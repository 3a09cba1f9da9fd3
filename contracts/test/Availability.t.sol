// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataAvailability} from "../src/interfaces/IDataAvailability.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {AvailabilityFixture} from "./utils/AvailabilityFixture.sol";

/// @notice Data availability: `demandData` and `claimUnavailable` on the market, `openState`
///         and `publishBlob` on its publisher (DataAvailability), their clocks and bonds, and how
///         a demand blocks or leaves the rest of the job's lifecycle. The demanded state is real
///         (AvailabilityFixture); its publication row by row is tested in
///         AvailabilityPublish.t.sol, the market's publisher and `demandMet` in
///         AvailabilityPublisher.t.sol.
contract AvailabilityTest is AvailabilityFixture {
    uint256 internal constant T0 = 1_700_000_000;
    uint256 internal constant WINDOW_END = T0 + WINDOW;
    uint256 internal constant DEADLINE = T0 + AVAILABILITY;
    uint256 internal constant REWARD = COLLATERAL * 5000 / 10_000;

    // ─────────────────────────────────────────── demandData ──────────────────────────────────────────

    function test_demandData_succeeds() public {
        uint256 jobId = postClaimSubmit();
        vm.warp(T0 + 60);
        vm.expectEmit(address(market));
        emit IJobMarket.DataDemanded(jobId, validator, STATE_STEP, BOND, T0 + 60 + AVAILABILITY);
        demand(validator, jobId, STATE_STEP);

        assertStatus(jobId, IJobMarket.JobStatus.Demanded, "demanded");
        IJobMarket.DataDemand memory d = market.getDemand(jobId);
        vm.assertEq(d.demander, validator, "demander");
        vm.assertEq(d.openedAt, T0 + 60, "openedAt");
        vm.assertEq(d.deadline, T0 + 60 + AVAILABILITY, "deadline: 40% of the dispute duration");
        vm.assertEq(d.step, STATE_STEP, "step");
        vm.assertEq(d.bond, BOND, "bond");
        vm.assertEq(d.publisher, address(availability), "publisher: the market's, snapshotted");
        assertNoCursor(jobId); // nothing published yet
        vm.assertEq(market.totalEscrowed(), PAYMENT + BOND, "bond escrowed");
        vm.assertEq(address(market).balance, PAYMENT + BOND, "held");
        vm.assertEq(market.AVAILABILITY_PERCENT(), 40, "availability percent");
        // The window does not move until the demand is met.
        vm.assertEq(market.getJob(jobId).windowEnd, WINDOW_END, "window end");
    }

    /// @notice Anyone but the worker may demand, staked or not: the requester too.
    function test_demandData_byRequesterOrUnstaked_succeeds() public {
        uint256 jobId = postClaimSubmit();
        demand(requester, jobId, 0);
        vm.assertEq(market.getDemand(jobId).demander, requester, "requester");
        uint256 other = postClaimSubmit();
        demand(stranger, other, STEPS);
        vm.assertEq(market.getDemand(other).demander, stranger, "unstaked stranger");
        vm.assertEq(market.totalEscrowed(), 2 * (PAYMENT + BOND), "both bonds escrowed");
    }

    function test_demandData_wrongBond_reverts() public {
        uint256 jobId = postClaimSubmit();
        uint256[3] memory wrong = [uint256(0), BOND - 1, BOND + 1];
        for (uint256 i = 0; i < wrong.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongBond.selector, BOND, wrong[i]));
            vm.prank(validator);
            market.demandData{value: wrong[i]}(jobId, STATE_STEP);
        }
        assertStatus(jobId, IJobMarket.JobStatus.Submitted, "still submitted");
    }

    /// @notice Attack: a worker cannot demand its own data to collect its own bond back and stall.
    function test_demandData_byWorker_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.expectRevert(IJobMarket.SelfChallenge.selector);
        demand(provider, jobId, STATE_STEP);
    }

    function test_demandData_stepPastTheLast_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DemandStepOutOfRange.selector, STEPS + 1, STEPS));
        demand(validator, jobId, STEPS + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.DemandStepOutOfRange.selector, type(uint256).max, STEPS)
        );
        demand(validator, jobId, type(uint256).max);
    }

    /// @notice A demand needs a submitted job inside its window: not before the result, not at
    ///         or after the window's end, not after finalization, not for a job that does not exist.
    function test_demandData_outsideTheWindow_reverts() public {
        uint256 jobId = postAndClaim();
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Claimed));
        demand(validator, jobId, STATE_STEP);

        bytes memory resultCid = cid("result");
        vm.prank(provider);
        market.submitResult(jobId, STEPS, traceRoot, bytes32(0), trace[STEPS], finalProof, resultCid);
        vm.warp(WINDOW_END - 1);
        demand(validator, jobId, STATE_STEP); // the last second inside the window counts

        uint256 late = postClaimSubmit();
        vm.warp(WINDOW_END - 1 + WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, late, WINDOW_END - 1 + WINDOW)
        );
        demand(validator, late, STATE_STEP);
        market.finalize(late);
        vm.expectRevert(wrongStatus(late, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Finalized));
        demand(validator, late, STATE_STEP);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 99));
        demand(validator, 99, STATE_STEP);
    }

    function test_demandData_whileDisputed_reverts() public {
        uint256 jobId = postClaimSubmitChallenge();
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Disputed));
        demand(stranger, jobId, STATE_STEP);
    }

    /// @notice One demand at a time: a second one, of any step and by anyone, waits for the first.
    function test_demandData_whileAnotherDemandIsOpen_reverts() public {
        uint256 jobId = postClaimSubmitDemand();
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Demanded));
        demand(stranger, jobId, 3);
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Demanded));
        demand(validator, jobId, STATE_STEP);
        vm.assertEq(market.totalEscrowed(), PAYMENT + BOND, "one bond");
    }

    // ─────────────────────────────────────────── openState ───────────────────────────────────────────

    /// @notice Anyone may open the demanded state: its entries hash to `h_step` and `h_{step+1}`
    ///         comes with it; nothing is credited yet.
    function test_openState_succeeds() public {
        uint256 jobId = postClaimSubmitDemand();
        bytes32[] memory proof = traceProof(STATE_STEP);
        bytes32[] memory nextProof = traceProof(STATE_STEP + 1);
        bytes32 next = trace[STATE_STEP + 1];
        vm.warp(T0 + 100);
        vm.expectEmit(address(availability));
        emit IDataAvailability.StateOpened(jobId, STATE_STEP, stateHash, next, entries);
        vm.prank(stranger);
        availability.openState(jobId, entries, proof, next, nextProof);

        vm.assertEq(openedHash(jobId), stateHash, "opened");
        assertCursor(jobId, 0, 0, "nothing published");
        assertStatus(jobId, IJobMarket.JobStatus.Demanded, "still demanded");
        vm.assertEq(market.totalEscrowed(), PAYMENT + BOND, "bond still escrowed");
        vm.assertEq(market.creditOf(provider), 0, "nothing credited");
    }

    /// @notice The final state (step == steps) has no next state: the next hash must be zero.
    function test_openState_finalStep_succeeds() public {
        uint256 jobId = postClaimSubmit();
        demand(validator, jobId, STEPS);
        bytes32[] memory proof = traceProof(STEPS);
        bytes32[] memory none = new bytes32[](0);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "next state hash"));
        vm.prank(provider);
        availability.openState(jobId, entries, proof, trace[STEPS - 1], none);
        vm.expectEmit(address(availability));
        emit IDataAvailability.StateOpened(jobId, STEPS, stateHash, bytes32(0), entries);
        vm.prank(provider);
        availability.openState(jobId, entries, proof, bytes32(0), none);
        vm.assertEq(openedHash(jobId), stateHash, "final state opened");
    }

    function test_openState_wrongEntries_reverts() public {
        uint256 jobId = postClaimSubmitDemand();
        bytes32[] memory proof = traceProof(STATE_STEP);
        bytes32[] memory nextProof = traceProof(STATE_STEP + 1);
        bytes32 next = trace[STATE_STEP + 1];

        // Not a whole number of 3-word entries, or none at all.
        bytes32[] memory none = new bytes32[](0);
        bytes32[] memory ragged = new bytes32[](entries.length - 1);
        for (uint256 i = 0; i < ragged.length; ++i) {
            ragged[i] = entries[i];
        }
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "entries"));
        availability.openState(jobId, none, proof, next, nextProof);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "entries"));
        availability.openState(jobId, ragged, proof, next, nextProof);

        // Whole entries of another state: a changed root, or a tensor left out.
        bytes32[] memory changed = entries;
        changed[2] = keccak256("another root");
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "state hash"));
        availability.openState(jobId, changed, proof, next, nextProof);
        bytes32[] memory fewer = new bytes32[](entries.length - 3);
        for (uint256 i = 0; i < fewer.length; ++i) {
            fewer[i] = entries[i];
        }
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "state hash"));
        availability.openState(jobId, fewer, proof, next, nextProof);
        vm.assertEq(openedHash(jobId), bytes32(0), "not opened");
    }

    /// @notice The entries must hash to leaf `step` exactly: a proof of another step (even of the
    ///         same state, which is also the final one), a forged sibling or a short proof fail.
    function test_openState_wrongProof_reverts() public {
        uint256 jobId = postClaimSubmitDemand();
        bytes32[] memory nextProof = traceProof(STATE_STEP + 1);
        bytes32 next = trace[STATE_STEP + 1];
        bytes32[] memory ofFinal = traceProof(STEPS);
        bytes32[] memory forged = traceProof(STATE_STEP);
        forged[3] = keccak256("forged");
        bytes32[] memory short = new bytes32[](forged.length - 1);

        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "state hash"));
        availability.openState(jobId, entries, ofFinal, next, nextProof);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "state hash"));
        availability.openState(jobId, entries, forged, next, nextProof);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "state hash"));
        availability.openState(jobId, entries, short, next, nextProof);
    }

    function test_openState_wrongNext_reverts() public {
        uint256 jobId = postClaimSubmitDemand();
        bytes32[] memory proof = traceProof(STATE_STEP);
        bytes32[] memory nextProof = traceProof(STATE_STEP + 1);
        bytes32 next = trace[STATE_STEP + 1];
        bytes32[] memory none = new bytes32[](0);

        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "next state hash"));
        availability.openState(jobId, entries, proof, keccak256("not h_8"), nextProof);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "next state hash"));
        availability.openState(jobId, entries, proof, bytes32(0), none);
        // h_8 with the proof of h_7 (the right siblings for the wrong index).
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "next state hash"));
        availability.openState(jobId, entries, proof, next, proof);
    }

    function test_openState_twice_reverts() public {
        uint256 jobId = postClaimSubmitDemand();
        openAt(jobId, STATE_STEP);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.StateAlreadyOpened.selector, jobId));
        openAt(jobId, STATE_STEP);
    }

    /// @notice The deadline itself still counts; one second later the demand is no longer open.
    function test_openState_afterDeadline_reverts() public {
        uint256 jobId = postClaimSubmitDemand();
        vm.warp(DEADLINE + 1);
        vm.expectRevert(noOpenDemand(jobId));
        openAt(jobId, STATE_STEP);
        vm.warp(DEADLINE);
        openAt(jobId, STATE_STEP);
        vm.assertEq(openedHash(jobId), stateHash, "opened at the deadline");
    }

    function test_openState_withoutDemand_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.expectRevert(noOpenDemand(jobId));
        openAt(jobId, STATE_STEP);
        vm.expectRevert(noOpenDemand(99));
        openAt(99, STATE_STEP);
    }

    // ─────────────────────────────────────────── publishBlob ─────────────────────────────────────────

    /// @notice A batch-inference job (`OptimisticInference`) whose leaf `step` is the keccak256
    ///         of `blob`, with that step demanded.
    function _blobJob(bytes memory blob, uint256 step) internal returns (uint256 jobId) {
        setTraceLeaf(step, keccak256(blob));
        jobId = postClaimSubmit(IJobMarket.Verification.OptimisticInference);
        demand(validator, jobId, step);
    }

    /// @notice A leaf that is a blob (a batch-inference chunk's outputs) is met in one call by
    ///         anyone: the blob's event, the bond to the worker, the window extended.
    function test_publishBlob_succeeds() public {
        bytes memory blob = bytes.concat("logits", new bytes(200));
        uint256 jobId = _blobJob(blob, 3);
        bytes32[] memory proof = traceProof(3);
        vm.warp(T0 + 500);
        vm.expectEmit(address(availability));
        emit IDataAvailability.BlobPublished(jobId, 3, blob);
        vm.expectEmit(address(market));
        emit IJobMarket.DataPublished(jobId, 3, WINDOW_END + 500);
        vm.prank(stranger);
        availability.publishBlob(jobId, blob, proof);
        assertStatus(jobId, IJobMarket.JobStatus.Submitted, "met");
        assertNoDemand(jobId);
        vm.assertEq(market.creditOf(provider), BOND, "bond to the worker");
        vm.assertEq(market.totalEscrowed(), PAYMENT, "payment only");
        vm.assertEq(market.getJob(jobId).windowEnd, WINDOW_END + 500, "window end");
    }

    /// @notice An empty blob and one shorter than the state tag are blobs like any other.
    function test_publishBlob_shortBlobs_succeeds() public {
        bytes[2] memory blobs = [bytes(""), bytes("pedals")];
        for (uint256 i = 0; i < blobs.length; ++i) {
            uint256 jobId = _blobJob(blobs[i], STEPS);
            bytes32[] memory proof = traceProof(STEPS);
            availability.publishBlob(jobId, blobs[i], proof);
            assertStatus(jobId, IJobMarket.JobStatus.Submitted, "met");
        }
    }

    /// @notice Attack: a training job's worker makes leaf `step` the keccak256 of a cheap blob
    ///         instead of a state; a blob would meet every demand and the worker, whose leaf is no
    ///         state, could never be convicted. A job that is not `OptimisticInference` refuses
    ///         every blob, even the right one with an honest proof, and keeps its demand.
    function test_publishBlob_trainingJob_reverts() public {
        bytes memory blob = "cheap outputs";
        setTraceLeaf(3, keccak256(blob));
        uint256 jobId = postClaimSubmit();
        vm.assertEq(
            uint256(market.getJob(jobId).verification),
            uint256(IJobMarket.Verification.Optimistic),
            "training"
        );
        demand(validator, jobId, 3);
        bytes32[] memory proof = traceProof(3);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "not a blob job"));
        vm.prank(provider);
        availability.publishBlob(jobId, blob, proof);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "not a blob job"));
        vm.prank(stranger);
        availability.publishBlob(jobId, blob, proof);
        assertStatus(jobId, IJobMarket.JobStatus.Demanded, "still demanded");
        vm.assertEq(market.getDemand(jobId).demander, validator, "demand kept");
        vm.assertEq(market.creditOf(provider), 0, "no bond to the worker");
        // The same blob and proof meet the demand of a batch-inference job.
        uint256 inference = _blobJob(blob, 3);
        availability.publishBlob(inference, blob, proof);
        assertStatus(inference, IJobMarket.JobStatus.Submitted, "met");
    }

    /// @notice Attack: the preimage of a state hash is a blob whose keccak256 is in the trace;
    ///         publishing it would meet the demand without a single row. It is refused by its tag,
    ///         even on a batch-inference job, whose other leaves are blobs.
    function test_publishBlob_stateHashPreimage_reverts() public {
        uint256 jobId = postClaimSubmitDemand(IJobMarket.Verification.OptimisticInference);
        bytes memory preimage =
            abi.encodePacked(bytes14("pedals.state.2"), uint32(entries.length / 3), entries);
        vm.assertEq(keccak256(preimage), stateHash, "the state hash's preimage");
        bytes32[] memory proof = traceProof(STATE_STEP);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "blob"));
        vm.prank(provider);
        availability.publishBlob(jobId, preimage, proof);
    }

    /// @notice The blob must be leaf `step`: another blob, another leaf's proof, or a forged one fail.
    function test_publishBlob_wrongBlobOrProof_reverts() public {
        bytes memory blob = "outputs of chunk 3";
        uint256 jobId = _blobJob(blob, 3);
        bytes32[] memory proof = traceProof(3);
        bytes32[] memory other = traceProof(4);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "blob"));
        availability.publishBlob(jobId, "outputs of chunk 4", proof);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "blob"));
        availability.publishBlob(jobId, blob, other);
        proof[0] = keccak256("forged");
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.BadPublication.selector, "blob"));
        availability.publishBlob(jobId, blob, proof);
    }

    /// @notice A blob is refused once a state is opened for the demand, after the deadline
    ///         (the deadline itself counts), and without a demand.
    function test_publishBlob_openedLateOrUndemanded_reverts() public {
        uint256 opened = postClaimSubmitDemand(IJobMarket.Verification.OptimisticInference);
        openAt(opened, STATE_STEP);
        bytes32[] memory stateProof = traceProof(STATE_STEP);
        vm.expectRevert(abi.encodeWithSelector(IDataAvailability.StateAlreadyOpened.selector, opened));
        availability.publishBlob(opened, "x", stateProof);

        bytes memory blob = "late outputs";
        uint256 jobId = _blobJob(blob, 5);
        bytes32[] memory proof = traceProof(5);
        vm.warp(DEADLINE + 1);
        vm.expectRevert(noOpenDemand(jobId));
        availability.publishBlob(jobId, blob, proof);
        vm.warp(DEADLINE);
        availability.publishBlob(jobId, blob, proof);
        vm.expectRevert(noOpenDemand(jobId));
        availability.publishBlob(jobId, blob, proof);
    }

    // ─────────────────────────────────────────── claimUnavailable ────────────────────────────────────

    function test_claimUnavailable_beforeDeadline_reverts() public {
        uint256 jobId = postClaimSubmitDemand();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DemandDeadlineNotPassed.selector, jobId, DEADLINE));
        market.claimUnavailable(jobId);
        vm.warp(DEADLINE);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DemandDeadlineNotPassed.selector, jobId, DEADLINE));
        market.claimUnavailable(jobId);
    }

    /// @notice The worker never published: it loses as in a lost dispute, to the wei. The demander
    ///         gets its bond and the reward, the requester the payment and the rest of the collateral.
    function test_claimUnavailable_succeeds() public {
        uint256 jobId = postClaimSubmitDemand();
        vm.assertEq(stakes.accountOf(provider).locked, COLLATERAL, "locked before");
        vm.warp(DEADLINE + 1);
        vm.expectEmit(address(market));
        emit IJobMarket.DataUnavailable(jobId, validator, BOND, PAYMENT + COLLATERAL - REWARD);
        vm.prank(stranger);
        market.claimUnavailable(jobId);

        assertStatus(jobId, IJobMarket.JobStatus.Resolved, "resolved");
        assertNoDemand(jobId);
        vm.assertEq(market.creditOf(validator), BOND, "demander: its bond at once");
        vm.assertEq(market.creditOf(requester), PAYMENT + COLLATERAL - REWARD, "requester: payment + rest");
        vm.assertEq(market.creditOf(provider), 0, "worker: nothing");
        vm.assertEq(market.creditOf(stranger), 0, "caller: nothing");
        vm.assertEq(
            market.totalEscrowed(), REWARD, "the reward, pooled for the demander and earlier committers"
        );
        vm.assertEq(market.getRewardPool(jobId).claimants, 1, "the demander is the first claimant");
        vm.assertEq(stakes.accountOf(provider).locked, 0, "collateral unlocked");
        vm.assertEq(stakes.accountOf(provider).staked, 2 ether - COLLATERAL, "collateral seized");
        vm.assertEq(address(market).balance, PAYMENT + BOND + COLLATERAL, "market holds every credit");

        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Demanded, IJobMarket.JobStatus.Resolved));
        market.claimUnavailable(jobId);
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Resolved));
        market.finalize(jobId);
    }

    /// @notice Half a publication is no publication: the claim takes it all the same.
    function test_claimUnavailable_afterPartialPublication_succeeds() public {
        uint256 jobId = postClaimSubmitDemand();
        openAt(jobId, STATE_STEP);
        publish(jobId, runOf(0, 0, 2));
        assertCursor(jobId, 0, 4, "four rows in");
        vm.warp(DEADLINE + 1);
        market.claimUnavailable(jobId);
        assertStatus(jobId, IJobMarket.JobStatus.Resolved, "resolved");
        vm.assertEq(market.creditOf(validator), BOND, "demander");
        vm.assertEq(market.totalEscrowed(), REWARD, "only the reward pool");
    }

    function test_claimUnavailable_withoutDemand_reverts() public {
        uint256 jobId = postClaimSubmit();
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Demanded, IJobMarket.JobStatus.Submitted));
        market.claimUnavailable(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotFound.selector, 99));
        market.claimUnavailable(99);
    }

    // ─────────────────────────────────────────── the rest of the lifecycle ───────────────────────────

    /// @notice While a demand is open the job can neither be finalized (even past its window)
    ///         nor challenged, and no dispute call applies to it.
    function test_demanded_blocksFinalizeAndChallenge() public {
        uint256 jobId = postClaimSubmitDemand();
        stakeAs(stranger, 1 ether);
        vm.prank(stranger);
        market.commitChallenge(jobId, commitment(stranger, jobId, 3, WRONG_HASH, SALT));
        vm.roll(block.number + 1);
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Demanded));
        vm.prank(stranger);
        market.challenge{value: BOND}(jobId, 3, WRONG_HASH, SALT);

        vm.warp(WINDOW_END + 1);
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Submitted, IJobMarket.JobStatus.Demanded));
        market.finalize(jobId);
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Disputed, IJobMarket.JobStatus.Demanded));
        market.timeoutDispute(jobId);
        vm.expectRevert(wrongStatus(jobId, IJobMarket.JobStatus.Disputed, IJobMarket.JobStatus.Demanded));
        resolver.decide(jobId, true);
        assertStatus(jobId, IJobMarket.JobStatus.Demanded, "still demanded");
    }

    /// @notice A validator may commit to a challenge while a demand is open (it may be checking
    ///         the published state) and reveal it once the demand is met, inside the new window.
    function test_commitChallenge_whileDemanded_succeeds() public {
        uint256 jobId = postClaimSubmitDemand();
        stakeAs(stranger, 1 ether);
        bytes32 c = commitment(stranger, jobId, STATE_STEP, WRONG_HASH, SALT);
        vm.expectEmit(address(market));
        emit IJobMarket.ChallengeCommitted(jobId, stranger, c);
        vm.prank(stranger);
        market.commitChallenge(jobId, c);

        openAt(jobId, STATE_STEP);
        publish(jobId, runs(2));
        vm.roll(block.number + 1);
        vm.prank(stranger);
        // The worker met a demand: the next bond is twice the first.
        market.challenge{value: 2 * BOND}(jobId, STATE_STEP, WRONG_HASH, SALT);
        assertStatus(jobId, IJobMarket.JobStatus.Disputed, "challenged after the demand");
        vm.assertEq(
            market.totalEscrowed(), PAYMENT + 2 * BOND, "the challenge bond; the demand's went to the worker"
        );
        vm.assertEq(market.creditOf(provider), BOND, "worker holds the demand bond");
    }

    /// @notice After a met demand, another (of another step, by someone else) may follow.
    function test_demandData_again_afterMet_succeeds() public {
        uint256 jobId = postClaimSubmitDemand();
        openAt(jobId, STATE_STEP);
        publish(jobId, runs(3));
        demandAgain(stranger, jobId, STEPS);
        vm.assertEq(market.getDemand(jobId).demander, stranger, "second demander");
        vm.assertEq(market.getDemand(jobId).step, STEPS, "second step");
        openAt(jobId, STEPS);
        publish(jobId, runs(0));
        vm.assertEq(market.creditOf(provider), 3 * BOND, "both bonds to the worker, the second doubled");
        vm.assertEq(market.totalEscrowed(), PAYMENT, "payment only");
    }

    // ─────────────────────────────────────────── fuzz ────────────────────────────────────────────────

    /// @notice Any step in `[0, steps]` whose state is the fixture's can be demanded, opened and
    ///         published (for the last step with a zero next hash); any later step is refused.
    function testFuzz_demand_anyStep(uint256 step) public {
        step = bound(step, 0, STEPS + 3);
        if (step <= STEPS) setTraceLeaf(step, stateHash);
        uint256 jobId = postClaimSubmit();
        if (step > STEPS) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.DemandStepOutOfRange.selector, step, STEPS));
            demand(validator, jobId, step);
            return;
        }
        demand(validator, jobId, step);
        vm.assertEq(market.getDemand(jobId).step, step, "step");
        openAt(jobId, step);
        publish(jobId, runs(uint8(step % 4)));
        assertStatus(jobId, IJobMarket.JobStatus.Submitted, "met");
        vm.assertEq(market.creditOf(provider), BOND, "bond to the worker");
    }

    /// @notice Over when the demand comes (inside the window or not) and when the publication
    ///         follows (by the deadline or not): a demand is met exactly up to its deadline, with
    ///         the window `max(windowEnd + elapsed, now + minChallengeWindow)`, and claimable
    ///         exactly after it.
    function testFuzz_demand_timing(uint256 demandAfter, uint256 publishAfter) public {
        demandAfter = bound(demandAfter, 0, WINDOW + 10);
        publishAfter = bound(publishAfter, 0, AVAILABILITY + 10);
        uint256 jobId = postClaimSubmit();
        uint256 openedAt = T0 + demandAfter;
        vm.warp(openedAt);
        if (openedAt >= WINDOW_END) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, jobId, WINDOW_END)
            );
            demand(validator, jobId, STATE_STEP);
            return;
        }
        demand(validator, jobId, STATE_STEP);
        uint256 deadline = openedAt + AVAILABILITY;
        vm.warp(openedAt + publishAfter);
        if (block.timestamp > deadline) {
            vm.expectRevert(noOpenDemand(jobId));
            openAt(jobId, STATE_STEP);
            market.claimUnavailable(jobId);
            assertStatus(jobId, IJobMarket.JobStatus.Resolved, "claimed");
            return;
        }
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DemandDeadlineNotPassed.selector, jobId, deadline));
        market.claimUnavailable(jobId);
        openAt(jobId, STATE_STEP);
        publish(jobId, runs(1));
        uint256 extended = WINDOW_END + publishAfter;
        uint256 review = block.timestamp + MIN_WINDOW;
        vm.assertEq(market.getJob(jobId).windowEnd, extended > review ? extended : review, "window end");
        vm.assertEq(market.creditOf(provider), BOND, "bond to the worker");
    }
}
