// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmOps} from "../src/libraries/LmOps.sol";
import {JsonVectors} from "./utils/JsonVectors.sol";

/// @notice Calls the library with its rows in calldata, as a referee contract receives them.
contract LmOpsHarness {
    /// @dev Also the gas the referee spent, measured inside the call: for rows of 2^16 values
    ///      the caller's cost of encoding them from a test's large memory would swamp it.
    function linear(bytes calldata x, bytes calldata q, int256 shift, int256 bias)
        external
        view
        returns (int256 v, uint256 used)
    {
        used = gasleft();
        v = LmOps.linear(x, q, shift, bias);
        used -= gasleft();
    }

    /// @dev `gbe` is γ_k, β_k and ε; also the gas spent inside, as for `linear`.
    function norm(bytes calldata x, uint256 k, int256[3] calldata gbe, bool center)
        external
        view
        returns (int256 v, uint256 used)
    {
        used = gasleft();
        v = LmOps.norm(x, k, gbe[0], gbe[1], gbe[2], center);
        used -= gasleft();
    }

    function score(bytes calldata q, bytes calldata k) external pure returns (int256) {
        return LmOps.score(q, k);
    }

    function softmax(bytes calldata s, uint256 j) external pure returns (int256) {
        return LmOps.softmax(s, j);
    }

    function attend(bytes calldata p, bytes calldata v) external pure returns (int256) {
        return LmOps.attend(p, v);
    }

    function scalar(bytes32 op, int256 a, int256 b) external pure returns (int256) {
        if (op == keccak256("gelu")) return LmOps.gelu(a);
        if (op == keccak256("swiglu")) return LmOps.swiglu(a, b);
        if (op == keccak256("sigmoid")) return LmOps.sigmoid(a);
        if (op == keccak256("add")) return LmOps.add(a, b);
        return LmOps.expWeight(a);
    }

    function rowExp(bytes calldata x) external pure returns (int256) {
        return LmOps.rowExp(x);
    }
}

