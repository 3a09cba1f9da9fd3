// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {TraceMerkle} from "../src/libraries/TraceMerkle.sol";
import {MerkleBuilder} from "./utils/MerkleBuilder.sol";

/// @dev The library's calldata functions, callable from a test.
contract TraceMerkleHarness {
    function rootOf(bytes32[] calldata leaves) external pure returns (bytes32) {
        return TraceMerkle.rootOf(leaves);
    }

    function subtreeRoot(bytes32[] calldata leaves, uint256 height) external pure returns (bytes32) {
        return TraceMerkle.subtreeRoot(leaves, height);
    }

    function rootOfLevel(bytes32[] calldata nodes, uint256 height) external pure returns (bytes32) {
        return TraceMerkle.rootOfLevel(nodes, height);
    }

    function verifyNode(
        bytes32 root,
        bytes32 node,
        uint256 index,
        uint256 height,
        uint256 count,
        bytes32[] calldata proof
    ) external pure returns (bool) {
        return TraceMerkle.verifyNode(root, node, index, height, count, proof);
    }
}

/// @notice A list committed by chunks (docs/commitments.md §1 "Chunks"): the chunk nodes are the
///         whole tree's nodes at their height, the root rebuilt from them is the list's root, and
///         each node is proven by the siblings above it.
contract TraceMerkleTest is Test {
    TraceMerkleHarness internal m = new TraceMerkleHarness();

    function _leaves(uint256 n) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            leaves[i] = keccak256(abi.encode(i));
        }
    }

    function testFuzz_chunkNodesAreTheTreesNodesAtTheirHeight(uint256 n, uint256 h) public view {
        n = bound(n, 1, 300);
        h = bound(h, 0, TraceMerkle.depth(n));
        bytes32[] memory leaves = _leaves(n);
        bytes32 root = MerkleBuilder.root(leaves);
        vm.assertEq(m.rootOf(leaves), root, "rootOf");
        bytes32[] memory nodes = MerkleBuilder.nodes(leaves, h);
        vm.assertEq(m.rootOfLevel(nodes, h), root, "the root from the nodes");
        for (uint256 c = 0; c < nodes.length; ++c) {
            bytes32 node = m.subtreeRoot(MerkleBuilder.chunk(leaves, c, h), h);
            vm.assertEq(node, nodes[c], "a chunk's root is its node");
            bytes32[] memory proof = MerkleBuilder.nodeProof(leaves, c, h);
            vm.assertTrue(m.verifyNode(root, node, c, h, n, proof), "the node is proven");
            vm.assertFalse(m.verifyNode(root, node, c ^ 1, h, n, proof), "not at another index");
        }
        // No node past the last chunk, and no node above the root.
        vm.assertFalse(m.verifyNode(root, root, nodes.length, h, n, new bytes32[](0)), "past the end");
        vm.assertFalse(m.verifyNode(root, root, 0, TraceMerkle.depth(n) + 1, n, new bytes32[](0)), "too high");
    }

    function test_aChunkWiderThanItsSubtreeIsRefused() public {
        vm.expectRevert(bytes("chunk width"));
        m.subtreeRoot(_leaves(5), 2);
        vm.expectRevert(bytes("no nodes"));
        m.rootOfLevel(new bytes32[](0), 2);
    }
}
