// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataAvailability} from "../interfaces/IDataAvailability.sol";
import {TraceMerkle} from "./TraceMerkle.sol";

/// @title StateRows
/// @notice Checks a state published on-chain piece by piece (docs/protocol.md §7): the state
///         hash of its tensor entries, and aligned runs of a tensor's rows against the tensor's
///         row root (docs/commitments.md §3 and §4).
/// @dev A run of `2^m` rows that starts at a multiple of `2^m` is a whole subtree of the row
///      tree: its root, over the run's row hashes padded with zero words to `2^m`, is the node
///      at level `m`, position `first >> m`, proven by the `depth(rows) - m` siblings above it.
library StateRows {
    /// @notice Domain tag of the state hash (docs/commitments.md §3).
    bytes14 internal constant STATE_TAG = "pedals.state.2";

    /// @notice `keccak256("pedals.state.2" ‖ u32_be(count) ‖ entries)`, with 3 words per tensor.
    /// @dev The caller checks `entries.length` is a non-zero multiple of 3.
    function stateHash(bytes32[] calldata entries) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(STATE_TAG, uint32(entries.length / 3), entries));
    }

    /// @notice `keccak256(u8 rank ‖ u32_be dim …)`, the shape word of a state entry.
    function shapeHash(uint32[] calldata dims) internal pure returns (bytes32) {
        // Not `abi.encodePacked(dims)`: that pads every element of an array to 32 bytes.
        bytes memory packed = abi.encodePacked(uint8(dims.length));
        for (uint256 i = 0; i < dims.length; ++i) {
            packed = bytes.concat(packed, bytes4(dims[i]));
        }
        return keccak256(packed);
    }

    /// @notice A tensor's row count and row length (elements): a tensor of rank 0 or 1 is one
    ///         row; otherwise the last dimension is the row.
    function rowLayout(uint32[] calldata dims) internal pure returns (uint256 rows, uint256 cols) {
        uint256 rank = dims.length;
        if (rank == 0) return (1, 1);
        cols = dims[rank - 1];
        rows = 1;
        for (uint256 i = 0; i + 1 < rank; ++i) {
            rows *= dims[i];
        }
    }

    /// @notice Checks one run of rows of tensor `tensor` of the state with `entries`, starting
    ///         at `row`, and emits it; returns the tensor's row count and the next row.
    function publishRun(
        uint256 jobId,
        bytes32[] calldata entries,
        uint256 tensor,
        uint256 row,
        IDataAvailability.RowRun calldata run
    ) internal returns (uint256 rows, uint256 next) {
        if (shapeHash(run.dims) != entries[3 * tensor + 1]) {
            revert IDataAvailability.BadPublication("shape");
        }
        uint256 cols;
        (rows, cols) = rowLayout(run.dims);
        bytes32 root = entries[3 * tensor + 2];
        if (rows == 0 || cols == 0) {
            // No elements: its root is the zero word and there is nothing to publish.
            if (root != bytes32(0) || run.data.length != 0) {
                revert IDataAvailability.BadPublication("empty tensor");
            }
            return (rows, rows);
        }
        (bool ok, uint256 count) = verifyRun(root, rows, cols, row, run);
        if (!ok) revert IDataAvailability.BadPublication("rows");
        emit IDataAvailability.StateRowsPublished(jobId, tensor, row, run.data);
        next = row + count;
    }

    /// @notice Checks that `h` is leaf `step` of a trace of `leaves` leaves with root `root`,
    ///         and `next` leaf `step + 1` (zero after the last step).
    function checkOpened(
        bytes32 root,
        uint256 leaves,
        uint256 step,
        bytes32 h,
        bytes32[] calldata proof,
        bytes32 next,
        bytes32[] calldata nextProof
    ) internal pure {
        if (!TraceMerkle.verify(root, h, step, leaves, proof)) {
            revert IDataAvailability.BadPublication("state hash");
        }
        bool nextOk = step + 1 < leaves
            ? TraceMerkle.verify(root, next, step + 1, leaves, nextProof)
            : next == bytes32(0);
        if (!nextOk) revert IDataAvailability.BadPublication("next state hash");
    }

    /// @notice Whether `run` holds rows `first ..` of a tensor of `rows` rows of `cols` elements
    ///         (i32 LE) with row root `root`. The run holds `2^run.log2Rows` rows, fewer only when
    ///         it ends the tensor; `first` must be a multiple of `2^run.log2Rows`.
    /// @return ok Whether the run and its proof verify.
    /// @return count The rows in the run.
    function verifyRun(
        bytes32 root,
        uint256 rows,
        uint256 cols,
        uint256 first,
        IDataAvailability.RowRun calldata run
    ) internal pure returns (bool ok, uint256 count) {
        uint256 log2Rows = run.log2Rows;
        uint256 span = uint256(1) << log2Rows;
        if (log2Rows > TraceMerkle.depth(rows) || first >= rows || first % span != 0) return (false, 0);
        count = rows - first < span ? rows - first : span;
        if (run.data.length != count * cols * 4 || run.proof.length + log2Rows != TraceMerkle.depth(rows)) {
            return (false, count);
        }
        bytes32 h = runRoot(run.data, count, span, cols * 4);
        ok = climb(h, first >> log2Rows, run.proof) == root;
    }

    /// @notice The root reached from node `h` at position `index` of its level by `siblings`.
    function climb(bytes32 h, uint256 index, bytes32[] calldata siblings) internal pure returns (bytes32) {
        for (uint256 k = 0; k < siblings.length; ++k) {
            h = ((index >> k) & 1) == 0
                ? TraceMerkle.hashNode(h, siblings[k])
                : TraceMerkle.hashNode(siblings[k], h);
        }
        return h;
    }

    /// @notice The root of the subtree over the `count` rows of `data` (`rowBytes` each), padded
    ///         with zero words to `span` leaves.
    function runRoot(bytes calldata data, uint256 count, uint256 span, uint256 rowBytes)
        internal
        pure
        returns (bytes32)
    {
        bytes32[] memory level = new bytes32[](span);
        for (uint256 i = 0; i < count; ++i) {
            level[i] = TraceMerkle.hashLeaf(keccak256(data[i * rowBytes:(i + 1) * rowBytes]));
        }
        // Positions past the tensor's last row stay the zero word: padding, never hashed.
        for (uint256 width = span; width > 1; width >>= 1) {
            for (uint256 i = 0; i < width / 2; ++i) {
                level[i] = TraceMerkle.hashNode(level[2 * i], level[2 * i + 1]);
            }
        }
        return level[0];
    }
}
