// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataAvailability} from "../../src/interfaces/IDataAvailability.sol";
import {MerkleBuilder} from "./MerkleBuilder.sol";

/// @notice Builds a state in memory as docs/commitments.md §3 and §4 commit to it, to publish it
///         in tests: each tensor's entry (name hash, shape word, row root), the state hash, and
///         runs of rows (`IDataAvailability.RowRun`) with the proofs of their subtrees.
library StateBuilder {
    /// @notice A named i32 tensor, `values` in row-major order.
    struct Tensor {
        string name;
        uint32[] dims;
        int256[] values;
    }

    /// @notice `keccak256(u8 rank ‖ u32_be dim …)`.
    function shapeHash(uint32[] memory dims) internal pure returns (bytes32) {
        bytes memory packed = abi.encodePacked(uint8(dims.length));
        for (uint256 i = 0; i < dims.length; ++i) {
            packed = bytes.concat(packed, bytes4(dims[i]));
        }
        return keccak256(packed);
    }

    /// @notice Rows and row length: rank 0 is 1 x 1, rank 1 one row of `d0`, otherwise the last
    ///         dimension is the row.
    function rowLayout(uint32[] memory dims) internal pure returns (uint256 rows, uint256 cols) {
        if (dims.length == 0) return (1, 1);
        cols = dims[dims.length - 1];
        rows = 1;
        for (uint256 i = 0; i + 1 < dims.length; ++i) {
            rows *= dims[i];
        }
    }

    /// @notice Whether the tensor has no elements (its root is then the zero word).
    function isEmpty(Tensor memory t) internal pure returns (bool) {
        (uint256 rows, uint256 cols) = rowLayout(t.dims);
        return rows == 0 || cols == 0;
    }

    /// @notice Rows `first .. first + count` of `t`, i32 little-endian.
    function rowBytes(Tensor memory t, uint256 first, uint256 count) internal pure returns (bytes memory) {
        (, uint256 cols) = rowLayout(t.dims);
        int256[] memory slice = new int256[](count * cols);
        for (uint256 i = 0; i < slice.length; ++i) {
            slice[i] = t.values[first * cols + i];
        }
        return MerkleBuilder.pack(slice);
    }

    /// @notice The row hashes of `t`: the leaves of its row tree.
    function rowHashes(Tensor memory t) internal pure returns (bytes32[] memory h) {
        (uint256 rows,) = rowLayout(t.dims);
        h = new bytes32[](rows);
        for (uint256 r = 0; r < rows; ++r) {
            h[r] = keccak256(rowBytes(t, r, 1));
        }
    }

    /// @notice The tensor's row root, or the zero word for a tensor with no elements.
    function root(Tensor memory t) internal pure returns (bytes32) {
        if (isEmpty(t)) return bytes32(0);
        return MerkleBuilder.root(rowHashes(t));
    }

    /// @notice The 3-word entries of the state's tensors, in the given (name) order.
    function entries(Tensor[] memory ts) internal pure returns (bytes32[] memory e) {
        e = new bytes32[](3 * ts.length);
        for (uint256 i = 0; i < ts.length; ++i) {
            e[3 * i] = keccak256(bytes(ts[i].name));
            e[3 * i + 1] = shapeHash(ts[i].dims);
            e[3 * i + 2] = root(ts[i]);
        }
    }

    /// @notice `keccak256("pedals.state.2" ‖ u32_be(count) ‖ entries)`.
    function stateHash(bytes32[] memory e) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes14("pedals.state.2"), uint32(e.length / 3), e));
    }

    /// @notice The run of `2^log2Rows` rows of `t` from row `first` (fewer at the tensor's end),
    ///         with the siblings of its subtree up to the row root. A tensor with no elements
    ///         gets a run with no data and no proof.
    function run(Tensor memory t, uint256 first, uint8 log2Rows)
        internal
        pure
        returns (IDataAvailability.RowRun memory)
    {
        bytes32[][] memory levels;
        if (!isEmpty(t)) levels = MerkleBuilder.levels(rowHashes(t));
        return runIn(t, levels, first, log2Rows);
    }

    /// @notice `run`, given the levels of `t`'s row tree (none for a tensor with no elements).
    function runIn(Tensor memory t, bytes32[][] memory levels, uint256 first, uint8 log2Rows)
        internal
        pure
        returns (IDataAvailability.RowRun memory r)
    {
        r.dims = t.dims;
        r.log2Rows = log2Rows;
        if (isEmpty(t)) return r;
        (uint256 rows,) = rowLayout(t.dims);
        uint256 span = uint256(1) << log2Rows;
        uint256 count = rows - first < span ? rows - first : span;
        r.data = rowBytes(t, first, count);
        uint256 depth = levels.length - 1;
        r.proof = new bytes32[](depth > log2Rows ? depth - log2Rows : 0);
        for (uint256 k = log2Rows; k < depth; ++k) {
            r.proof[k - log2Rows] = levels[k][(first >> k) ^ 1];
        }
    }

    /// @notice Every run of the whole state, tensor by tensor, `2^log2Rows` rows each (one run
    ///         of no data for a tensor with no elements; `log2Rows` capped at each tensor's depth).
    function allRuns(Tensor[] memory ts, uint8 log2Rows)
        internal
        pure
        returns (IDataAvailability.RowRun[] memory out)
    {
        uint256 n;
        for (uint256 i = 0; i < ts.length; ++i) {
            n += runCount(ts[i], log2Rows);
        }
        out = new IDataAvailability.RowRun[](n);
        uint256 next;
        for (uint256 i = 0; i < ts.length; ++i) {
            uint8 m = capped(ts[i], log2Rows);
            uint256 count = runCount(ts[i], log2Rows);
            bytes32[][] memory levels;
            if (!isEmpty(ts[i])) levels = MerkleBuilder.levels(rowHashes(ts[i]));
            for (uint256 j = 0; j < count; ++j) {
                out[next++] = runIn(ts[i], levels, j << m, m);
            }
        }
    }

    /// @notice The runs of `2^log2Rows` rows that cover `t` (1 for a tensor with no elements).
    function runCount(Tensor memory t, uint8 log2Rows) internal pure returns (uint256) {
        if (isEmpty(t)) return 1;
        (uint256 rows,) = rowLayout(t.dims);
        uint256 span = uint256(1) << capped(t, log2Rows);
        return (rows + span - 1) / span;
    }

    /// @notice `log2Rows`, at most the depth of `t`'s row tree (a run cannot be above the root).
    function capped(Tensor memory t, uint8 log2Rows) internal pure returns (uint8) {
        (uint256 rows,) = rowLayout(t.dims);
        uint8 d;
        while ((uint256(1) << d) < rows) ++d;
        return log2Rows < d ? log2Rows : d;
    }

    /// @notice A tensor of shape `dims` whose elements are `seed`, `seed + 1`, … alternating in sign.
    function tensor(string memory name, uint32[] memory dims, int256 seed)
        internal
        pure
        returns (Tensor memory t)
    {
        t.name = name;
        t.dims = dims;
        uint256 n = 1;
        for (uint256 i = 0; i < dims.length; ++i) {
            n *= dims[i];
        }
        t.values = new int256[](n);
        for (uint256 i = 0; i < n; ++i) {
            int256 v = seed + int256(i);
            t.values[i] = i % 2 == 0 ? v : -v;
        }
    }

    /// @notice `[a]`, `[a, b]`: dims literals.
    function dims1(uint32 a) internal pure returns (uint32[] memory d) {
        d = new uint32[](1);
        d[0] = a;
    }

    function dims2(uint32 a, uint32 b) internal pure returns (uint32[] memory d) {
        d = new uint32[](2);
        d[0] = a;
        d[1] = b;
    }
}
