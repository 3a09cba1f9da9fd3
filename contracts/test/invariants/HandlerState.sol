// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataAvailability} from "../../src/interfaces/IDataAvailability.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {TraceMerkle} from "../../src/libraries/TraceMerkle.sol";
import {StateBuilder} from "../utils/StateBuilder.sol";

/// @notice The one state of the invariant handler's workers, and their traces: every leaf of a
///         trace is that state's hash, so any demanded step can be opened and published. Proofs
///         of a tree of `n` equal leaves take `O(depth²)` hashes, not a tree built in memory.
library HandlerState {
    /// @notice The state, in name order: `b` (one row of 2), `e` (shape [0]: one row of no
    ///         elements, root zero) and `w` (3 rows of 2).
    function state() internal pure returns (StateBuilder.Tensor[] memory ts) {
        ts = new StateBuilder.Tensor[](3);
        ts[0] = StateBuilder.tensor("b", StateBuilder.dims1(2), 3);
        ts[1] = StateBuilder.tensor("e", StateBuilder.dims1(0), 0);
        ts[2] = StateBuilder.tensor("w", StateBuilder.dims2(3, 2), -40);
    }

    /// @notice The runs that publish the state from row `row` of tensor `tensor` on, `2^log2Rows`
    ///         rows each (fewer where the start is not aligned to that), and the cursor after each.
    function remainingRuns(uint256 tensor, uint256 row, uint8 log2Rows)
        internal
        pure
        returns (
            IDataAvailability.RowRun[] memory rs,
            uint256[] memory tensorAfter,
            uint256[] memory rowAfter
        )
    {
        StateBuilder.Tensor[] memory ts = state();
        rs = new IDataAvailability.RowRun[](8);
        tensorAfter = new uint256[](8);
        rowAfter = new uint256[](8);
        uint256 n;
        for (uint256 t = tensor; t < ts.length; ++t) {
            uint256 first = t == tensor ? row : 0;
            (uint256 rows,) = StateBuilder.rowLayout(ts[t].dims);
            // A tensor with no elements is one run of no data.
            if (StateBuilder.isEmpty(ts[t])) rows = first + 1;
            uint8 m = StateBuilder.capped(ts[t], log2Rows);
            while (first % (uint256(1) << m) != 0) {
                --m;
            }
            while (first < rows) {
                rs[n] = StateBuilder.run(ts[t], first, m);
                first = first + (uint256(1) << m) < rows ? first + (uint256(1) << m) : rows;
                (tensorAfter[n], rowAfter[n]) = first < rows ? (t, first) : (t + 1, 0);
                ++n;
            }
        }
        assembly ("memory-safe") {
            mstore(rs, n)
            mstore(tensorAfter, n)
            mstore(rowAfter, n)
        }
    }

    /// @notice The publication cursor of the open demand `d` of job `jobId`, as its publisher
    ///         will use it: the stored one if it belongs to `d`, all zero otherwise.
    function cursorOf(uint256 jobId, IJobMarket.DataDemand memory d)
        internal
        view
        returns (IDataAvailability.Cursor memory c)
    {
        c = IDataAvailability(d.publisher).cursorOf(jobId);
        if (c.demandOpenedAt != d.openedAt) delete c;
    }

    /// @notice Whether a publisher's cursor for job `jobId` (status `s`, demand `d`) is one it may
    ///         hold: none, or one of the job's open demand made through it, never past the last
    ///         tensor and moved only after `openState`. Only a demand claimed unmet leaves its
    ///         cursor behind (the publisher is not told), on a job that is then Resolved for good.
    function cursorValid(
        IDataAvailability publisher,
        uint256 jobId,
        IJobMarket.JobStatus s,
        IJobMarket.DataDemand memory d
    ) internal view returns (bool) {
        IDataAvailability.Cursor memory c = publisher.cursorOf(jobId);
        if (c.demandOpenedAt == 0) return c.stateHash == bytes32(0) && c.tensor == 0 && c.row == 0;
        if (s == IJobMarket.JobStatus.Resolved) return true;
        return s == IJobMarket.JobStatus.Demanded && d.publisher == address(publisher)
            && c.demandOpenedAt == d.openedAt && c.tensor < state().length
            && (c.stateHash != bytes32(0) || (c.tensor == 0 && c.row == 0));
    }

    /// @notice Whether any of these succeeds: opening, publishing the rows of, or publishing as a
    ///         blob the (honest) state at `step` of job `jobId` through `through`, or the caller
    ///         reporting the job's demand met. Each must fail unless `through` is the publisher
    ///         of an open demand of the job.
    function tryPublish(
        IJobMarket market,
        IDataAvailability through,
        uint256 jobId,
        uint256 steps,
        uint256 step,
        bytes32[] memory entries
    ) internal returns (bool ok) {
        bytes32 h = StateBuilder.stateHash(entries);
        uint256 leaves = steps + 1;
        bool last = step + 1 == leaves;
        bytes32[] memory proof = uniformProof(h, leaves, step);
        bytes32[] memory nextProof = last ? new bytes32[](0) : uniformProof(h, leaves, step + 1);
        bytes32 next = last ? bytes32(0) : h;
        (ok,) = address(through)
            .call(abi.encodeCall(through.openState, (jobId, entries, proof, next, nextProof)));
        (IDataAvailability.RowRun[] memory rs,,) = remainingRuns(0, 0, 0);
        if (!ok) (ok,) = address(through).call(abi.encodeCall(through.publishRows, (jobId, entries, rs)));
        if (!ok) (ok,) = address(through).call(abi.encodeCall(through.publishBlob, (jobId, "", proof)));
        if (!ok) (ok,) = address(market).call(abi.encodeCall(market.demandMet, (jobId)));
    }

    /// @notice The root of the tree over `n` copies of `leaf` (docs/commitments.md §1).
    function uniformRoot(bytes32 leaf, uint256 n) internal pure returns (bytes32) {
        (bytes32[] memory full, bytes32[] memory zero) = _levels(leaf, n);
        return _node(full, zero, n, full.length - 1, 0);
    }

    /// @notice The proof of leaf `index` of the tree over `n` copies of `leaf`.
    function uniformProof(bytes32 leaf, uint256 n, uint256 index)
        internal
        pure
        returns (bytes32[] memory proof)
    {
        (bytes32[] memory full, bytes32[] memory zero) = _levels(leaf, n);
        proof = new bytes32[](full.length - 1);
        for (uint256 k = 0; k < proof.length; ++k) {
            proof[k] = _node(full, zero, n, k, (index >> k) ^ 1);
        }
    }

    /// @dev Per level: the node over leaves only, and the node over padding only.
    function _levels(bytes32 leaf, uint256 n)
        private
        pure
        returns (bytes32[] memory full, bytes32[] memory zero)
    {
        uint256 d = TraceMerkle.depth(n);
        full = new bytes32[](d + 1);
        zero = new bytes32[](d + 1);
        full[0] = TraceMerkle.hashLeaf(leaf);
        for (uint256 k = 1; k <= d; ++k) {
            full[k] = TraceMerkle.hashNode(full[k - 1], full[k - 1]);
            zero[k] = TraceMerkle.hashNode(zero[k - 1], zero[k - 1]);
        }
    }

    /// @dev Node `j` of level `k`: all leaves, all padding, or (on the one path where the leaves
    ///      end) the node of its two children.
    function _node(bytes32[] memory full, bytes32[] memory zero, uint256 n, uint256 k, uint256 j)
        private
        pure
        returns (bytes32)
    {
        uint256 first = j << k;
        if (first >= n) return zero[k];
        if (first + (uint256(1) << k) <= n) return full[k];
        return
            TraceMerkle.hashNode(_node(full, zero, n, k - 1, 2 * j), _node(full, zero, n, k - 1, 2 * j + 1));
    }
}
