// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmGrads} from "../src/libraries/LmGrads.sol";
import {LmOps} from "../src/libraries/LmOps.sol";
import {JsonVectors} from "./utils/JsonVectors.sol";

/// @notice Calls the library with its rows in calldata, as a referee contract receives them.
contract LmGradsHarness {
    function xentGrad(bytes calldata z, uint256 target, uint256 j) external pure returns (int256) {
        return LmGrads.xentGrad(z, target, j);
    }

    function inputGrad(bytes calldata dy, bytes calldata qCol, bytes calldata shifts)
        external
        pure
        returns (int256)
    {
        return LmGrads.inputGrad(dy, qCol, shifts);
    }

    function weightGrad(
        bytes calldata dyCol,
        bytes calldata f,
        bytes calldata xCol,
        bytes calldata e,
        int256 sigma
    ) external pure returns (int256) {
        return LmGrads.weightGrad(dyCol, f, xCol, e, sigma);
    }

    /// @dev `rows` is x, dy and gamma.
    function normBackward(bytes[3] calldata rows, int256 eps, bool center, uint256 k)
        external
        pure
        returns (int256)
    {
        return LmGrads.normBackward(rows[0], rows[1], rows[2], eps, center, k);
    }

    function scoreGrad(bytes calldata p, bytes calldata dout, bytes calldata v, uint256 j)
        external
        pure
        returns (int256)
    {
        return LmGrads.scoreGrad(p, dout, v, j);
    }

    /// @dev `which` 0: query, 1: key, 2: value.
    function headGrad(uint8 which, bytes calldata a, bytes calldata b, uint256 hd)
        external
        pure
        returns (int256)
    {
        if (which == 0) return LmGrads.queryGrad(a, b, hd);
        if (which == 1) return LmGrads.keyGrad(a, b, hd);
        return LmGrads.valueGrad(a, b);
    }

    function scalars(LmGrads.AdamTerms memory a, uint256 t) external pure returns (int256, int256) {
        return LmGrads.scalars(a, t);
    }

    function rowExp(bytes calldata x) external pure returns (int256) {
        return LmOps.rowExp(x);
    }
}

