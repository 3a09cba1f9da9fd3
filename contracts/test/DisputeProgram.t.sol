// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {DisputeProgram} from "../src/libraries/DisputeProgram.sol";
import {ExactOps} from "../src/libraries/ExactOps.sol";
import {Test} from "./utils/Test.sol";

contract ProgramHarness {
    function ops(uint32[] calldata n, uint256 batch, uint256 samples)
        external
        pure
        returns (DisputeProgram.Op[] memory)
    {
        return DisputeProgram.build(n, batch, samples);
    }

    function rowsFor(uint8 kind, uint256 r, uint256 c, uint256 sample)
        external
        pure
        returns (uint256[] memory)
    {
        return DisputeProgram.inputRows(kind, r, c, sample);
    }
}

/// @notice The program of the demo model (784-64-10, batch 64), op by op: the same list that
///         `pedals_ml::dispute::program` builds (crates/ml/tests/it/dispute.rs pins the same kinds).
contract DisputeProgramTest is Test {
    ProgramHarness internal h = new ProgramHarness();

    function test_theDemoModelsProgram() public view {
        uint32[] memory n = new uint32[](3);
        n[0] = 784;
        n[1] = 64;
        n[2] = 10;
        DisputeProgram.Op[] memory ops = h.ops(n, 64, 8000);
        uint8[29] memory kinds =
            [0, 1, 2, 2, 3, 3, 4, 5, 4, 6, 3, 3, 7, 8, 9, 10, 3, 3, 7, 8, 11, 12, 11, 13, 11, 12, 11, 13, 14];
        vm.assertEq(ops.length, kinds.length, "ops");
        for (uint256 k = 0; k < kinds.length; ++k) {
            vm.assertEq(ops[k].kind, kinds[k], string.concat("kind of leaf ", vm.toString(k + 1)));
        }
        // z1 = linear(x, wq0.T, l0.bias): 64 × 64 from rows of 784.
        DisputeProgram.Op memory z1 = ops[6];
        vm.assertEq(z1.rows, 64, "z1 rows");
        vm.assertEq(z1.cols, 64, "z1 cols");
        vm.assertEq(z1.inputs[0].index, 1, "reads x");
        vm.assertEq(z1.inputs[0].cols, 784, "a row of x");
        vm.assertEq(z1.inputs[1].index, 5, "reads wq0.T");
        vm.assertEq(z1.inputs[1].cols, 784, "a row of wq0.T");
        vm.assertEq(z1.inputs[2].source, DisputeProgram.FROM_STATE, "the bias comes from h_i");
        vm.assertEq(z1.inputs[2].index, 0, "l0.bias");
        // gw0 = weight_grad(x.T, d1.T): 784 × 64.
        DisputeProgram.Op memory gw0 = ops[18];
        vm.assertEq(gw0.rows, 784, "gw0 rows");
        vm.assertEq(gw0.inputs[0].index, 17, "x.T");
        vm.assertEq(gw0.inputs[1].index, 18, "d1.T");
        // The state hash reads the eight new tensors, in name order.
        DisputeProgram.Op memory last = ops[28];
        vm.assertEq(last.inputs.length, 8, "eight tensors");
        uint256[8] memory leaves = [uint256(24), 23, 22, 21, 28, 27, 26, 25];
        for (uint256 i = 0; i < 8; ++i) {
            vm.assertEq(last.inputs[i].index, leaves[i], "new state leaf");
        }
        // The gather reads the dataset row of the batch row; the data has features + label.
        vm.assertEq(ops[0].inputs[0].cols, 785, "sample row");
        vm.assertEq(ops[0].inputs[0].rows, 8000, "samples");
        vm.assertEq(h.rowsFor(ExactOps.GATHER_LABELS, 3, 0, 4321)[0], 4321, "gather row");
        vm.assertEq(h.rowsFor(ExactOps.LINEAR, 3, 5, 0)[1], 5, "linear reads row c of wq.T");
    }

    function test_unsupportedModelsAreRefused() public {
        uint32[] memory n = new uint32[](1);
        n[0] = 4;
        vm.expectRevert(DisputeProgram.UnsupportedModel.selector);
        h.ops(n, 8, 10);
        n = new uint32[](12);
        for (uint256 i = 0; i < 12; ++i) {
            n[i] = 4;
        }
        vm.expectRevert(DisputeProgram.UnsupportedModel.selector);
        h.ops(n, 8, 10);
    }
}
