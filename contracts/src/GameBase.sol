// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDisputeResolver} from "./interfaces/IDisputeResolver.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {TraceMerkle} from "./libraries/TraceMerkle.sol";

/// @title GameBase
/// @notice What every dispute game of Pedals shares (docs/protocol.md §3–4): the two clocks and
///         whose move it is, the watchtower that may move for a worker, the opening of a game by
///         the market, the three moves that narrow a disputed output to one row (the worker's
///         row hashes, the challenger's pick, the worker's row), timeouts, and the verdict sent
///         back to the market. A game adds the program it plays: how the op trace is committed,
///         how an op and its inputs are named, and how an element is recomputed.
abstract contract GameBase is IDisputeResolver {
    using TraceMerkle for bytes32;

    /// @notice Whose move it is, and which.
    enum Phase {
        None,
        /// Worker: commit the op trace.
        Commit,
        /// Challenger: name the disputed op.
        NameOp,
        /// Worker: reveal the output's row hashes.
        RevealRowHashes,
        /// Challenger: pick a row.
        PickRow,
        /// Worker: reveal the row.
        RevealRow,
        /// Challenger: name the element.
        NameElement,
        /// Challenger: pick the chunk of the op trace to open (games that commit by chunks).
        PickChunk,
        /// Worker: reveal the picked chunk's leaves.
        RevealChunk,
        /// Challenger: pick the chunk of the disputed output's rows to open (an output of more
        /// than `2^ROW_CHUNK_LOG` rows).
        PickRowChunk,
        /// Worker: reveal the picked chunk's row hashes.
        RevealRowChunk
    }

    /// @notice A row proven against a root.
    struct RowOpening {
        bytes row;
        bytes32[] proof;
    }

    /// @dev One dispute's players, clocks and narrowing; deleted when it is decided.
    struct Play {
        address worker;
        uint40 turnStart;
        uint32 workerClock;
        Phase phase;
        address challenger;
        uint32 challengerClock;
        uint32 step;
        uint32 leaf;
        uint32 row;
        uint32 outRows;
        uint32 outCols;
        bytes32 traceRoot;
        bytes32 specKey;
        bytes32 opRoot;
        bytes32 stateIn;
        bytes32 stateOut;
        bytes32 outRoot;
        bytes32 rowHash;
    }

    /// @notice Share of the market's dispute duration each side's clock gets, in percent. The
    ///         two clocks together leave a fifth of the duration for the winner to claim.
    uint256 public constant CLOCK_PERCENT = 40;
    /// @notice log2 of the rows in a chunk of a disputed output: an output of more rows reveals
    ///         its row hashes in two moves (the nodes of its chunks, then the picked chunk's
    ///         hashes), so that no move carries more than 1 024 hashes (about 1.6M gas) however
    ///         many rows the output has.
    uint256 public constant ROW_CHUNK_LOG = 10;
    /// @dev Rows in a chunk, `2^ROW_CHUNK_LOG`.
    uint256 internal constant ROW_CHUNK = 2 ** ROW_CHUNK_LOG;
    /// @notice Domain tag of a state hash (docs/commitments.md §3).
    bytes14 internal constant STATE_TAG = "pedals.state.2";

    /// @notice The market whose disputes this contract decides.
    IJobMarket public immutable market;

    mapping(uint256 jobId => Play) internal _plays;

    /// @inheritdoc IDisputeResolver
    mapping(bytes32 specHash => uint256 steps) public admittedSteps;
    /// @notice The account a worker lets make its moves (a watchtower), besides itself.
    mapping(address worker => address defender) public defenderOf;

    /// @notice A dispute opened and the worker's clock started.
    event GameStarted(uint256 indexed jobId, uint256 step, address worker, address challenger, uint256 clock);
    /// @notice The challenger disputes the output of op `leaf`.
    event OpDisputed(uint256 indexed jobId, uint256 leaf, uint8 kind, uint256 rows, uint256 cols);
    /// @notice The worker revealed the disputed output's row hashes (or its chunks' nodes).
    ///         Players read them here, not from the transaction's calldata: the mover may be a
    ///         contract (a defender, a smart account) whose calldata is not this call's.
    event RowHashesRevealed(uint256 indexed jobId, uint256 rows, bytes32[] rowHashes);
    /// @notice The challenger picked a chunk of the disputed output's rows.
    event RowChunkPicked(uint256 indexed jobId, uint256 chunk);
    /// @notice The worker revealed the picked chunk's row hashes.
    event RowChunkRevealed(uint256 indexed jobId, uint256 chunk, bytes32[] rowHashes);
    /// @notice The challenger picked a row of the disputed output.
    event RowPicked(uint256 indexed jobId, uint256 row);
    /// @notice The worker revealed the picked row: `values` is its packed bytes.
    event RowRevealed(uint256 indexed jobId, uint256 row, bytes32 rowHash, bytes values);
    /// @notice The game is decided; `recomputed` and `claimed` are set when an element decided it.
    event GameDecided(
        uint256 indexed jobId, bool workerLost, bool byTimeout, int256 recomputed, int256 claimed
    );
    /// @notice A spec hash was admitted: the market posts training jobs with it.
    event SpecAdmitted(bytes32 indexed specHash, uint256 steps);
    /// @notice `worker` lets `defender` make its moves (zero: nobody but itself).
    event DefenderSet(address indexed worker, address indexed defender);

    /// @notice Only the market may open disputes.
    error NotMarket(address caller);
    /// @notice It is not this caller's move, or not this move.
    error NotYourMove(uint256 jobId, Phase phase, address caller);
    /// @notice The mover's clock ran out: anyone may call `timeout`.
    error ClockExpired(uint256 jobId);
    /// @notice `timeout` while the mover still has time.
    error ClockRunning(uint256 jobId, uint256 remaining);
    /// @notice The spec fields do not rebuild the job's spec.
    error SpecMismatch(bytes32 expected, bytes32 actual);
    /// @notice A proof does not verify.
    error BadProof(string what);
    /// @notice The named op, row or element does not exist.
    error OutOfRange(string what, uint256 value, uint256 limit);
    /// @notice Step 0 must start from the spec's initial state.
    error WrongInitialState(bytes32 expected, bytes32 actual);
    /// @notice The game cannot adjudicate a spec with this field: `value` is outside `[min, max]`.
    error Inadmissible(string field, uint256 value, uint256 min, uint256 max);

    /// @param market_ The job market that calls `disputeOpened` and receives the verdicts.
    constructor(IJobMarket market_) {
        market = market_;
    }

    /// @notice Lets `defender` make the caller's moves as a worker (a watchtower that answers
    ///         while the worker's node is down); zero revokes. The worker can still move itself.
    function setDefender(address defender) external {
        defenderOf[msg.sender] = defender;
        emit DefenderSet(msg.sender, defender);
    }

    /// @inheritdoc IDisputeResolver
    function disputeOpened(
        uint256 jobId,
        uint256 step,
        address worker,
        address challenger,
        bytes32 traceRoot,
        bytes32, /* claimedStateHash */
        uint256 deadline
    ) external {
        if (msg.sender != address(market)) revert NotMarket(msg.sender);
        // The market opens a dispute only on a job with none open, so anything stored for this
        // job is left from a dispute the market timed out: start afresh.
        uint32 clock = uint32((deadline - block.timestamp) * CLOCK_PERCENT / 100);
        _startGame(jobId, step, worker, challenger, traceRoot, clock);
    }

    /// @dev Opens game `jobId` with the worker to move and `clock` seconds on each side's clock.
    function _startGame(
        uint256 jobId,
        uint256 step,
        address worker,
        address challenger,
        bytes32 traceRoot,
        uint32 clock
    ) internal {
        delete _plays[jobId];
        _clear(jobId);
        Play storage g = _plays[jobId];
        g.worker = worker;
        g.challenger = challenger;
        g.turnStart = uint40(block.timestamp);
        g.workerClock = clock;
        g.challengerClock = clock;
        g.phase = Phase.Commit;
        g.step = uint32(step);
        g.traceRoot = traceRoot;
        emit GameStarted(jobId, step, worker, challenger, clock);
    }

    /// @notice Worker: reveal the row hashes of the disputed output (their Merkle root must be
    ///         the output's committed root); for an output of more than `2^ROW_CHUNK_LOG` rows,
    ///         the roots of its aligned chunks of `2^ROW_CHUNK_LOG` rows instead.
    function revealRowHashes(uint256 jobId, bytes32[] calldata rowHashes) external {
        Play storage g = _move(jobId, Phase.RevealRowHashes, true);
        uint256 rows = g.outRows;
        if (rows <= ROW_CHUNK) {
            if (rowHashes.length != rows) revert OutOfRange("row hashes", rowHashes.length, rows);
            if (TraceMerkle.rootOf(rowHashes) != g.outRoot) revert BadProof("row hashes");
            _pass(g, Phase.PickRow);
        } else {
            uint256 chunks = _rowChunks(rows);
            if (rowHashes.length != chunks) revert OutOfRange("row chunk nodes", rowHashes.length, chunks);
            if (TraceMerkle.rootOfLevel(rowHashes, ROW_CHUNK_LOG) != g.outRoot) {
                revert BadProof("row chunk nodes");
            }
            _pass(g, Phase.PickRowChunk);
        }
        emit RowHashesRevealed(jobId, rowHashes.length, rowHashes);
    }

    /// @notice Challenger: pick the chunk of the disputed output's rows to open (the first
    ///         whose node differs from the challenger's own).
    function pickRowChunk(uint256 jobId, uint256 chunk) external {
        Play storage g = _move(jobId, Phase.PickRowChunk, false);
        uint256 chunks = _rowChunks(g.outRows);
        if (chunk >= chunks) revert OutOfRange("row chunk", chunk, chunks);
        g.row = uint32(chunk);
        _pass(g, Phase.RevealRowChunk);
        emit RowChunkPicked(jobId, chunk);
    }

    /// @notice Worker: reveal the row hashes of the picked chunk, proven against the output's
    ///         root (the siblings above the chunk's node, bottom-up).
    function revealRowChunk(uint256 jobId, bytes32[] calldata rowHashes, bytes32[] calldata proof) external {
        Play storage g = _move(jobId, Phase.RevealRowChunk, true);
        (uint256 rows, uint256 chunk) = (g.outRows, g.row);
        uint256 rest = rows - (chunk << ROW_CHUNK_LOG);
        uint256 width = rest < ROW_CHUNK ? rest : ROW_CHUNK;
        if (rowHashes.length != width) revert OutOfRange("row chunk hashes", rowHashes.length, width);
        bytes32 node = TraceMerkle.subtreeRoot(rowHashes, ROW_CHUNK_LOG);
        if (!g.outRoot.verifyNode(node, chunk, ROW_CHUNK_LOG, rows, proof)) revert BadProof("row chunk");
        _pass(g, Phase.PickRow);
        emit RowChunkRevealed(jobId, chunk, rowHashes);
    }

    /// @notice Worker: reveal the picked row, proven against the output's root.
    function revealRow(uint256 jobId, RowOpening calldata opening) external {
        Play storage g = _move(jobId, Phase.RevealRow, true);
        uint256 cols = g.outCols;
        if (opening.row.length != cols * 4) revert OutOfRange("row bytes", opening.row.length, cols * 4);
        bytes32 h = keccak256(opening.row);
        if (!g.outRoot.verify(h, g.row, g.outRows, opening.proof)) revert BadProof("row");
        g.rowHash = h;
        _pass(g, Phase.NameElement);
        emit RowRevealed(jobId, g.row, h, opening.row);
    }

    /// @notice Challenger: pick the row of the disputed output to open.
    function pickRow(uint256 jobId, uint256 row) external {
        Play storage g = _move(jobId, Phase.PickRow, false);
        uint256 rows = g.outRows;
        if (row >= rows) revert OutOfRange("row", row, rows);
        // Past one chunk, the row is one of the revealed chunk's (`g.row` holds the chunk).
        if (rows > ROW_CHUNK && row >> ROW_CHUNK_LOG != g.row) {
            revert OutOfRange("row chunk of the row", row >> ROW_CHUNK_LOG, g.row);
        }
        g.row = uint32(row);
        _pass(g, Phase.RevealRow);
        emit RowPicked(jobId, row);
    }

    /// @notice Decides against the side to move once its clock has run out.
    function timeout(uint256 jobId) external {
        Play storage g = _plays[jobId];
        Phase phase = g.phase;
        if (phase == Phase.None) revert NotYourMove(jobId, phase, msg.sender);
        bool workerToMove = _workerMoves(phase);
        uint256 elapsed = block.timestamp - g.turnStart;
        uint256 clock = workerToMove ? g.workerClock : g.challengerClock;
        if (elapsed <= clock) revert ClockRunning(jobId, clock - elapsed);
        _decide(jobId, workerToMove, true, 0, 0);
    }

    /// @notice The phase, the side to move's remaining time, and the disputed leaf and row. For
    ///         an output of more than `2^ROW_CHUNK_LOG` rows, `row` is the picked chunk of rows
    ///         from `pickRowChunk` until `pickRow` (in RevealRowChunk and PickRow).
    function gameOf(uint256 jobId)
        external
        view
        returns (Phase phase, bool workerToMove, uint256 remaining, uint256 leaf, uint256 row)
    {
        Play storage g = _plays[jobId];
        phase = g.phase;
        if (phase == Phase.None) return (phase, false, 0, 0, 0);
        workerToMove = _workerMoves(phase);
        uint256 clock = workerToMove ? g.workerClock : g.challengerClock;
        uint256 elapsed = block.timestamp - g.turnStart;
        remaining = elapsed >= clock ? 0 : clock - elapsed;
        return (phase, workerToMove, remaining, g.leaf, g.row);
    }

    /// @dev Deletes what the game keeps for `jobId` besides its `Play`.
    function _clear(uint256 jobId) internal virtual;

    /// @dev The status guard of every move: the right phase, the right sender (or the worker's
    ///      defender), time on its clock. Charges the elapsed time to the mover's clock.
    function _move(uint256 jobId, Phase expected, bool byWorker) internal returns (Play storage g) {
        g = _plays[jobId];
        Phase phase = g.phase;
        address mover = byWorker ? g.worker : g.challenger;
        bool isMover = msg.sender == mover || (byWorker && msg.sender == defenderOf[mover]);
        if (phase != expected || !isMover) revert NotYourMove(jobId, phase, msg.sender);
        uint256 elapsed = block.timestamp - g.turnStart;
        uint256 clock = byWorker ? g.workerClock : g.challengerClock;
        if (elapsed > clock) revert ClockExpired(jobId);
        if (byWorker) g.workerClock = uint32(clock - elapsed);
        else g.challengerClock = uint32(clock - elapsed);
    }

    /// @dev Chunks of `2^ROW_CHUNK_LOG` rows in an output of `rows` rows.
    function _rowChunks(uint256 rows) internal pure returns (uint256) {
        return (rows + ROW_CHUNK - 1) >> ROW_CHUNK_LOG;
    }

    /// @dev Hands the move to the other side.
    function _pass(Play storage g, Phase next) internal {
        g.phase = next;
        g.turnStart = uint40(block.timestamp);
    }

    function _workerMoves(Phase phase) internal pure returns (bool) {
        return phase == Phase.Commit || phase == Phase.RevealRowHashes || phase == Phase.RevealRow
            || phase == Phase.RevealChunk || phase == Phase.RevealRowChunk;
    }

    /// @dev The dataset row of batch row `j` of step `step`:
    ///      `u64_be(keccak256("pedals.batch" ‖ u64 seed ‖ u64 step ‖ u64 j)[0..8]) mod samples`.
    function _sample(uint64 seed, uint256 step, uint256 j, uint256 samples) internal pure returns (uint256) {
        bytes32 h = keccak256(abi.encodePacked("pedals.batch", seed, uint64(step), uint64(j)));
        return uint256(uint64(bytes8(h))) % samples;
    }

    function _bound(string memory field, uint256 value, uint256 min, uint256 max) internal pure {
        if (value < min || value > max) revert Inadmissible(field, value, min, max);
    }

    /// @dev Deletes the game, then acts on the verdict (`_settle`).
    function _decide(uint256 jobId, bool workerLost, bool byTimeout, int256 recomputed, int256 claimed)
        internal
    {
        delete _plays[jobId];
        _clear(jobId);
        emit GameDecided(jobId, workerLost, byTimeout, recomputed, claimed);
        _settle(jobId, workerLost);
    }

    /// @dev Acts on a verdict: by default, reports it to the market.
    function _settle(uint256 jobId, bool workerLost) internal virtual {
        market.resolveDispute(jobId, workerLost);
    }
}
