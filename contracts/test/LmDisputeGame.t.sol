// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {DisputeGame} from "../src/DisputeGame.sol";
import {GameBase} from "../src/GameBase.sol";
import {GameRouter} from "../src/GameRouter.sol";
import {LmDisputeGame} from "../src/LmDisputeGame.sol";
import {LmElementReferee, LmFullProgramReferee, LmProgramReferee} from "../src/LmReferee.sol";
import {Referee} from "../src/Referee.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {LmSlot} from "../src/libraries/LmSlot.sol";
import {LmSpec} from "../src/libraries/LmSpec.sol";
import {LmVocab} from "../src/libraries/LmVocab.sol";
import {Fixture} from "./utils/Fixture.sol";
import {LmSpecJson} from "./utils/LmSpecJson.sol";
import {MerkleBuilder} from "./utils/MerkleBuilder.sol";

/// @notice Whole disputes over one step of a LoRA fine-tuning job (llama-tiny, batch 2) on the
///         real JobMarket and StakeManager, every move's calldata from the Rust op trace
///         (crates/lm/tests/vectors/lm_dispute.json): a worker that changed one element of a
///         linear op is narrowed to it and slashed; an honest worker challenged at the same
///         element wins. Logs the gas of every move.
contract LmDisputeGameTest is Fixture {
    LmDisputeGame internal game;
    string internal v;

    event log_named_uint(string key, uint256 val);

    function setUp() public override {
        super.setUp();
        // As deployed: the router is the market's resolver, the MLP game ahead of this one.
        GameRouter router = new GameRouter(market);
        IJobMarket routed = IJobMarket(address(router));
        game = new LmDisputeGame(
            routed, new LmProgramReferee(), new LmFullProgramReferee(), new LmElementReferee()
        );
        vm.startPrank(admin);
        router.addGame(new DisputeGame(routed, new Referee()));
        router.addGame(game);
        market.setResolver(address(router));
        vm.stopPrank();
        v = vm.readFile(string.concat(vm.projectRoot(), "/../crates/lm/tests/vectors/lm_dispute.json"));
    }

    function _k(uint256 i, string memory path) internal pure returns (string memory) {
        return string.concat(".cases[", vm.toString(i), "]", path);
    }

    function _spec(uint256 i) internal view returns (LmSpec.Spec memory) {
        return LmSpecJson.read(v, string.concat(".cases[", vm.toString(i), "]"));
    }

    function _row(uint256 i, string memory path) internal view returns (bytes memory) {
        return MerkleBuilder.pack(vm.parseJsonIntArray(v, _k(i, path)));
    }

    /// @dev Posts, claims, submits and challenges the case's job at its step.
    function _openJob(uint256 i, LmSpec.Spec memory s) internal returns (uint256 jobId) {
        bytes32 specHash = game.admitSpec(s, s.steps);
        IJobMarket.JobRequest memory r = request();
        (r.specHash, r.steps) = (specHash, uint32(s.steps));
        vm.prank(requester);
        jobId = market.postJob{value: PAYMENT}(r);
        stakeAs(provider, 2 ether);
        vm.prank(provider);
        market.claimJob(jobId);
        bytes32[] memory leaves = vm.parseJsonBytes32Array(v, _k(i, ".trace_leaves"));
        bytes32[] memory finalProof = vm.parseJsonBytes32Array(v, _k(i, ".final_proof"));
        bytes memory resultCid = cid("result");
        vm.prank(provider);
        market.submitResult(
            jobId,
            uint32(s.steps),
            MerkleBuilder.root(leaves),
            bytes32(0),
            leaves[s.steps],
            finalProof,
            resultCid
        );
        stakeAs(validator, 1 ether);
        openChallenge(validator, jobId, vm.parseJsonUint(v, _k(i, ".step")));
    }

    function _leaves(uint256 i) internal view returns (bytes32[] memory) {
        return vm.parseJsonBytes32Array(v, _k(i, ".moves.leaves"));
    }

    function _commitment(uint256 i) internal view returns (LmDisputeGame.Commitment memory c) {
        bytes32[] memory leaves = _leaves(i);
        uint256 height = game.chunkHeight(leaves.length);
        c.nodes = MerkleBuilder.nodes(leaves, height);
        (c.stateIn, c.stateOut) = (leaves[0], leaves[leaves.length - 1]);
        c.stateInProof = vm.parseJsonBytes32Array(v, _k(i, ".state_in_proof"));
        c.stateOutProof = vm.parseJsonBytes32Array(v, _k(i, ".state_out_proof"));
        c.firstLeafProof = MerkleBuilder.proof(leaves, 0);
        c.lastLeafProof = MerkleBuilder.proof(leaves, leaves.length - 1);
    }

    /// @dev The challenger picks the chunk of the disputed leaf; the worker reveals it.
    function _chunk(uint256 i, uint256 jobId) internal returns (uint256[2] memory gas) {
        bytes32[] memory leaves = _leaves(i);
        uint256 height = game.chunkHeight(leaves.length);
        uint256 chunk = vm.parseJsonUint(v, _k(i, ".moves.leaf")) >> height;
        vm.prank(validator);
        gas[0] = gasleft();
        game.pickChunk(jobId, chunk);
        gas[0] -= gasleft();
        bytes32[] memory opened = MerkleBuilder.chunk(leaves, chunk, height);
        bytes32[] memory proof = MerkleBuilder.nodeProof(leaves, chunk, height);
        vm.prank(provider);
        gas[1] = gasleft();
        game.revealChunk(jobId, opened, proof);
        gas[1] -= gasleft();
    }

    function _dataRows(uint256 i, LmSpec.Spec memory s)
        internal
        view
        returns (LmDisputeGame.DataRows memory d)
    {
        d.rows = new bytes[](s.batch);
        d.proofs = new bytes32[][](s.batch);
        for (uint256 b = 0; b < s.batch; ++b) {
            d.rows[b] = _row(i, string.concat(".data_rows[", vm.toString(b), "]"));
            d.proofs[b] =
                vm.parseJsonBytes32Array(v, _k(i, string.concat(".data_proofs[", vm.toString(b), "]")));
        }
    }

    function _commit(uint256 i, uint256 jobId, LmSpec.Spec memory s) internal returns (uint256 gas) {
        LmDisputeGame.Commitment memory c = _commitment(i);
        LmDisputeGame.DataRows memory d = _dataRows(i, s);
        vm.prank(provider);
        gas = gasleft();
        game.commitOpTrace(jobId, s, c, d);
        gas -= gasleft();
    }

    function _nameOp(uint256 i, uint256 jobId, LmSpec.Spec memory s) internal returns (uint256 gas) {
        uint256 n;
        while (vm.keyExistsJson(v, _k(i, string.concat(".moves.inputs[", vm.toString(n), "]")))) ++n;
        LmDisputeGame.LeafOpening[] memory ins = new LmDisputeGame.LeafOpening[](n);
        for (uint256 j = 0; j < n; ++j) {
            string memory path = string.concat(".moves.inputs[", vm.toString(j), "]");
            ins[j].root = vm.parseJsonBytes32(v, _k(i, string.concat(path, ".root")));
            ins[j].proof = vm.parseJsonBytes32Array(v, _k(i, string.concat(path, ".proof")));
        }
        LmDisputeGame.LeafOpening memory out = LmDisputeGame.LeafOpening({
            root: vm.parseJsonBytes32(v, _k(i, ".moves.output.root")),
            proof: vm.parseJsonBytes32Array(v, _k(i, ".moves.output.proof"))
        });
        LmDisputeGame.Entries memory e = LmDisputeGame.Entries({
            state: vm.parseJsonBytes32Array(v, _k(i, ".moves.state_entries")),
            model: vm.parseJsonBytes32Array(v, _k(i, ".moves.model_entries"))
        });
        uint256[] memory lens = vm.parseJsonUintArray(v, _k(i, ".lens"));
        uint256 leaf = vm.parseJsonUint(v, _k(i, ".moves.leaf"));
        vm.prank(validator);
        gas = gasleft();
        game.disputeOp(jobId, s, lens, leaf, out, ins, e);
        gas -= gasleft();
    }

    function _rows(uint256 i, uint256 jobId) internal returns (uint256[3] memory gas) {
        bytes32[] memory hashes = vm.parseJsonBytes32Array(v, _k(i, ".moves.row_hashes"));
        vm.prank(provider);
        gas[0] = gasleft();
        game.revealRowHashes(jobId, hashes);
        gas[0] -= gasleft();
        uint256 r = vm.parseJsonUint(v, _k(i, ".moves.r"));
        vm.prank(validator);
        gas[1] = gasleft();
        game.pickRow(jobId, r);
        gas[1] -= gasleft();
        GameBase.RowOpening memory o = GameBase.RowOpening({
            row: _row(i, ".moves.row"), proof: vm.parseJsonBytes32Array(v, _k(i, ".moves.row_proof"))
        });
        vm.prank(provider);
        gas[2] = gasleft();
        game.revealRow(jobId, o);
        gas[2] -= gasleft();
    }

    function _element(uint256 i, uint256 jobId, LmSpec.Spec memory s) internal returns (uint256 gas) {
        uint256 n;
        while (vm.keyExistsJson(v, _k(i, string.concat(".moves.input_rows[", vm.toString(n), "]")))) ++n;
        LmDisputeGame.ElementMove memory m;
        m.col = vm.parseJsonUint(v, _k(i, ".moves.c"));
        m.row = _row(i, ".moves.row");
        m.inputRows = new bytes[](n);
        m.inputProofs = new bytes32[][](n);
        for (uint256 j = 0; j < n; ++j) {
            m.inputRows[j] = _row(i, string.concat(".moves.input_rows[", vm.toString(j), "]"));
            m.inputProofs[j] = vm.parseJsonBytes32Array(
                v, _k(i, string.concat(".moves.input_proofs[", vm.toString(j), "]"))
            );
        }
        vm.prank(validator);
        gas = gasleft();
        game.disputeElement(jobId, s, m);
        gas -= gasleft();
    }

    /// @dev Plays case `i` to the end; returns the job.
    function _play(uint256 i, string memory who) internal returns (uint256 jobId) {
        vm.assertEq(
            keccak256(bytes(vm.parseJsonString(v, _k(i, ".worker")))),
            keccak256(bytes(who)),
            "the case's worker"
        );
        LmSpec.Spec memory s = _spec(i);
        jobId = _openJob(i, s);
        uint256 g0 = _commit(i, jobId, s);
        uint256[2] memory gc = _chunk(i, jobId);
        uint256 g1 = _nameOp(i, jobId, s);
        uint256[3] memory g2 = _rows(i, jobId);
        uint256 g3 = _element(i, jobId, s);
        emit log_named_uint(string.concat(who, ": commitOpTrace (worker)"), g0);
        emit log_named_uint(string.concat(who, ": pickChunk (challenger)"), gc[0]);
        emit log_named_uint(string.concat(who, ": revealChunk (worker)"), gc[1]);
        emit log_named_uint(string.concat(who, ": disputeOp (challenger)"), g1);
        emit log_named_uint(string.concat(who, ": revealRowHashes (worker)"), g2[0]);
        emit log_named_uint(string.concat(who, ": pickRow (challenger)"), g2[1]);
        emit log_named_uint(string.concat(who, ": revealRow (worker)"), g2[2]);
        emit log_named_uint(string.concat(who, ": disputeElement (challenger)"), g3);
        emit log_named_uint(
            string.concat(who, ": the game"), g0 + gc[0] + gc[1] + g1 + g2[0] + g2[1] + g2[2] + g3
        );
    }

    function test_aWorkerThatChangedOneElementOfAFineTuningStepIsSlashed() public {
        _slashed(0, "lying");
    }

    /// @notice A full fine-tune (docs/protocol.md §9 "Full fine-tuning", built by
    ///         `LmFullProgramReferee`): a worker that changed one element of a norm's γ
    ///         gradient is narrowed to it and slashed; an honest one challenged there wins.
    function test_aFullFineTuneWorkerThatChangedOneElementIsSlashed() public {
        vm.assertTrue(_spec(5).full, "a full fine-tune's spec");
        _slashed(5, "lying_full");
    }

    function test_anHonestFullFineTuneWorkerChallengedAtTheSameElementWins() public {
        uint256 jobId = _play(6, "honest_full");
        vm.assertTrue(market.getJob(jobId).status != IJobMarket.JobStatus.Resolved, "the job goes on");
        vm.assertEq(market.creditOf(validator), 0, "the challenger's bond is lost");
    }

    /// @dev Plays lying case `i` and checks the worker slashed to the wei.
    function _slashed(uint256 i, string memory who) internal {
        uint256 staked = stakes.accountOf(provider).staked;
        uint256 jobId = _play(i, who);
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(
            uint256(job.status), uint256(IJobMarket.JobStatus.Resolved), "resolved against the worker"
        );
        uint256 reward = job.collateral * defaultParams().challengerRewardBps / 10_000;
        vm.assertEq(market.getRewardPool(jobId).remaining, reward, "the challenger's reward, pooled");
        vm.assertEq(market.creditOf(provider), 0, "the worker is paid nothing");
        vm.assertEq(
            stakes.accountOf(provider).staked, staked + 2 ether - job.collateral, "its collateral slashed"
        );
        vm.assertEq(
            market.creditOf(requester),
            PAYMENT + job.collateral - reward,
            "the requester: refund and the rest"
        );
        (GameBase.Phase phase,,,,) = game.gameOf(jobId);
        vm.assertEq(uint256(phase), 0, "the game is over");
    }

    function test_anHonestWorkerChallengedAtTheSameElementWins() public {
        uint256 jobId = _play(1, "honest");
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertTrue(job.status != IJobMarket.JobStatus.Resolved, "the job goes on");
        vm.assertEq(market.creditOf(validator), 0, "the challenger's bond is lost");
    }

    function test_aCommitOfAnotherLengthBatchOrSpecIsRefused() public {
        LmSpec.Spec memory s = _spec(0);
        uint256 jobId = _openJob(0, s);
        LmDisputeGame.Commitment memory c = _commitment(0);
        LmDisputeGame.DataRows memory d = _dataRows(0, s);
        // One node short: the program has one leaf per op, one node per chunk of them.
        bytes32[] memory all = c.nodes;
        bytes32[] memory short = new bytes32[](all.length - 1);
        for (uint256 k = 0; k < short.length; ++k) {
            short[k] = all[k];
        }
        c.nodes = short;
        vm.prank(provider);
        vm.expectPartialRevert(GameBase.OutOfRange.selector);
        game.commitOpTrace(jobId, s, c, d);
        c.nodes = all;
        // A first leaf that is not the op trace's (h_i must open the step's program).
        bytes32[] memory proof = c.firstLeafProof;
        c.firstLeafProof = c.lastLeafProof;
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "first leaf"));
        game.commitOpTrace(jobId, s, c, d);
        c.firstLeafProof = proof;
        // A batch row that is not the dataset's row at the sample the seed draws.
        bytes memory row = d.rows[0];
        d.rows[0] = bytes.concat(row, bytes4(0));
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "data row"));
        game.commitOpTrace(jobId, s, c, d);
        d.rows[0] = row;
        // Another spec (seed) than the job's.
        s.seed += 1;
        vm.prank(provider);
        vm.expectPartialRevert(GameBase.SpecMismatch.selector);
        game.commitOpTrace(jobId, s, c, d);
    }

    function test_aChallengerMustProveTheOpsInputsAndTheBatch() public {
        LmSpec.Spec memory s = _spec(0);
        uint256 jobId = _openJob(0, s);
        _commit(0, jobId, s);
        _chunk(0, jobId);
        LmDisputeGame.LeafOpening memory out = LmDisputeGame.LeafOpening({
            root: vm.parseJsonBytes32(v, _k(0, ".moves.output.root")),
            proof: vm.parseJsonBytes32Array(v, _k(0, ".moves.output.proof"))
        });
        LmDisputeGame.LeafOpening[] memory ins = new LmDisputeGame.LeafOpening[](2);
        ins[0].root = vm.parseJsonBytes32(v, _k(0, ".moves.inputs[0].root"));
        ins[0].proof = vm.parseJsonBytes32Array(v, _k(0, ".moves.inputs[0].proof"));
        bytes32[] memory model = vm.parseJsonBytes32Array(v, _k(0, ".moves.model_entries"));
        uint256[] memory lens = vm.parseJsonUintArray(v, _k(0, ".lens"));
        uint256 leaf = vm.parseJsonUint(v, _k(0, ".moves.leaf"));
        // The model's tensors must be the spec's model commitment.
        model[2] = keccak256("another root");
        LmDisputeGame.Entries memory e = LmDisputeGame.Entries(new bytes32[](0), model);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "model entries"));
        game.disputeOp(jobId, s, lens, leaf, out, ins, e);
        // The batch's lengths are the ones the worker's rows proved.
        e.model = vm.parseJsonBytes32Array(v, _k(0, ".moves.model_entries"));
        lens[0] += 1;
        vm.prank(validator);
        vm.expectPartialRevert(GameBase.SpecMismatch.selector);
        game.disputeOp(jobId, s, lens, leaf, out, ins, e);
        // An input leaf that is not the op trace's.
        lens[0] -= 1;
        ins[0].root = keccak256("not the leaf");
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "input leaf"));
        game.disputeOp(jobId, s, lens, leaf, out, ins, e);
    }

    function test_aChunkIsPickedInRangeAndRevealedWholeAndProvenOrTheWorkerLosesByTheClock() public {
        LmSpec.Spec memory s = _spec(0);
        uint256 jobId = _openJob(0, s);
        _commit(0, jobId, s);
        bytes32[] memory leaves = _leaves(0);
        uint256 height = game.chunkHeight(leaves.length);
        uint256 chunks = (leaves.length + (uint256(1) << height) - 1) >> height;
        vm.assertGt(chunks, 1, "the case's trace has several chunks");
        // Only the challenger picks, and only a chunk that exists.
        vm.prank(provider);
        vm.expectPartialRevert(GameBase.NotYourMove.selector);
        game.pickChunk(jobId, 0);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "chunk", chunks, chunks));
        game.pickChunk(jobId, chunks);
        vm.prank(validator);
        game.pickChunk(jobId, 0);
        bytes32[] memory opened = MerkleBuilder.chunk(leaves, 0, height);
        bytes32[] memory proof = MerkleBuilder.nodeProof(leaves, 0, height);
        // The whole chunk, each leaf the committed one.
        bytes32[] memory short = MerkleBuilder.chunk(leaves, 0, height - 1);
        vm.prank(provider);
        vm.expectPartialRevert(GameBase.OutOfRange.selector);
        game.revealChunk(jobId, short, proof);
        opened[3] = keccak256("another leaf");
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "chunk"));
        game.revealChunk(jobId, opened, proof);
        // A worker that does not reveal it loses by the clock.
        (GameBase.Phase phase,,,,) = game.gameOf(jobId);
        vm.assertEq(uint256(phase), uint256(GameBase.Phase.RevealChunk), "the chunk is the worker's move");
        _workerTimesOut(jobId);
    }

    /// @dev The worker is to move and lets its clock run out: the job is resolved against it.
    function _workerTimesOut(uint256 jobId) internal {
        (, bool workerToMove, uint256 remaining,,) = game.gameOf(jobId);
        vm.assertTrue(workerToMove, "the worker's move");
        vm.warp(block.timestamp + remaining + 1);
        game.timeout(jobId);
        vm.assertEq(
            uint256(market.getJob(jobId).status),
            uint256(IJobMarket.JobStatus.Resolved),
            "resolved against it"
        );
    }

    function test_aWorkerThatNeverCommitsLosesByTheClock() public {
        LmSpec.Spec memory s = _spec(0);
        _workerTimesOut(_openJob(0, s));
    }

    /// @notice A full fine-tune has no adapter terms, a vocabulary in one row, and a state whose
    ///         naming fits a move: `1 + 3P` tensors of 672 bytes each.
    function test_admitSpecRefusesAFullFineTuneTheGameCannotAdjudicate() public {
        LmSpec.Spec memory s = _spec(5);
        s.rank = 2;
        vm.expectRevert(abi.encodeWithSelector(GameBase.Inadmissible.selector, "rank", 2, 0, 0));
        game.admitSpec(s, s.steps);
        s = _spec(5);
        s.targets = 1;
        vm.expectRevert(abi.encodeWithSelector(GameBase.Inadmissible.selector, "targets", 1, 0, 0));
        game.admitSpec(s, s.steps);
        s = _spec(5);
        s.arch.vocab = 8193;
        vm.expectRevert(abi.encodeWithSelector(GameBase.Inadmissible.selector, "vocab", 8193, 2, 8192));
        game.admitSpec(s, s.steps);
        s = _spec(5);
        s.arch.layers = 20;
        vm.expectPartialRevert(GameBase.Inadmissible.selector);
        game.admitSpec(s, s.steps);
        s = _spec(5);
        s.arch.layers = 4;
        game.admitSpec(s, s.steps);
    }

    function test_admitSpecRefusesWhatTheGameCannotAdjudicate() public {
        LmSpec.Spec memory s = _spec(0);
        s.batch = 65;
        vm.expectPartialRevert(GameBase.Inadmissible.selector);
        game.admitSpec(s, s.steps);
        s = _spec(0);
        vm.expectPartialRevert(GameBase.Inadmissible.selector);
        game.admitSpec(s, s.steps + 1);
        s.alpha = 3;
        vm.expectPartialRevert(LmSpec.BadScale.selector);
        game.admitSpec(s, s.steps);
        s = _spec(0);
        s.arch.gpt2 = true;
        s.targets = 0x10; // gate_proj, which GPT-2 has not
        vm.expectPartialRevert(GameBase.Inadmissible.selector);
        game.admitSpec(s, s.steps);
        // Rows wider or more numerous than a move can open: a vocabulary whose chunks' partial
        // sums do not fit a chunk row, GPT-2's vocabulary in chunks over a wide head or a long
        // context, a wide MLP, a long context of many heads.
        s = _spec(0);
        s.arch.vocab = (1 << 21) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "vocab", (1 << 21) + 1, 2, 1 << 21)
        );
        game.admitSpec(s, s.steps);
        s = _spec(0);
        (s.arch.vocab, s.arch.hidden) = (1 << 21, 1024);
        vm.expectRevert(
            abi.encodeWithSelector(
                GameBase.Inadmissible.selector, "head rows in chunks", 1025 << 10, 1, 1 << 20
            )
        );
        game.admitSpec(s, s.steps);
        s = _spec(0);
        (s.arch.vocab, s.arch.context) = (1 << 21, 1025);
        vm.expectRevert(
            abi.encodeWithSelector(
                GameBase.Inadmissible.selector, "context x vocabulary chunks", 1025 << 10, 1, 1 << 20
            )
        );
        game.admitSpec(s, s.steps);
        s = _spec(0);
        s.arch.intermediate = 4097;
        vm.expectRevert(abi.encodeWithSelector(GameBase.Inadmissible.selector, "intermediate", 4097, 1, 4096));
        game.admitSpec(s, s.steps);
        s = _spec(0);
        (s.arch.context, s.arch.heads, s.arch.kvHeads) = (4096, 8, 8);
        vm.expectRevert(
            abi.encodeWithSelector(
                GameBase.Inadmissible.selector, "context x (heads + group)", 36_864, 1, 16_384
            )
        );
        game.admitSpec(s, s.steps);
        // Moves no node would relay (over 120 KiB of calldata): a weight gradient's four rows
        // of a context over 4 096, a commit of 16 data rows of 2 050 values, a state-hash
        // naming over 64 blocks' adapters.
        s = _spec(0);
        s.arch.context = 4097;
        vm.expectRevert(abi.encodeWithSelector(GameBase.Inadmissible.selector, "context", 4097, 1, 4096));
        game.admitSpec(s, s.steps);
        s = _spec(0);
        (s.arch.context, s.batch, s.count) = (2048, 16, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                GameBase.Inadmissible.selector, "batch x data row bytes", 16 * (4 * 2050 + 159), 1, 112 << 10
            )
        );
        game.admitSpec(s, s.steps);
        s = _spec(0);
        s.arch.layers = 64;
        uint256 targets;
        for (uint256 m = s.targets; m != 0; m >>= 1) {
            targets += m & 1;
        }
        vm.expectRevert(
            abi.encodeWithSelector(
                GameBase.Inadmissible.selector, "state tensor bytes", (1 + 384 * targets) * 672, 1, 112 << 10
            )
        );
        game.admitSpec(s, s.steps);
        // Attention rows wider than a move can open, however few the heads' positions.
        s = _spec(0);
        (s.arch.heads, s.arch.kvHeads, s.arch.headDim) = (16, 16, 512);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "heads x head_dim", 8192, 1, 4096)
        );
        game.admitSpec(s, s.steps);
        // More leaves than 128 chunks of 128 (a batch of 64 slots of 64 blocks).
        s = _spec(0);
        (s.batch, s.arch.layers) = (64, 64);
        vm.expectPartialRevert(GameBase.Inadmissible.selector);
        game.admitSpec(s, s.steps);
        s = _spec(0);
        s.batch = 32;
        game.admitSpec(s, s.steps);
    }

    /// @notice GPT-2's 50 257-token vocabulary is admitted, laid out in chunks, and every op of
    ///         the program built from the spec is within the bounds admission promises.
    function test_admitSpecAdmitsGpt2sVocabularyInChunks() public {
        LmSpec.Spec memory s = _spec(1);
        s.arch.vocab = 50_257;
        bytes32 h = game.admitSpec(s, s.steps);
        vm.assertEq(game.admittedSteps(h), s.steps, "admitted");
        uint256[] memory lens = new uint256[](s.batch);
        for (uint256 j = 0; j < lens.length; ++j) {
            lens[j] = s.arch.context;
        }
        uint256 count = game.program().specOpCount(s, lens);
        uint256 chunked;
        for (uint256 leaf = 1; leaf <= count; ++leaf) {
            LmSlot.Op memory op = game.program().specOpAt(s, lens, leaf);
            vm.assertLe(op.rows, game.admission().MAX_ROWS(), "rows");
            vm.assertLe(op.cols, game.admission().MAX_ROW(), "row width");
            for (uint256 i = 0; i < op.inputs.length; ++i) {
                if (op.inputs[i].source != LmSlot.FROM_MODEL) {
                    vm.assertLe(op.inputs[i].cols, game.admission().MAX_ROW(), "input width");
                }
            }
            if (op.kind >= LmVocab.TRANSPOSE_CHUNK) ++chunked;
        }
        vm.assertEq(chunked, 2 + 7 * s.batch, "head.t, head.smin, seven ops a slot");
    }

    /// @notice GPT-2 small's whole shape (12 blocks of 768, 12 heads, a context of 1 024, the
    ///         50 257-token vocabulary) is admitted: its outputs of more than 16 384 rows (the
    ///         logits' 25 600 chunk rows) are opened by chunks of rows.
    function test_admitSpecAdmitsGpt2SmallsShape() public {
        LmSpec.Spec memory s = _spec(1);
        LmSpec.Arch memory a = s.arch;
        (a.layers, a.hidden, a.heads, a.kvHeads, a.headDim) = (12, 768, 12, 12, 64);
        (a.intermediate, a.context, a.vocab) = (3072, 1024, 50_257);
        s.batch = 2;
        bytes32 h = game.admitSpec(s, s.steps);
        vm.assertEq(game.admittedSteps(h), s.steps, "admitted");
    }

    /// @dev The job of case `i` ended against its worker, its collateral slashed.
    function _assertSlashed(uint256 jobId, uint256 staked) internal view {
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.assertEq(
            uint256(job.status), uint256(IJobMarket.JobStatus.Resolved), "resolved against the worker"
        );
        vm.assertEq(
            stakes.accountOf(provider).staked, staked + 2 ether - job.collateral, "collateral slashed"
        );
    }

    function test_aChangedQuantizedAdapterIsCaughtFromTheStateTensor() public {
        uint256 staked = stakes.accountOf(provider).staked;
        _assertSlashed(_play(2, "lying_quant"), staked);
    }

    function test_aChangedEmbeddingIsCaughtFromTheBatchRowAndTheTable() public {
        uint256 staked = stakes.accountOf(provider).staked;
        _assertSlashed(_play(3, "lying_embed"), staked);
    }

    function test_aStateHashThatIsNotTheNewTensorsLosesAtOnce() public {
        vm.assertEq(
            keccak256(bytes(vm.parseJsonString(v, _k(4, ".worker")))), keccak256("lying_hash"), "case"
        );
        uint256 staked = stakes.accountOf(provider).staked;
        LmSpec.Spec memory s = _spec(4);
        uint256 jobId = _openJob(4, s);
        _commit(4, jobId, s);
        _chunk(4, jobId);
        uint256 gas = _nameOp(4, jobId, s);
        emit log_named_uint("lying_hash: disputeOp on the state hash (decides)", gas);
        _assertSlashed(jobId, staked);
    }

    function test_theBatchSampleIsTheSeedsDraw() public view {
        LmSpec.Spec memory s = _spec(0);
        uint256[] memory samples = vm.parseJsonUintArray(v, _k(0, ".samples"));
        uint256 step = vm.parseJsonUint(v, _k(0, ".step"));
        for (uint256 b = 0; b < samples.length; ++b) {
            vm.assertEq(game.batchSample(s.seed, step, b, s.count), samples[b], "the engine's batch row");
        }
    }
}

