// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title TraceMerkle
/// @notice The Merkle trees of docs/commitments.md §1: leaf `keccak256(0x00 ‖ x)`, node
///         `keccak256(0x01 ‖ l ‖ r)`, the leaf level padded to a power of two with the zero word
///         (never hashed). Used for step traces, op traces, tensor rows and dataset rows.
library TraceMerkle {
    /// @notice Whether `leaf` is at `index` of a tree of `leafCount` leaves with root `root`.
    /// @dev The proof must have exactly `ceil(log2(leafCount))` siblings, bottom-up.
    function verify(bytes32 root, bytes32 leaf, uint256 index, uint256 leafCount, bytes32[] calldata siblings)
        internal
        pure
        returns (bool)
    {
        if (leafCount == 0 || index >= leafCount || siblings.length != depth(leafCount)) return false;
        bytes32 h = hashLeaf(leaf);
        for (uint256 k = 0; k < siblings.length; ++k) {
            h = ((index >> k) & 1) == 0 ? hashNode(h, siblings[k]) : hashNode(siblings[k], h);
        }
        return h == root;
    }

    /// @notice The root of a tree over `leaves` (at least one).
    /// @dev Subtrees made only of padding are the precomputed zero nodes, so the cost grows with
    ///      the number of leaves, not with the padded width.
    function rootOf(bytes32[] calldata leaves) internal pure returns (bytes32) {
        uint256 count = leaves.length;
        require(count != 0, "no leaves");
        bytes32[] memory level = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            level[i] = hashLeaf(leaves[i]);
        }
        bytes32 zero; // the value of an all-padding node at the current level
        while (count > 1) {
            count = _up(level, count, zero);
            zero = hashNode(zero, zero);
        }
        return level[0];
    }

    /// @notice Whether `node`, the root of the `index`-th aligned subtree of `2^height` leaves,
    ///         is in the tree of `leafCount` leaves with root `root` (a chunk of a long list).
    /// @dev The proof has `depth(leafCount) - height` siblings, bottom-up from the node's level.
    function verifyNode(
        bytes32 root,
        bytes32 node,
        uint256 index,
        uint256 height,
        uint256 leafCount,
        bytes32[] calldata siblings
    ) internal pure returns (bool) {
        uint256 d = depth(leafCount);
        if (leafCount == 0 || height > d || siblings.length != d - height) return false;
        if (index >= (leafCount + (uint256(1) << height) - 1) >> height) return false;
        bytes32 h = node;
        for (uint256 k = 0; k < siblings.length; ++k) {
            h = ((index >> k) & 1) == 0 ? hashNode(h, siblings[k]) : hashNode(siblings[k], h);
        }
        return h == root;
    }

    /// @notice The root of `leaves` as a subtree of `2^height` leaves: the leaf level padded
    ///         with the zero word to that width, as `rootOf` pads the whole list.
    function subtreeRoot(bytes32[] calldata leaves, uint256 height) internal pure returns (bytes32) {
        uint256 count = leaves.length;
        require(count != 0 && count <= (uint256(1) << height), "chunk width");
        bytes32[] memory level = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            level[i] = hashLeaf(leaves[i]);
        }
        bytes32 zero = bytes32(0); // the all-padding node of the current level
        for (uint256 k = 0; k < height; ++k) {
            count = _up(level, count, zero);
            zero = hashNode(zero, zero);
        }
        return level[0];
    }

    /// @notice The root of a tree whose level `height` is `nodes` (the roots of its aligned
    ///         subtrees of `2^height` leaves, in order): the rest of `rootOf` from that level.
    function rootOfLevel(bytes32[] calldata nodes, uint256 height) internal pure returns (bytes32) {
        uint256 count = nodes.length;
        require(count != 0, "no nodes");
        bytes32[] memory level = nodes;
        bytes32 zero = bytes32(0);
        for (uint256 k = 0; k < height; ++k) {
            zero = hashNode(zero, zero);
        }
        while (count > 1) {
            count = _up(level, count, zero);
            zero = hashNode(zero, zero);
        }
        return level[0];
    }

    /// @dev Hashes the first `count` nodes of `level` one level up, in place, a missing right
    ///      node being `zero`; returns how many nodes the level above has.
    function _up(bytes32[] memory level, uint256 count, bytes32 zero) private pure returns (uint256 next) {
        next = (count + 1) / 2;
        for (uint256 i = 0; i < next; ++i) {
            bytes32 right = 2 * i + 1 < count ? level[2 * i + 1] : zero;
            level[i] = hashNode(level[2 * i], right);
        }
    }

    /// @notice `ceil(log2(n))`: siblings in every proof of a tree of `n` leaves.
    function depth(uint256 n) internal pure returns (uint256 d) {
        while ((uint256(1) << d) < n) ++d;
    }

    /// @notice `keccak256(0x00 ‖ leaf)`.
    function hashLeaf(bytes32 leaf) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, 0)
            mstore(0x01, leaf)
            h := keccak256(0x00, 0x21)
        }
    }

    /// @notice `keccak256(0x01 ‖ left ‖ right)`.
    function hashNode(bytes32 left, bytes32 right) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 1)
            mstore(add(p, 1), left)
            mstore(add(p, 33), right)
            h := keccak256(p, 65)
        }
    }
}
