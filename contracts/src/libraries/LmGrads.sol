// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {ExactOps} from "./ExactOps.sol";
import {LmOps} from "./LmOps.sol";
import {LmTables} from "./LmTables.sol";

/// @title LmGrads
/// @notice One output element of each backward op of exact-mode fine-tuning and of the exact
///         Adam update (docs/exact-ops.md, "Fine-tuning"), recomputed from the rows it reads,
///         bit for bit with the engine (`crates/lm/src/train`). Rows are packed `i32`
///         little-endian. Signals are Q24, clamped to `±2^30`.
library LmGrads {
    /// @notice Signals are clamped to `±2^30`.
    int256 internal constant GRAD_MAX = 1 << 30;
    /// @notice A sequence's weight-gradient sum is clamped to `±2^50`.
    int256 internal constant GSUM_MAX = 1 << 50;
    /// @notice Weight gradients are clamped to `±2^38` before Adam.
    int256 internal constant G_MAX = 1 << 38;
    /// @notice Adam's first moments are clamped to `±2^40`.
    int256 internal constant M_MAX = 1 << 40;
    /// @notice Adam's second moments are capped at `2^62`.
    int256 internal constant V_MAX = 1 << 62;
    /// @notice LoRA master values are clamped to `±(2^30 - 1)`.
    int256 internal constant W_MAX = (1 << 30) - 1;

    /// @notice The loss signal of logit `j` of a scored position whose target is `target`.
    function xentGrad(bytes calldata z, uint256 target, uint256 j) internal pure returns (int256) {
        uint256 n = z.length / 4;
        int256 max = type(int256).min;
        for (uint256 i = 0; i < n; ++i) {
            int256 s = _score(z, i);
            if (s > max) max = s;
        }
        int256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            total += LmOps.expWeight(max - _score(z, i));
        }
        int256 p = LmOps.rdiv(LmOps.expWeight(max - _score(z, j)) << 24, total);
        return p - (j == target ? int256(1 << 24) : int256(0));
    }

    function _score(bytes calldata z, uint256 i) private pure returns (int256) {
        return ExactOps.clamp(ExactOps.rs(ExactOps.get(z, i), 2), LmOps.SCORE_MAX);
    }

    /// @notice `linear`'s signal to input `k`, from the output signal row `dy`, column `k` of
    ///         the weight integers (`q[j][k]` for every output `j`) and every row's shift.
    function inputGrad(bytes calldata dy, bytes calldata qCol, bytes calldata shifts)
        internal
        pure
        returns (int256)
    {
        int256 smin = _minShift(shifts);
        int256 e = LmOps.rowExp(dy);
        int256 acc = 0;
        for (uint256 j = 0; j < dy.length / 4; ++j) {
            acc += _inputTerm(ExactOps.get(dy, j), ExactOps.get(qCol, j), ExactOps.get(shifts, j) - smin, e);
        }
        return ExactOps.clamp(LmOps.sh(acc, smin - e), GRAD_MAX);
    }

    /// @dev `rs(m_j, s_j - s_min) * q_jk`, 0 past a shift of 62.
    function _inputTerm(int256 dyj, int256 q, int256 t, int256 e) private pure returns (int256) {
        if (t > 62) return 0;
        return ExactOps.rs(LmOps.mant(dyj, e), uint256(t)) * q;
    }

    function _minShift(bytes calldata shifts) private pure returns (int256 smin) {
        smin = type(int256).max;
        for (uint256 j = 0; j < shifts.length / 4; ++j) {
            int256 s = ExactOps.get(shifts, j);
            if (s < smin) smin = s;
        }
    }

    /// @notice A sequence's weight gradient `(j, k)`: column `j` of the output signals and
    ///         column `k` of the inputs over the sequence's rows, with each row's row-quantizer
    ///         exponent (`f` of the signal rows, `e` of the input rows; a dispute opens them
    ///         with their rows), and the scale `sigma`.
    function weightGrad(
        bytes calldata dyCol,
        bytes calldata f,
        bytes calldata xCol,
        bytes calldata e,
        int256 sigma
    ) internal pure returns (int256) {
        int256 big = type(int256).min;
        for (uint256 t = 0; t < dyCol.length / 4; ++t) {
            int256 fe = ExactOps.get(f, t) + ExactOps.get(e, t);
            if (fe > big) big = fe;
        }
        int256 acc = 0;
        for (uint256 t = 0; t < dyCol.length / 4; ++t) {
            acc += _weightTerm(
                ExactOps.get(dyCol, t), ExactOps.get(f, t), ExactOps.get(xCol, t), ExactOps.get(e, t), big
            );
        }
        return ExactOps.clamp(LmOps.sh(acc, 4 - big - sigma), GSUM_MAX);
    }

    /// @dev `rs(g_t * m_t, min(F - f_t - e_t, 62))`.
    function _weightTerm(int256 dy, int256 ft, int256 x, int256 et, int256 big)
        private
        pure
        returns (int256)
    {
        int256 prod = LmOps.mant(dy, ft) * LmOps.mant(x, et);
        return ExactOps.rs(prod, Math.min(uint256(big - ft - et), 62));
    }

    /// @notice What a norm's backward element needs of its rows besides the element itself.
    struct NormRow {
        int256 mean;
        int256 e;
        int256 inv;
        int256 f;
        int256 mu1;
        int256 mu2;
    }

    /// @notice A norm's signal to input `k` from `rows`: its input row `x`, its output signal
    ///         row `dy` and its scale row `gamma` (RMSNorm, or LayerNorm with `center`).
    function normBackward(bytes[3] calldata rows, int256 eps, bool center, uint256 k)
        internal
        pure
        returns (int256)
    {
        NormRow memory r = _forward(rows[0], eps, center);
        _means(rows, r, center);
        int256 gk = LmOps.mant(_dn(rows[1], rows[2], k), r.f);
        int256 nk = ExactOps.rs(LmOps.mant(_centred(rows[0], k, r.mean), r.e) * r.inv, 16);
        int256 t = gk - r.mu1 - ExactOps.rs(nk * r.mu2, 32);
        return ExactOps.clamp(LmOps.sh(t * r.inv, 20 + r.e - r.f), GRAD_MAX);
    }

    /// @dev The forward's mean (LayerNorm), row exponent and `inv`.
    function _forward(bytes calldata x, int256 eps, bool center) private pure returns (NormRow memory r) {
        uint256 n = x.length / 4;
        r.mean = center ? LmOps.rdiv(ExactOps.sum(x), int256(n)) : int256(0);
        uint256 max = 0;
        for (uint256 i = 0; i < n; ++i) {
            int256 c = _centred(x, i, r.mean);
            uint256 a = uint256(c < 0 ? -c : c);
            if (a > max) max = a;
        }
        r.e = int256(max == 0 ? 0 : Math.log2(max) + 1) - 15;
        int256 s = 0;
        for (uint256 i = 0; i < n; ++i) {
            int256 m = LmOps.mant(_centred(x, i, r.mean), r.e);
            s += m * m;
        }
        int256 epsTerm = r.e <= 0 ? eps << uint256(-2 * r.e) : eps >> uint256(2 * r.e);
        int256 root = int256(Math.sqrt(uint256((s << 16) / int256(n) + epsTerm)));
        if (root < 1) root = 1;
        r.inv = (int256(1) << 40) / root;
    }

    /// @dev The signal row's exponent `f`, `mu1` (LayerNorm) and `mu2`, into `r`.
    function _means(bytes[3] calldata rows, NormRow memory r, bool center) private pure {
        uint256 n = rows[0].length / 4;
        uint256 max = 0;
        for (uint256 i = 0; i < n; ++i) {
            int256 v = _dn(rows[1], rows[2], i);
            uint256 a = uint256(v < 0 ? -v : v);
            if (a > max) max = a;
        }
        r.f = int256(max == 0 ? 0 : Math.log2(max) + 1) - 15;
        int256 dot = 0;
        int256 gsum = 0;
        for (uint256 i = 0; i < n; ++i) {
            int256 g = LmOps.mant(_dn(rows[1], rows[2], i), r.f);
            dot += g * ExactOps.rs(LmOps.mant(_centred(rows[0], i, r.mean), r.e) * r.inv, 16);
            gsum += g;
        }
        r.mu2 = ExactOps.clamp(LmOps.rdiv(dot, int256(n)), int256(1) << 32);
        r.mu1 = center ? LmOps.rdiv(gsum, int256(n)) : int256(0);
    }

    function _centred(bytes calldata x, uint256 i, int256 mean) private pure returns (int256) {
        return ExactOps.clamp(ExactOps.get(x, i) - mean, LmOps.ACT_MAX);
    }

    function _dn(bytes calldata dy, bytes calldata gamma, uint256 i) private pure returns (int256) {
        return ExactOps.clamp(ExactOps.rs(ExactOps.get(dy, i) * ExactOps.get(gamma, i), 16), GRAD_MAX);
    }

    /// @notice The signal of score `j` of one query row of one head: `p` its softmax weights
    ///         (Q16) over positions `0..n`, `dout` the signal of its output (Q24, `hd` wide) and
    ///         `v` the value rows of those positions (`n` rows of `hd`, Q12).
    function scoreGrad(bytes calldata p, bytes calldata dout, bytes calldata v, uint256 j)
        internal
        pure
        returns (int256)
    {
        int256 pj = ExactOps.get(p, j);
        if (pj == 0) return 0;
        uint256 hd = dout.length / 4;
        int256 total = 0;
        int256 dpj = 0;
        for (uint256 i = 0; i < p.length / 4; ++i) {
            int256 dp = ExactOps.dot(dout, v[i * 4 * hd:(i + 1) * 4 * hd]);
            total += ExactOps.get(p, i) * dp;
            if (i == j) dpj = dp;
        }
        return ExactOps.clamp(ExactOps.rs(pj * ((dpj << 16) - total), 44), GRAD_MAX);
    }

    /// @dev `isqrt(2^32 / hd)`: the score scale `C`.
    function _scale(uint256 hd) private pure returns (int256) {
        return int256(Math.sqrt((uint256(1) << 32) / hd));
    }

    /// @notice Element `d` of a query's signal: its row of score signals and dimension `d` of
    ///         the keys it saw, `clamp(rs(C * sum ds_j k_j[d], 28))`.
    function queryGrad(bytes calldata ds, bytes calldata kCol, uint256 hd) internal pure returns (int256) {
        return ExactOps.clamp(ExactOps.rs(_scale(hd) * ExactOps.dot(ds, kCol), 28), GRAD_MAX);
    }

    /// @notice Element `d` of a key's signal: the score signals of that key over the queries
    ///         that saw it and those queries' dimension `d`, `clamp(rs(C * sum ds_t q_t[d], 28))`.
    function keyGrad(bytes calldata dsCol, bytes calldata qCol, uint256 hd) internal pure returns (int256) {
        return ExactOps.clamp(ExactOps.rs(_scale(hd) * ExactOps.dot(dsCol, qCol), 28), GRAD_MAX);
    }

    /// @notice Element `d` of a value's signal: the weights of that position over the queries
    ///         that saw it and their output signals at `d`, `clamp(rs(sum p_t do_t[d], 16))`.
    function valueGrad(bytes calldata pCol, bytes calldata doCol) internal pure returns (int256) {
        return ExactOps.clamp(ExactOps.rs(ExactOps.dot(pCol, doCol), 16), GRAD_MAX);
    }

    /// @notice Rotary embedding's signal for the pair `(a, b)` = `(dy_i, dy_(i+h))`.
    function ropeBackward(int256 a, int256 b, int256 c, int256 s) internal pure returns (int256, int256) {
        return (
            ExactOps.clamp(ExactOps.rs(a * c + b * s, 16), GRAD_MAX),
            ExactOps.clamp(ExactOps.rs(b * c - a * s, 16), GRAD_MAX)
        );
    }

    /// @notice SwiGLU's signals `(dg, du)` to its gate and up values from its output's `da`.
    function swigluBackward(int256 g, int256 u, int256 da) internal pure returns (int256 dg, int256 du) {
        int256 sig = LmOps.sigmoid(ExactOps.rs(g, 2));
        int256 silu = ExactOps.rs(g * sig, 16);
        du = ExactOps.clamp(ExactOps.rs(da * silu, 12), GRAD_MAX);
        int256 dsilu = sig + ExactOps.rs(g * (sig * ((1 << 16) - sig)), 28);
        int256 t = ExactOps.clamp(ExactOps.rs(da * u, 12), GRAD_MAX);
        dg = ExactOps.clamp(ExactOps.rs(t * dsilu, 16), GRAD_MAX);
    }

    /// @notice GELU's signal to its input from its output's `da`.
    function geluBackward(int256 x, int256 da) internal pure returns (int256) {
        int256 xc = ExactOps.clamp(x, 1 << 16);
        (int256 k1, int256 k2) = (LmTables.GELU_K1, LmTables.GELU_K2);
        int256 v = ExactOps.rs((xc << 24) + ExactOps.rs(k2 * xc * xc * xc, 16), 26);
        int256 sig = LmOps.sigmoid(ExactOps.rs(k1 * v, 16));
        int256 dz = ExactOps.rs(k1 * ((1 << 16) + 3 * ExactOps.rs(k2 * xc * xc, 24)), 16);
        int256 s1 = ExactOps.rs(sig * ((1 << 16) - sig), 16);
        int256 dgelu = sig + ExactOps.rs(ExactOps.rs(xc * s1, 12) * dz, 16);
        return ExactOps.clamp(ExactOps.rs(da * dgelu, 16), GRAD_MAX);
    }

    /// @notice One exact Adam update of a master value `w` (Q24) with moments `m` (Q32),
    ///         `v` (Q48) and gradient `g` (Q32), at the step's `lrT` (Q32) and `epsT` (Q32).
    function adam(int256 w, int256 m, int256 v, int256 g, int256 lrT, int256 epsT, int256 b1, int256 b2)
        internal
        pure
        returns (int256, int256, int256)
    {
        int256 one = 1 << 30;
        g = ExactOps.clamp(g, G_MAX);
        m = ExactOps.clamp(ExactOps.rs(b1 * m, 30) + ExactOps.rs((one - b1) * g, 30), M_MAX);
        v = ExactOps.rs(b2 * v, 30) + ExactOps.rs((one - b2) * ExactOps.rs(g * g, 16), 30);
        if (v > V_MAX) v = V_MAX;
        int256 denom = (int256(Math.sqrt(uint256(v) << 16)) + epsT) << 8;
        int256 step = LmOps.rdiv(lrT * m, denom);
        return (ExactOps.clamp(w - step, W_MAX), m, v);
    }
}
