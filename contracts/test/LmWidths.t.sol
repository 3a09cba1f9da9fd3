// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {LmElementReferee} from "../src/LmReferee.sol";
import {LmStep} from "../src/libraries/LmStep.sol";

/// @notice Gas of the attention's key and value gradients (`dk`, `dv`) at the widths
///         `LmDisputeGame.admitSpec` admits: their element reads a `ds.t` (or `probs.t`) row of
///         `context · heads` values and a `q.g` (or `do.g`) row of `n · context`, `n` the query
///         heads a key/value head serves. Logs the element's gas and the calldata of its two
///         rows (16 gas a byte), and holds their sum under the 15M a move may cost.
contract LmWidthsGasTest is Test {
    LmElementReferee internal h;

    event log_named_uint(string key, uint256 val);

    function setUp() public {
        h = new LmElementReferee();
    }

    /// @dev A row of `n` nonzero i32 values (calldata's dearest case).
    function _row(uint256 n, uint256 salt) internal pure returns (bytes memory out) {
        out = new bytes(4 * n);
        uint256 x = salt;
        for (uint256 i = 0; i < n; ++i) {
            // A linear congruential draw: no allocation per value, so the caller's memory (whose
            // growth the call's encoding pays for) stays the rows'.
            x = (x * 6_364_136_223_846_793_005 + 1_442_695_040_888_963_407) % 2 ** 64;
            uint32 v = uint32(x >> 32) | 0x01010101;
            out[4 * i] = bytes1(uint8(v));
            out[4 * i + 1] = bytes1(uint8(v >> 8));
            out[4 * i + 2] = bytes1(uint8(v >> 16));
            out[4 * i + 3] = bytes1(uint8(v >> 24) & 0x3f);
        }
    }

    function _gas(uint8 kind, uint256 t, uint256 heads, uint256 kvHeads, uint256 hd)
        internal
        returns (uint256)
    {
        uint256 n = heads / kvHeads;
        LmStep.Op memory op;
        (op.kind, op.rows, op.cols) = (kind, t, kvHeads * hd);
        op.inputRows = new uint256[](2);
        (op.inputRows[0], op.inputRows[1]) = (t, kvHeads * hd);
        LmStep.Params memory p;
        (p.heads, p.kvHeads, p.headDim, p.scale) = (heads, kvHeads, hd, 1 << 28);
        bytes[] memory rows = new bytes[](2);
        (rows[0], rows[1]) = (_row(t * heads, 1), _row(n * t, 2));
        uint256 before = gasleft();
        h.element(op, p, t - 1, op.cols - 1, rows);
        uint256 used = before - gasleft();
        uint256 calldata_ = 16 * (rows[0].length + rows[1].length);
        emit log_named_uint("element gas", used);
        emit log_named_uint("its rows' calldata gas", calldata_);
        vm.assertLt(used + calldata_, 15_000_000, "one move");
        return used + calldata_;
    }

    /// @notice GPT-2 small: 1 024 positions, 12 heads of 64, one query head a key head.
    function test_dkAtGpt2SmallsWidths() public {
        _gas(LmStep.DK, 1024, 12, 12, 64);
    }

    /// @notice The widest admitted: `context · (heads + heads / kv_heads)` = 16 384 with one
    ///         key/value head for all (the sum runs over all 8 192 values of both rows).
    function test_dkAndDvAtTheWidestAdmittedRows() public {
        _gas(LmStep.DK, 4096, 2, 1, 64);
        _gas(LmStep.DV, 2048, 4, 1, 64);
    }
}
