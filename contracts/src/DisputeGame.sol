// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {GameBase} from "./GameBase.sol";
import {Referee} from "./Referee.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {DisputeProgram} from "./libraries/DisputeProgram.sol";
import {ExactOps} from "./libraries/ExactOps.sol";
import {TraceMerkle} from "./libraries/TraceMerkle.sol";

/// @title DisputeGame
/// @notice The referee of Pedals disputes (docs/protocol.md). After a challenge of step `i`, the
///         worker commits the op trace of that step; the challenger names the first op whose
///         output it disputes, proving the op's inputs, which it thereby agrees to; the worker
///         reveals the output's row hashes; the challenger picks a row; the worker reveals it;
///         the challenger names the element, and the contract recomputes that one element from
///         the opened input rows and decides. Each side has its own clock, which runs only on its
///         turns; a side whose clock runs out loses (`timeout`). The outcome is reported to the
///         market, which moves the money: bonds, collateral and payment never pass through here.
contract DisputeGame is GameBase {
    using TraceMerkle for bytes32;

    /// @notice The job's spec fields, from which the contract rebuilds the spec's canonical bytes
    ///         and checks them against the on-chain `specHash` (docs/commitments.md §6).
    struct Spec {
        uint32[] layers;
        uint32 batch;
        uint32 lrQ12;
        uint32 momentumQ12;
        uint64 seed;
        uint64 checkpointEvery;
        string datasetCid;
        string modelCid;
        uint64 samples;
        bytes32 dataRoot;
        bytes32 initHash;
    }

    /// @notice The worker's first move: every leaf of the op trace (`h_i`, one root per op, and
    ///         `h_{i+1}` last) and the proofs of `h_i` and `h_{i+1}` in the job's step trace.
    struct Commitment {
        bytes32[] leaves;
        bytes32[] stateInProof;
        bytes32[] stateOutProof;
    }

    /// @notice A tensor root proven at a leaf of the op trace.
    struct LeafOpening {
        bytes32 root;
        bytes32[] proof;
    }

    /// @notice The challenger's last move.
    struct ElementMove {
        uint256 col;
        bytes row;
        bytes[] inputRows;
        bytes32[][] inputProofs;
    }

    /// @notice Widest layer the game admits (exact mode's bound, docs/exact-ops.md): every dot
    ///         product stays inside i32, and every op's output has at most `MAX_BATCH` rows of
    ///         at most `MAX_BATCH` entries, so that each move fits a block (docs/economics.md).
    uint256 public constant MAX_WIDTH = 1020;
    /// @notice Largest batch the game admits (a power of two).
    uint256 public constant MAX_BATCH = 1024;
    /// @notice Largest learning rate or momentum: 1.0 in Q12.
    uint256 public constant MAX_HYPER = 4096;

    /// @notice The contract that recomputes an element.
    Referee public immutable referee;

    /// @dev The agreed roots of the disputed op's inputs.
    mapping(uint256 jobId => bytes32[3]) internal _inRoots;

    /// @notice The worker committed the op trace of the disputed step.
    event OpTraceCommitted(uint256 indexed jobId, bytes32 opRoot, bytes32[] leaves);

    /// @param market_ The job market that calls `disputeOpened` and receives the verdicts.
    /// @param referee_ The element referee.
    constructor(IJobMarket market_, Referee referee_) GameBase(market_) {
        referee = referee_;
    }

    // ─────────────────────────────────────────── admission ───────────────────────────────────────────

    /// @notice Admits the spec of a training job of `steps` steps, if the game can adjudicate
    ///         every step of it: an MLP of 1 to `DisputeProgram.MAX_DEPTH` layers whose widths
    ///         lie in `1..MAX_WIDTH` (at least 2 classes), a power-of-two batch up to
    ///         `MAX_BATCH`, a non-empty dataset, and rates up to 1.0. Anyone may admit a spec;
    ///         admitting one twice changes nothing.
    /// @return specHash The spec's hash, which the job must be posted with.
    function admitSpec(Spec calldata spec, uint256 steps) external returns (bytes32 specHash) {
        uint256 widths = spec.layers.length;
        _bound("widths", widths, 2, DisputeProgram.MAX_DEPTH + 1);
        for (uint256 i = 0; i < widths; ++i) {
            _bound("width", spec.layers[i], i == widths - 1 ? 2 : 1, MAX_WIDTH);
        }
        uint256 batch = spec.batch;
        _bound("batch", batch, 1, MAX_BATCH);
        if (batch & (batch - 1) != 0) revert Inadmissible("batch", batch, 1, MAX_BATCH);
        _bound("samples", spec.samples, 1, type(uint32).max);
        _bound("lrQ12", spec.lrQ12, 0, MAX_HYPER);
        _bound("momentumQ12", spec.momentumQ12, 0, MAX_HYPER);
        _bound("steps", steps, 1, type(uint32).max);
        specHash = sha256(specBytes(spec, steps));
        if (admittedSteps[specHash] == 0) {
            admittedSteps[specHash] = steps;
            emit SpecAdmitted(specHash, steps);
        }
    }

    // ─────────────────────────────────────────── worker ──────────────────────────────────────────────

    /// @notice Worker, move 1: commit the op trace of the disputed step, every leaf in the clear
    ///         (they are in the event, so the challenger can find the first op it disagrees
    ///         with). The first leaf must be `h_i` and the last `h_{i+1}`, both proven against
    ///         the job's trace root; the spec the program is built from is bound to `specHash`.
    function commitOpTrace(uint256 jobId, Spec calldata spec, Commitment calldata c) external {
        Play storage g = _move(jobId, Phase.Commit, true);
        IJobMarket.Job memory job = market.getJob(jobId);
        bytes32 built = sha256(specBytes(spec, job.steps));
        if (built != job.specHash) revert SpecMismatch(job.specHash, built);
        uint256 count = DisputeProgram.opCount(spec.layers.length - 1) + 1;
        if (c.leaves.length != count) revert OutOfRange("op-trace leaves", c.leaves.length, count);
        bytes32 stateIn = c.leaves[0];
        bytes32 stateOut = c.leaves[count - 1];
        uint256 step = g.step;
        if (!g.traceRoot.verify(stateIn, step, uint256(job.steps) + 1, c.stateInProof)) {
            revert BadProof("h_i");
        }
        if (!g.traceRoot.verify(stateOut, step + 1, uint256(job.steps) + 1, c.stateOutProof)) {
            revert BadProof("h_i+1");
        }
        if (step == 0 && stateIn != spec.initHash) revert WrongInitialState(spec.initHash, stateIn);
        bytes32 opRoot = TraceMerkle.rootOf(c.leaves);
        g.specKey = keccak256(abi.encode(spec));
        g.opRoot = opRoot;
        g.stateIn = stateIn;
        g.stateOut = stateOut;
        _pass(g, Phase.NameOp);
        emit OpTraceCommitted(jobId, opRoot, c.leaves);
    }

    // ─────────────────────────────────────────── challenger ──────────────────────────────────────────

    /// @notice Challenger, move 1: dispute the output of op `leaf`, proving its output root and
    ///         the roots of its inputs (leaves of the op trace, tensors of `h_i` given by the
    ///         state entries, or the spec's dataset root). Naming an op agrees to its inputs.
    ///         For the last op (the state hash) the contract decides at once.
    /// @param entries The 3 words per tensor of `h_i` (docs/commitments.md §3), when an input is
    ///        a state tensor; otherwise empty.
    function disputeOp(
        uint256 jobId,
        Spec calldata spec,
        uint256 leaf,
        LeafOpening calldata output,
        LeafOpening[] calldata inputs,
        bytes32[] calldata entries
    ) external {
        Play storage g = _move(jobId, Phase.NameOp, false);
        DisputeProgram.Op[] memory ops = _program(g, spec);
        if (leaf == 0 || leaf > ops.length) revert OutOfRange("op", leaf, ops.length);
        DisputeProgram.Op memory op = ops[leaf - 1];
        if (inputs.length != op.inputs.length) revert OutOfRange("inputs", inputs.length, op.inputs.length);
        uint256 leaves = ops.length + 1;
        for (uint256 i = 0; i < inputs.length; ++i) {
            DisputeProgram.Operand memory o = op.inputs[i];
            if (o.source == DisputeProgram.FROM_LEAF) {
                if (!g.opRoot.verify(inputs[i].root, o.index, leaves, inputs[i].proof)) {
                    revert BadProof("input leaf");
                }
            }
        }
        if (op.kind == ExactOps.STATE_HASH) {
            _decideStateHash(jobId, g, spec, inputs);
            return;
        }
        if (!g.opRoot.verify(output.root, leaf, leaves, output.proof)) revert BadProof("output leaf");
        bytes32[3] storage roots = _inRoots[jobId];
        for (uint256 i = 0; i < inputs.length; ++i) {
            roots[i] = _inputRoot(g, spec, op.inputs[i], inputs[i].root, entries);
        }
        g.leaf = uint32(leaf);
        g.outRows = uint32(op.rows);
        g.outCols = uint32(op.cols);
        g.outRoot = output.root;
        _pass(g, Phase.RevealRowHashes);
        emit OpDisputed(jobId, leaf, op.kind, op.rows, op.cols);
    }

    /// @notice Challenger, move 3: name element `col` of the revealed row and open the input rows
    ///         it depends on. The contract recomputes the element: if it differs from the worker's
    ///         value the worker loses, otherwise the challenger does.
    /// @param m The element: `col`, the worker's revealed `row` as revealed, and one row per input
    ///        of the op in the program's order (DisputeProgram.inputRows says which), each proven
    ///        by the same index of `inputProofs`.
    function disputeElement(uint256 jobId, Spec calldata spec, ElementMove calldata m) external {
        Play storage g = _move(jobId, Phase.NameElement, false);
        if (keccak256(m.row) != g.rowHash) revert BadProof("revealed row");
        DisputeProgram.Op memory op = _op(g, spec, g.leaf);
        if (m.col >= op.cols) revert OutOfRange("column", m.col, op.cols);
        uint256 r = g.row;
        uint256[] memory idx = DisputeProgram.inputRows(op.kind, r, m.col, batchSample(spec, g.step, r));
        _checkInputRows(_inRoots[jobId], op, idx, m);
        int256 recomputed = referee.element(op.kind, _params(spec), r, m.col, m.inputRows);
        int256 claimed = ExactOps.get(m.row, m.col);
        _decide(jobId, recomputed != claimed, false, recomputed, claimed);
    }

    // ─────────────────────────────────────────── anyone ──────────────────────────────────────────────

    // ─────────────────────────────────────────── views ───────────────────────────────────────────────

    /// @notice The spec's canonical bytes (docs/commitments.md §6) rebuilt from its fields.
    function specBytes(Spec calldata s, uint256 steps) public pure returns (bytes memory) {
        bytes memory layers = "";
        for (uint256 i = 0; i < s.layers.length; ++i) {
            layers =
                bytes.concat(layers, i == 0 ? bytes("") : bytes(","), bytes(Strings.toString(s.layers[i])));
        }
        bytes memory model = bytes.concat(
            '{"version":1,"train":{"model":{"layers":[',
            layers,
            '],"batch":',
            bytes(Strings.toString(s.batch)),
            ',"lr_q12":',
            bytes(Strings.toString(s.lrQ12)),
            ',"momentum_q12":',
            bytes(Strings.toString(s.momentumQ12))
        );
        bytes memory train = bytes.concat(
            '},"seed":',
            bytes(Strings.toString(s.seed)),
            ',"steps":',
            bytes(Strings.toString(steps)),
            ',"checkpoint_every":',
            bytes(Strings.toString(s.checkpointEvery)),
            '},"dataset":"',
            bytes(s.datasetCid),
            '","model":"',
            bytes(s.modelCid)
        );
        bytes memory dispute = bytes.concat(
            '","dispute":{"samples":',
            bytes(Strings.toString(s.samples)),
            ',"data_root":"',
            bytes(Strings.toHexString(uint256(s.dataRoot), 32)),
            '","init_hash":"',
            bytes(Strings.toHexString(uint256(s.initHash), 32)),
            '"}}'
        );
        return bytes.concat(model, train, dispute);
    }

    /// @notice The dataset row of batch row `j` of step `step`:
    ///         `u64_be(keccak256("pedals.batch" ‖ u64 seed ‖ u64 step ‖ u64 j)[0..8]) mod samples`.
    function batchSample(Spec calldata s, uint256 step, uint256 j) public pure returns (uint256) {
        return _sample(s.seed, step, j, s.samples);
    }

    // ─────────────────────────────────────────── internal ────────────────────────────────────────────

    /// @dev The program, after checking that `spec` is the one the worker committed to.
    function _program(Play storage g, Spec calldata spec) internal view returns (DisputeProgram.Op[] memory) {
        bytes32 h = keccak256(abi.encode(spec));
        if (h != g.specKey) revert SpecMismatch(g.specKey, h);
        return DisputeProgram.build(spec.layers, spec.batch, spec.samples);
    }

    function _op(Play storage g, Spec calldata spec, uint256 leaf)
        internal
        view
        returns (DisputeProgram.Op memory)
    {
        return _program(g, spec)[leaf - 1];
    }

    /// @dev The agreed root of one input of the named op.
    function _inputRoot(
        Play storage g,
        Spec calldata spec,
        DisputeProgram.Operand memory o,
        bytes32 leafRoot,
        bytes32[] calldata entries
    ) internal view returns (bytes32) {
        if (o.source == DisputeProgram.FROM_LEAF) return leafRoot;
        if (o.source == DisputeProgram.FROM_DATA) return spec.dataRoot;
        return _stateRoot(g, spec, o.index, entries);
    }

    /// @dev The root of state tensor `index` of `h_i`, from the entries of every tensor.
    function _stateRoot(Play storage g, Spec calldata spec, uint256 index, bytes32[] calldata entries)
        internal
        view
        returns (bytes32)
    {
        uint256 count = 4 * (spec.layers.length - 1);
        if (entries.length != 3 * count) revert OutOfRange("state entries", entries.length, 3 * count);
        if (keccak256(abi.encodePacked(STATE_TAG, uint32(count), entries)) != g.stateIn) {
            revert BadProof("h_i entries");
        }
        (bytes32 nameHash, bytes32 shapeHash) = DisputeProgram.stateTensor(spec.layers, index);
        if (entries[3 * index] != nameHash || entries[3 * index + 1] != shapeHash) {
            revert BadProof("state tensor");
        }
        return entries[3 * index + 2];
    }

    /// @dev The last op: `h_{i+1}` is the state hash of the new tensors' roots.
    function _decideStateHash(
        uint256 jobId,
        Play storage g,
        Spec calldata spec,
        LeafOpening[] calldata inputs
    ) internal {
        bytes memory pre = abi.encodePacked(STATE_TAG, uint32(inputs.length));
        for (uint256 i = 0; i < inputs.length; ++i) {
            (bytes32 nameHash, bytes32 shapeHash) = DisputeProgram.stateTensor(spec.layers, i);
            pre = bytes.concat(pre, nameHash, shapeHash, inputs[i].root);
        }
        bool workerLost = keccak256(pre) != g.stateOut;
        _decide(jobId, workerLost, false, 0, 0);
    }

    /// @dev Checks one opened row per input of the op against the agreed input roots.
    function _checkInputRows(
        bytes32[3] storage roots,
        DisputeProgram.Op memory op,
        uint256[] memory idx,
        ElementMove calldata m
    ) internal view {
        uint256 n = op.inputs.length;
        if (m.inputRows.length != n || m.inputProofs.length != n) {
            revert OutOfRange("inputs", m.inputRows.length, n);
        }
        for (uint256 i = 0; i < n; ++i) {
            _checkRow(roots[i], op.inputs[i], idx[i], m.inputRows[i], m.inputProofs[i]);
        }
    }

    function _checkRow(
        bytes32 root,
        DisputeProgram.Operand memory o,
        uint256 index,
        bytes calldata row,
        bytes32[] calldata proof
    ) internal pure {
        if (row.length != o.cols * 4) {
            revert OutOfRange("input row bytes", row.length, o.cols * 4);
        }
        if (!root.verify(keccak256(row), index, o.rows, proof)) revert BadProof("input row");
    }

    function _params(Spec calldata spec) internal pure returns (ExactOps.Params memory) {
        return ExactOps.Params({
            log2Batch: _log2(spec.batch),
            lrQ12: int256(uint256(spec.lrQ12)),
            momentumQ12: int256(uint256(spec.momentumQ12)),
            features: spec.layers[0]
        });
    }

    function _log2(uint256 v) internal pure returns (uint256 l) {
        while ((uint256(1) << (l + 1)) <= v) ++l;
    }

    function _clear(uint256 jobId) internal override {
        delete _inRoots[jobId];
    }
}
