// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ExpTable} from "./ExpTable.sol";

/// @title ExactOps
/// @notice One output element of each exact-mode op, bit for bit as docs/exact-ops.md specifies
///         and as `pedals_ml::dispute::element` computes it. Rows are passed as they are
///         committed: i32 little-endian, packed (docs/commitments.md §4), so a row's hash is the
///         keccak256 of the very bytes given here.
library ExactOps {
    uint8 internal constant GATHER_INPUTS = 0;
    uint8 internal constant GATHER_LABELS = 1;
    uint8 internal constant QUANTIZE = 2;
    uint8 internal constant TRANSPOSE = 3;
    uint8 internal constant LINEAR = 4;
    uint8 internal constant RELU = 5;
    uint8 internal constant SOFTMAX_XENT_GRAD = 6;
    uint8 internal constant WEIGHT_GRAD = 7;
    uint8 internal constant BIAS_GRAD = 8;
    uint8 internal constant INPUT_GRAD = 9;
    uint8 internal constant RELU_BACKWARD = 10;
    uint8 internal constant MOMENTUM = 11;
    uint8 internal constant DESCEND_WEIGHT = 12;
    uint8 internal constant DESCEND_BIAS = 13;
    uint8 internal constant STATE_HASH = 14;

    int256 internal constant ACT_MAX = 1024;
    int256 internal constant WQ_MAX = 2048;
    int256 internal constant GRAD_MAX = 1024;
    int256 internal constant W_MASTER_MAX = 32_768;
    int256 internal constant BIAS_MAX = 262_144;
    int256 internal constant VELOCITY_MAX = 262_144;

    /// @notice The numbers an element's formula needs besides its rows.
    struct Params {
        uint256 log2Batch;
        int256 lrQ12;
        int256 momentumQ12;
        uint256 features;
    }

    /// @notice A row index or an element index is outside the row.
    error ElementOutOfRange(uint256 index, uint256 length);
    /// @notice Two rows of a dot product differ in length.
    error LengthMismatch(uint256 a, uint256 b);
    /// @notice The op has no element formula.
    error NoElement(uint8 kind);

    /// @notice Element `(r, c)` of an op of `kind` from its input rows, in the order
    ///         `inputRows` names them.
    function element(uint8 kind, Params memory p, uint256 r, uint256 c, bytes[] calldata rows)
        internal
        pure
        returns (int256 v)
    {
        if (kind == GATHER_INPUTS) {
            if (c >= p.features) revert ElementOutOfRange(c, p.features);
            return get(rows[0], c);
        }
        if (kind == GATHER_LABELS) {
            if (c != 0) revert ElementOutOfRange(c, 1);
            return get(rows[0], p.features);
        }
        if (kind == QUANTIZE) return clamp(rs(get(rows[0], c), 4), WQ_MAX);
        if (kind == TRANSPOSE) return get(rows[0], r);
        if (kind == LINEAR) {
            return clamp(rs(dot(rows[0], rows[1]) + (get(rows[2], c) << 4), 12), ACT_MAX);
        }
        if (kind == RELU) {
            v = get(rows[0], c);
            return v > 0 ? v : int256(0);
        }
        if (kind == SOFTMAX_XENT_GRAD) return softmaxXentGrad(rows[0], get(rows[1], 0), c);
        if (kind == WEIGHT_GRAD) return rs(dot(rows[0], rows[1]), 2 + p.log2Batch);
        if (kind == BIAS_GRAD) return rs(sum(rows[0]) << 6, p.log2Batch);
        if (kind == INPUT_GRAD) return clamp(rs(dot(rows[0], rows[1]), 12), GRAD_MAX);
        if (kind == RELU_BACKWARD) {
            int256 a = get(rows[1], c);
            return a > 0 && a < ACT_MAX ? get(rows[0], c) : int256(0);
        }
        if (kind == MOMENTUM) {
            return clamp(rs(p.momentumQ12 * get(rows[0], c), 12) + get(rows[1], c), VELOCITY_MAX);
        }
        if (kind == DESCEND_WEIGHT || kind == DESCEND_BIAS) {
            int256 max = kind == DESCEND_WEIGHT ? W_MASTER_MAX : BIAS_MAX;
            return clamp(get(rows[0], c) - rs(p.lrQ12 * get(rows[1], c), 12), max);
        }
        revert NoElement(kind);
    }

    /// @notice `softmax_xent_grad` for element `c` of a row of logits `z` with label `label`.
    function softmaxXentGrad(bytes calldata z, int256 label, uint256 c) internal pure returns (int256) {
        int256 zc = get(z, c);
        if (zc == ACT_MAX || zc == -ACT_MAX) return 0;
        uint256 n = z.length / 4;
        int256 max = type(int256).min;
        for (uint256 j = 0; j < n; ++j) {
            int256 zj = get(z, j);
            if (zj > max) max = zj;
        }
        bytes memory table = ExpTable.TABLE;
        uint256 total = 0;
        for (uint256 j = 0; j < n; ++j) {
            total += ExpTable.entry(table, uint256(max - get(z, j)));
        }
        int256 prob = int256((ExpTable.entry(table, uint256(max - zc)) << 15) / total);
        int256 target = label == int256(c) ? int256(1 << 15) : int256(0);
        return rs(prob - target, 5);
    }

    /// @notice `rs(v, s)`: `(v + 2^(s-1)) >> s` with an arithmetic shift, `v` for `s = 0`.
    function rs(int256 v, uint256 s) internal pure returns (int256) {
        if (s == 0) return v;
        return (v + int256(1 << (s - 1))) >> s;
    }

    /// @notice `v` clamped to `[-max, max]`.
    function clamp(int256 v, int256 max) internal pure returns (int256) {
        if (v > max) return max;
        if (v < -max) return -max;
        return v;
    }

    /// @notice Element `j` of a packed i32 little-endian row.
    function get(bytes calldata row, uint256 j) internal pure returns (int256 v) {
        uint256 n = row.length / 4;
        if (j >= n) revert ElementOutOfRange(j, n);
        assembly ("memory-safe") {
            let w := shr(224, calldataload(add(row.offset, mul(j, 4))))
            let le :=
                or(
                    or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                    or(shr(8, and(w, 0xff0000)), shr(24, w))
                )
            v := signextend(3, le)
        }
    }

    /// @notice `Σ a[k]·b[k]` over two packed rows of the same length.
    function dot(bytes calldata a, bytes calldata b) internal pure returns (int256 acc) {
        if (a.length != b.length || a.length % 4 != 0) revert LengthMismatch(a.length, b.length);
        assembly ("memory-safe") {
            let end := add(a.offset, a.length)
            let delta := sub(b.offset, a.offset)
            for { let p := a.offset } lt(p, end) { p := add(p, 4) } {
                let wa := shr(224, calldataload(p))
                let wb := shr(224, calldataload(add(p, delta)))
                let x :=
                    signextend(
                        3,
                        or(
                            or(shl(24, and(wa, 0xff)), shl(8, and(wa, 0xff00))),
                            or(shr(8, and(wa, 0xff0000)), shr(24, wa))
                        )
                    )
                let y :=
                    signextend(
                        3,
                        or(
                            or(shl(24, and(wb, 0xff)), shl(8, and(wb, 0xff00))),
                            or(shr(8, and(wb, 0xff0000)), shr(24, wb))
                        )
                    )
                acc := add(acc, mul(x, y))
            }
        }
    }

    /// @notice `Σ a[k]` over a packed row.
    function sum(bytes calldata a) internal pure returns (int256 acc) {
        uint256 n = a.length / 4;
        for (uint256 j = 0; j < n; ++j) {
            acc += get(a, j);
        }
    }
}
