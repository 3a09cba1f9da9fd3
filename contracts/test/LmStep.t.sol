// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmElementReferee} from "../src/LmReferee.sol";
import {LmStep} from "../src/libraries/LmStep.sol";
import {JsonVectors} from "./utils/JsonVectors.sol";

/// @notice Runs the element cases of a step-program vector file against the referee: the rows
///         each opens and its value, with the most gas one element took per op kind.
abstract contract LmElementCases is JsonVectors {
    LmElementReferee internal h;

    event log_named_uint(string key, uint256 val);

    function _load(string memory file) internal {
        h = new LmElementReferee();
        json = vm.readFile(string.concat(vm.projectRoot(), "/../crates/lm/tests/vectors/", file));
    }

    /// @dev Every element case: how many, and the most gas per op kind (with its name).
    function _all()
        internal
        view
        returns (uint256 elements, uint256[51] memory most, string[51] memory names)
    {
        for (uint256 i = 0; vm.keyExistsJson(json, _key(i, ".kind")); ++i) {
            if (keccak256(bytes(vm.parseJsonString(json, _key(i, ".kind")))) != keccak256("element")) {
                continue;
            }
            (uint8 code, uint256 gas) = _case(i);
            if (gas > most[code]) most[code] = gas;
            names[code] = vm.parseJsonString(json, _key(i, ".op"));
            ++elements;
        }
    }

    /// @dev Runs every case: more than `min`, a case of every kind `from..=to`, and logs the
    ///      most gas of each kind.
    function _run(uint256 min, uint256 from, uint256 to) internal {
        (uint256 elements, uint256[51] memory most, string[51] memory names) = _all();
        vm.assertGt(elements, min, "element cases");
        for (uint256 k = from; k <= to; ++k) {
            vm.assertGt(most[k], 0, "every op kind has a case");
            emit log_named_uint(string.concat("most gas for one element of ", names[k]), most[k]);
        }
    }

    function _case(uint256 i) internal view returns (uint8 code, uint256 gas) {
        LmStep.Op memory op = _op(i);
        code = op.kind;
        LmStep.Params memory p = _params(i);
        (uint256 r, uint256 c) =
            (vm.parseJsonUint(json, _key(i, ".r")), vm.parseJsonUint(json, _key(i, ".c")));
        bytes[] memory rows = new bytes[](op.inputRows.length);
        for (uint256 j = 0; j < rows.length; ++j) {
            rows[j] = _packed(_ints(i, string.concat(".input_rows[", _str(j), "]")));
        }
        _checkIndex(i, op, p, rows);
        uint256 before = gasleft();
        int256 got = h.element(op, p, r, c, rows);
        gas = before - gasleft();
        _checkValue(i, got);
    }

    function _checkValue(uint256 i, int256 got) internal view {
        vm.assertEq(
            got, vm.parseJsonInt(json, _key(i, ".output")), vm.parseJsonString(json, _key(i, ".name"))
        );
    }

    /// @dev The rows the library names are the rows the trace opened.
    function _checkIndex(uint256 i, LmStep.Op memory op, LmStep.Params memory p, bytes[] memory rows)
        internal
        view
    {
        uint8 code = op.kind;
        bytes memory data = code == LmStep.EMBED || code == LmStep.EMBED_GRAD
            ? rows[0]
            : code == LmStep.XENT ? rows[1] : code == LmStep.TOKENS ? rows[rows.length - 1] : bytes("");
        uint256[3] memory pos = [
            vm.parseJsonUint(json, _key(i, ".r")),
            vm.parseJsonUint(json, _key(i, ".c")),
            vm.parseJsonUint(json, _key(i, ".sample"))
        ];
        uint256[] memory idx = h.inputRows(op, p, pos[0], pos[1], pos[2], data);
        uint256[] memory want = vm.parseJsonUintArray(json, _key(i, ".input_index"));
        string memory name = vm.parseJsonString(json, _key(i, ".name"));
        vm.assertEq(idx.length, want.length, name);
        for (uint256 j = 0; j < idx.length; ++j) {
            vm.assertEq(idx[j], want[j], name);
        }
    }

    function _op(uint256 i) internal view returns (LmStep.Op memory op) {
        op.kind = uint8(vm.parseJsonUint(json, _key(i, ".code")));
        op.rows = vm.parseJsonUint(json, _key(i, ".rows"));
        op.cols = vm.parseJsonUint(json, _key(i, ".cols"));
        op.arg = vm.parseJsonInt(json, _key(i, ".arg"));
        uint256 n;
        while (vm.keyExistsJson(json, _key(i, string.concat(".input_shapes[", _str(n), "]")))) ++n;
        op.inputRows = new uint256[](n);
        for (uint256 j = 0; j < n; ++j) {
            op.inputRows[j] =
                vm.parseJsonUint(json, _key(i, string.concat(".input_shapes[", _str(j), "][0]")));
        }
    }

    function _params(uint256 i) internal view returns (LmStep.Params memory p) {
        p.heads = vm.parseJsonUint(json, _key(i, ".params.heads"));
        p.kvHeads = vm.parseJsonUint(json, _key(i, ".params.kv_heads"));
        p.headDim = vm.parseJsonUint(json, _key(i, ".params.head_dim"));
        p.epsQ40 = vm.parseJsonInt(json, _key(i, ".params.eps_q40"));
        p.center = vm.parseJsonBool(json, _key(i, ".params.center"));
        p.scale = vm.parseJsonInt(json, _key(i, ".params.scale"));
        p.beta1 = vm.parseJsonInt(json, _key(i, ".params.beta1_q30"));
        p.beta2 = vm.parseJsonInt(json, _key(i, ".params.beta2_q30"));
        p.lrT = vm.parseJsonInt(json, _key(i, ".params.lr_t_q32"));
        p.epsT = vm.parseJsonInt(json, _key(i, ".params.eps_t_q32"));
    }
}

/// @notice The fine-tuning step referee against the Rust op trace's shared vectors
///         (crates/lm/tests/vectors/lm_step.json): every element case of both families, the
///         rows it opens and its value. Logs the most gas one element took, per op kind.
contract LmStepVectorsTest is LmElementCases {
    function setUp() public {
        _load("lm_step.json");
    }

    function test_everyElementOfEveryOpKindMatchesTheTrace() public {
        _run(150, 1, 34);
    }
}

/// @notice The long-vocabulary ops (docs/protocol.md §9 "Long rows") against the Rust op
///         trace's vectors (crates/lm/tests/vectors/lm_vocab.json: the fixtures' vocabularies
///         in chunks of 60 and 100): every element case, the rows it opens and its value.
contract LmVocabVectorsTest is LmElementCases {
    function setUp() public {
        _load("lm_vocab.json");
    }

    function test_everyElementOfEveryChunkedOpMatchesTheTrace() public {
        _run(60, 36, 44);
    }
}

/// @notice The full fine-tune's own ops (docs/protocol.md §9, "Full fine-tuning") and the shared
///         ones in their full-step roles, against the Rust op trace's vectors
///         (crates/lm/tests/vectors/lm_full.json): every element case, the rows it opens and its
///         value.
contract LmFullVectorsTest is LmElementCases {
    function setUp() public {
        _load("lm_full.json");
    }

    function test_everyElementOfAFullStepMatchesTheTrace() public {
        _run(40, LmStep.REQUANT, LmStep.POS_GRAD);
    }
}
