// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {MnistMlpVerifier} from "../../src/zk/MnistMlpVerifier.sol";
import {Test} from "../utils/Test.sol";
import {SmallMlpVerifier} from "./SmallMlpVerifier.sol";

/// @notice The generated Groth16 verifiers against proofs made in Rust (crates/zk/tests/vectors,
///         written with the contracts by the zk_verifier example): the proof verifies; another
///         output, worker or proof does not; an input out of the field is refused, not reverted.
contract ZkVerifierTest is Test {
    uint256 internal constant R =
        21_888_242_871_839_275_222_246_405_745_257_275_088_548_364_400_416_034_343_698_204_186_575_808_495_617;

    struct Vector {
        uint256[2] a;
        uint256[4] b;
        uint256[2] c;
        uint256[3] input;
    }

    function _vector(string memory name) internal view returns (Vector memory v) {
        string memory json =
            vm.readFile(string.concat(vm.projectRoot(), "/../crates/zk/tests/vectors/", name, ".json"));
        uint256[] memory a = vm.parseJsonUintArray(json, ".a");
        uint256[] memory b = vm.parseJsonUintArray(json, ".b");
        uint256[] memory c = vm.parseJsonUintArray(json, ".c");
        uint256[] memory input = vm.parseJsonUintArray(json, ".input");
        v.a = [a[0], a[1]];
        v.b = [b[0], b[1], b[2], b[3]];
        v.c = [c[0], c[1]];
        v.input = [input[0], input[1], input[2]];
    }

    function _check(
        function(uint256[2] memory, uint256[4] memory, uint256[2] memory, uint256[3] memory)
            external
            view returns (bool) verify,
        Vector memory v
    ) internal view {
        vm.assertTrue(verify(v.a, v.b, v.c, v.input), "the proof verifies");
        Vector memory w = v;
        w.input[1] = v.input[1] ^ 1;
        vm.assertFalse(verify(w.a, w.b, w.c, w.input), "another output");
        w = _copy(v);
        w.input[2] = v.input[2] + 1;
        vm.assertFalse(verify(w.a, w.b, w.c, w.input), "another worker");
        w = _copy(v);
        (w.a, w.c) = (v.c, v.a);
        vm.assertFalse(verify(w.a, w.b, w.c, w.input), "A and C swapped");
        w = _copy(v);
        w.input[0] = v.input[0] + R;
        vm.assertFalse(verify(w.a, w.b, w.c, w.input), "an input out of the field");
        w = _copy(v);
        w.a[1] = v.a[1] ^ 1;
        vm.assertFalse(verify(w.a, w.b, w.c, w.input), "a point off the curve");
    }

    function _copy(Vector memory v) internal pure returns (Vector memory w) {
        w.a = [v.a[0], v.a[1]];
        w.b = [v.b[0], v.b[1], v.b[2], v.b[3]];
        w.c = [v.c[0], v.c[1]];
        w.input = [v.input[0], v.input[1], v.input[2]];
    }

    function test_mnistVerifier_acceptsItsProof_rejectsCorruptions() public {
        _check(new MnistMlpVerifier().verifyProof, _vector("MnistMlpVerifier"));
    }

    function test_smallVerifier_acceptsItsProof_rejectsCorruptions() public {
        _check(new SmallMlpVerifier().verifyProof, _vector("SmallMlpVerifier"));
    }

    function test_mnistVerifier_gas() public {
        MnistMlpVerifier verifier = new MnistMlpVerifier();
        Vector memory v = _vector("MnistMlpVerifier");
        uint256 before = gasleft();
        bool ok = verifier.verifyProof(v.a, v.b, v.c, v.input);
        uint256 used = before - gasleft();
        vm.assertTrue(ok, "verifies");
        vm.assertLe(used, 230_000, "verification within the 230k goal");
    }
}