/// @notice The backward ops and the Adam update of the Solidity referee against the Rust
///         engine's shared vectors (crates/lm/tests/vectors/finetune_ops.json): every element
///         of every case. Logs the most gas one element took, per op.
contract LmGradsVectorsTest is JsonVectors {
    LmGradsHarness internal h;

    event log_named_uint(string key, uint256 val);

    function setUp() public {
        h = new LmGradsHarness();
        json = vm.readFile(string.concat(vm.projectRoot(), "/../crates/lm/tests/vectors/finetune_ops.json"));
    }

    function test_everyBackwardOpOfEveryCaseMatches() public {
        uint256 cases;
        uint256[5] memory most;
        for (uint256 i = 0; vm.keyExistsJson(json, _key(i, ".op")); ++i) {
            bytes32 op = keccak256(bytes(vm.parseJsonString(json, _key(i, ".op"))));
            uint256 gas;
            if (op == keccak256("xent_grad")) {
                gas = _xent(i);
                if (gas > most[0]) most[0] = gas;
            } else if (op == keccak256("input_grad")) {
                gas = _inputGrad(i);
                if (gas > most[1]) most[1] = gas;
            } else if (op == keccak256("weight_grad")) {
                gas = _weightGrad(i);
                if (gas > most[2]) most[2] = gas;
            } else if (op == keccak256("norm_backward")) {
                gas = _norm(i);
                if (gas > most[3]) most[3] = gas;
            } else if (op == keccak256("adam_scalars")) {
                _scalars(i);
            } else if (op == keccak256("attention_backward")) {
                gas = _attention(i);
                if (gas > most[4]) most[4] = gas;
            } else {
                _elementwise(i, op);
            }
            ++cases;
        }
        vm.assertEq(cases, 22, "cases");
        emit log_named_uint("most gas for one element of xent_grad", most[0]);
        emit log_named_uint("most gas for one element of input_grad", most[1]);
        emit log_named_uint("most gas for one element of weight_grad", most[2]);
        emit log_named_uint("most gas for one element of norm_backward", most[3]);
        emit log_named_uint("most gas for one element of the attention backward", most[4]);
    }

    /// @dev Each listed step's rate and ε, from the schedule's terms.
    function _scalars(uint256 i) internal view {
        LmGrads.AdamTerms memory a = LmGrads.AdamTerms({
            lr: vm.parseJsonInt(json, _key(i, ".params.lr_q32")),
            lrEnd: vm.parseJsonInt(json, _key(i, ".params.lr_end_q32")),
            beta1: vm.parseJsonInt(json, _key(i, ".params.beta1_q30")),
            beta2: vm.parseJsonInt(json, _key(i, ".params.beta2_q30")),
            eps: vm.parseJsonInt(json, _key(i, ".params.eps_q32")),
            warmup: vm.parseJsonUint(json, _key(i, ".params.warmup")),
            steps: vm.parseJsonUint(json, _key(i, ".params.steps"))
        });
        uint256[] memory ts = vm.parseJsonUintArray(json, _key(i, ".inputs.t"));
        for (uint256 k = 0; k < ts.length; ++k) {
            int256[] memory want =
                vm.parseJsonIntArray(json, _key(i, string.concat(".output[", _str(k), "]")));
            (int256 lrT, int256 epsT) = h.scalars(a, ts[k]);
            vm.assertEq(lrT, want[0], "lr_t");
            vm.assertEq(epsT, want[1], "eps_t");
        }
    }

    function _xent(uint256 i) internal view returns (uint256 most) {
        int256[] memory out = _ints(i, ".output");
        bytes memory z = _packed(_ints(i, ".inputs.z"));
        uint256 target = vm.parseJsonUint(json, _key(i, ".params.target"));
        for (uint256 j = 0; j < out.length; ++j) {
            uint256 before = gasleft();
            int256 got = h.xentGrad(z, target, j);
            most = _max(most, before - gasleft());
            vm.assertEq(got, out[j], "xent_grad");
        }
    }

    function _inputGrad(uint256 i) internal view returns (uint256 most) {
        uint256 rows = vm.parseJsonUint(json, _key(i, ".params.rows"));
        uint256 cols = vm.parseJsonUint(json, _key(i, ".params.cols"));
        int256[] memory dy = _ints(i, ".inputs.dy");
        int256[] memory q = _ints(i, ".inputs.q");
        bytes memory shifts = _packed(_ints(i, ".inputs.shift"));
        int256[] memory out = _ints(i, ".output");
        for (uint256 o = 0; o < out.length; ++o) {
            (uint256 r, uint256 k) = (o / cols, o % cols);
            bytes memory row = _packed(_part(dy, r * rows, rows, 1));
            bytes memory col = _packed(_part(q, k, rows, cols));
            uint256 before = gasleft();
            int256 got = h.inputGrad(row, col, shifts);
            most = _max(most, before - gasleft());
            vm.assertEq(got, out[o], "input_grad");
        }
    }

    struct WeightCase {
        uint256 rows;
        uint256 cols;
        uint256 t;
        int256 sigma;
        int256[] dy;
        int256[] x;
        bytes f;
        bytes e;
    }

    function _weightCase(uint256 i) internal view returns (WeightCase memory c) {
        c.rows = vm.parseJsonUint(json, _key(i, ".params.rows"));
        c.cols = vm.parseJsonUint(json, _key(i, ".params.cols"));
        c.sigma = vm.parseJsonInt(json, _key(i, ".params.sigma"));
        c.dy = _ints(i, ".inputs.dy");
        c.x = _ints(i, ".inputs.x");
        c.t = c.dy.length / c.rows;
        (c.f, c.e) = (_exps(c.dy, c.rows), _exps(c.x, c.cols));
    }

    function _weightGrad(uint256 i) internal view returns (uint256 most) {
        WeightCase memory c = _weightCase(i);
        int256[] memory out = _ints(i, ".output");
        for (uint256 o = 0; o < out.length; ++o) {
            most = _max(most, _weightOne(c, o, out[o]));
        }
    }

    function _weightOne(WeightCase memory c, uint256 o, int256 want) internal view returns (uint256 used) {
        bytes memory dyCol = _packed(_part(c.dy, o / c.cols, c.t, c.rows));
        bytes memory xCol = _packed(_part(c.x, o % c.cols, c.t, c.cols));
        uint256 before = gasleft();
        int256 got = h.weightGrad(dyCol, c.f, xCol, c.e, c.sigma);
        used = before - gasleft();
        vm.assertEq(got, want, "weight_grad");
    }

    function _norm(uint256 i) internal view returns (uint256 most) {
        bytes[3] memory rows = [
            _packed(_ints(i, ".inputs.x")),
            _packed(_ints(i, ".inputs.dy")),
            _packed(_ints(i, ".inputs.gamma"))
        ];
        int256 eps = vm.parseJsonInt(json, _key(i, ".params.eps_q40"));
        bool center = vm.parseJsonBool(json, _key(i, ".params.center"));
        int256[] memory out = _ints(i, ".output");
        for (uint256 k = 0; k < out.length; ++k) {
            uint256 before = gasleft();
            int256 got = h.normBackward(rows, eps, center, k);
            most = _max(most, before - gasleft());
            vm.assertEq(got, out[k], "norm_backward");
        }
    }

    struct AttnCase {
        uint256 hd;
        uint256 t;
        int256[] p;
        int256[] q;
        int256[] k;
        int256[] v;
        int256[] dout;
        int256[] ds;
    }

    function _attnCase(uint256 i) internal view returns (AttnCase memory c) {
        c.hd = vm.parseJsonUint(json, _key(i, ".params.head_dim"));
        (c.p, c.q, c.k) = (_ints(i, ".inputs.p"), _ints(i, ".inputs.q"), _ints(i, ".inputs.k"));
        (c.v, c.dout) = (_ints(i, ".inputs.v"), _ints(i, ".inputs.do"));
        c.t = c.q.length / c.hd;
        c.ds = _ints(i, ".output.ds");
    }

    /// @dev Every score signal, then every element of `dq`, `dk` and `dv`, each from the rows
    ///      and columns a dispute would open (the score signals as a committed tensor).
    function _attention(uint256 i) internal view returns (uint256 most) {
        AttnCase memory c = _attnCase(i);
        for (uint256 t = 0; t < c.t; ++t) {
            bytes memory p = _packed(_part(c.p, t * c.t, t + 1, 1));
            bytes memory dout = _packed(_part(c.dout, t * c.hd, c.hd, 1));
            bytes memory v = _packed(_part(c.v, 0, (t + 1) * c.hd, 1));
            for (uint256 j = 0; j <= t; ++j) {
                uint256 before = gasleft();
                int256 got = h.scoreGrad(p, dout, v, j);
                most = _max(most, before - gasleft());
                vm.assertEq(got, c.ds[t * c.t + j], "score signal");
            }
        }
        int256[][3] memory outs = [_ints(i, ".output.dq"), _ints(i, ".output.dk"), _ints(i, ".output.dv")];
        for (uint256 o = 0; o < c.t * c.hd; ++o) {
            for (uint8 which = 0; which < 3; ++which) {
                most = _max(most, _headOne(c, which, o / c.hd, o % c.hd, outs[which][o]));
            }
        }
    }

    /// @dev Element `(r, d)` of `dq` (`which` 0), `dk` (1) or `dv` (2).
    function _headOne(AttnCase memory c, uint8 which, uint256 r, uint256 d, int256 want)
        internal
        view
        returns (uint256 used)
    {
        bytes memory a;
        bytes memory b;
        if (which == 0) {
            // Query r saw positions 0..=r: its score signals and the keys' dimension d.
            (a, b) = (_packed(_part(c.ds, r * c.t, r + 1, 1)), _packed(_part(c.k, d, r + 1, c.hd)));
        } else {
            // Position r was seen by queries r..t: their signals (or weights) at r and their
            // queries (or output signals) at d.
            uint256 n = c.t - r;
            int256[] memory col = _part(which == 1 ? c.ds : c.p, r * c.t + r, n, c.t);
            a = _packed(col);
            b = _packed(_part(which == 1 ? c.q : c.dout, r * c.hd + d, n, c.hd));
        }
        uint256 before = gasleft();
        int256 got = h.headGrad(which, a, b, c.hd);
        used = before - gasleft();
        vm.assertEq(got, want, which == 0 ? "dq" : which == 1 ? "dk" : "dv");
    }

    function _elementwise(uint256 i, bytes32 op) internal view {
        if (op == keccak256("rope_backward")) {
            int256[] memory dy = _ints(i, ".inputs.dy");
            int256[] memory c = _ints(i, ".inputs.cos");
            int256[] memory s = _ints(i, ".inputs.sin");
            int256[] memory out = _ints(i, ".output");
            uint256 half = dy.length / 2;
            for (uint256 k = 0; k < half; ++k) {
                (int256 a, int256 b) = LmGrads.ropeBackward(dy[k], dy[k + half], c[k], s[k]);
                vm.assertEq(a, out[k], "rope_backward first");
                vm.assertEq(b, out[k + half], "rope_backward second");
            }
        } else if (op == keccak256("swiglu_backward") || op == keccak256("gelu_backward")) {
            int256[] memory g = _ints(i, op == keccak256("gelu_backward") ? ".inputs.x" : ".inputs.g");
            int256[] memory da = _ints(i, ".inputs.da");
            if (op == keccak256("gelu_backward")) {
                int256[] memory out = _ints(i, ".output");
                for (uint256 k = 0; k < g.length; ++k) {
                    vm.assertEq(LmGrads.geluBackward(g[k], da[k]), out[k], "gelu_backward");
                }
                return;
            }
            int256[] memory u = _ints(i, ".inputs.u");
            (int256[] memory dg, int256[] memory du) = (_ints(i, ".output.dg"), _ints(i, ".output.du"));
            for (uint256 k = 0; k < g.length; ++k) {
                (int256 a, int256 b) = LmGrads.swigluBackward(g[k], u[k], da[k]);
                vm.assertEq(a, dg[k], "swiglu_backward dg");
                vm.assertEq(b, du[k], "swiglu_backward du");
            }
        } else {
            _adam(i);
        }
    }

    function _adam(uint256 i) internal view {
        int256[] memory w = _ints(i, ".inputs.w");
        int256[] memory m = _ints(i, ".inputs.m");
        int256[] memory v = _ints(i, ".inputs.v");
        int256[] memory g = _ints(i, ".inputs.g");
        int256[4] memory p = [
            vm.parseJsonInt(json, _key(i, ".params.lr_t_q32")),
            vm.parseJsonInt(json, _key(i, ".params.eps_t_q32")),
            vm.parseJsonInt(json, _key(i, ".params.beta1_q30")),
            vm.parseJsonInt(json, _key(i, ".params.beta2_q30"))
        ];
        (int256[] memory ow, int256[] memory om, int256[] memory ov) =
            (_ints(i, ".output.w"), _ints(i, ".output.m"), _ints(i, ".output.v"));
        for (uint256 k = 0; k < w.length; ++k) {
            (int256 a, int256 b, int256 c) = LmGrads.adam(w[k], m[k], v[k], g[k], p[0], p[1], p[2], p[3]);
            vm.assertEq(a, ow[k], "adam w");
            vm.assertEq(b, om[k], "adam m");
            vm.assertEq(c, ov[k], "adam v");
        }
    }

    /// @dev The row-quantizer exponent of every `width`-wide row of a matrix, packed.
    function _exps(int256[] memory mat, uint256 width) internal view returns (bytes memory) {
        int256[] memory out = new int256[](mat.length / width);
        for (uint256 r = 0; r < out.length; ++r) {
            out[r] = h.rowExp(_packed(_part(mat, r * width, width, 1)));
        }
        return _packed(out);
    }

    /// @dev `n` values of `a` from `start`, `stride` apart.
    function _part(int256[] memory a, uint256 start, uint256 n, uint256 stride)
        internal
        pure
        returns (int256[] memory out)
    {
        out = new int256[](n);
        for (uint256 k = 0; k < n; ++k) {
            out[k] = a[start + k * stride];
        }
    }

    function _max(uint256 a, uint256 b) internal pure returns (uint256) {
        return a > b ? a : b;
    }
}
