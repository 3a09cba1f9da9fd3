// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ExactOps} from "./ExactOps.sol";

/// @title DisputeProgram
/// @notice The op list of one training step of an MLP, as `pedals_ml::dispute::program` builds it
///         (docs/protocol.md): op `k` produces leaf `k` of the step's op trace; leaf 0 is `h_i`
///         and the last op hashes the new state into `h_{i+1}`. State tensors are numbered in
///         name order, `4l + {0: bias, 1: bias.velocity, 2: weight, 3: weight.velocity}`, which
///         is the encoding order for up to ten layers.
library DisputeProgram {
    uint8 internal constant FROM_STATE = 0;
    uint8 internal constant FROM_LEAF = 1;
    uint8 internal constant FROM_DATA = 2;

    /// @notice The most layers a disputable model may have (state names sort by layer up to 10).
    uint256 internal constant MAX_DEPTH = 10;

    /// @notice Where an op reads an input, and the input's shape (rows fix the Merkle leaf count).
    struct Operand {
        uint8 source;
        uint256 index;
        uint256 rows;
        uint256 cols;
    }

    /// @notice One op: its kind (ExactOps codes), output shape and inputs.
    struct Op {
        uint8 kind;
        uint256 rows;
        uint256 cols;
        Operand[] inputs;
    }

    /// @notice The model cannot be disputed (depth, or a width or batch of zero).
    error UnsupportedModel();

    /// @notice Ops in the program of a model of `depth` layers: `14·depth + 1`.
    function opCount(uint256 depth) internal pure returns (uint256) {
        return 14 * depth + 1;
    }

    /// @dev Leaves of the ops built so far that later ops read.
    struct Builder {
        Op[] ops;
        uint256 k;
        uint256 y;
        uint256 d;
        uint256[] wq;
        uint256[] wqt;
        uint256[] acts;
        uint256[] gw;
        uint256[] gb;
    }

    /// @notice The program of one step of an MLP of widths `n` and batch `batch` over a dataset
    ///         of `samples` rows. `ops[k - 1]` produces leaf `k`.
    function build(uint32[] calldata n, uint256 batch, uint256 samples) internal pure returns (Op[] memory) {
        if (n.length < 2 || n.length - 1 > MAX_DEPTH || batch == 0 || samples == 0) {
            revert UnsupportedModel();
        }
        uint256 depth = n.length - 1;
        Builder memory b = Builder({
            ops: new Op[](opCount(depth)),
            k: 0,
            y: 0,
            d: 0,
            wq: new uint256[](depth),
            wqt: new uint256[](depth),
            acts: new uint256[](depth + 1),
            gw: new uint256[](depth),
            gb: new uint256[](depth)
        });
        _forward(b, n, batch, samples);
        _backward(b, n, batch);
        _update(b, n);
        assert(b.k == b.ops.length);
        return b.ops;
    }

    function _forward(Builder memory b, uint32[] calldata n, uint256 batch, uint256 samples) private pure {
        uint256 depth = n.length - 1;
        b.acts[0] = _push(b, ExactOps.GATHER_INPUTS, batch, n[0], _one(_data(samples, n[0] + 1)));
        b.y = _push(b, ExactOps.GATHER_LABELS, batch, 1, _one(_data(samples, n[0] + 1)));
        for (uint256 l = 0; l < depth; ++l) {
            b.wq[l] = _push(b, ExactOps.QUANTIZE, n[l], n[l + 1], _one(_state(l, 2, n)));
        }
        for (uint256 l = 0; l < depth; ++l) {
            b.wqt[l] = _push1(b, ExactOps.TRANSPOSE, n[l + 1], n[l], b.wq[l]);
        }
        for (uint256 l = 0; l < depth; ++l) {
            Operand[] memory ins = new Operand[](3);
            ins[0] = _leaf(b, b.acts[l]);
            ins[1] = _leaf(b, b.wqt[l]);
            ins[2] = _state(l, 0, n);
            uint256 z = _push(b, ExactOps.LINEAR, batch, n[l + 1], ins);
            b.acts[l + 1] = l + 1 < depth ? _push1(b, ExactOps.RELU, batch, n[l + 1], z) : z;
        }
        b.d = _push2(b, ExactOps.SOFTMAX_XENT_GRAD, batch, n[depth], b.acts[depth], b.y);
    }

    function _backward(Builder memory b, uint32[] calldata n, uint256 batch) private pure {
        for (uint256 i = n.length - 1; i > 0; --i) {
            uint256 l = i - 1;
            uint256 aT = _push1(b, ExactOps.TRANSPOSE, n[l], batch, b.acts[l]);
            uint256 dt = _push1(b, ExactOps.TRANSPOSE, n[l + 1], batch, b.d);
            b.gw[l] = _push2(b, ExactOps.WEIGHT_GRAD, n[l], n[l + 1], aT, dt);
            b.gb[l] = _push1(b, ExactOps.BIAS_GRAD, 1, n[l + 1], dt);
            if (l > 0) {
                uint256 e = _push2(b, ExactOps.INPUT_GRAD, batch, n[l], b.d, b.wq[l]);
                b.d = _push2(b, ExactOps.RELU_BACKWARD, batch, n[l], e, b.acts[l]);
            }
        }
    }

    function _update(Builder memory b, uint32[] calldata n) private pure {
        Operand[] memory next = new Operand[](4 * (n.length - 1));
        for (uint256 l = 0; l + 1 < n.length; ++l) {
            uint256 rows = n[l];
            uint256 cols = n[l + 1];
            _pushS(b, ExactOps.MOMENTUM, rows, cols, _stateAt(l, 3, rows, cols), b.gw[l]);
            next[4 * l + 3] = _leaf(b, b.k);
            _pushS(b, ExactOps.DESCEND_WEIGHT, rows, cols, _stateAt(l, 2, rows, cols), b.k);
            next[4 * l + 2] = _leaf(b, b.k);
            _pushS(b, ExactOps.MOMENTUM, 1, cols, _stateAt(l, 1, 1, cols), b.gb[l]);
            next[4 * l + 1] = _leaf(b, b.k);
            _pushS(b, ExactOps.DESCEND_BIAS, 1, cols, _stateAt(l, 0, 1, cols), b.k);
            next[4 * l] = _leaf(b, b.k);
        }
        _push(b, ExactOps.STATE_HASH, 1, 1, next);
    }

    /// @notice Which row of each input element `(r, c)` of an op of `kind` reads (`sample` is
    ///         the dataset row of batch row `r`, for the gathers).
    function inputRows(uint8 kind, uint256 r, uint256 c, uint256 sample)
        internal
        pure
        returns (uint256[] memory idx)
    {
        if (kind == ExactOps.GATHER_INPUTS || kind == ExactOps.GATHER_LABELS) return _idx1(sample);
        if (kind == ExactOps.QUANTIZE || kind == ExactOps.RELU) return _idx1(r);
        if (kind == ExactOps.TRANSPOSE || kind == ExactOps.BIAS_GRAD) return _idx1(c);
        if (kind == ExactOps.LINEAR) {
            idx = new uint256[](3);
            idx[0] = r;
            idx[1] = c;
            return idx;
        }
        if (kind == ExactOps.WEIGHT_GRAD || kind == ExactOps.INPUT_GRAD) return _idx2(r, c);
        return _idx2(r, r);
    }

    /// @notice Name hash and shape hash (docs/commitments.md §3) of state tensor `index`.
    function stateTensor(uint32[] calldata n, uint256 index)
        internal
        pure
        returns (bytes32 nameHash, bytes32 shapeHash)
    {
        uint256 l = index / 4;
        uint256 which = index % 4;
        string memory suffix = which == 0
            ? ".bias"
            : which == 1 ? ".bias.velocity" : which == 2 ? ".weight" : ".weight.velocity";
        nameHash = keccak256(abi.encodePacked("l", _digit(l), suffix));
        uint32 rows = which < 2 ? 1 : n[l];
        shapeHash = keccak256(abi.encodePacked(uint8(2), rows, n[l + 1]));
    }

    function _digit(uint256 l) private pure returns (bytes1) {
        return bytes1(uint8(48 + l));
    }

    function _push(Builder memory b, uint8 kind, uint256 rows, uint256 cols, Operand[] memory inputs)
        private
        pure
        returns (uint256)
    {
        b.ops[b.k] = Op({kind: kind, rows: rows, cols: cols, inputs: inputs});
        b.k += 1;
        return b.k;
    }

    function _push1(Builder memory b, uint8 kind, uint256 rows, uint256 cols, uint256 leaf)
        private
        pure
        returns (uint256)
    {
        return _push(b, kind, rows, cols, _one(_leaf(b, leaf)));
    }

    function _push2(Builder memory b, uint8 kind, uint256 rows, uint256 cols, uint256 leafA, uint256 leafB)
        private
        pure
        returns (uint256)
    {
        return _push(b, kind, rows, cols, _two(_leaf(b, leafA), _leaf(b, leafB)));
    }

    function _pushS(
        Builder memory b,
        uint8 kind,
        uint256 rows,
        uint256 cols,
        Operand memory state,
        uint256 leaf
    ) private pure returns (uint256) {
        return _push(b, kind, rows, cols, _two(state, _leaf(b, leaf)));
    }

    function _leaf(Builder memory b, uint256 leaf) private pure returns (Operand memory) {
        Op memory op = b.ops[leaf - 1];
        return Operand({source: FROM_LEAF, index: leaf, rows: op.rows, cols: op.cols});
    }

    function _state(uint256 l, uint256 which, uint32[] calldata n) private pure returns (Operand memory) {
        return _stateAt(l, which, which < 2 ? 1 : n[l], n[l + 1]);
    }

    function _stateAt(uint256 l, uint256 which, uint256 rows, uint256 cols)
        private
        pure
        returns (Operand memory)
    {
        return Operand({source: FROM_STATE, index: 4 * l + which, rows: rows, cols: cols});
    }

    function _data(uint256 samples, uint256 cols) private pure returns (Operand memory) {
        return Operand({source: FROM_DATA, index: 0, rows: samples, cols: cols});
    }

    function _one(Operand memory a) private pure returns (Operand[] memory ins) {
        ins = new Operand[](1);
        ins[0] = a;
    }

    function _two(Operand memory a, Operand memory b) private pure returns (Operand[] memory ins) {
        ins = new Operand[](2);
        ins[0] = a;
        ins[1] = b;
    }

    function _idx1(uint256 a) private pure returns (uint256[] memory idx) {
        idx = new uint256[](1);
        idx[0] = a;
    }

    function _idx2(uint256 a, uint256 b) private pure returns (uint256[] memory idx) {
        idx = new uint256[](2);
        idx[0] = a;
        idx[1] = b;
    }
}
