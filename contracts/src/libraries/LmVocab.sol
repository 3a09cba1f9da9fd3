// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ExactOps} from "./ExactOps.sol";
import {LmOps} from "./LmOps.sol";
import {LmRows} from "./LmRows.sol";
import {LmStep} from "./LmStep.sol";

/// @title LmVocab
/// @notice The ops of a vocabulary laid out in chunks (docs/protocol.md §9, "Long rows"): the
///         head's transpose, the logits and the loss signal as chunk rows (row `t·k + ch` holds
///         tokens `ch·R ..` of position `t`, zero past the vocabulary `V`), and the sums over the
///         vocabulary split into one partial sum per chunk. Which rows an element reads and the
///         element from them, bit for bit with `pedals_lm::dispute` (vocab.rs). `arg` is `V`,
///         but for `INPUT_GRAD_SUM`, whose `arg` is the outputs per partial row `J`.
library LmVocab {
    /// @notice A vocabulary of more tokens than this is laid out in chunks.
    uint256 internal constant LONG_ROW = 8192;
    /// @notice Tokens per chunk of a long vocabulary.
    uint256 internal constant VOCAB_CHUNK = 2048;

    uint8 internal constant TRANSPOSE_CHUNK = 36;
    uint8 internal constant LINEAR_CHUNK = 37;
    uint8 internal constant XENT_MAX = 38;
    uint8 internal constant XENT_SUM = 39;
    uint8 internal constant XENT_CHUNK = 40;
    uint8 internal constant ABS_MAX = 41;
    uint8 internal constant SHIFT_MIN = 42;
    uint8 internal constant INPUT_GRAD_PART = 43;
    uint8 internal constant INPUT_GRAD_SUM = 44;

    /// @notice Signals are clamped to `±2^30`.
    int256 internal constant GRAD_MAX = 1 << 30;

    /// @notice The input rows of element `(r, c)` of a chunked op, in input order.
    function inputRows(LmStep.Op memory op, uint256 r, uint256 c, uint256 sample)
        internal
        pure
        returns (uint256[] memory idx)
    {
        uint8 k = op.kind;
        idx = new uint256[](op.inputRows.length);
        uint256 v = uint256(op.arg);
        if (k == TRANSPOSE_CHUNK || k == LINEAR_CHUNK) {
            uint256 chunks = (v + op.cols - 1) / op.cols;
            uint256 token = (r % chunks) * op.cols + c;
            uint256 row = token < v ? token : 0;
            if (k == TRANSPOSE_CHUNK) {
                idx[0] = row;
            } else {
                (idx[0], idx[1]) = (r / chunks, row);
            }
        } else if (k == XENT_MAX || k == ABS_MAX) {
            idx[0] = r * op.cols + c;
        } else if (k == XENT_SUM) {
            // Index arithmetic: the floors are chunk and row numbers, on purpose.
            // slither-disable-next-line divide-before-multiply
            (idx[0], idx[1]) = (r * (op.cols / 2) + c / 2, r);
        } else if (k == XENT_CHUNK) {
            uint256 t = r / (op.rows / op.inputRows[1]);
            (idx[0], idx[1], idx[2]) = (r, t, t);
            idx[3] = sample;
        } else if (k == SHIFT_MIN) {
            idx[0] = op.inputRows[0] - op.cols + c;
        } else if (k == INPUT_GRAD_PART) {
            idx = _partRows(op, r, c);
        } else if (k == INPUT_GRAD_SUM) {
            // Index arithmetic: partial rows per position times the position, on purpose.
            // slither-disable-next-line divide-before-multiply
            (idx[0], idx[1]) = ((op.inputRows[0] / op.rows) * r + c / uint256(op.arg), r);
        }
    }

    /// @dev `input_grad_part`'s shape: chunks `k`, hidden width `d`, outputs per partial row `J`
    ///      and partial rows per position `B`.
    struct Part {
        uint256 k;
        uint256 d;
        uint256 per;
        uint256 nb;
    }

    function _partShape(LmStep.Op memory op) private pure returns (Part memory s) {
        uint256 positions = op.inputRows[3];
        s.k = op.inputRows[0] / positions;
        s.d = op.inputRows[1] / s.k - 1;
        s.per = op.cols / (2 * s.k);
        s.nb = op.rows / positions;
    }

    /// @dev `input_grad_part`'s rows: `dz` row `t·k + ch`, `head.t` rows `j·k + ch` and
    ///      `d·k + ch`, `dzmax` row `t`, `head.smin` row 0.
    function _partRows(LmStep.Op memory op, uint256 r, uint256 c)
        private
        pure
        returns (uint256[] memory idx)
    {
        Part memory s = _partShape(op);
        uint256 j = (r % s.nb) * s.per + c / 2 / s.k;
        uint256 ch = (c / 2) % s.k;
        idx = new uint256[](5);
        // Index arithmetic: the floors are a position and a chunk, on purpose.
        // slither-disable-next-line divide-before-multiply
        idx[0] = (r / s.nb) * s.k + ch;
        idx[1] = (j < s.d ? j : 0) * s.k + ch;
        idx[2] = s.d * s.k + ch;
        idx[3] = r / s.nb;
    }

    /// @notice Element `(r, c)` of a chunked op from the rows `inputRows` names.
    function element(LmStep.Op memory op, uint256 r, uint256 c, bytes[] calldata rows)
        internal
        pure
        returns (int256)
    {
        uint8 k = op.kind;
        uint256 v = uint256(op.arg);
        if (k == TRANSPOSE_CHUNK) {
            uint256 chunks = (v + op.cols - 1) / op.cols;
            if ((r % chunks) * op.cols + c >= v) return 0;
            return ExactOps.get(rows[0], r / chunks);
        }
        if (k == LINEAR_CHUNK) {
            uint256 chunks = (v + op.cols - 1) / op.cols;
            if ((r % chunks) * op.cols + c >= v) return 0;
            return LmOps.linear(rows[0], rows[1], ExactOps.get(rows[1], rows[1].length / 4 - 1), 0);
        }
        if (k == XENT_MAX) return LmRows.scoreMax(rows[0][:4 * _valid(v, rows[0].length / 4, c)]);
        if (k == XENT_SUM) return LmStep.half(_weights(rows[0], rows[1], v, c / 2), c);
        if (k == XENT_CHUNK) return _xent(op, r, c, rows);
        if (k == ABS_MAX) return int256(LmRows.maxAbs(rows[0]));
        if (k == SHIFT_MIN) return _min(rows[0][:4 * _valid(v, rows[0].length / 4, c)]);
        if (k == INPUT_GRAD_PART) return _part(op, r, c, rows);
        if (k == INPUT_GRAD_SUM) {
            uint256 chunks = rows[1].length / 4;
            // Index arithmetic: a row's value count times an output's place, on purpose.
            // slither-disable-next-line divide-before-multiply
            uint256 at = (c % uint256(op.arg)) * chunks;
            int256 acc = 0;
            for (uint256 i = 0; i < chunks; ++i) {
                acc += LmStep.join(rows[0], at + i);
            }
            int256 e = _exponent(rows[1]);
            return ExactOps.clamp(LmOps.sh(acc, _min(rows[2]) - e), GRAD_MAX);
        }
        revert LmStep.NoElement(k);
    }

    /// @dev Tokens in chunk `ch` of `R`-token chunks of a `v`-token vocabulary.
    function _valid(uint256 v, uint256 width, uint256 ch) private pure returns (uint256) {
        uint256 start = ch * width;
        if (start >= v) return 0;
        return v - start < width ? v - start : width;
    }

    function _score(bytes calldata z, uint256 i) private pure returns (int256) {
        return ExactOps.clamp(ExactOps.rs(ExactOps.get(z, i), 2), LmOps.SCORE_MAX);
    }

    function _min(bytes calldata x) private pure returns (int256 min) {
        min = type(int256).max;
        for (uint256 i = 0; i < x.length / 4; ++i) {
            int256 s = ExactOps.get(x, i);
            if (s < min) min = s;
        }
    }

    function _max(bytes calldata x) private pure returns (int256 max) {
        max = type(int256).min;
        for (uint256 i = 0; i < x.length / 4; ++i) {
            int256 s = ExactOps.get(x, i);
            if (s > max) max = s;
        }
    }

    /// @dev `Σ expWeight(M − s_i)` over chunk `ch`'s tokens, `M` the largest of the `zmax` row.
    function _weights(bytes calldata z, bytes calldata zmax, uint256 v, uint256 ch)
        private
        pure
        returns (int256)
    {
        LmOps.Exp memory t = LmOps.exps();
        return LmRows.expSum(z[:4 * _valid(v, z.length / 4, ch)], _max(zmax), t.hi, t.lo);
    }

    /// @dev The loss signal of token `ch·R + c` of position `t` (`r = t·k + ch`).
    function _xent(LmStep.Op memory op, uint256 r, uint256 c, bytes[] calldata rows)
        private
        pure
        returns (int256)
    {
        uint256 chunks = op.rows / op.inputRows[1];
        uint256 target;
        {
            uint256 t = r / chunks;
            int256 prompt = ExactOps.get(rows[3], 0);
            if (int256(t + 1) < (prompt > 1 ? prompt : int256(1))) return 0;
            target = uint256(ExactOps.get(rows[3], t + 2));
        }
        require(target < uint256(op.arg));
        uint256 token = (r % chunks) * op.cols + c;
        if (token >= uint256(op.arg)) return 0;
        return _probability(rows, c) - (token == target ? int256(1 << 24) : int256(0));
    }

    /// @dev `rdiv(w_c · 2^24, Σ zsum)` with `w_c = expWeight(M − s_c)`, from the `logits`,
    ///      `zmax` and `zsum` rows.
    function _probability(bytes[] calldata rows, uint256 c) private pure returns (int256) {
        int256 total = 0;
        for (uint256 i = 0; i < rows[2].length / 8; ++i) {
            total += LmStep.join(rows[2], i);
        }
        return LmOps.rdiv(LmOps.expWeight(_max(rows[1]) - _score(rows[0], c)) << 24, total);
    }

    /// @dev One chunk's partial sum of the head's input gradient (a 64-bit half).
    function _part(LmStep.Op memory op, uint256 r, uint256 c, bytes[] calldata rows)
        private
        pure
        returns (int256)
    {
        Part memory s = _partShape(op);
        if ((r % s.nb) * s.per + c / 2 / s.k >= s.d) return 0;
        uint256 n = _valid(uint256(op.arg), rows[0].length / 4, (c / 2) % s.k);
        int256 acc = LmRows.inputDot(rows[0][:4 * n], rows[1], rows[2], _exponent(rows[3]), _min(rows[4]));
        return LmStep.half(acc, c);
    }

    /// @dev The row quantizer's exponent of a row whose chunks' magnitudes are `maxes`.
    function _exponent(bytes calldata maxes) private pure returns (int256) {
        return LmOps.rowExp(maxes);
    }
}
