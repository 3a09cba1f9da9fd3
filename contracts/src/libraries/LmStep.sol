// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ExactOps} from "./ExactOps.sol";
import {LmGrads} from "./LmGrads.sol";
import {LmOps} from "./LmOps.sol";
import {LmRows} from "./LmRows.sol";
import {LmVocab} from "./LmVocab.sol";

/// @title LmStep
/// @notice One element of any op of a LoRA fine-tuning step's program (docs/protocol.md §9),
///         recomputed from the rows it opens, bit for bit with the engine's op trace
///         (`pedals_lm::dispute`): which row of each input an element reads (`inputRows`) and
///         the element from those rows (`element`). Rows are packed `i32` little-endian; a
///         64-bit value takes two adjacent columns, low half first.
library LmStep {
    uint8 internal constant EMBED = 1;
    uint8 internal constant NORM = 2;
    uint8 internal constant LINEAR = 3;
    uint8 internal constant QUANT = 4;
    uint8 internal constant ADD = 5;
    uint8 internal constant ROPE = 6;
    uint8 internal constant SCORE = 7;
    uint8 internal constant SOFTMAX = 8;
    uint8 internal constant TRANSPOSE = 9;
    uint8 internal constant TRANSPOSE_EXP = 10;
    uint8 internal constant ATTEND_RAW = 11;
    uint8 internal constant ROUND_ATTN = 12;
    uint8 internal constant SWIGLU = 13;
    uint8 internal constant GELU = 14;
    uint8 internal constant XENT = 15;
    uint8 internal constant INPUT_GRAD = 16;
    uint8 internal constant WEIGHT_GRAD = 17;
    uint8 internal constant NORM_BACK = 18;
    uint8 internal constant ADD_GRAD = 19;
    uint8 internal constant SWIGLU_BACK_GATE = 20;
    uint8 internal constant SWIGLU_BACK_UP = 21;
    uint8 internal constant GELU_BACK = 22;
    uint8 internal constant SCORE_GRAD = 23;
    uint8 internal constant GROUP_T = 24;
    uint8 internal constant DQ = 25;
    uint8 internal constant DK = 26;
    uint8 internal constant DV = 27;
    uint8 internal constant ROPE_BACK = 28;
    uint8 internal constant GRAD_SUM = 29;
    uint8 internal constant TOKENS = 30;
    uint8 internal constant ADAM_M = 31;
    uint8 internal constant ADAM_V = 32;
    uint8 internal constant ADAM_W = 33;
    uint8 internal constant STEP = 34;
    uint8 internal constant STATE_HASH = 35;
    /// @notice The full fine-tune's own ops (docs/protocol.md §9, "Full fine-tuning").
    uint8 internal constant REQUANT = 45;
    uint8 internal constant NORM_N = 46;
    uint8 internal constant GAMMA_GRAD = 47;
    uint8 internal constant BIAS_GRAD = 48;
    uint8 internal constant EMBED_GRAD = 49;
    uint8 internal constant POS_GRAD = 50;

    /// @notice The constants of a step's formulas (spec and step number fix them all).
    struct Params {
        uint256 heads;
        uint256 kvHeads;
        uint256 headDim;
        int256 epsQ40;
        bool center;
        int256 scale;
        int256 beta1;
        int256 beta2;
        int256 lrT;
        int256 epsT;
    }

    /// @notice What the formulas need of an op: its kind, shape, constant and the row count of
    ///         each input.
    struct Op {
        uint8 kind;
        uint256 rows;
        uint256 cols;
        int256 arg;
        uint256[] inputRows;
    }

    /// @notice The op has no element formula (the state hash) or an unknown kind.
    error NoElement(uint8 kind);

    /// @notice Which row of each input element `(r, c)` of `op` reads, in input order.
    ///         `sample` is the dataset row of the op's batch slot and `data` that row.
    function inputRows(
        Op memory op,
        Params memory p,
        uint256 r,
        uint256 c,
        uint256 sample,
        bytes calldata data
    ) internal pure returns (uint256[] memory idx) {
        uint8 k = op.kind;
        if (k >= LmVocab.TRANSPOSE_CHUNK && k < REQUANT) return LmVocab.inputRows(op, r, c, sample);
        uint256 n = op.inputRows.length;
        idx = new uint256[](n);
        if (k == GAMMA_GRAD || k == BIAS_GRAD || k == EMBED_GRAD) {
            // A column of the signal (and of the normalized rows), or the slot's data row first.
            (idx[0], idx[n - 1]) = (k == EMBED_GRAD ? sample : c / 2, c / 2);
        } else if (k == POS_GRAD) {
            idx[0] = r < op.inputRows[0] ? r : op.inputRows[0] - 1;
        } else if (k == EMBED) {
            idx[0] = sample;
            idx[1] = uint256(ExactOps.get(data, 1 + r));
            if (n == 3) idx[2] = r;
        } else if (k == NORM || k == LINEAR) {
            idx[0] = r;
            if (k == LINEAR) idx[1] = c;
        } else if (k == XENT) {
            idx[0] = r;
            idx[1] = sample;
        } else if (k == TOKENS) {
            idx[n - 1] = sample;
        } else if (k == ADAM_M || k == ADAM_V) {
            (idx[0], idx[1]) = (r, r);
        } else if (k == TRANSPOSE || k == TRANSPOSE_EXP) {
            idx[0] = c;
        } else if (k == GROUP_T) {
            idx[0] = c % op.inputRows[0];
        } else if (k == SCORE) {
            (idx[0], idx[1]) = (r / p.heads, c);
        } else if (k == ATTEND_RAW || k == DQ) {
            uint256 i = k == DQ ? c : c / 2;
            uint256 h = i / p.headDim;
            idx[0] = r * p.heads + h;
            // Index arithmetic: the floor is the key/value head of query head h, on purpose.
            // slither-disable-next-line divide-before-multiply
            idx[1] = h / (p.heads / p.kvHeads) * p.headDim + i % p.headDim;
        } else if (k == INPUT_GRAD) {
            (idx[0], idx[1], idx[2]) = (r, c, op.inputRows[1] - 1);
        } else if (k == WEIGHT_GRAD) {
            (idx[0], idx[1], idx[2], idx[3]) = (r, op.inputRows[0] - 1, c / 2, op.inputRows[2] - 1);
        } else if (k == SCORE_GRAD) {
            (idx[0], idx[1], idx[2], idx[3]) = (r, r / p.heads, c, r / p.heads);
        } else if (k == DK || k == DV) {
            (idx[0], idx[1]) = (r, c);
        } else if (k == STEP || k == STATE_HASH) {
            return idx;
        } else {
            // Every other op reads row r of each input (norm weights and biases: their one row).
            for (uint256 i = 0; i < n; ++i) {
                idx[i] = op.inputRows[i] == 1 ? 0 : r;
            }
        }
        if (k == NORM) {
            for (uint256 i = 1; i < n; ++i) {
                idx[i] = 0;
            }
        }
    }

    /// @notice Element `(r, c)` of `op` from the rows `inputRows` names, each proven by the
    ///         caller against its input's root.
    function element(Op memory op, Params memory p, uint256 r, uint256 c, bytes[] calldata rows)
        internal
        pure
        returns (int256)
    {
        uint8 k = op.kind;
        if (k >= REQUANT) return _full(op, p, r, c, rows);
        if (k >= LmVocab.TRANSPOSE_CHUNK) return LmVocab.element(op, r, c, rows);
        if (k <= XENT) return _forward(op, p, r, c, rows);
        if (k <= ROPE_BACK) return _backward(op, p, r, c, rows);
        return _update(op, p, c, rows);
    }

    function _forward(Op memory op, Params memory p, uint256 r, uint256 c, bytes[] calldata rows)
        private
        pure
        returns (int256)
    {
        uint8 k = op.kind;
        if (k == EMBED) {
            int256 v = _gather(rows[1], c);
            return rows.length == 3 ? LmOps.add(v, _gather(rows[2], c)) : v;
        }
        if (k == NORM) {
            int256 beta = rows.length == 3 ? ExactOps.get(rows[2], c) : int256(0);
            return LmOps.norm(rows[0], c, ExactOps.get(rows[1], c), beta, p.epsQ40, p.center);
        }
        if (k == LINEAR) {
            int256 bias = rows.length == 3 ? ExactOps.get(rows[2], c) : int256(0);
            return LmOps.linear(rows[0], rows[1], _last(rows[1]), bias);
        }
        if (k == QUANT) {
            int256 e = LmOps.rowExp(rows[0]);
            if (c < rows[0].length / 4) return LmOps.mant(ExactOps.get(rows[0], c), e);
            return 24 - e - op.arg;
        }
        if (k == ADD) return LmOps.add(ExactOps.get(rows[0], c), ExactOps.get(rows[1], c));
        if (k == ROPE) return _rope(p.headDim, c, rows, false);
        if (k == SCORE || k == SOFTMAX) return _attention(op, p, r, c, rows);
        if (k == TRANSPOSE) return ExactOps.get(rows[0], r);
        if (k == TRANSPOSE_EXP) {
            return r < rows[0].length / 4 ? ExactOps.get(rows[0], r) : LmOps.rowExp(rows[0]);
        }
        if (k == ATTEND_RAW) {
            uint256 n = 4 * (r + 1);
            return half(ExactOps.dot(rows[0][:n], rows[1][:n]), c);
        }
        if (k == ROUND_ATTN) return ExactOps.clamp(ExactOps.rs(join(rows[0], c), 16), LmOps.ACT_MAX);
        if (k == SWIGLU) return LmOps.swiglu(ExactOps.get(rows[0], c), ExactOps.get(rows[1], c));
        if (k == GELU) return LmOps.gelu(ExactOps.get(rows[0], c));
        return _xent(r, c, rows);
    }

    function _attention(Op memory op, Params memory p, uint256 r, uint256 c, bytes[] calldata rows)
        private
        pure
        returns (int256)
    {
        uint256 t = r / p.heads;
        if (c > t) return 0;
        if (op.kind == SOFTMAX) return LmOps.softmax(rows[0][:4 * (t + 1)], c);
        uint256 hd4 = 4 * p.headDim;
        uint256 h = r % p.heads;
        uint256 g = h / (p.heads / p.kvHeads);
        return LmOps.score(rows[0][h * hd4:(h + 1) * hd4], rows[1][g * hd4:(g + 1) * hd4]);
    }

    function _xent(uint256 r, uint256 c, bytes[] calldata rows) private pure returns (int256) {
        int256 prompt = ExactOps.get(rows[1], 0);
        if (int256(r + 1) < (prompt > 1 ? prompt : int256(1))) return 0;
        return LmGrads.xentGrad(rows[0], uint256(ExactOps.get(rows[1], r + 2)), c);
    }

    function _backward(Op memory op, Params memory p, uint256 r, uint256 c, bytes[] calldata rows)
        private
        pure
        returns (int256)
    {
        uint8 k = op.kind;
        if (k == INPUT_GRAD) return LmGrads.inputGrad(rows[0], rows[1], rows[2]);
        if (k == WEIGHT_GRAD) return half(_weightGrad(op.arg, rows), c);
        if (k == NORM_BACK) return LmGrads.normBackward(rows[0], rows[1], rows[2], p.epsQ40, p.center, c);
        if (k == ADD_GRAD) {
            return ExactOps.clamp(ExactOps.get(rows[0], c) + ExactOps.get(rows[1], c), LmGrads.GRAD_MAX);
        }
        if (k == SWIGLU_BACK_GATE || k == SWIGLU_BACK_UP) {
            (int256 dg, int256 du) = LmGrads.swigluBackward(
                ExactOps.get(rows[0], c), ExactOps.get(rows[1], c), ExactOps.get(rows[2], c)
            );
            return k == SWIGLU_BACK_GATE ? dg : du;
        }
        if (k == GELU_BACK) return LmGrads.geluBackward(ExactOps.get(rows[0], c), ExactOps.get(rows[1], c));
        if (k == SCORE_GRAD) return _scoreGrad(p, r, c, rows);
        if (k == GROUP_T) {
            uint256 t = op.inputRows[0];
            uint256 n = p.heads / p.kvHeads;
            uint256 g = r / p.headDim;
            // Index arithmetic: the floors are head and position indexes, on purpose.
            // slither-disable-next-line divide-before-multiply
            return ExactOps.get(rows[0], (g * n + c / t) * p.headDim + r % p.headDim);
        }
        if (k == DQ) return LmGrads.queryGrad(rows[0], rows[1], p.headDim);
        if (k == DK || k == DV) return _keyValue(op, p, c, rows);
        if (k == ROPE_BACK) return _rope(p.headDim, c, rows, true);
        revert NoElement(k);
    }

    function _weightGrad(int256 sigma, bytes[] calldata rows) private pure returns (int256) {
        return LmGrads.weightGrad(rows[0], rows[1], rows[2], rows[3], sigma);
    }

    /// @dev The signal of score `c` of query row `r`: `P` from the raw attention sums.
    function _scoreGrad(Params memory p, uint256 r, uint256 c, bytes[] calldata rows)
        private
        pure
        returns (int256)
    {
        int256 pj = ExactOps.get(rows[0], c);
        if (c > r / p.heads || pj == 0) return 0;
        uint256 hd = p.headDim;
        uint256 h = r % p.heads;
        uint256 g = h / (p.heads / p.kvHeads);
        bytes calldata dOut = rows[1][4 * h * hd:4 * (h + 1) * hd];
        int256 dp = ExactOps.dot(dOut, rows[2][4 * g * hd:4 * (g + 1) * hd]);
        int256 total = 0;
        for (uint256 i = 0; i < hd; ++i) {
            total += ExactOps.get(dOut, i) * join(rows[3], h * hd + i);
        }
        return ExactOps.clamp(ExactOps.rs(pj * ((dp << 16) - total), 44), LmGrads.GRAD_MAX);
    }

    /// @dev `dk` or `dv` of position `r` at column `c`: a sum over the queries of `c`'s head.
    function _keyValue(Op memory op, Params memory p, uint256 c, bytes[] calldata rows)
        private
        pure
        returns (int256)
    {
        uint256 n = p.heads / p.kvHeads;
        // Index arithmetic: the first query head of column c's key/value head.
        // slither-disable-next-line divide-before-multiply
        int256 acc = LmRows.groupDot(rows[0], rows[1], op.rows, p.heads, c / p.headDim * n, n);
        if (op.kind == DK) return ExactOps.clamp(ExactOps.rs(acc * p.scale, 28), LmGrads.GRAD_MAX);
        return ExactOps.clamp(ExactOps.rs(acc, 16), LmGrads.GRAD_MAX);
    }

    function _update(Op memory op, Params memory p, uint256 c, bytes[] calldata rows)
        private
        pure
        returns (int256)
    {
        uint8 k = op.kind;
        if (k == GRAD_SUM) return half(join(rows[0], c / 2) + join(rows[1], c / 2), c);
        if (k == TOKENS) {
            int256 prev = rows.length == 2 ? ExactOps.get(rows[0], 0) : int256(0);
            return prev + _scored(rows[rows.length - 1]);
        }
        if (k == ADAM_M || k == ADAM_V) {
            int256 n = ExactOps.get(rows[2], 0);
            int256 g = LmOps.rdiv(join(rows[1], c / 2), n > 1 ? n : int256(1));
            int256 m = join(rows[0], c / 2);
            return
                half(
                    k == ADAM_M ? LmGrads.firstMoment(p.beta1, m, g) : LmGrads.secondMoment(p.beta2, m, g), c
                );
        }
        if (k == ADAM_W) {
            return
                LmGrads.descend(ExactOps.get(rows[0], c), join(rows[1], c), join(rows[2], c), p.lrT, p.epsT);
        }
        if (k == STEP) return ExactOps.get(rows[0], 0) + 1;
        revert NoElement(k);
    }

    /// @dev The full fine-tune's own ops: a vector master read back (`requant`), a norm's
    ///      normalized rows, and the gradients of γ, of a bias or β, of the embedding table and
    ///      of the learned positions (64-bit sums as halves).
    function _full(Op memory op, Params memory p, uint256 r, uint256 c, bytes[] calldata rows)
        private
        pure
        returns (int256)
    {
        uint8 k = op.kind;
        if (k == REQUANT) {
            int256 bound = op.arg == 8 ? LmOps.GAMMA_MAX : LmOps.ACT_MAX;
            return ExactOps.clamp(LmOps.sh(ExactOps.get(rows[0], c), op.arg), bound);
        }
        if (k == NORM_N) return LmGrads.normalized(rows[0], p.epsQ40, p.center, c);
        if (k == POS_GRAD) {
            return r < op.inputRows[0] ? half(ExactOps.get(rows[0], c / 2) << 8, c) : int256(0);
        }
        if (k == GAMMA_GRAD) {
            return half(ExactOps.clamp(LmRows.gammaSum(rows[0], rows[1]), LmGrads.GSUM_MAX), c);
        }
        if (k == BIAS_GRAD) return half(LmRows.sum(rows[0]) << 8, c);
        if (k == EMBED_GRAD) return half(LmRows.tokenSum(rows[0], rows[1], r) << 8, c);
        revert NoElement(k);
    }

    /// @dev Scored targets of a data row `[prompt, tokens…]`: `max(0, n − max(prompt, 1))`.
    function _scored(bytes calldata data) private pure returns (int256) {
        int256 prompt = ExactOps.get(data, 0);
        int256 n = int256(data.length / 4) - 1;
        int256 s = n - (prompt > 1 ? prompt : int256(1));
        return s > 0 ? s : int256(0);
    }

    /// @dev Element `c` of the rotation (or its inverse) of each head of row 0.
    function _rope(uint256 hd, uint256 c, bytes[] calldata rows, bool back) private pure returns (int256) {
        uint256 half = hd / 2;
        uint256 i = c % hd;
        uint256 lo = c - i + (i < half ? i : i - half);
        uint256 j = i < half ? i : i - half;
        (int256 a, int256 b) = (ExactOps.get(rows[0], lo), ExactOps.get(rows[0], lo + half));
        (int256 cs, int256 sn) = (ExactOps.get(rows[1], j), ExactOps.get(rows[2], j));
        (int256 x, int256 y) = back ? LmGrads.ropeBackward(a, b, cs, sn) : LmOps.rope(a, b, cs, sn);
        return i < half ? x : y;
    }

    /// @dev A table row's value `c` as an activation: its shift is the row's last value.
    function _gather(bytes calldata row, uint256 c) private pure returns (int256) {
        return LmOps.gather(ExactOps.get(row, c), _last(row));
    }

    function _last(bytes calldata row) private pure returns (int256) {
        return ExactOps.get(row, row.length / 4 - 1);
    }

    /// @notice The 64-bit value `i` of a row of halves.
    function join(bytes calldata row, uint256 i) internal pure returns (int256) {
        int256 lo = ExactOps.get(row, 2 * i);
        if (lo < 0) lo += int256(1) << 32;
        return ExactOps.get(row, 2 * i + 1) * (int256(1) << 32) + lo;
    }

    /// @notice Column `c` of a 64-bit value laid out as halves.
    function half(int256 v, uint256 c) internal pure returns (int256) {
        if (c % 2 == 1) return v >> 32;
        int256 lo = v & int256(0xffffffff);
        return lo >= int256(1) << 31 ? lo - (int256(1) << 32) : lo;
    }
}
