// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {GameBase} from "../src/GameBase.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {MerkleBuilder} from "./utils/MerkleBuilder.sol";

/// @notice `GameBase`'s row moves on their own: a game opened at the row phase over an output
///         of a chosen number of rows (every game's `disputeOp` ends there).
contract RowGame is GameBase {
    constructor() GameBase(IJobMarket(address(0))) {}

    function openAtRows(uint256 jobId, address worker, address challenger, uint32 rows, bytes32 root)
        external
    {
        _startGame(jobId, 0, worker, challenger, bytes32(0), 1 days);
        Play storage g = _plays[jobId];
        (g.outRows, g.outCols, g.outRoot) = (rows, 1, root);
        _pass(g, Phase.RevealRowHashes);
    }

    function _clear(uint256) internal override {}

    /// @notice The verdicts, by job (no market behind this harness).
    mapping(uint256 jobId => bool) public workerLost;
    mapping(uint256 jobId => bool) public decided;

    function _settle(uint256 jobId, bool lost) internal override {
        (decided[jobId], workerLost[jobId]) = (true, lost);
    }
}

/// @notice An output of more than `2^ROW_CHUNK_LOG` rows is opened by chunks of rows
///         (docs/protocol.md §3): the worker reveals the chunks' nodes, the challenger picks a
///         chunk, the worker reveals its row hashes, the challenger picks a row of it. Each
///         move refuses what does not prove against the output's root or leaves the chunk.
contract GameRowsTest is Test {
    RowGame internal game;
    address internal worker = address(0xA11CE);
    address internal challenger = address(0xB0B);
    uint256 internal constant LOG = 10;

    function setUp() public {
        game = new RowGame();
    }

    /// @dev Rows of one value `i`, packed, and their hashes.
    function _rows(uint256 n) internal pure returns (bytes[] memory rows, bytes32[] memory hashes) {
        (rows, hashes) = (new bytes[](n), new bytes32[](n));
        for (uint256 i = 0; i < n; ++i) {
            int256[] memory v = new int256[](1);
            v[0] = int256(i);
            rows[i] = MerkleBuilder.pack(v);
            hashes[i] = keccak256(rows[i]);
        }
    }

    function test_anOutputOfManyRowsIsOpenedByChunksOfRows() public {
        (bytes[] memory rows, bytes32[] memory hashes) = _rows(3000);
        game.openAtRows(1, worker, challenger, 3000, MerkleBuilder.root(hashes));
        vm.assertEq(game.ROW_CHUNK_LOG(), LOG, "chunks of 1 024 rows");

        // The worker: the three chunks' nodes, not the hashes nor other nodes.
        bytes32[] memory nodes = MerkleBuilder.nodes(hashes, LOG);
        vm.startPrank(worker);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "row chunk nodes", 3000, 3));
        game.revealRowHashes(1, hashes);
        bytes32[] memory wrong = new bytes32[](3);
        (wrong[0], wrong[1], wrong[2]) = (nodes[1], nodes[0], nodes[2]);
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "row chunk nodes"));
        game.revealRowHashes(1, wrong);
        // Every revealed hash is in the event: players read them there, whoever sent the call.
        vm.expectEmit(address(game));
        emit GameBase.RowHashesRevealed(1, 3, nodes);
        game.revealRowHashes(1, nodes);
        vm.stopPrank();
        (GameBase.Phase phase,,,,) = game.gameOf(1);
        vm.assertEq(uint256(phase), uint256(GameBase.Phase.PickRowChunk), "the challenger picks a chunk");

        // The challenger: a chunk of the output (the last, short one).
        vm.startPrank(challenger);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "row chunk", 3, 3));
        game.pickRowChunk(1, 3);
        game.pickRowChunk(1, 2);
        vm.stopPrank();

        // The worker: that chunk's 952 hashes, proven; not another chunk's, not changed ones.
        bytes32[] memory chunk = MerkleBuilder.chunk(hashes, 2, LOG);
        bytes32[] memory proof = MerkleBuilder.nodeProof(hashes, 2, LOG);
        vm.startPrank(worker);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "row chunk hashes", 1024, 952));
        game.revealRowChunk(1, MerkleBuilder.chunk(hashes, 0, LOG), MerkleBuilder.nodeProof(hashes, 0, LOG));
        chunk[5] = bytes32(uint256(1));
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "row chunk"));
        game.revealRowChunk(1, chunk, proof);
        chunk[5] = hashes[2048 + 5];
        vm.expectEmit(address(game));
        emit GameBase.RowChunkRevealed(1, 2, chunk);
        game.revealRowChunk(1, chunk, proof);
        vm.stopPrank();

        // The challenger: a row of the revealed chunk only.
        vm.startPrank(challenger);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "row chunk of the row", 0, 2));
        game.pickRow(1, 5);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "row", 3000, 3000));
        game.pickRow(1, 3000);
        game.pickRow(1, 2999);
        vm.stopPrank();

        // The worker opens the row against the output's root.
        vm.expectEmit(address(game));
        emit GameBase.RowRevealed(1, 2999, hashes[2999], rows[2999]);
        vm.prank(worker);
        game.revealRow(1, GameBase.RowOpening(rows[2999], MerkleBuilder.proof(hashes, 2999)));
        (GameBase.Phase last,,,, uint256 row) = game.gameOf(1);
        vm.assertEq(uint256(last), uint256(GameBase.Phase.NameElement), "the challenger names the element");
        vm.assertEq(row, 2999, "the picked row");
    }

    /// @notice An output of one chunk of rows or fewer reveals its hashes whole, as before.
    function test_anOutputOfOneChunkOfRowsRevealsItsHashesWhole() public {
        (, bytes32[] memory hashes) = _rows(1024);
        game.openAtRows(2, worker, challenger, 1024, MerkleBuilder.root(hashes));
        vm.prank(worker);
        game.revealRowHashes(2, hashes);
        (GameBase.Phase phase,,,,) = game.gameOf(2);
        vm.assertEq(uint256(phase), uint256(GameBase.Phase.PickRow), "a row at once");
        vm.prank(challenger);
        vm.expectPartialRevert(GameBase.NotYourMove.selector);
        game.pickRowChunk(2, 0);
        vm.prank(challenger);
        game.pickRow(2, 5);
    }

    /// @notice The chunk of rows is the worker's move: its clock runs, and a worker that does
    ///         not reveal the picked chunk loses by it.
    function test_theRowChunkMoveIsTheWorkers() public {
        (, bytes32[] memory hashes) = _rows(1500);
        game.openAtRows(3, worker, challenger, 1500, MerkleBuilder.root(hashes));
        vm.prank(worker);
        game.revealRowHashes(3, MerkleBuilder.nodes(hashes, LOG));
        vm.prank(challenger);
        game.pickRowChunk(3, 1);
        (GameBase.Phase phase, bool workerToMove,,, uint256 chunk) = game.gameOf(3);
        vm.assertEq(uint256(phase), uint256(GameBase.Phase.RevealRowChunk), "the chunk is to reveal");
        vm.assertTrue(workerToMove, "the worker's move");
        vm.assertEq(chunk, 1, "the picked chunk");
        vm.prank(challenger);
        vm.expectPartialRevert(GameBase.NotYourMove.selector);
        game.revealRowChunk(3, MerkleBuilder.chunk(hashes, 1, LOG), MerkleBuilder.nodeProof(hashes, 1, LOG));
        // A worker that goes silent: nobody may end the game while its clock runs, anyone may
        // once it has run out, and the worker loses.
        vm.expectPartialRevert(GameBase.ClockRunning.selector);
        game.timeout(3);
        vm.warp(block.timestamp + 1 days + 1);
        vm.prank(worker);
        vm.expectRevert(abi.encodeWithSelector(GameBase.ClockExpired.selector, 3));
        game.revealRowChunk(3, MerkleBuilder.chunk(hashes, 1, LOG), MerkleBuilder.nodeProof(hashes, 1, LOG));
        game.timeout(3);
        vm.assertTrue(game.decided(3) && game.workerLost(3), "the silent worker lost");
    }
}
