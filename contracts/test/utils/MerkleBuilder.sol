// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {TraceMerkle} from "../../src/libraries/TraceMerkle.sol";

/// @notice Builds the trees of docs/commitments.md §1 in memory, to make roots and proofs in tests.
library MerkleBuilder {
    /// @notice The padded levels, bottom (hashed leaves) first.
    function levels(bytes32[] memory leaves) internal pure returns (bytes32[][] memory out) {
        uint256 d = TraceMerkle.depth(leaves.length);
        out = new bytes32[][](d + 1);
        bytes32[] memory level = new bytes32[](1 << d);
        for (uint256 i = 0; i < leaves.length; ++i) {
            level[i] = TraceMerkle.hashLeaf(leaves[i]);
        }
        out[0] = level;
        for (uint256 k = 1; k <= d; ++k) {
            bytes32[] memory prev = out[k - 1];
            bytes32[] memory next = new bytes32[](prev.length / 2);
            for (uint256 i = 0; i < next.length; ++i) {
                next[i] = TraceMerkle.hashNode(prev[2 * i], prev[2 * i + 1]);
            }
            out[k] = next;
        }
    }

    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[][] memory ls = levels(leaves);
        return ls[ls.length - 1][0];
    }

    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory siblings) {
        bytes32[][] memory ls = levels(leaves);
        siblings = new bytes32[](ls.length - 1);
        for (uint256 k = 0; k + 1 < ls.length; ++k) {
            siblings[k] = ls[k][(index >> k) ^ 1];
        }
    }

    /// @notice The nodes at level `height` over the leaves (one per aligned run of `2^height`).
    function nodes(bytes32[] memory leaves, uint256 height) internal pure returns (bytes32[] memory out) {
        bytes32[][] memory ls = levels(leaves);
        out = new bytes32[]((leaves.length + (uint256(1) << height) - 1) >> height);
        for (uint256 i = 0; i < out.length; ++i) {
            out[i] = ls[height][i];
        }
    }

    /// @notice The siblings of node `index` at level `height`, bottom-up to the root.
    function nodeProof(bytes32[] memory leaves, uint256 index, uint256 height)
        internal
        pure
        returns (bytes32[] memory siblings)
    {
        bytes32[] memory all = proof(leaves, index << height);
        siblings = new bytes32[](all.length - height);
        for (uint256 k = 0; k < siblings.length; ++k) {
            siblings[k] = all[height + k];
        }
    }

    /// @notice Leaves `[index · 2^height, …)` of the list, at most `2^height` of them.
    function chunk(bytes32[] memory leaves, uint256 index, uint256 height)
        internal
        pure
        returns (bytes32[] memory out)
    {
        uint256 first = index << height;
        uint256 width =
            leaves.length - first < (uint256(1) << height) ? leaves.length - first : uint256(1) << height;
        out = new bytes32[](width);
        for (uint256 k = 0; k < width; ++k) {
            out[k] = leaves[first + k];
        }
    }

    /// @notice A row of i32 values, packed little-endian as rows are committed.
    function pack(int256[] memory values) internal pure returns (bytes memory out) {
        out = new bytes(4 * values.length);
        for (uint256 c = 0; c < values.length; ++c) {
            uint32 v = uint32(int32(values[c]));
            out[4 * c] = bytes1(uint8(v));
            out[4 * c + 1] = bytes1(uint8(v >> 8));
            out[4 * c + 2] = bytes1(uint8(v >> 16));
            out[4 * c + 3] = bytes1(uint8(v >> 24));
        }
    }
}