/// @notice The transformer ops of the Solidity referee against the Rust engine's shared test
///         vectors (crates/lm/tests/vectors/lm_ops.json): every op a language model's forward
///         pass uses, every case, every output element (a sample of six for rows wider than 64,
///         where one element already reads the whole row). Logs the most gas one element took,
///         per op, for docs/protocol.md.
contract LmOpsVectorsTest is JsonVectors {
    LmOpsHarness internal h;

    event log_named_uint(string key, uint256 val);

    function setUp() public {
        h = new LmOpsHarness();
        json = vm.readFile(string.concat(vm.projectRoot(), "/../crates/lm/tests/vectors/lm_ops.json"));
    }

    function test_scalarOpsMatch() public {
        _run(["rowquant", "gather", "exp_weight", "sigmoid", "swiglu", "gelu", "add"], 60);
    }

    function test_attentionOpsMatch() public {
        _run(["softmax", "attend", "score", "rope", "", "", ""], 30);
    }

    function test_normsMatch() public {
        _run(["norm", "", "", "", "", "", ""], 20);
    }

    function test_linearMatches() public {
        _run(["linear", "", "", "", "", "", ""], 20);
    }

    /// @dev Checks every case of the named ops (empty names are none), at least `least`
    ///      elements, and logs the most gas one element took per op.
    function _run(string[7] memory ops, uint256 least) internal {
        uint256[7] memory most;
        uint256 checked;
        for (uint256 i = 0; vm.keyExistsJson(json, _key(i, ".op")); ++i) {
            bytes32 op = keccak256(bytes(vm.parseJsonString(json, _key(i, ".op"))));
            for (uint256 o = 0; o < ops.length; ++o) {
                if (bytes(ops[o]).length == 0 || op != keccak256(bytes(ops[o]))) continue;
                (uint256 n, uint256 gas) = _check(i, op);
                checked += n;
                if (gas > most[o]) most[o] = gas;
            }
        }
        vm.assertGt(checked, least, "elements");
        for (uint256 o = 0; o < ops.length; ++o) {
            if (most[o] > 0) {
                emit log_named_uint(string.concat("most gas for one element of ", ops[o]), most[o]);
            }
        }
    }

    function _check(uint256 i, bytes32 op) internal view returns (uint256 n, uint256 most) {
        if (op == keccak256("rowquant")) {
            bytes memory x = _packed(_ints(i, ".inputs.x"));
            vm.assertEq(h.rowExp(x), vm.parseJsonInt(json, _key(i, ".output.e")), "rowquant e");
            int256[] memory m = _ints(i, ".output.m");
            int256 e = h.rowExp(x);
            int256[] memory xs = _ints(i, ".inputs.x");
            for (uint256 k = 0; k < m.length; ++k) {
                vm.assertEq(LmOps.mant(xs[k], e), m[k], "rowquant m");
            }
            return (m.length + 1, 0);
        }
        int256[] memory out = _outs(i);
        if (
            op == keccak256("exp_weight") || op == keccak256("sigmoid") || op == keccak256("gelu")
                || op == keccak256("swiglu") || op == keccak256("add")
        ) {
            return _checkScalar(i, op, out);
        }
        if (op == keccak256("gather")) {
            uint256 cols = vm.parseJsonUint(json, _key(i, ".params.cols"));
            uint256 token = vm.parseJsonUint(json, _key(i, ".params.token"));
            int256[] memory q = _ints(i, ".inputs.q");
            int256 shift = _ints(i, ".inputs.shift")[token];
            for (uint256 k = 0; k < out.length; ++k) {
                vm.assertEq(LmOps.gather(q[token * cols + k], shift), out[k], "gather");
            }
            return (out.length, 0);
        }
        if (op == keccak256("rope")) {
            int256[] memory x = _ints(i, ".inputs.x");
            int256[] memory c = _ints(i, ".inputs.cos");
            int256[] memory s = _ints(i, ".inputs.sin");
            uint256 half = x.length / 2;
            for (uint256 k = 0; k < half; ++k) {
                (int256 a, int256 b) = LmOps.rope(x[k], x[k + half], c[k], s[k]);
                vm.assertEq(a, out[k], "rope first");
                vm.assertEq(b, out[k + half], "rope second");
            }
            return (out.length, 0);
        }
        if (op == keccak256("norm")) return _checkNorm(i, out);
        if (op == keccak256("linear")) return _checkLinear(i, out);
        return _checkRows(i, op, out);
    }

    struct NormCase {
        bytes x;
        int256[] gamma;
        int256[] beta;
        int256 eps;
        bool center;
    }

    function _normCase(uint256 i) internal view returns (NormCase memory c) {
        c.x = _packed(_ints(i, ".inputs.x"));
        c.gamma = _ints(i, ".inputs.gamma");
        c.beta = vm.keyExistsJson(json, _key(i, ".inputs.beta")) ? _ints(i, ".inputs.beta") : new int256[](0);
        c.eps = vm.parseJsonInt(json, _key(i, ".params.eps_q40"));
        c.center = vm.parseJsonBool(json, _key(i, ".params.center"));
    }

    /// @dev A norm case, its row parsed and packed once (rows reach 2^16 values).
    function _checkNorm(uint256 i, int256[] memory out) internal view returns (uint256 n, uint256 most) {
        NormCase memory c = _normCase(i);
        uint256[] memory ks = _sample(out.length);
        for (uint256 t = 0; t < ks.length; ++t) {
            uint256 used = _normOne(c, ks[t], out[ks[t]]);
            if (used > most) most = used;
        }
        return (ks.length, most);
    }

    function _normOne(NormCase memory c, uint256 k, int256 want) internal view returns (uint256 used) {
        int256[3] memory gbe = [c.gamma[k], c.beta.length > 0 ? c.beta[k] : int256(0), c.eps];
        (int256 got, uint256 inside) = h.norm(c.x, k, gbe, c.center);
        used = inside + _calldataGas(c.x);
        vm.assertEq(got, want, string.concat("norm element ", _str(k)));
    }

    struct LinearCase {
        uint256 rows;
        uint256 cols;
        int256[] x;
        int256[] q;
        int256[] shift;
        int256[] bias;
    }

    function _linearCase(uint256 i) internal view returns (LinearCase memory c) {
        c.rows = vm.parseJsonUint(json, _key(i, ".params.rows"));
        c.cols = vm.parseJsonUint(json, _key(i, ".params.cols"));
        c.x = _ints(i, ".inputs.x");
        c.q = _ints(i, ".inputs.q");
        c.shift = _ints(i, ".inputs.shift");
        c.bias = vm.keyExistsJson(json, _key(i, ".inputs.bias")) ? _ints(i, ".inputs.bias") : new int256[](0);
    }

    /// @dev A linear case, parsed once; output `k` is input row `k / rows`, weight row `k % rows`.
    function _checkLinear(uint256 i, int256[] memory out) internal view returns (uint256 n, uint256 most) {
        LinearCase memory c = _linearCase(i);
        uint256[] memory ks = _sample(out.length);
        for (uint256 t = 0; t < ks.length; ++t) {
            uint256 used = _linearOne(c, ks[t], out[ks[t]]);
            if (used > most) most = used;
        }
        return (ks.length, most);
    }

    function _linearOne(LinearCase memory c, uint256 k, int256 want) internal view returns (uint256 used) {
        uint256 j = k % c.rows;
        bytes memory xr = _slice(c.x, k / c.rows, c.cols);
        bytes memory qj = _slice(c.q, j, c.cols);
        int256 bias = c.bias.length > 0 ? c.bias[j] : int256(0);
        (int256 got, uint256 inside) = h.linear(xr, qj, c.shift[j], bias);
        used = inside + _calldataGas(xr) + _calldataGas(qj);
        vm.assertEq(got, want, "linear element");
    }

    /// @dev What a transaction pays to carry `b` as calldata (16 gas a non-zero byte, 4 a zero).
    function _calldataGas(bytes memory b) internal pure returns (uint256 g) {
        for (uint256 i = 0; i < b.length; ++i) {
            g += b[i] == 0 ? 4 : 16;
        }
    }

    /// @dev An op of one or two values, through the harness (its gas counted).
    function _checkScalar(uint256 i, bytes32 op, int256[] memory out)
        internal
        view
        returns (uint256 n, uint256 most)
    {
        bool two = op == keccak256("swiglu") || op == keccak256("add");
        string memory first = op == keccak256("exp_weight")
            ? ".inputs.delta"
            : op == keccak256("sigmoid")
                ? ".inputs.t"
                : op == keccak256("gelu")
                    ? ".inputs.x"
                    : op == keccak256("swiglu") ? ".inputs.g" : ".inputs.a";
        int256[] memory a = _ints(i, first);
        int256[] memory b =
            two ? _ints(i, op == keccak256("swiglu") ? ".inputs.u" : ".inputs.b") : new int256[](0);
        for (uint256 k = 0; k < out.length; ++k) {
            uint256 before = gasleft();
            int256 got = h.scalar(op, a[k], two ? b[k] : int256(0));
            uint256 used = before - gasleft();
            if (used > most) most = used;
            vm.assertEq(got, out[k], "scalar op");
        }
        return (out.length, most);
    }

    /// @dev The ops whose one element reads whole rows, through the harness (calldata, gas).
    function _checkRows(uint256 i, bytes32 op, int256[] memory out)
        internal
        view
        returns (uint256 n, uint256 most)
    {
        uint256[] memory ks = _sample(out.length);
        for (uint256 t = 0; t < ks.length; ++t) {
            uint256 used = _checkElement(i, op, ks[t], out[ks[t]]);
            if (used > most) most = used;
        }
        return (ks.length, most);
    }

    /// @dev Checks element `k`; returns the gas the harness call took.
    function _checkElement(uint256 i, bytes32 op, uint256 k, int256 want)
        internal
        view
        returns (uint256 used)
    {
        uint256 before = gasleft();
        int256 got = _rowElement(i, op, k);
        used = before - gasleft();
        vm.assertEq(got, want, string.concat("element ", _str(k), " of case ", _str(i)));
    }

    function _rowElement(uint256 i, bytes32 op, uint256 k) internal view returns (int256) {
        if (op == keccak256("softmax")) return h.softmax(_packed(_ints(i, ".inputs.s")), k);
        if (op == keccak256("score")) {
            return h.score(_packed(_ints(i, ".inputs.q")), _packed(_ints(i, ".inputs.k")));
        }
        if (op == keccak256("attend")) {
            int256[] memory p = _ints(i, ".inputs.p");
            int256[] memory v = _ints(i, ".inputs.v");
            uint256 hd = vm.parseJsonUint(json, _key(i, ".params.head_dim"));
            int256[] memory col = new int256[](p.length);
            for (uint256 j = 0; j < p.length; ++j) {
                col[j] = v[j * hd + k];
            }
            return h.attend(_packed(p), _packed(col));
        }
        revert("not a row op");
    }

    /// @dev Row `r` of a row-major matrix `cols` wide, packed.
    function _slice(int256[] memory m, uint256 r, uint256 cols) internal pure returns (bytes memory) {
        int256[] memory row = new int256[](cols);
        for (uint256 c = 0; c < cols; ++c) {
            row[c] = m[r * cols + c];
        }
        return _packed(row);
    }

    /// @dev Every index of a short output; six of a long one.
    function _sample(uint256 n) internal pure returns (uint256[] memory ks) {
        if (n <= 64) {
            ks = new uint256[](n);
            for (uint256 k = 0; k < n; ++k) {
                ks[k] = k;
            }
            return ks;
        }
        ks = new uint256[](6);
        (ks[0], ks[1], ks[2], ks[3], ks[4], ks[5]) = (0, 1, 2, n / 2, n - 2, n - 1);
    }

    function _outs(uint256 i) internal view returns (int256[] memory) {
        if (vm.keyExistsJson(json, _key(i, ".output.fill")) || vm.keyExistsJson(json, _key(i, ".output[0]")))
        {
            return _ints(i, ".output");
        }
        int256[] memory one = new int256[](1);
        one[0] = vm.parseJsonInt(json, _key(i, ".output"));
        return one;
    }
}
