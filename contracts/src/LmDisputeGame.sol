// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {GameBase} from "./GameBase.sol";
import {LmAdmission} from "./LmAdmission.sol";
import {LmElementReferee, LmFullProgramReferee, LmProgramReferee} from "./LmReferee.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {ExactOps} from "./libraries/ExactOps.sol";
import {LmSlot} from "./libraries/LmSlot.sol";
import {LmSpec} from "./libraries/LmSpec.sol";
import {LmStep} from "./libraries/LmStep.sol";
import {TraceMerkle} from "./libraries/TraceMerkle.sol";

/// @title LmDisputeGame
/// @notice The dispute game of a LoRA fine-tuning step (docs/protocol.md §3 and §9): the moves
///         of `DisputeGame` over the fine-tuning step program. The worker commits the step's op
///         trace by chunks (one Merkle node per `2^CHUNK_LOG` leaves) and the data rows of the
///         step's batch (whose lengths shape the program); the challenger picks the first chunk
///         that differs from its own trace and the worker reveals its leaves; the challenger
///         names the first op it disputes, proving its inputs (leaves of the op trace,
///         tensors of `h_i`, tensors of the model commitment, or the batch's data rows); the
///         worker reveals the output's row hashes, the challenger picks a row, the worker reveals
///         it, and the challenger names an element, which `LmElementReferee` recomputes from the
///         opened input rows. A market whose resolver this is sends it its fine-tuning disputes.
contract LmDisputeGame is GameBase {
    using TraceMerkle for bytes32;

    /// @notice The worker's first move: the op trace's nodes at the chunks' level (the roots of
    ///         its aligned runs of `2^height` leaves, `height = min(CHUNK_LOG, depth)`), its first
    ///         and last leaves `h_i` and `h_{i+1}`, each proven in the job's trace and in the op
    ///         trace.
    struct Commitment {
        bytes32[] nodes;
        bytes32 stateIn;
        bytes32 stateOut;
        bytes32[] stateInProof;
        bytes32[] stateOutProof;
        bytes32[] firstLeafProof;
        bytes32[] lastLeafProof;
    }

    /// @notice The batch's data rows, one per slot, each proven against the spec's data root.
    struct DataRows {
        bytes[] rows;
        bytes32[][] proofs;
    }

    /// @notice A tensor root proven at a leaf of the op trace.
    struct LeafOpening {
        bytes32 root;
        bytes32[] proof;
    }

    /// @notice The 96-byte entries (commitments.md §3) of every tensor of `h_i` and of the
    ///         model commitment, where the named op reads either.
    struct Entries {
        bytes32[] state;
        bytes32[] model;
    }

    /// @notice The challenger's last move.
    struct ElementMove {
        uint256 col;
        bytes row;
        bytes[] inputRows;
        bytes32[][] inputProofs;
    }

    /// @dev The disputed op, kept from `disputeOp` for the element.
    struct Disputed {
        uint8 kind;
        uint8 inputs;
        uint8 slot;
        int32 arg;
        uint32 rows;
        uint32 cols;
        uint32[4] inRows;
        uint32[4] inCols;
        uint8[4] inSource;
        bytes32[4] inRoots;
        bytes32 lensKey;
        uint32 leafCount;
        uint32 chunk;
    }

    /// @notice log2 of the op-trace leaves in a chunk: the commit carries one node per chunk,
    ///         and the worker reveals the one chunk the challenger picks (about 3 600 gas a leaf
    ///         with calldata and the event, so near 0.5M).
    uint256 public constant CHUNK_LOG = 7;
    /// @notice The most op-trace leaves a step may have: 128 chunks of 128 leaves, so that
    ///         neither the commit's nodes nor a chunk's leaves cost more than about 0.5M gas.
    uint256 public constant MAX_LEAVES = 16_384;

    /// @notice The spec's bounds (created with the game: its code would not fit in this one's).
    LmAdmission public immutable admission;
    /// @notice The step program's builder (a LoRA fine-tune's).
    LmProgramReferee public immutable program;
    /// @notice A full fine-tune's step program's builder.
    LmFullProgramReferee public immutable fullProgram;
    /// @notice The element referee.
    LmElementReferee public immutable elements;

    /// @dev The batch's lengths and the disputed op, per job.
    mapping(uint256 jobId => Disputed) internal _ops;

    /// @notice The worker committed the op trace of the disputed step by its chunks' nodes, and
    ///         its batch's lengths.
    event OpTraceCommitted(uint256 indexed jobId, bytes32 opRoot, bytes32[] nodes, uint256[] lens);
    /// @notice The challenger picked chunk `chunk` of the op trace to open.
    event ChunkPicked(uint256 indexed jobId, uint256 chunk);
    /// @notice The worker revealed the leaves of chunk `chunk` (leaves `chunk · 2^height` on).
    event ChunkRevealed(uint256 indexed jobId, uint256 chunk, bytes32[] leaves);

    /// @param market_ The job market whose resolver this is.
    /// @param program_ The step program's builder.
    /// @param fullProgram_ A full fine-tune's step program's builder.
    /// @param elements_ The element referee.
    constructor(
        IJobMarket market_,
        LmProgramReferee program_,
        LmFullProgramReferee fullProgram_,
        LmElementReferee elements_
    ) GameBase(market_) {
        program = program_;
        fullProgram = fullProgram_;
        elements = elements_;
        admission = new LmAdmission();
    }

    // ─────────────────────────────────────────── admission ───────────────────────────────────────────

    /// @notice Admits a fine-tuning spec of `steps` steps (the spec's own count) if the game can
    ///         adjudicate its every step. Anyone may admit a spec; twice changes nothing.
    function admitSpec(LmSpec.Spec calldata spec, uint256 steps) external returns (bytes32 specHash) {
        _bound("steps", steps, spec.steps, spec.steps);
        _bound("steps", steps, 1, 1 << 20);
        admission.check(spec);
        // Last: the program is built from fields checked above.
        _bound("op-trace leaves", _leaves(spec), 1, MAX_LEAVES);
        specHash = admission.specHash(spec);
        if (admittedSteps[specHash] == 0) {
            admittedSteps[specHash] = steps;
            emit SpecAdmitted(specHash, steps);
        }
    }

    /// @dev The op-trace leaves of a step whose every slot is a whole context long.
    function _leaves(LmSpec.Spec calldata spec) internal view returns (uint256) {
        uint256[] memory lens = new uint256[](spec.batch);
        for (uint256 j = 0; j < lens.length; ++j) {
            lens[j] = spec.arch.context;
        }
        return _builder(spec).specOpCount(spec, lens) + 1;
    }

    /// @dev The program's builder for `spec`'s method (both have the same entry points).
    function _builder(LmSpec.Spec calldata spec) internal view returns (LmProgramReferee) {
        return spec.full ? LmProgramReferee(address(fullProgram)) : program;
    }

    // ─────────────────────────────────────────── worker ──────────────────────────────────────────────

    /// @notice Worker, move 1: the op trace of the disputed step by its chunks' nodes, and the
    ///         data row of each batch slot, proven at the sample the seed draws for it.
    function commitOpTrace(
        uint256 jobId,
        LmSpec.Spec calldata spec,
        Commitment calldata c,
        DataRows calldata d
    ) external {
        Play storage g = _move(jobId, Phase.Commit, true);
        IJobMarket.Job memory job = market.getJob(jobId);
        bytes32 built = admission.specHash(spec);
        if (built != job.specHash) revert SpecMismatch(job.specHash, built);
        uint256[] memory lens = _lens(spec, g.step, d);
        uint256 count = _builder(spec).specOpCount(spec, lens) + 1;
        uint256 height = chunkHeight(count);
        uint256 chunks = (count + (uint256(1) << height) - 1) >> height;
        if (c.nodes.length != chunks) revert OutOfRange("op-trace nodes", c.nodes.length, chunks);
        uint256 steps = uint256(job.steps) + 1;
        if (!g.traceRoot.verify(c.stateIn, g.step, steps, c.stateInProof)) revert BadProof("h_i");
        if (!g.traceRoot.verify(c.stateOut, g.step + 1, steps, c.stateOutProof)) revert BadProof("h_i+1");
        if (g.step == 0 && c.stateIn != spec.initHash) revert WrongInitialState(spec.initHash, c.stateIn);
        bytes32 opRoot = TraceMerkle.rootOfLevel(c.nodes, height);
        if (!opRoot.verify(c.stateIn, 0, count, c.firstLeafProof)) revert BadProof("first leaf");
        if (!opRoot.verify(c.stateOut, count - 1, count, c.lastLeafProof)) revert BadProof("last leaf");
        g.opRoot = opRoot;
        g.specKey = keccak256(abi.encode(spec));
        Disputed storage o = _ops[jobId];
        (o.lensKey, o.leafCount) = (keccak256(abi.encode(lens)), uint32(count));
        (g.stateIn, g.stateOut) = (c.stateIn, c.stateOut);
        _pass(g, Phase.PickChunk);
        emit OpTraceCommitted(jobId, opRoot, c.nodes, lens);
    }

    /// @notice Worker, move 2: the leaves of the chunk the challenger picked, proven against the
    ///         op trace's root (the siblings above the chunk's node, bottom-up).
    function revealChunk(uint256 jobId, bytes32[] calldata leaves, bytes32[] calldata proof) external {
        Play storage g = _move(jobId, Phase.RevealChunk, true);
        Disputed storage o = _ops[jobId];
        (uint256 count, uint256 chunk) = (o.leafCount, o.chunk);
        uint256 height = chunkHeight(count);
        uint256 first = chunk << height;
        uint256 width = count - first < (uint256(1) << height) ? count - first : uint256(1) << height;
        if (leaves.length != width) revert OutOfRange("chunk leaves", leaves.length, width);
        bytes32 node = TraceMerkle.subtreeRoot(leaves, height);
        if (!g.opRoot.verifyNode(node, chunk, height, count, proof)) revert BadProof("chunk");
        _pass(g, Phase.NameOp);
        emit ChunkRevealed(jobId, chunk, leaves);
    }

    /// @dev Each slot's data row, proven at its sample; returns the slots' token counts.
    function _lens(LmSpec.Spec calldata spec, uint256 step, DataRows calldata d)
        internal
        pure
        returns (uint256[] memory lens)
    {
        uint256 b = spec.batch;
        if (d.rows.length != b || d.proofs.length != b) revert OutOfRange("data rows", d.rows.length, b);
        lens = new uint256[](b);
        for (uint256 j = 0; j < b; ++j) {
            uint256 sample = batchSample(spec.seed, step, j, spec.count);
            if (!spec.dataRoot.verify(keccak256(d.rows[j]), sample, spec.count, d.proofs[j])) {
                revert BadProof("data row");
            }
            uint256 bytes_ = d.rows[j].length;
            if (bytes_ % 4 != 0 || bytes_ < 12) revert OutOfRange("data row bytes", bytes_, 12);
            lens[j] = bytes_ / 4 - 1;
        }
    }

    // ─────────────────────────────────────────── challenger ──────────────────────────────────────────

    /// @notice Challenger, move 1: the chunk of the op trace the worker must reveal (the first
    ///         whose node differs from the challenger's own).
    function pickChunk(uint256 jobId, uint256 chunk) external {
        Play storage g = _move(jobId, Phase.PickChunk, false);
        Disputed storage o = _ops[jobId];
        uint256 count = o.leafCount;
        uint256 chunks = (count + (uint256(1) << chunkHeight(count)) - 1) >> chunkHeight(count);
        if (chunk >= chunks) revert OutOfRange("chunk", chunk, chunks);
        o.chunk = uint32(chunk);
        _pass(g, Phase.RevealChunk);
        emit ChunkPicked(jobId, chunk);
    }

    /// @notice Challenger, move 2: dispute op `leaf`'s output, proving its inputs' roots. Naming
    ///         an op agrees to its inputs. The state hash (the last op) is decided at once.
    function disputeOp(
        uint256 jobId,
        LmSpec.Spec calldata spec,
        uint256[] calldata lens,
        uint256 leaf,
        LeafOpening calldata output,
        LeafOpening[] calldata inputs,
        Entries calldata entries
    ) external {
        Play storage g = _move(jobId, Phase.NameOp, false);
        _checkSpec(jobId, g, spec, lens);
        LmSlot.Op memory op = _builder(spec).specOpAt(spec, lens, leaf);
        if (inputs.length != op.inputs.length) revert OutOfRange("inputs", inputs.length, op.inputs.length);
        uint256 leaves = _ops[jobId].leafCount;
        // slither-disable-next-line uninitialized-local
        bytes32[4] memory roots; // filled for the inputs the op has
        for (uint256 i = 0; i < inputs.length; ++i) {
            bytes32 r = _inputRoot(g, spec, op.inputs[i], inputs[i], entries, leaves);
            if (i < 4) roots[i] = r;
        }
        if (op.kind == LmStep.STATE_HASH) {
            _decideStateHash(jobId, g, inputs, entries.state);
            return;
        }
        if (!g.opRoot.verify(output.root, leaf, leaves, output.proof)) revert BadProof("output leaf");
        _keep(jobId, g, op, roots);
        g.leaf = uint32(leaf);
        g.outRoot = output.root;
        _pass(g, Phase.RevealRowHashes);
        emit OpDisputed(jobId, leaf, op.kind, op.rows, op.cols);
    }

    /// @notice Challenger, move 4: element `col` of the revealed row, with one proven row of
    ///         each input (which row: `LmElementReferee.inputRows`). The referee recomputes the
    ///         element: if it differs from the worker's, the worker loses, else the challenger.
    function disputeElement(uint256 jobId, LmSpec.Spec calldata spec, ElementMove calldata m) external {
        Play storage g = _move(jobId, Phase.NameElement, false);
        bytes32 key = keccak256(abi.encode(spec));
        if (key != g.specKey) revert SpecMismatch(g.specKey, key);
        if (keccak256(m.row) != g.rowHash) revert BadProof("revealed row");
        if (m.col >= g.outCols) revert OutOfRange("column", m.col, g.outCols);
        int256 recomputed = _recompute(jobId, g, spec, m);
        int256 claimed = ExactOps.get(m.row, m.col);
        _decide(jobId, recomputed != claimed, false, recomputed, claimed);
    }

    /// @dev The element from the opened input rows, each proven against its agreed root.
    function _recompute(uint256 jobId, Play storage g, LmSpec.Spec calldata spec, ElementMove calldata m)
        internal
        view
        returns (int256)
    {
        Disputed memory d = _ops[jobId];
        if (m.inputRows.length != d.inputs || m.inputProofs.length != d.inputs) {
            revert OutOfRange("input rows", m.inputRows.length, d.inputs);
        }
        LmStep.Op memory op = _stepOp(d);
        LmStep.Params memory p = elements.params(spec, g.step);
        uint256[] memory idx = _indexes(g, spec, d, op, p, m);
        for (uint256 i = 0; i < d.inputs; ++i) {
            _checkRow(d, i, idx[i], m.inputRows[i], m.inputProofs[i]);
        }
        return elements.element(op, p, g.row, m.col, m.inputRows);
    }

    function _indexes(
        Play storage g,
        LmSpec.Spec calldata spec,
        Disputed memory d,
        LmStep.Op memory op,
        LmStep.Params memory p,
        ElementMove calldata m
    ) internal view returns (uint256[] memory) {
        uint256 sample = batchSample(spec.seed, g.step, d.slot, spec.count);
        return elements.inputRows(op, p, g.row, m.col, sample, _dataRow(d, m));
    }

    // ─────────────────────────────────────────── anyone ──────────────────────────────────────────────

    /// @notice The height of the op trace's chunk nodes for a trace of `count` leaves: chunks of
    ///         `2^CHUNK_LOG` leaves, or the whole trace when it is shorter.
    function chunkHeight(uint256 count) public pure returns (uint256) {
        uint256 d = TraceMerkle.depth(count);
        return d < CHUNK_LOG ? d : CHUNK_LOG;
    }

    /// @notice The dataset row of batch slot `j` of step `step` (exact-ops.md "Mini-batches").
    function batchSample(uint64 seed, uint256 step, uint256 j, uint256 samples)
        public
        pure
        returns (uint256)
    {
        bytes32 h = keccak256(abi.encodePacked("pedals.batch", seed, uint64(step), uint64(j)));
        return uint256(uint64(bytes8(h))) % samples;
    }

    // ─────────────────────────────────────────── internal ────────────────────────────────────────────

    function _checkSpec(uint256 jobId, Play storage g, LmSpec.Spec calldata spec, uint256[] calldata lens)
        internal
        view
    {
        bytes32 key = keccak256(abi.encode(spec));
        if (key != g.specKey) revert SpecMismatch(g.specKey, key);
        key = keccak256(abi.encode(lens));
        bytes32 lensKey = _ops[jobId].lensKey;
        if (key != lensKey) revert SpecMismatch(lensKey, key);
    }

    /// @dev The root of one input of the named op, proven from where it lives.
    function _inputRoot(
        Play storage g,
        LmSpec.Spec calldata spec,
        LmSlot.Operand memory o,
        LeafOpening calldata opening,
        Entries calldata entries,
        uint256 leaves
    ) internal view returns (bytes32) {
        if (o.source == LmSlot.FROM_LEAF) {
            if (!g.opRoot.verify(opening.root, o.index, leaves, opening.proof)) {
                revert BadProof("input leaf");
            }
            return opening.root;
        }
        if (o.source == LmSlot.FROM_DATA) return spec.dataRoot;
        bool isState = o.source == LmSlot.FROM_STATE;
        bytes32[] calldata e = isState ? entries.state : entries.model;
        bytes32 want = isState ? g.stateIn : spec.modelRoot;
        if (keccak256(abi.encodePacked(STATE_TAG, uint32(e.length / 3), e)) != want || e.length % 3 != 0) {
            revert BadProof(isState ? "h_i entries" : "model entries");
        }
        if (3 * o.index + 2 >= e.length) revert OutOfRange("tensor", o.index, e.length / 3);
        return e[3 * o.index + 2];
    }

    /// @dev `h_{i+1}` is the state hash of the new tensors' roots (names and shapes as `h_i`'s).
    function _decideStateHash(
        uint256 jobId,
        Play storage g,
        LeafOpening[] calldata inputs,
        bytes32[] calldata entries
    ) internal {
        if (entries.length != 3 * inputs.length) {
            revert OutOfRange("state entries", entries.length, 3 * inputs.length);
        }
        if (keccak256(abi.encodePacked(STATE_TAG, uint32(inputs.length), entries)) != g.stateIn) {
            revert BadProof("h_i entries");
        }
        // `h_i`'s entries with each root replaced by the new tensor's, in one allocation (a
        // preimage grown by concatenation costs memory quadratic in the tensors).
        bytes32[] memory words = new bytes32[](entries.length);
        for (uint256 i = 0; i < inputs.length; ++i) {
            (words[3 * i], words[3 * i + 1], words[3 * i + 2]) =
            (entries[3 * i], entries[3 * i + 1], inputs[i].root);
        }
        bytes32 built = keccak256(abi.encodePacked(STATE_TAG, uint32(inputs.length), words));
        _decide(jobId, built != g.stateOut, false, 0, 0);
    }

    function _keep(uint256 jobId, Play storage g, LmSlot.Op memory op, bytes32[4] memory roots) internal {
        Disputed storage d = _ops[jobId];
        (g.outRows, g.outCols) = (uint32(op.rows), uint32(op.cols));
        d.kind = op.kind;
        d.inputs = uint8(op.inputs.length);
        d.arg = int32(op.arg);
        d.rows = uint32(op.rows);
        d.cols = uint32(op.cols);
        for (uint256 i = 0; i < op.inputs.length && i < 4; ++i) {
            LmSlot.Operand memory o = op.inputs[i];
            d.inRows[i] = uint32(o.rows);
            d.inCols[i] = uint32(o.cols);
            d.inSource[i] = o.source;
            d.inRoots[i] = roots[i];
            if (o.source == LmSlot.FROM_DATA) d.slot = uint8(o.index);
        }
    }

    function _stepOp(Disputed memory d) internal pure returns (LmStep.Op memory op) {
        op.kind = d.kind;
        op.rows = d.rows;
        op.cols = d.cols;
        op.arg = d.arg;
        op.inputRows = new uint256[](d.inputs);
        for (uint256 i = 0; i < d.inputs; ++i) {
            op.inputRows[i] = d.inRows[i];
        }
    }

    /// @dev The op's data row among the opened rows (empty when it reads none).
    function _dataRow(Disputed memory d, ElementMove calldata m) internal pure returns (bytes memory) {
        for (uint256 i = 0; i < d.inputs; ++i) {
            if (d.inSource[i] == LmSlot.FROM_DATA) return m.inputRows[i];
        }
        return "";
    }

    function _checkRow(
        Disputed memory d,
        uint256 i,
        uint256 index,
        bytes calldata row,
        bytes32[] calldata proof
    ) internal pure {
        if (d.inSource[i] != LmSlot.FROM_DATA && row.length != uint256(d.inCols[i]) * 4) {
            revert OutOfRange("input row bytes", row.length, uint256(d.inCols[i]) * 4);
        }
        if (!d.inRoots[i].verify(keccak256(row), index, d.inRows[i], proof)) revert BadProof("input row");
    }

    function _clear(uint256 jobId) internal override {
        delete _ops[jobId];
    }
}
