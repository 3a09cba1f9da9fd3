// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ExactOps} from "./libraries/ExactOps.sol";

/// @title Referee
/// @notice Recomputes one output element of an exact-mode op from its input rows: the arithmetic
///         half of the dispute game, deployed on its own (it holds the exponential table) and
///         free for anyone to call. See ExactOps and docs/exact-ops.md.
contract Referee {
    /// @notice Element `(r, c)` of an op of `kind` (ExactOps codes) from its input rows, each
    ///         packed i32 little-endian, in the order DisputeProgram.inputRows names them.
    function element(uint8 kind, ExactOps.Params calldata p, uint256 r, uint256 c, bytes[] calldata rows)
        external
        pure
        returns (int256)
    {
        return ExactOps.element(kind, p, r, c, rows);
    }
}
