// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {MerkleBuilder} from "./MerkleBuilder.sol";
import {Test} from "./Test.sol";

/// @notice What the tests that read the engine's shared vector files (`{"cases": [...]}`) share:
///         the paths into the file, integer arrays written out or as `{fill, len}`, and rows
///         packed as `i32` little-endian, as a dispute opens them.
abstract contract JsonVectors is Test {
    string internal json;

    /// @dev The path of case `i`'s `path`.
    function _key(uint256 i, string memory path) internal pure returns (string memory) {
        return string.concat(".cases[", _str(i), "]", path);
    }

    function _str(uint256 v) internal pure returns (string memory) {
        if (v == 0) return "0";
        bytes memory s;
        while (v != 0) {
            s = bytes.concat(bytes1(uint8(48 + v % 10)), s);
            v /= 10;
        }
        return string(s);
    }

    /// @dev An integer array of case `i`, written out or as `{fill, len}`.
    function _ints(uint256 i, string memory path) internal view returns (int256[] memory a) {
        if (vm.keyExistsJson(json, _key(i, string.concat(path, ".fill")))) {
            int256 fill = vm.parseJsonInt(json, _key(i, string.concat(path, ".fill")));
            a = new int256[](vm.parseJsonUint(json, _key(i, string.concat(path, ".len"))));
            for (uint256 k = 0; k < a.length; ++k) {
                a[k] = fill;
            }
            return a;
        }
        return vm.parseJsonIntArray(json, _key(i, path));
    }

    /// @dev Values packed as `i32` little-endian (as `MerkleBuilder.pack`).
    function _packed(int256[] memory v) internal pure returns (bytes memory) {
        return MerkleBuilder.pack(v);
    }
}
