// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {ExactOps} from "./ExactOps.sol";
import {LmRows} from "./LmRows.sol";
import {LmTables} from "./LmTables.sol";

/// @title LmOps
/// @notice One output element of each exact transformer op (docs/exact-ops.md,
///         "Transformers"), recomputed from the rows it reads, bit for bit with the engine
///         (`crates/lm/src/exact`); the referee of a language model's dispute. Rows are packed
///         `i32` little-endian, as the engine commits them (commitments.md §4); every
///         intermediate is an `int256`, which holds every bound the page states.
library LmOps {
    /// @notice Activations and every op's output: Q12, clamped to `±2^29`.
    int256 internal constant ACT_MAX = 1 << 29;
    /// @notice A norm's γ: Q16, clamped to `±2^30`.
    int256 internal constant GAMMA_MAX = 1 << 30;
    /// @notice Attention scores: Q10, clamped to `±2^24`.
    int256 internal constant SCORE_MAX = 1 << 24;
    /// @notice The largest mantissa of a row-quantized value.
    int256 internal constant MANT_MAX = 32_767;
    /// @notice Score differences at or beyond this weigh nothing in a softmax.
    int256 internal constant EXP_CUTOFF = 1 << 14;

    /// @notice `sh(v, t)`: `rs(v, t)` for `t > 0`, `v * 2^(-t)` otherwise (saturated at
    ///         `±2^62` as the engine does; every caller clamps far below that).
    function sh(int256 v, int256 t) internal pure returns (int256) {
        if (t > 0) return ExactOps.rs(v, uint256(t));
        uint256 u = uint256(-t);
        int256 sat = int256(1) << 62;
        if (u >= 62 || (v < 0 ? -v : v) >= sat >> u) {
            if (v == 0) return 0;
            return v > 0 ? sat : -sat;
        }
        return v << u;
    }

    /// @notice `floor((2a + b) / (2b))` for any sign of `a`, `b > 0`: `a / b` rounded half up.
    function rdiv(int256 a, int256 b) internal pure returns (int256) {
        int256 n = 2 * a + b;
        int256 d = 2 * b;
        int256 q = n / d;
        if (n % d != 0 && n < 0) q -= 1;
        return q;
    }

    /// @notice The row quantizer's exponent: `bitlen(max |x|) - 15`.
    function rowExp(bytes calldata x) internal pure returns (int256) {
        uint256 max = LmRows.maxAbs(x);
        return int256(max == 0 ? 0 : Math.log2(max) + 1) - 15;
    }

    /// @notice The mantissa of `v` in a row of exponent `e`.
    function mant(int256 v, int256 e) internal pure returns (int256) {
        if (e <= 0) return v << uint256(-e);
        return ExactOps.clamp(ExactOps.rs(v, uint256(e)), MANT_MAX);
    }

    /// @notice `gather(E, v)` element `k`: `clamp(sh(q[v][k], s_v - 12), ACT_MAX)`.
    function gather(int256 q, int256 shift) internal pure returns (int256) {
        return ExactOps.clamp(sh(q, shift - 12), ACT_MAX);
    }

    /// @notice `linear(x, W, b)` output `j`, from the input row and weight row `j` (its
    ///         integers, its shift and its bias): `clamp(sh(sum m_k q_jk, s_j - e) + b_j)`.
    function linear(bytes calldata x, bytes calldata q, int256 shift, int256 bias)
        internal
        pure
        returns (int256)
    {
        int256 e = rowExp(x);
        int256 acc = LmRows.mantDot(x, e, q);
        return ExactOps.clamp(sh(acc, shift - e) + bias, ACT_MAX);
    }

    /// @notice RMSNorm (`center` false, `beta` 0) or LayerNorm of row `x`, output `k`.
    function norm(bytes calldata x, uint256 k, int256 gamma, int256 beta, int256 eps, bool center)
        internal
        pure
        returns (int256)
    {
        int256 d = int256(x.length / 4);
        int256 mean = center ? rdiv(LmRows.sum(x), d) : int256(0);
        int256 e = _centredExp(x, mean);
        (int256 s, int256 mk) = _squares(x, mean, e, k);
        int256 epsTerm = e <= 0 ? eps << uint256(-2 * e) : eps >> uint256(2 * e);
        int256 r = int256(Math.sqrt(uint256((s << 16) / d + epsTerm)));
        if (r < 1) r = 1;
        // The page defines inv = floor(2^40 / R) first, then n_k = rs(m_k * inv, 16).
        // slither-disable-next-line divide-before-multiply
        int256 nk = ExactOps.rs(mk * ((int256(1) << 40) / r), 16);
        return ExactOps.clamp(ExactOps.rs(nk * gamma, 20) + beta, ACT_MAX);
    }

    /// @dev The row quantizer's exponent of the centred row `clamp(x - mean)`.
    function _centredExp(bytes calldata x, int256 mean) private pure returns (int256) {
        uint256 max = LmRows.centredMax(x, mean);
        return int256(max == 0 ? 0 : Math.log2(max) + 1) - 15;
    }

    /// @dev The sum of the centred row's squared mantissas, and mantissa `k`.
    function _squares(bytes calldata x, int256 mean, int256 e, uint256 k)
        private
        pure
        returns (int256 s, int256 mk)
    {
        s = LmRows.centredSquares(x, mean, e);
        mk = mant(ExactOps.clamp(ExactOps.get(x, k) - mean, ACT_MAX), e);
    }

    /// @notice Rotary embedding of the pair `(a, b)` = `(x_i, x_(i+h))` with `cos`, `sin` (Q16).
    function rope(int256 a, int256 b, int256 c, int256 s) internal pure returns (int256, int256) {
        return (
            ExactOps.clamp(ExactOps.rs(a * c - b * s, 16), ACT_MAX),
            ExactOps.clamp(ExactOps.rs(b * c + a * s, 16), ACT_MAX)
        );
    }

    /// @notice The attention score of a query row and a key row (Q10).
    function score(bytes calldata q, bytes calldata k) internal pure returns (int256) {
        uint256 n = q.length / 4;
        int256 c = int256(Math.sqrt((uint256(1) << 32) / n));
        (int256 eq, int256 ek) = (rowExp(q), rowExp(k));
        int256 acc = 0;
        for (uint256 i = 0; i < n; ++i) {
            acc += mant(ExactOps.get(q, i), eq) * mant(ExactOps.get(k, i), ek);
        }
        return ExactOps.clamp(sh(acc * c, 30 - eq - ek), SCORE_MAX);
    }

    /// @notice The exponential tables, copied into memory once for a loop of lookups (each
    ///         read of a `bytes` constant copies it: once per lookup, a row of them grows memory
    ///         quadratically).
    struct Exp {
        bytes hi;
        bytes lo;
    }

    /// @notice The tables, for `expWeight(delta, t)`.
    function exps() internal pure returns (Exp memory t) {
        t.hi = LmTables.EXP_HI;
        t.lo = LmTables.EXP_LO;
    }

    /// @notice `e^(-delta/1024)` in Q30 for a score difference `delta >= 0` (Q10).
    function expWeight(int256 delta) internal pure returns (int256) {
        return expWeight(delta, exps());
    }

    /// @notice `expWeight` with the tables given.
    function expWeight(int256 delta, Exp memory t) internal pure returns (int256) {
        if (delta >= EXP_CUTOFF) return 0;
        uint256 u = uint256(delta);
        return ExactOps.rs(LmTables.entry(t.hi, u >> 6) * LmTables.entry(t.lo, u & 63), 30);
    }

    /// @notice The softmax weight (Q16) of score `j` of a row of scores.
    function softmax(bytes calldata s, uint256 j) internal pure returns (int256) {
        uint256 n = s.length / 4;
        int256 max = type(int256).min;
        for (uint256 i = 0; i < n; ++i) {
            int256 v = ExactOps.get(s, i);
            if (v > max) max = v;
        }
        Exp memory t = exps();
        int256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            total += expWeight(max - ExactOps.get(s, i), t);
        }
        return rdiv(expWeight(max - ExactOps.get(s, j), t) << 16, total);
    }

    /// @notice An attention output element: the weights (Q16) over positions against those
    ///         positions' values at one dimension, `clamp(rs(sum p_j v_j, 16))`.
    function attend(bytes calldata p, bytes calldata v) internal pure returns (int256) {
        return ExactOps.clamp(ExactOps.rs(ExactOps.dot(p, v), 16), ACT_MAX);
    }

    /// @notice `sigma(t/1024)` in Q16 for `t` in Q10.
    function sigmoid(int256 t) internal pure returns (int256) {
        int256 w = expWeight(t < 0 ? -t : t);
        if (t >= 0) return rdiv(int256(1) << 46, (int256(1) << 30) + w);
        return rdiv(w << 16, (int256(1) << 30) + w);
    }

    /// @notice SwiGLU of a gate and an up value.
    function swiglu(int256 g, int256 u) internal pure returns (int256) {
        int256 silu = ExactOps.rs(g * sigmoid(ExactOps.rs(g, 2)), 16);
        return ExactOps.clamp(ExactOps.rs(silu * u, 12), ACT_MAX);
    }

    /// @notice GELU (tanh form, as `x * sigma(2u)`).
    function gelu(int256 x) internal pure returns (int256) {
        int256 xc = ExactOps.clamp(x, 1 << 16);
        int256 v = ExactOps.rs((xc << 24) + ExactOps.rs(LmTables.GELU_K2 * xc * xc * xc, 16), 26);
        return ExactOps.clamp(ExactOps.rs(x * sigmoid(ExactOps.rs(LmTables.GELU_K1 * v, 16)), 16), ACT_MAX);
    }

    /// @notice A residual add.
    function add(int256 a, int256 b) internal pure returns (int256) {
        return ExactOps.clamp(a + b, ACT_MAX);
    }
}
