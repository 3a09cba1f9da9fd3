// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {DisputeGame} from "../src/DisputeGame.sol";
import {GameBase} from "../src/GameBase.sol";
import {Referee} from "../src/Referee.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {Fixture} from "./utils/Fixture.sol";
import {MerkleBuilder} from "./utils/MerkleBuilder.sol";

/// @notice The dispute game on the real JobMarket and StakeManager, for a one-layer model
///         (widths [2, 2], batch 2) whose state, data and op trace the test builds by hand. The
///         program of that model has 15 ops: 1 x, 2 y, 3 wq0, 4 wq0.T, 5 z1, 6 d1, 7 x.T, 8 d1.T,
///         9 gw0, 10 gb0, 11-14 the new state, 15 the state hash. Full games on real traces of
///         real models run in Rust against anvil (tests/it/dispute.rs).
contract DisputeGameTest is Fixture {
    using MerkleBuilder for bytes32[];

    uint256 internal constant STEP = 7;
    uint256 internal constant LEAVES = 16;
    uint256 internal constant BOND = 0.1 ether;
    uint256 internal constant CLOCK = 1 days * 40 / 100;

    DisputeGame internal game;

    // The state before the step: W = l0.weight, the other three tensors are zero.
    int256[] internal w0 = [int256(100), -37];
    int256[] internal w1 = [int256(20_000), -32_768];
    int256[] internal zeros = [int256(0), 0];
    bytes32[] internal entries;
    bytes32 internal hIn;
    bytes32 internal hOut;
    // The dataset: four samples of two features and a label.
    bytes32[] internal dataLeaves;
    // The worker's op trace and the job's step trace.
    bytes32[] internal opLeaves;
    bytes32[] internal traceLeaves;

    function setUp() public override {
        super.setUp();
        game = new DisputeGame(market, new Referee());
        vm.prank(admin);
        market.setResolver(address(game));

        // h_i over the four state tensors, in name order.
        entries = new bytes32[](12);
        _entry(0, "l0.bias", 1, _root1(zeros));
        _entry(1, "l0.bias.velocity", 1, _root1(zeros));
        _entry(2, "l0.weight", 2, _weightRoot());
        _entry(3, "l0.weight.velocity", 2, _root2(zeros, zeros));
        hIn = keccak256(abi.encodePacked(bytes14("pedals.state.2"), uint32(4), entries));
        hOut = keccak256("the worker's h_(i+1)");

        for (uint256 i = 0; i < 4; ++i) {
            dataLeaves.push(keccak256(MerkleBuilder.pack(_sample(i))));
        }
        // The worker's op trace: honest wq0 at leaf 3 unless a test falsifies it.
        for (uint256 k = 0; k < LEAVES; ++k) {
            opLeaves.push(keccak256(abi.encode("leaf", k)));
        }
        opLeaves[0] = hIn;
        opLeaves[3] = _root2(_wq(w0), _wq(w1));
        opLeaves[15] = hOut;
        for (uint256 i = 0; i <= STEPS; ++i) {
            traceLeaves.push(keccak256(abi.encode("h", i)));
        }
        traceLeaves[STEP] = hIn;
        traceLeaves[STEP + 1] = hOut;
    }

    // ─────────────────────────────────────────── fixtures ────────────────────────────────────────────

    function _spec() internal view returns (DisputeGame.Spec memory s) {
        s.layers = new uint32[](2);
        s.layers[0] = 2;
        s.layers[1] = 2;
        s.batch = 2;
        s.lrQ12 = 410;
        s.momentumQ12 = 3686;
        s.seed = 5;
        s.checkpointEvery = 10;
        s.datasetCid = "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        s.modelCid = "bafkreibbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        s.samples = 4;
        s.dataRoot = dataLeaves.root();
        s.initHash = traceLeaves[0];
    }

    function _sample(uint256 i) internal pure returns (int256[] memory row) {
        row = new int256[](3);
        row[0] = int256(i) * 100 - 150;
        row[1] = 1024 - int256(i) * 300;
        row[2] = int256(i % 2);
    }

    function _entry(uint256 index, string memory name, uint32 rows, bytes32 root) internal {
        entries[3 * index] = keccak256(bytes(name));
        entries[3 * index + 1] = keccak256(abi.encodePacked(uint8(2), rows, uint32(2)));
        entries[3 * index + 2] = root;
    }

    function _wq(int256[] memory w) internal pure returns (int256[] memory q) {
        q = new int256[](w.length);
        for (uint256 i = 0; i < w.length; ++i) {
            int256 v = (w[i] + 8) >> 4;
            q[i] = v > 2048 ? int256(2048) : v < -2048 ? int256(-2048) : v;
        }
    }

    function _rowHashes2(int256[] memory r0, int256[] memory r1) internal pure returns (bytes32[] memory h) {
        h = new bytes32[](2);
        h[0] = keccak256(MerkleBuilder.pack(r0));
        h[1] = keccak256(MerkleBuilder.pack(r1));
    }

    function _root2(int256[] memory r0, int256[] memory r1) internal pure returns (bytes32) {
        return _rowHashes2(r0, r1).root();
    }

    function _root1(int256[] memory r0) internal pure returns (bytes32) {
        bytes32[] memory h = new bytes32[](1);
        h[0] = keccak256(MerkleBuilder.pack(r0));
        return h.root();
    }

    function _weightRoot() internal view returns (bytes32) {
        return _root2(w0, w1);
    }

    function _openJob() internal returns (uint256 jobId) {
        DisputeGame.Spec memory s = _spec();
        bytes32 specHash = game.admitSpec(s, STEPS);
        IJobMarket.JobRequest memory r = request();
        r.specHash = specHash;
        vm.prank(requester);
        jobId = market.postJob{value: PAYMENT}(r);
        stakeAs(provider, 2 ether);
        vm.prank(provider);
        market.claimJob(jobId);
        bytes32 root = traceLeaves.root();
        bytes32[] memory proof = traceLeaves.proof(STEPS);
        bytes memory resultCid = cid("result");
        vm.prank(provider);
        market.submitResult(jobId, STEPS, root, bytes32(0), traceLeaves[STEPS], proof, resultCid);
        stakeAs(validator, 1 ether);
        openChallenge(validator, jobId, STEP);
    }

    function _commitment() internal view returns (DisputeGame.Commitment memory c) {
        c.leaves = opLeaves;
        c.stateInProof = traceLeaves.proof(STEP);
        c.stateOutProof = traceLeaves.proof(STEP + 1);
    }

    function _commit(uint256 jobId) internal {
        DisputeGame.Spec memory s = _spec();
        DisputeGame.Commitment memory c = _commitment();
        vm.prank(provider);
        game.commitOpTrace(jobId, s, c);
    }

    /// @dev The challenger disputes wq0 (leaf 3), whose input is l0.weight of h_i.
    function _nameQuantize(uint256 jobId) internal {
        DisputeGame.Spec memory s = _spec();
        DisputeGame.LeafOpening memory out =
            DisputeGame.LeafOpening({root: opLeaves[3], proof: opLeaves.proof(3)});
        DisputeGame.LeafOpening[] memory ins = new DisputeGame.LeafOpening[](1);
        vm.prank(validator);
        game.disputeOp(jobId, s, 3, out, ins, entries);
    }

    function _playQuantize(uint256 jobId, int256[] memory claimedRow1) internal {
        _commit(jobId);
        _nameQuantize(jobId);
        bytes32[] memory rows = _rowHashes2(_wq(w0), claimedRow1);
        vm.prank(provider);
        game.revealRowHashes(jobId, rows);
        DisputeGame.Spec memory s = _spec();
        vm.prank(validator);
        game.pickRow(jobId, 1);
        bytes memory row = MerkleBuilder.pack(claimedRow1);
        GameBase.RowOpening memory opening = GameBase.RowOpening({row: row, proof: rows.proof(1)});
        vm.prank(provider);
        game.revealRow(jobId, opening);
        DisputeGame.ElementMove memory m;
        m.col = 0;
        m.row = row;
        m.inputRows = new bytes[](1);
        m.inputRows[0] = MerkleBuilder.pack(w1);
        m.inputProofs = new bytes32[][](1);
        m.inputProofs[0] = _rowHashes2(w0, w1).proof(1);
        vm.prank(validator);
        game.disputeElement(jobId, s, m);
    }

    /// @dev The new state's leaves (14 b, 13 vb, 12 w, 11 vw) in name order, proven.
    function _newStateOpenings() internal view returns (DisputeGame.LeafOpening[] memory ins) {
        ins = new DisputeGame.LeafOpening[](4);
        uint256[4] memory leafOf = [uint256(14), 13, 12, 11];
        for (uint256 i = 0; i < 4; ++i) {
            ins[i] = DisputeGame.LeafOpening({root: opLeaves[leafOf[i]], proof: opLeaves.proof(leafOf[i])});
        }
    }

    function _falsifiedRow1() internal view returns (int256[] memory row) {
        row = _wq(w1);
        row[0] += 1;
    }

    // ─────────────────────────────────────────── outcomes ────────────────────────────────────────────

    function test_aWorkerWhoFalsifiedAnElementIsSlashedAndEveryonePaidToTheWei() public {
        opLeaves[3] = _root2(_wq(w0), _falsifiedRow1());
        uint256 jobId = _openJob();
        uint256 stakedBefore = stakes.accountOf(provider).staked;
        uint256 collateral = market.getJob(jobId).collateral;
        _playQuantize(jobId, _falsifiedRow1());

        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Resolved), "resolved");
        uint256 reward = collateral * defaultParams().challengerRewardBps / 10_000;
        vm.assertEq(market.creditOf(validator), BOND, "challenger: bond back at once");
        vm.assertEq(market.getRewardPool(jobId).remaining, reward, "challenger: the reward, pooled");
        vm.assertEq(
            market.creditOf(requester), PAYMENT + collateral - reward, "requester: refund plus the rest"
        );
        vm.assertEq(market.creditOf(provider), 0, "worker: nothing");
        vm.assertEq(stakes.accountOf(provider).staked, stakedBefore - collateral, "collateral slashed");
        vm.assertEq(address(game).balance, 0, "the game holds nothing");
        (GameBase.Phase phase,,,,) = game.gameOf(jobId);
        vm.assertEq(uint256(phase), 0, "game deleted");
        // Nothing can decide it again: no move, no timeout, no second verdict.
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.NotYourMove.selector, jobId, GameBase.Phase.None, address(this))
        );
        game.timeout(jobId);
        vm.prank(address(game));
        vm.expectPartialRevert(IJobMarket.WrongStatus.selector);
        market.resolveDispute(jobId, true);
        // The challenger collects the reward after the claim period; each side withdraws once.
        vm.warp(market.getRewardPool(jobId).claimEnd + 1);
        vm.prank(validator);
        market.collectReward(jobId);
        uint256 before = validator.balance;
        vm.prank(validator);
        market.withdraw();
        vm.assertEq(validator.balance, before + BOND + reward, "withdrawn");
        vm.prank(validator);
        vm.expectRevert(IJobMarket.NothingToWithdraw.selector);
        market.withdraw();
    }

    function test_aChallengerWhoDisputesACorrectElementLosesItsBondAndTheJobGoesOn() public {
        uint256 jobId = _openJob();
        uint40 windowEnd = market.getJob(jobId).windowEnd;
        vm.warp(block.timestamp + 1 hours);
        _playQuantize(jobId, _wq(w1));
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(uint256(job.status), uint256(IJobMarket.JobStatus.Submitted), "back to submitted");
        vm.assertEq(market.creditOf(provider), BOND, "the worker has the bond");
        vm.assertEq(market.creditOf(validator), 0, "the challenger has nothing");
        vm.assertGt(job.windowEnd, windowEnd, "the window is extended by the dispute");
        // The job still finalizes after its window.
        vm.warp(job.windowEnd);
        market.finalize(jobId);
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Finalized), "final");
    }

    function test_theStateHashOpIsDecidedFromTheNewTensorsRoots() public {
        // The new state's four leaves (11 vw, 12 w, 13 vb, 14 b) hash, in name order, to h_out
        // for an honest worker.
        bytes32[] memory roots = new bytes32[](4);
        roots[0] = opLeaves[14];
        roots[1] = opLeaves[13];
        roots[2] = opLeaves[12];
        roots[3] = opLeaves[11];
        bytes memory pre = abi.encodePacked(bytes14("pedals.state.2"), uint32(4));
        for (uint256 i = 0; i < 4; ++i) {
            pre = bytes.concat(pre, entries[3 * i], entries[3 * i + 1], roots[i]);
        }
        hOut = keccak256(pre);
        opLeaves[15] = hOut;
        traceLeaves[STEP + 1] = hOut;
        uint256 jobId = _openJob();
        _commit(jobId);
        DisputeGame.LeafOpening[] memory ins = _newStateOpenings();
        DisputeGame.Spec memory s = _spec();
        DisputeGame.LeafOpening memory none;
        vm.prank(validator);
        game.disputeOp(jobId, s, 15, none, ins, new bytes32[](0));
        vm.assertEq(
            market.creditOf(provider), BOND, "h_(i+1) is the hash of the new tensors: challenger lost"
        );
    }

    function test_aStateHashThatIsNotTheNewTensorsLosesAtOnce() public {
        uint256 jobId = _openJob();
        _commit(jobId);
        DisputeGame.LeafOpening[] memory ins = _newStateOpenings();
        DisputeGame.Spec memory s = _spec();
        DisputeGame.LeafOpening memory none;
        vm.prank(validator);
        game.disputeOp(jobId, s, 15, none, ins, new bytes32[](0));
        vm.assertEq(
            uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Resolved), "worker lost"
        );
    }

    function test_aFalsifiedBatchInputIsCaughtAgainstTheDatasetRoot() public {
        DisputeGame.Spec memory s = _spec();
        // Batch row 1 of step 7 is this dataset sample; the worker claims another value.
        uint256 sample = game.batchSample(s, STEP, 1);
        int256[] memory honest0 = _sample(game.batchSample(s, STEP, 0));
        int256[] memory x0 = new int256[](2);
        x0[0] = honest0[0];
        x0[1] = honest0[1];
        int256[] memory x1 = new int256[](2);
        x1[0] = _sample(sample)[0];
        x1[1] = _sample(sample)[1] + 7;
        opLeaves[1] = _root2(x0, x1);
        uint256 jobId = _openJob();
        _commit(jobId);
        DisputeGame.LeafOpening[] memory ins = new DisputeGame.LeafOpening[](1);
        DisputeGame.LeafOpening memory out =
            DisputeGame.LeafOpening({root: opLeaves[1], proof: opLeaves.proof(1)});
        vm.prank(validator);
        game.disputeOp(jobId, s, 1, out, ins, new bytes32[](0));
        bytes32[] memory rows = _rowHashes2(x0, x1);
        vm.prank(provider);
        game.revealRowHashes(jobId, rows);
        vm.prank(validator);
        game.pickRow(jobId, 1);
        vm.prank(provider);
        game.revealRow(jobId, GameBase.RowOpening({row: MerkleBuilder.pack(x1), proof: rows.proof(1)}));
        DisputeGame.ElementMove memory m;
        m.col = 1;
        m.row = MerkleBuilder.pack(x1);
        m.inputRows = new bytes[](1);
        m.inputRows[0] = MerkleBuilder.pack(_sample(sample));
        m.inputProofs = new bytes32[][](1);
        m.inputProofs[0] = dataLeaves.proof(sample);
        // The wrong sample does not open.
        DisputeGame.ElementMove memory wrong;
        wrong.col = 1;
        wrong.row = m.row;
        wrong.inputRows = new bytes[](1);
        wrong.inputRows[0] = MerkleBuilder.pack(_sample((sample + 1) % 4));
        wrong.inputProofs = new bytes32[][](1);
        wrong.inputProofs[0] = dataLeaves.proof((sample + 1) % 4);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "input row"));
        game.disputeElement(jobId, s, wrong);
        vm.prank(validator);
        game.disputeElement(jobId, s, m);
        vm.assertEq(
            uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Resolved), "worker lost"
        );
    }

    // ─────────────────────────────────────────── clocks ──────────────────────────────────────────────

    function test_aWorkerWhoNeverCommitsLosesByTheClock() public {
        uint256 jobId = _openJob();
        vm.warp(block.timestamp + CLOCK);
        vm.expectRevert(abi.encodeWithSelector(GameBase.ClockRunning.selector, jobId, 0));
        game.timeout(jobId);
        vm.warp(block.timestamp + 1);
        vm.prank(stranger);
        game.timeout(jobId);
        vm.assertEq(
            uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Resolved), "worker lost"
        );
        vm.assertEq(market.creditOf(validator), BOND, "the bond back");
        vm.assertGt(market.getRewardPool(jobId).remaining, 0, "a reward to collect");
    }

    /// @dev Plays the first `moves` moves of the falsified-wq0 game on `jobId`.
    function _playMoves(uint256 jobId, uint256 moves) internal {
        int256[] memory claimed = _falsifiedRow1();
        bytes32[] memory rows = _rowHashes2(_wq(w0), claimed);
        if (moves > 0) _commit(jobId);
        if (moves > 1) _nameQuantize(jobId);
        if (moves > 2) {
            vm.prank(provider);
            game.revealRowHashes(jobId, rows);
        }
        if (moves > 3) {
            vm.prank(validator);
            game.pickRow(jobId, 1);
        }
        if (moves > 4) {
            vm.prank(provider);
            game.revealRow(
                jobId, GameBase.RowOpening({row: MerkleBuilder.pack(claimed), proof: rows.proof(1)})
            );
        }
    }

    function test_everyPhaseTimesOutAgainstTheSideToMove() public {
        opLeaves[3] = _root2(_wq(w0), _falsifiedRow1());
        for (uint256 moves = 0; moves < 6; ++moves) {
            uint256 jobId = _openJob();
            _playMoves(jobId, moves);
            (GameBase.Phase phase, bool workerToMove, uint256 remaining,,) = game.gameOf(jobId);
            vm.assertEq(uint256(phase), moves + 1, "phase");
            vm.assertEq(workerToMove, moves % 2 == 0, "whose move");
            vm.warp(block.timestamp + remaining);
            vm.expectPartialRevert(GameBase.ClockRunning.selector);
            game.timeout(jobId);
            vm.warp(block.timestamp + 1);
            vm.prank(stranger);
            game.timeout(jobId);
            IJobMarket.JobStatus want =
                workerToMove ? IJobMarket.JobStatus.Resolved : IJobMarket.JobStatus.Submitted;
            vm.assertEq(uint256(market.getJob(jobId).status), uint256(want), "the side to move lost");
        }
    }

    /// @dev ETH held by the market equals what it owes: escrow, fees and every actor's credit.
    function _assertMarketSolvent() internal view {
        uint256 owed = market.totalEscrowed() + market.feesAccrued() + market.creditOf(requester)
            + market.creditOf(provider) + market.creditOf(validator) + market.creditOf(stranger);
        vm.assertEq(address(market).balance, owed, "market solvent");
        vm.assertEq(address(game).balance, 0, "the game holds nothing");
    }

    /// Any sequence of disputes on one job: each plays a random number of moves of a game the
    /// worker lies in, then one side stops and loses by its clock. Through all of it the market
    /// stays solvent, the game holds nothing, each lost challenge pays the worker one bond, and
    /// the first game the worker loses ends the job and pays the challenger and the requester
    /// exactly once.
    function testFuzz_anySequenceOfDisputesConservesEthAndPaysOnce(uint256 seed) public {
        opLeaves[3] = _root2(_wq(w0), _falsifiedRow1());
        uint256 jobId = _openJob();
        uint256 collateral = market.getJob(jobId).collateral;
        uint256 bonds;
        address[3] memory challengers = [validator, stranger, validator];
        stakeAs(stranger, 1 ether);
        for (uint256 round = 0; round < 3; ++round) {
            if (round > 0) openChallenge(challengers[round], jobId, STEP);
            // An odd number of moves leaves the challenger to move: it is the one that stops.
            uint256 moves = uint256(keccak256(abi.encode(seed, round))) % 6;
            _playMovesAs(jobId, moves, challengers[round]);
            (,, uint256 remaining,,) = game.gameOf(jobId);
            vm.warp(block.timestamp + remaining + 1);
            game.timeout(jobId);
            _assertMarketSolvent();
            if (moves % 2 == 0) {
                // The worker stopped: it lost, the job is over, everyone is paid once.
                vm.assertEq(
                    uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Resolved), "resolved"
                );
                uint256 reward = collateral * defaultParams().challengerRewardBps / 10_000;
                vm.assertEq(market.creditOf(provider), bonds, "the worker keeps only earlier bonds");
                vm.assertEq(market.creditOf(requester), PAYMENT + collateral - reward, "requester once");
                vm.expectRevert();
                game.timeout(jobId);
                return;
            }
            // Each lost challenge doubles the next one's bond.
            bonds += BOND << round;
            vm.assertEq(market.creditOf(provider), bonds, "one bond per lost challenge");
            vm.assertEq(
                uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Submitted), "goes on"
            );
        }
    }

    function _playMovesAs(uint256 jobId, uint256 moves, address challenger) internal {
        address saved = validator;
        validator = challenger;
        _playMoves(jobId, moves);
        validator = saved;
    }

    function test_aLastSecondMoveCountsAndOneSecondLateDoesNot() public {
        uint256 jobId = _openJob();
        vm.warp(block.timestamp + CLOCK);
        _commit(jobId); // exactly on the deadline
        (, bool workerToMove, uint256 remaining,,) = game.gameOf(jobId);
        vm.assertFalse(workerToMove, "challenger's turn");
        vm.assertEq(remaining, CLOCK, "the challenger's clock is untouched");
        vm.warp(block.timestamp + CLOCK + 1);
        DisputeGame.Spec memory s = _spec();
        DisputeGame.LeafOpening memory out =
            DisputeGame.LeafOpening({root: opLeaves[3], proof: opLeaves.proof(3)});
        DisputeGame.LeafOpening[] memory ins = new DisputeGame.LeafOpening[](1);
        bytes32[] memory e = entries;
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(GameBase.ClockExpired.selector, jobId));
        game.disputeOp(jobId, s, 3, out, ins, e);
        game.timeout(jobId);
        vm.assertEq(market.creditOf(provider), BOND, "the challenger lost by the clock");
    }

    function test_aWorkerWhoStopsAnsweringMidGameLosesByItsRemainingClock() public {
        uint256 jobId = _openJob();
        vm.warp(block.timestamp + 1 hours);
        _commit(jobId); // the worker used an hour
        vm.warp(block.timestamp + 2 hours);
        _nameQuantize(jobId);
        // The worker withholds the row hashes: its clock has CLOCK - 1 hour left.
        vm.warp(block.timestamp + CLOCK - 1 hours);
        vm.expectRevert(abi.encodeWithSelector(GameBase.ClockRunning.selector, jobId, 0));
        game.timeout(jobId);
        vm.warp(block.timestamp + 1);
        game.timeout(jobId);
        vm.assertEq(
            uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Resolved), "worker lost"
        );
    }

    function test_whenNobodyPlaysTheMarketTimesTheDisputeOutAndANewGameStartsClean() public {
        uint256 jobId = _openJob();
        _commit(jobId);
        vm.warp(block.timestamp + 1 days);
        market.timeoutDispute(jobId);
        vm.assertEq(market.creditOf(provider), BOND, "the challenger lost");
        // A second validator challenges the same job: the game starts at the commit again.
        address second = makeAddr("second");
        vm.deal(second, 10 ether);
        stakeAs(second, 1 ether);
        openChallenge(second, jobId, STEP);
        (GameBase.Phase phase, bool workerToMove,,,) = game.gameOf(jobId);
        vm.assertEq(uint256(phase), uint256(GameBase.Phase.Commit), "fresh game");
        vm.assertTrue(workerToMove, "worker first");
        // Stale moves of the first challenger are refused.
        DisputeGame.Spec memory s = _spec();
        vm.prank(validator);
        vm.expectRevert();
        game.pickRow(jobId, 0);
    }

    // ─────────────────────────────────────────── guards ──────────────────────────────────────────────

    function test_onlyTheMarketOpensGames() public {
        vm.expectRevert(abi.encodeWithSelector(GameBase.NotMarket.selector, stranger));
        vm.prank(stranger);
        game.disputeOpened(1, 0, provider, validator, bytes32(0), bytes32(0), block.timestamp + 1 days);
    }

    /// @notice A worker's watchtower makes its moves; nobody else does, and revoking it ends that.
    function test_aDefenderMakesTheWorkersMoves() public {
        uint256 jobId = _openJob();
        DisputeGame.Spec memory s = _spec();
        DisputeGame.Commitment memory c = _commitment();
        address tower = makeAddr("watchtower");
        vm.prank(tower);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.NotYourMove.selector, jobId, GameBase.Phase.Commit, tower)
        );
        game.commitOpTrace(jobId, s, c);
        vm.prank(provider);
        game.setDefender(tower);
        vm.assertEq(game.defenderOf(provider), tower, "named");
        // The defender may not play the challenger's side.
        vm.prank(tower);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.NotYourMove.selector, jobId, GameBase.Phase.Commit, tower)
        );
        game.pickRow(jobId, 0);
        vm.prank(tower);
        game.commitOpTrace(jobId, s, c);
        (GameBase.Phase phase,,,,) = game.gameOf(jobId);
        vm.assertEq(uint256(phase), uint256(GameBase.Phase.NameOp), "the defender's move counts");
        vm.prank(provider);
        game.setDefender(address(0));
        vm.assertEq(game.defenderOf(provider), address(0), "revoked");
    }

    /// @notice The game admits only what it can adjudicate, naming the field it refuses.
    function test_admitSpecRefusesWhatTheGameCannotAdjudicate() public {
        DisputeGame.Spec memory s = _spec();
        s.layers = new uint32[](1);
        _expectInadmissible(s, "widths", 1, 2, 11);
        s.layers = new uint32[](12);
        _expectInadmissible(s, "widths", 12, 2, 11);
        s.layers = new uint32[](2);
        s.layers[0] = 1021;
        s.layers[1] = 2;
        _expectInadmissible(s, "width", 1021, 1, 1020);
        s.layers[0] = 4;
        s.layers[1] = 1; // one class
        _expectInadmissible(s, "width", 1, 2, 1020);
        s = _spec();
        s.batch = 0;
        _expectInadmissible(s, "batch", 0, 1, 1024);
        s.batch = 3;
        _expectInadmissible(s, "batch", 3, 1, 1024);
        s.batch = 2048;
        _expectInadmissible(s, "batch", 2048, 1, 1024);
        s = _spec();
        s.samples = 0;
        _expectInadmissible(s, "samples", 0, 1, type(uint32).max);
        s = _spec();
        s.lrQ12 = 4097;
        _expectInadmissible(s, "lrQ12", 4097, 0, 4096);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "steps", 0, 1, type(uint32).max)
        );
        game.admitSpec(_spec(), 0);
        // What it admits is keyed to its step count; admitting again changes nothing.
        bytes32 h = game.admitSpec(_spec(), STEPS);
        vm.assertEq(h, sha256(game.specBytes(_spec(), STEPS)), "the spec's hash");
        vm.assertEq(game.admittedSteps(h), STEPS, "admitted with its steps");
        vm.assertEq(game.admitSpec(_spec(), STEPS), h, "idempotent");
    }

    function _expectInadmissible(
        DisputeGame.Spec memory s,
        string memory field,
        uint256 value,
        uint256 min,
        uint256 max
    ) internal {
        vm.expectRevert(abi.encodeWithSelector(GameBase.Inadmissible.selector, field, value, min, max));
        game.admitSpec(s, STEPS);
    }

    function test_movesOutOfTurnOrByOthersAreRefused() public {
        uint256 jobId = _openJob();
        DisputeGame.Spec memory s = _spec();
        DisputeGame.Commitment memory c = _commitment();
        vm.prank(validator);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.NotYourMove.selector, jobId, GameBase.Phase.Commit, validator)
        );
        game.commitOpTrace(jobId, s, c);
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.NotYourMove.selector, jobId, GameBase.Phase.Commit, provider)
        );
        game.pickRow(jobId, 0);
        _commit(jobId);
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.NotYourMove.selector, jobId, GameBase.Phase.NameOp, provider)
        );
        game.commitOpTrace(jobId, s, c);
    }

    function test_aCommitWithAnotherSpecOrBadProofsIsRefused() public {
        uint256 jobId = _openJob();
        DisputeGame.Spec memory s = _spec();
        DisputeGame.Commitment memory c = _commitment();
        s.seed = 6;
        vm.prank(provider);
        vm.expectPartialRevert(GameBase.SpecMismatch.selector);
        game.commitOpTrace(jobId, s, c);
        s = _spec();
        c.leaves[0] = keccak256("another h_i");
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "h_i"));
        game.commitOpTrace(jobId, s, c);
        c = _commitment();
        c.leaves[LEAVES - 1] = keccak256("another h_(i+1)");
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "h_i+1"));
        game.commitOpTrace(jobId, s, c);
        c = _commitment();
        c.leaves = new bytes32[](LEAVES - 1);
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.OutOfRange.selector, "op-trace leaves", LEAVES - 1, LEAVES)
        );
        game.commitOpTrace(jobId, s, c);
    }

    function test_aChallengerCannotNameAnOpWithoutProvingItsInputs() public {
        uint256 jobId = _openJob();
        _commit(jobId);
        DisputeGame.Spec memory s = _spec();
        DisputeGame.LeafOpening memory out =
            DisputeGame.LeafOpening({root: opLeaves[3], proof: opLeaves.proof(3)});
        DisputeGame.LeafOpening[] memory ins = new DisputeGame.LeafOpening[](1);
        bytes32[] memory e = entries;
        e[5] = keccak256("another root of l0.bias.velocity");
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "h_i entries"));
        game.disputeOp(jobId, s, 3, out, ins, e);
        // wq0.T (leaf 4) reads leaf 3: its root must be proven at leaf 3.
        ins[0] = DisputeGame.LeafOpening({root: keccak256("not wq0"), proof: opLeaves.proof(3)});
        out = DisputeGame.LeafOpening({root: opLeaves[4], proof: opLeaves.proof(4)});
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "input leaf"));
        game.disputeOp(jobId, s, 4, out, ins, new bytes32[](0));
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "op", 16, 15));
        game.disputeOp(jobId, s, 16, out, ins, new bytes32[](0));
    }

    function test_aWorkerCannotRevealOtherRowHashesOrAnotherRow() public {
        uint256 jobId = _openJob();
        _commit(jobId);
        _nameQuantize(jobId);
        bytes32[] memory forged = _rowHashes2(_wq(w0), _falsifiedRow1());
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "row hashes"));
        game.revealRowHashes(jobId, forged);
        bytes32[] memory short = new bytes32[](1);
        short[0] = forged[0];
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "row hashes", 1, 2));
        game.revealRowHashes(jobId, short);
        bytes32[] memory rows = _rowHashes2(_wq(w0), _wq(w1));
        vm.prank(provider);
        game.revealRowHashes(jobId, rows);
        DisputeGame.Spec memory s = _spec();
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "row", 2, 2));
        game.pickRow(jobId, 2);
        vm.prank(validator);
        game.pickRow(jobId, 1);
        bytes memory row0 = MerkleBuilder.pack(_wq(w0));
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "row"));
        game.revealRow(jobId, GameBase.RowOpening({row: row0, proof: rows.proof(0)}));
    }

    function test_step0MustStartFromTheSpecsInitialState() public {
        DisputeGame.Spec memory s = _spec();
        bytes32 specHash = game.admitSpec(s, STEPS);
        IJobMarket.JobRequest memory r = request();
        r.specHash = specHash;
        vm.prank(requester);
        uint256 jobId = market.postJob{value: PAYMENT}(r);
        stakeAs(provider, 2 ether);
        vm.prank(provider);
        market.claimJob(jobId);
        // The worker's trace starts from hIn instead of the spec's h_0.
        traceLeaves[0] = hIn;
        traceLeaves[1] = hOut;
        bytes32 root = traceLeaves.root();
        bytes32[] memory proof = traceLeaves.proof(STEPS);
        bytes memory resultCid = cid("result");
        vm.prank(provider);
        market.submitResult(jobId, STEPS, root, bytes32(0), traceLeaves[STEPS], proof, resultCid);
        stakeAs(validator, 1 ether);
        openChallenge(validator, jobId, 0);
        DisputeGame.Commitment memory c = _commitment();
        c.stateInProof = traceLeaves.proof(0);
        c.stateOutProof = traceLeaves.proof(1);
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(GameBase.WrongInitialState.selector, s.initHash, hIn));
        game.commitOpTrace(jobId, s, c);
    }

    function test_aCopiedChallengeRevealEarnsTheCopierNothing() public {
        DisputeGame.Spec memory s = _spec();
        bytes32 specHash = game.admitSpec(s, STEPS);
        IJobMarket.JobRequest memory r = request();
        r.specHash = specHash;
        vm.prank(requester);
        uint256 jobId = market.postJob{value: PAYMENT}(r);
        stakeAs(provider, 2 ether);
        vm.prank(provider);
        market.claimJob(jobId);
        bytes32 root = traceLeaves.root();
        bytes32[] memory proof = traceLeaves.proof(STEPS);
        bytes memory resultCid = cid("result");
        vm.prank(provider);
        market.submitResult(jobId, STEPS, root, bytes32(0), traceLeaves[STEPS], proof, resultCid);
        stakeAs(validator, 1 ether);
        stakeAs(stranger, 1 ether);
        vm.prank(validator);
        market.commitChallenge(jobId, commitment(validator, jobId, STEP, WRONG_HASH, SALT));
        vm.roll(block.number + 1);
        // The stranger copies the validator's reveal from the mempool.
        vm.prank(stranger);
        vm.expectPartialRevert(IJobMarket.CommitmentNotFound.selector);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
        vm.prank(validator);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
        // And a second challenge of a job in dispute is refused.
        vm.prank(stranger);
        market.commitChallenge(jobId, commitment(stranger, jobId, STEP, WRONG_HASH, SALT));
        vm.roll(block.number + 1);
        vm.prank(stranger);
        vm.expectPartialRevert(IJobMarket.WrongStatus.selector);
        market.challenge{value: BOND}(jobId, STEP, WRONG_HASH, SALT);
    }

    function test_manyLosingChallengesPayTheWorkerEachBond() public {
        uint256 jobId = _openJob();
        _playQuantize(jobId, _wq(w1));
        for (uint256 i = 0; i < 3; ++i) {
            address v = makeAddr(string.concat("griefer", vm.toString(i)));
            vm.deal(v, 10 ether);
            stakeAs(v, 1 ether);
            openChallenge(v, jobId, STEP);
            _commit(jobId);
            vm.warp(block.timestamp + CLOCK + 1);
            game.timeout(jobId);
        }
        // 1 + 2 + 4 + 8: each defeat doubles the next griefer's bond.
        vm.assertEq(market.creditOf(provider), 15 * BOND, "four bonds, doubling");
        vm.assertEq(
            uint256(market.getJob(jobId).status), uint256(IJobMarket.JobStatus.Submitted), "still open"
        );
    }

    function test_theSpecBytesAreTheCanonicalJson() public view {
        DisputeGame.Spec memory s = _spec();
        bytes memory got = game.specBytes(s, 300);
        bytes memory want = bytes.concat(
            '{"version":1,"train":{"model":{"layers":[2,2],"batch":2,"lr_q12":410,"momentum_q12":3686},',
            '"seed":5,"steps":300,"checkpoint_every":10},',
            '"dataset":"bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",',
            '"model":"bafkreibbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",',
            '"dispute":{"samples":4,"data_root":"',
            bytes(vm.toString(s.dataRoot)),
            '","init_hash":"',
            bytes(vm.toString(s.initHash)),
            '"}}'
        );
        vm.assertEq(keccak256(got), keccak256(want), string(got));
    }
}
