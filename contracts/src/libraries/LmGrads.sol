// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {ExactOps} from "./ExactOps.sol";
import {LmOps} from "./LmOps.sol";
import {LmRows} from "./LmRows.sol";
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
        LmOps.Exp memory t = LmOps.exps();
        (int256 max, int256 total) = LmRows.xentSums(z, t.hi, t.lo);
        int256 p = LmOps.rdiv(LmOps.expWeight(max - _score(z, j), t) << 24, total);
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
        int256 acc = LmRows.inputDot(dy, qCol, shifts, e, smin);
        return ExactOps.clamp(LmOps.sh(acc, smin - e), GRAD_MAX);
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
    function normBackward(
        bytes calldata x,
        bytes calldata dy,
        bytes calldata gamma,
        int256 eps,
        bool center,
        uint256 k
    ) internal pure returns (int256) {
        NormRow memory r = _forward(x, eps, center);
        _means(x, dy, gamma, r, center);
        return _normOut(r, LmOps.mant(_dn(dy, gamma, k), r.f), LmOps.mant(_centred(x, k, r.mean), r.e));
    }

    /// @notice The normalized value `n_k = rs(m_k · inv, 16)` (Q16) of a norm's input row `x`,
    ///         as its forward computes it (a full fine-tune's `norm_n`).
    function normalized(bytes calldata x, int256 eps, bool center, uint256 k) internal pure returns (int256) {
        NormRow memory r = _forward(x, eps, center);
        return ExactOps.rs(LmOps.mant(_centred(x, k, r.mean), r.e) * r.inv, 16);
    }

    /// @dev Output `k` of the norm's backward from its signal's and its input's mantissas.
    function _normOut(NormRow memory r, int256 gk, int256 mk) private pure returns (int256) {
        int256 nk = ExactOps.rs(mk * r.inv, 16);
        int256 t = gk - r.mu1 - ExactOps.rs(nk * r.mu2, 32);
        return ExactOps.clamp(LmOps.sh(t * r.inv, 20 + r.e - r.f), GRAD_MAX);
    }

    /// @dev The forward's mean (LayerNorm), row exponent and `inv`.
    function _forward(bytes calldata x, int256 eps, bool center) private pure returns (NormRow memory r) {
        uint256 n = x.length / 4;
        r.mean = center ? LmOps.rdiv(LmRows.sum(x), int256(n)) : int256(0);
        uint256 max = LmRows.centredMax(x, r.mean);
        r.e = int256(max == 0 ? 0 : Math.log2(max) + 1) - 15;
        int256 s = LmRows.centredSquares(x, r.mean, r.e);
        int256 epsTerm = r.e <= 0 ? eps << uint256(-2 * r.e) : eps >> uint256(2 * r.e);
        int256 root = int256(Math.sqrt(uint256((s << 16) / int256(n) + epsTerm)));
        if (root < 1) root = 1;
        r.inv = (int256(1) << 40) / root;
    }

    /// @dev The signal row's exponent `f`, `mu1` (LayerNorm) and `mu2`, into `r`.
    function _means(bytes calldata x, bytes calldata dy, bytes calldata gamma, NormRow memory r, bool center)
        private
        pure
    {
        r.f = _signalExp(dy, gamma);
        (int256 dot, int256 gsum) = _sums(x, dy, gamma, r);
        int256 n = int256(x.length / 4);
        r.mu2 = ExactOps.clamp(LmOps.rdiv(dot, n), int256(1) << 32);
        r.mu1 = center ? LmOps.rdiv(gsum, n) : int256(0);
    }

    /// @dev The row quantizer's exponent of the signal `dn = clamp(rs(dy·γ, 16))`.
    function _signalExp(bytes calldata dy, bytes calldata gamma) private pure returns (int256) {
        uint256 max = LmRows.signalMax(dy, gamma);
        return int256(max == 0 ? 0 : Math.log2(max) + 1) - 15;
    }

    /// @dev `Σ g_k·n_k` and `Σ g_k` over the row.
    function _sums(bytes calldata x, bytes calldata dy, bytes calldata gamma, NormRow memory r)
        private
        pure
        returns (int256 dot, int256 gsum)
    {
        return LmRows.normSums(x, dy, gamma, [r.mean, r.e, r.inv, r.f]);
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
        m = firstMoment(b1, m, g);
        v = secondMoment(b2, v, g);
        return (descend(w, m, v, lrT, epsT), m, v);
    }

    /// @notice `β^n` in Q30 by squaring, each product rounded (docs/exact-ops.md, Adam).
    function pow30(int256 beta, uint256 n) internal pure returns (int256 r) {
        r = int256(1) << 30;
        int256 b = beta;
        while (n > 0) {
            if (n & 1 == 1) r = ExactOps.rs(r * b, 30);
            b = ExactOps.rs(b * b, 30);
            n >>= 1;
        }
    }

    /// @notice An Adam schedule's terms (Q32 rates, Q30 betas, Q32 ε), as a spec holds them.
    struct AdamTerms {
        int256 lr;
        int256 lrEnd;
        int256 beta1;
        int256 beta2;
        int256 eps;
        uint256 warmup;
        uint256 steps;
    }

    /// @notice Step `t`'s scheduled rate: linear warm-up, then linear decay to `lrEnd`.
    function rate(AdamTerms memory a, uint256 t) internal pure returns (int256) {
        if (t < a.warmup) return LmOps.rdiv(a.lr * int256(t + 1), int256(a.warmup));
        if (a.steps == a.warmup) return a.lr;
        uint256 done = Math.min(t + 1 - a.warmup, a.steps - a.warmup);
        return a.lr - LmOps.rdiv((a.lr - a.lrEnd) * int256(done), int256(a.steps - a.warmup));
    }

    /// @notice Step `t`'s rate and ε with the bias corrections folded in (`lr_t`, `ε_t`, Q32).
    function scalars(AdamTerms memory a, uint256 t) internal pure returns (int256 lrT, int256 epsT) {
        int256 c1 = (int256(1) << 30) - pow30(a.beta1, t + 1);
        int256 c2 = (int256(1) << 30) - pow30(a.beta2, t + 1);
        int256 r2 = int256(Math.sqrt(uint256(c2) << 30));
        lrT = (2 * rate(a, t) * r2 + c1) / (2 * c1);
        epsT = ExactOps.rs(a.eps * r2, 30);
        if (epsT < 1) epsT = 1;
    }

    /// @notice Adam's new first moment: `clamp(rs(β1·m, 30) + rs((2^30 − β1)·g, 30), ±M_MAX)`,
    ///         `g` clamped to `±G_MAX` first.
    function firstMoment(int256 b1, int256 m, int256 g) internal pure returns (int256) {
        g = ExactOps.clamp(g, G_MAX);
        return ExactOps.clamp(ExactOps.rs(b1 * m, 30) + ExactOps.rs(((1 << 30) - b1) * g, 30), M_MAX);
    }

    /// @notice Adam's new second moment: `min(rs(β2·v, 30) + rs((2^30 − β2)·rs(g², 16), 30),
    ///         V_MAX)`, `g` clamped to `±G_MAX` first.
    function secondMoment(int256 b2, int256 v, int256 g) internal pure returns (int256) {
        g = ExactOps.clamp(g, G_MAX);
        v = ExactOps.rs(b2 * v, 30) + ExactOps.rs(((1 << 30) - b2) * ExactOps.rs(g * g, 16), 30);
        return v > V_MAX ? V_MAX : v;
    }

    /// @notice The new master value from the new moments:
    ///         `clamp(w − rdiv(lrT·m, (isqrt(v·2^16) + epsT)·2^8), ±W_MAX)`.
    function descend(int256 w, int256 m, int256 v, int256 lrT, int256 epsT) internal pure returns (int256) {
        int256 denom = (int256(Math.sqrt(uint256(v) << 16)) + epsT) << 8;
        return ExactOps.clamp(w - LmOps.rdiv(lrT * m, denom), W_MAX);
    }
}
