// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {StateRows} from "../src/libraries/StateRows.sol";
import {Test} from "./utils/Test.sol";

/// @notice External wrapper so that calldata arrays reach the library.
contract StateRowsHarness {
    function shapeHash(uint32[] calldata dims) external pure returns (bytes32) {
        return StateRows.shapeHash(dims);
    }
}

/// @notice The shape word of docs/commitments.md §3, `keccak256(u8 rank ‖ u32_be dim …)`, on
///         byte strings written out by hand (the Rust side, `pedals_core::shape_hash`, hashes the
///         same bytes).
contract StateRowsTest is Test {
    StateRowsHarness internal h = new StateRowsHarness();

    function test_shapeHash_isTheRankAndBigEndianDims() public view {
        uint32[] memory dims = new uint32[](2);
        dims[0] = 784;
        dims[1] = 64;
        vm.assertEq(h.shapeHash(dims), keccak256(hex"020000031000000040"), "[784, 64]");
        vm.assertEq(h.shapeHash(new uint32[](0)), keccak256(hex"00"), "a scalar");
        uint32[] memory one = new uint32[](1);
        one[0] = 10;
        vm.assertEq(h.shapeHash(one), keccak256(hex"010000000a"), "[10]");
    }
}
