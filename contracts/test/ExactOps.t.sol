// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Referee} from "../src/Referee.sol";
import {ExactOps} from "../src/libraries/ExactOps.sol";
import {ExpTable} from "../src/libraries/ExpTable.sol";
import {JsonVectors} from "./utils/JsonVectors.sol";

/// @notice The Solidity referee against the shared test vectors of the Rust engine
///         (crates/ml/tests/vectors/exact_ops.json): every output element of every case of every
///         op a dispute can name is recomputed from the rows the dispute game would open and
///         must equal the vector. (im2col and reshape only move values and belong to the
///         convolutional program, which the game does not cover yet.)
contract ExactOpsVectorsTest is JsonVectors {
    Referee internal referee;

    function setUp() public {
        referee = new Referee();
        json = vm.readFile(string.concat(vm.projectRoot(), "/../crates/ml/tests/vectors/exact_ops.json"));
    }

    function test_theExponentialTableIsTheEngines() public view {
        uint256[] memory expected = vm.parseJsonUintArray(json, ".exp_table");
        vm.assertEq(expected.length, ExpTable.LENGTH, "length");
        bytes memory table = ExpTable.TABLE;
        for (uint256 k = 0; k < expected.length; ++k) {
            vm.assertEq(ExpTable.entry(table, k), expected[k], "entry");
        }
    }

    function test_everyElementOfEveryCaseMatches() public view {
        uint256 checked;
        uint256 cases;
        for (uint256 i = 0; vm.keyExistsJson(json, _key(i, ".op")); ++i) {
            string memory op = vm.parseJsonString(json, _key(i, ".op"));
            bytes32 h = keccak256(bytes(op));
            if (h == keccak256("im2col") || h == keccak256("reshape")) continue;
            checked += _checkCase(i, h);
            ++cases;
        }
        vm.assertEq(cases, 27, "cases");
        vm.assertGt(checked, 150, "elements");
    }

    function _checkCase(uint256 i, bytes32 op) internal view returns (uint256 n) {
        Mat memory out = _mat(i, ".output");
        ExactOps.Params memory p = ExactOps.Params({log2Batch: 0, lrQ12: 0, momentumQ12: 0, features: 0});
        uint8 kind;
        Mat memory a;
        Mat memory b;
        Mat memory c;
        if (op == keccak256("quantize_weights")) {
            kind = ExactOps.QUANTIZE;
            a = _mat(i, ".inputs.w");
        } else if (op == keccak256("linear")) {
            kind = ExactOps.LINEAR;
            a = _mat(i, ".inputs.a");
            b = _transpose(_mat(i, ".inputs.wq"));
            c = _mat(i, ".inputs.b");
        } else if (op == keccak256("relu")) {
            kind = ExactOps.RELU;
            a = _mat(i, ".inputs.a");
        } else if (op == keccak256("relu_backward")) {
            kind = ExactOps.RELU_BACKWARD;
            a = _mat(i, ".inputs.d");
            b = _mat(i, ".inputs.a");
        } else if (op == keccak256("softmax_xent_grad")) {
            kind = ExactOps.SOFTMAX_XENT_GRAD;
            a = _mat(i, ".inputs.z");
            b = Mat({rows: a.rows, cols: 1, data: vm.parseJsonIntArray(json, _key(i, ".params.labels"))});
        } else if (op == keccak256("weight_grad")) {
            kind = ExactOps.WEIGHT_GRAD;
            p.log2Batch = vm.parseJsonUint(json, _key(i, ".params.log2_batch"));
            a = _transpose(_mat(i, ".inputs.a"));
            b = _transpose(_mat(i, ".inputs.d"));
        } else if (op == keccak256("bias_grad")) {
            kind = ExactOps.BIAS_GRAD;
            p.log2Batch = vm.parseJsonUint(json, _key(i, ".params.log2_batch"));
            a = _transpose(_mat(i, ".inputs.d"));
        } else if (op == keccak256("input_grad")) {
            kind = ExactOps.INPUT_GRAD;
            a = _mat(i, ".inputs.d");
            b = _mat(i, ".inputs.wq");
        } else if (op == keccak256("momentum")) {
            kind = ExactOps.MOMENTUM;
            p.momentumQ12 = int256(vm.parseJsonUint(json, _key(i, ".params.momentum_q12")));
            a = _mat(i, ".inputs.v");
            b = _mat(i, ".inputs.g");
        } else if (op == keccak256("descend")) {
            uint256 max = vm.parseJsonUint(json, _key(i, ".params.max"));
            kind = max == uint256(ExactOps.W_MASTER_MAX) ? ExactOps.DESCEND_WEIGHT : ExactOps.DESCEND_BIAS;
            p.lrQ12 = int256(vm.parseJsonUint(json, _key(i, ".params.lr_q12")));
            a = _mat(i, ".inputs.p");
            b = _mat(i, ".inputs.v");
        } else {
            revert("an op the vectors added: teach this test and the referee");
        }
        return _checkElements(i, kind, p, out, Inputs({a: a, b: b, c: c}));
    }

    struct Inputs {
        Mat a;
        Mat b;
        Mat c;
    }

    function _checkElements(
        uint256 i,
        uint8 kind,
        ExactOps.Params memory p,
        Mat memory out,
        Inputs memory ins
    ) internal view returns (uint256 n) {
        for (uint256 r = 0; r < out.rows; ++r) {
            for (uint256 col = 0; col < out.cols; ++col) {
                int256 got = referee.element(kind, p, r, col, _rows(kind, r, col, ins));
                vm.assertEq(got, out.data[r * out.cols + col], string.concat("case ", _str(i)));
                ++n;
            }
        }
    }

    /// @dev The rows DisputeProgram.inputRows names, from the case's matrices.
    function _rows(uint8 kind, uint256 r, uint256 col, Inputs memory ins)
        internal
        pure
        returns (bytes[] memory rows)
    {
        Mat memory a = ins.a;
        Mat memory b = ins.b;
        if (kind == ExactOps.QUANTIZE || kind == ExactOps.RELU) {
            rows = new bytes[](1);
            rows[0] = _row(a, r);
        } else if (kind == ExactOps.BIAS_GRAD) {
            rows = new bytes[](1);
            rows[0] = _row(a, col);
        } else if (kind == ExactOps.LINEAR) {
            rows = new bytes[](3);
            rows[0] = _row(a, r);
            rows[1] = _row(b, col);
            rows[2] = _row(ins.c, 0);
        } else if (kind == ExactOps.WEIGHT_GRAD || kind == ExactOps.INPUT_GRAD) {
            rows = new bytes[](2);
            rows[0] = _row(a, r);
            rows[1] = _row(b, col);
        } else {
            rows = new bytes[](2);
            rows[0] = _row(a, r);
            rows[1] = _row(b, r);
        }
    }

    struct Mat {
        uint256 rows;
        uint256 cols;
        int256[] data;
    }

    function _mat(uint256 i, string memory path) internal view returns (Mat memory m) {
        m.rows = vm.parseJsonUint(json, _key(i, string.concat(path, ".rows")));
        m.cols = vm.parseJsonUint(json, _key(i, string.concat(path, ".cols")));
        m.data = vm.parseJsonIntArray(json, _key(i, string.concat(path, ".data")));
        require(m.data.length == m.rows * m.cols, "shape");
    }

    function _transpose(Mat memory m) internal pure returns (Mat memory t) {
        t.rows = m.cols;
        t.cols = m.rows;
        t.data = new int256[](m.data.length);
        for (uint256 r = 0; r < m.rows; ++r) {
            for (uint256 c = 0; c < m.cols; ++c) {
                t.data[c * m.rows + r] = m.data[r * m.cols + c];
            }
        }
    }

    /// @dev Row `r` packed as i32 little-endian.
    function _row(Mat memory m, uint256 r) internal pure returns (bytes memory out) {
        out = new bytes(4 * m.cols);
        for (uint256 c = 0; c < m.cols; ++c) {
            uint32 v = uint32(int32(m.data[r * m.cols + c]));
            out[4 * c] = bytes1(uint8(v));
            out[4 * c + 1] = bytes1(uint8(v >> 8));
            out[4 * c + 2] = bytes1(uint8(v >> 16));
            out[4 * c + 3] = bytes1(uint8(v >> 24));
        }
    }
}
