// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataAvailability} from "./interfaces/IDataAvailability.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {StateRows} from "./libraries/StateRows.sol";
import {TraceMerkle} from "./libraries/TraceMerkle.sol";

/// @title DataAvailability
/// @notice Checks states published on-chain to meet the market's data-availability demands
///         (docs/protocol.md §7) and reports each demand met. It holds no ETH: the bond and
///         the verdict's money stay in the market, which also decides an unmet demand.
contract DataAvailability is IDataAvailability {
    /// @notice The market whose demands this contract checks.
    IJobMarket public immutable market;

    mapping(uint256 jobId => Cursor) internal _cursors;

    /// @param market_ The job market that names this contract as its publisher.
    constructor(IJobMarket market_) {
        market = market_;
    }

    /// @inheritdoc IDataAvailability
    function openState(
        uint256 jobId,
        bytes32[] calldata entries,
        bytes32[] calldata proof,
        bytes32 nextStateHash,
        bytes32[] calldata nextProof
    ) external {
        (IJobMarket.Job memory job, IJobMarket.DataDemand memory d, Cursor storage c) = _open(jobId);
        if (c.stateHash != bytes32(0)) revert StateAlreadyOpened(jobId);
        if (entries.length == 0 || entries.length % 3 != 0) revert BadPublication("entries");
        bytes32 h = StateRows.stateHash(entries);
        StateRows.checkOpened(
            job.traceRoot, uint256(job.steps) + 1, d.step, h, proof, nextStateHash, nextProof
        );
        c.stateHash = h;
        emit StateOpened(jobId, d.step, h, nextStateHash, entries);
    }

    /// @inheritdoc IDataAvailability
    function publishRows(uint256 jobId, bytes32[] calldata entries, RowRun[] calldata runs) external {
        (,, Cursor storage c) = _open(jobId);
        bytes32 opened = c.stateHash;
        if (opened == bytes32(0)) revert StateNotOpened(jobId);
        if (entries.length % 3 != 0 || StateRows.stateHash(entries) != opened) {
            revert BadPublication("entries");
        }
        uint256 tensors = entries.length / 3;
        uint256 tensor = c.tensor;
        uint256 row = c.row;
        for (uint256 i = 0; i < runs.length; ++i) {
            if (tensor >= tensors) revert BadPublication("past the last tensor");
            uint256 rows;
            (rows, row) = StateRows.publishRun(jobId, entries, tensor, row, runs[i]);
            if (row >= rows) {
                ++tensor;
                row = 0;
            }
        }
        if (tensor < tensors) {
            c.tensor = uint32(tensor);
            c.row = uint32(row);
            return;
        }
        delete _cursors[jobId];
        market.demandMet(jobId);
    }

    /// @inheritdoc IDataAvailability
    function publishBlob(uint256 jobId, bytes calldata blob, bytes32[] calldata proof) external {
        (IJobMarket.Job memory job, IJobMarket.DataDemand memory d, Cursor storage c) = _open(jobId);
        if (c.stateHash != bytes32(0)) revert StateAlreadyOpened(jobId);
        // A training job's leaves are states: a worker that made them hashes of blobs must not
        // be able to meet a demand with the blob.
        if (job.verification != IJobMarket.Verification.OptimisticInference) {
            revert BadPublication("not a blob job");
        }
        // A state's leaf hashes its tag and entries: publishing those as a blob would skip the rows.
        if (blob.length >= 14 && bytes14(blob[:14]) == StateRows.STATE_TAG) revert BadPublication("blob");
        if (!TraceMerkle.verify(job.traceRoot, keccak256(blob), d.step, uint256(job.steps) + 1, proof)) {
            revert BadPublication("blob");
        }
        emit BlobPublished(jobId, d.step, blob);
        delete _cursors[jobId];
        market.demandMet(jobId);
    }

    /// @inheritdoc IDataAvailability
    function cursorOf(uint256 jobId) external view returns (Cursor memory) {
        return _cursors[jobId];
    }

    /// @dev The job, its open demand (made with this contract as publisher, before its
    ///      deadline) and the demand's cursor, reset if it was left by an earlier demand.
    function _open(uint256 jobId)
        internal
        returns (IJobMarket.Job memory job, IJobMarket.DataDemand memory d, Cursor storage c)
    {
        job = market.getJob(jobId);
        d = market.getDemand(jobId);
        if (
            job.status != IJobMarket.JobStatus.Demanded || d.publisher != address(this)
                || block.timestamp > d.deadline
        ) revert NoOpenDemand(jobId);
        c = _cursors[jobId];
        if (c.demandOpenedAt != d.openedAt) {
            c.stateHash = bytes32(0);
            c.tensor = 0;
            c.row = 0;
            c.demandOpenedAt = d.openedAt;
        }
    }
}
