// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IDataAvailability
/// @notice Where a state demanded by the market (`IJobMarket.demandData`) is published: the
///         entries of its tensors first (`openState`), proven to be the trace's leaf, then
///         every row of every tensor (`publishRows`), proven against the entries' row roots;
///         or, for a leaf that hashes a blob (a batch-inference chunk's outputs), the blob
///         (`publishBlob`). The last part reports the demand met to the market. Anyone may
///         publish: the data is what counts, not who sends it. Everything published is in the
///         events, where validators and requesters read it back.
interface IDataAvailability {
    /// @notice One run of a tensor's rows in `publishRows`.
    struct RowRun {
        /// The tensor's dimensions, checked against its entry's shape word.
        uint32[] dims;
        /// The run holds `2^log2Rows` rows (fewer only at the tensor's end).
        uint8 log2Rows;
        /// The rows, i32 little-endian elements, concatenated.
        bytes data;
        /// Siblings of the run's subtree root up to the tensor's row root, bottom-up.
        bytes32[] proof;
    }

    /// @notice How far the publication for a job's open demand got.
    struct Cursor {
        /// `h_step`, once opened; zero before.
        bytes32 stateHash;
        /// The demand it belongs to (its `openedAt`).
        uint40 demandOpenedAt;
        /// The next tensor, in name order.
        uint32 tensor;
        /// Its next row.
        uint32 row;
    }

    /// @notice The demanded state of job `jobId` is `stateHash` (`h_step`, proven in the trace),
    ///         with `nextStateHash` (`h_{step+1}`, zero after the last step); `entries` are its
    ///         tensors' entries (name hash, shape hash, row root), in name order.
    event StateOpened(
        uint256 indexed jobId, uint256 step, bytes32 stateHash, bytes32 nextStateHash, bytes32[] entries
    );
    /// @notice Rows `firstRow ..` of tensor `tensor` of the demanded state of job `jobId`.
    event StateRowsPublished(uint256 indexed jobId, uint256 tensor, uint256 firstRow, bytes rows);
    /// @notice The demanded leaf of job `jobId`, a batch-inference chunk's outputs: `blob`,
    ///         whose keccak256 is leaf `step` of the trace.
    event BlobPublished(uint256 indexed jobId, uint256 step, bytes blob);

    /// @notice Job `jobId` has no open demand published through this contract, or its
    ///         deadline passed.
    error NoOpenDemand(uint256 jobId);
    /// @notice `openState` comes once per demand, before any `publishRows`.
    error StateAlreadyOpened(uint256 jobId);
    /// @notice `publishRows` needs `openState` first.
    error StateNotOpened(uint256 jobId);
    /// @notice The published state does not match the commitments; `what` says which part.
    error BadPublication(string what);

    /// @notice Opens the demanded state of job `jobId`: its tensors' entries, which must hash to
    ///         leaf `step` of the trace root, and for `step < steps` leaf `step + 1`
    ///         (`nextStateHash`) with its proof (zero and empty after the last step).
    function openState(
        uint256 jobId,
        bytes32[] calldata entries,
        bytes32[] calldata proof,
        bytes32 nextStateHash,
        bytes32[] calldata nextProof
    ) external;

    /// @notice Publishes runs of rows of the opened state, in order: tensor by tensor (name
    ///         order), rows ascending, each run proven against its tensor's row root. A tensor
    ///         with no elements is passed as a run with no data. The call that publishes the last
    ///         row reports the demand met.
    /// @param entries The state's entries, as opened.
    function publishRows(uint256 jobId, bytes32[] calldata entries, RowRun[] calldata runs) external;

    /// @notice Meets a demand of a batch-inference job (`Verification.OptimisticInference`)
    ///         whose leaf is the keccak256 of a blob, not a state: `blob` in one call, proven in
    ///         the trace. Refused for any other job (its leaves are states), and for a blob that
    ///         starts with the state hash's domain tag, so a state's leaf can only be met by its
    ///         rows.
    function publishBlob(uint256 jobId, bytes calldata blob, bytes32[] calldata proof) external;

    /// @notice The publication cursor of job `jobId`'s open demand (all zero before any part).
    function cursorOf(uint256 jobId) external view returns (Cursor memory);
}
