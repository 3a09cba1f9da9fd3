// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmNames} from "./LmNames.sol";
import {LmSlot} from "./LmSlot.sol";
import {LmStep} from "./LmStep.sol";

/// @title LmUpdate
/// @notice The last sections of a fine-tuning step's program (docs/protocol.md §9), built on
///         `LmSlot`'s builder: each slot's running token count and gradient sums, and the
///         update (Adam on every adapter matrix, the step counter and the state hash).
library LmUpdate {
    /// @dev The leaf of adapter matrix `(l, p, isB)`'s gradient sum after the slot starting at
    ///      `start` (`first`: slot 0, whose sum is its own gradient); `j` its place in sum order.
    function _sumLeaf(
        LmSlot.Builder memory b,
        uint256 from,
        bool first,
        uint256 core_,
        uint256 j,
        uint256 idx,
        bool isB
    ) private pure returns (uint256) {
        if (first) return from + (isB ? b.gB[idx] : b.gA[idx]);
        return from + core_ + 2 + j;
    }

    /// @notice The running token count of slot `slot` and, after slot 0, its gradient sums.
    function sums(LmSlot.Builder memory b, uint256 slot, uint256 t, uint256 core_) internal pure {
        (b.slot, b.t) = (slot, t);
        if (slot == 0) {
            // slither-disable-next-line unused-return
            LmSlot.push1(b, LmStep.TOKENS, 1, 1, LmSlot.data(b));
            return;
        }
        // slither-disable-next-line unused-return
        LmSlot.push2(b, LmStep.TOKENS, 1, 1, LmSlot.leaf(b.prevStart + core_ + 1, 1, 1), LmSlot.data(b));
        uint256 j = 0;
        for (uint256 l = 0; l < b.c.layers; ++l) {
            for (uint8 p = 0; p < 7; ++p) {
                if (!LmNames.adapted(b.c, p)) continue;
                _sumOne(b, slot == 1, core_, j, 7 * l + p, false);
                _sumOne(b, slot == 1, core_, j + 1, 7 * l + p, true);
                j += 2;
            }
        }
    }

    /// @dev The running sum of adapter matrix `idx` (`7·l + p`; `isB` its `B`), `j`-th in order.
    function _sumOne(LmSlot.Builder memory b, bool first, uint256 core_, uint256 j, uint256 idx, bool isB)
        private
        pure
    {
        uint8 p = uint8(idx % 7);
        uint256 rows = isB ? LmNames.outWidth(b.c, p) : b.c.rank;
        uint256 cols = isB ? 2 * b.c.rank : 2 * LmNames.inWidth(b.c, p);
        LmSlot.Operand memory prev =
            LmSlot.leaf(_sumLeaf(b, b.prevStart, first, core_, j, idx, isB), rows, cols);
        LmSlot.Operand memory cur = LmSlot.leaf(b.slotStart + (isB ? b.gB[idx] : b.gA[idx]), rows, cols);
        // slither-disable-next-line unused-return
        LmSlot.push2(b, LmStep.GRAD_SUM, rows, cols, prev, cur);
    }

    /// @notice Adam on every adapter matrix after the last slot (`slot`), the step counter and
    ///         the state hash.
    function update(LmSlot.Builder memory b, uint256 slot, uint256 core_) internal pure {
        LmNames.Config memory c = b.c;
        LmSlot.Operand memory tokens = LmSlot.leaf(b.slotStart + core_ + 1, 1, 1);
        uint256 count = LmNames.stepIndex(c) + 1;
        LmSlot.Operand[] memory next = new LmSlot.Operand[](count);
        uint256 j = 0;
        for (uint256 l = 0; l < c.layers; ++l) {
            for (uint8 p = 0; p < 7; ++p) {
                if (!LmNames.adapted(c, p)) continue;
                for (uint256 m = 0; m < 2; ++m) {
                    uint256 g = _sumLeaf(b, b.slotStart, slot == 0, core_, j, 7 * l + p, m == 1);
                    _adam(b, l, p, m == 1, LmSlot.leaf(g, 0, 0), tokens, next);
                    ++j;
                }
            }
        }
        uint256 step = LmNames.stepIndex(c);
        next[step] = LmSlot.leaf(LmSlot.push1(b, LmStep.STEP, 1, 1, LmSlot.state(step, 1, 1)), 1, 1);
        // slither-disable-next-line unused-return
        LmSlot.push(b, LmStep.STATE_HASH, 1, 1, next, 0);
    }

    function _adam(
        LmSlot.Builder memory b,
        uint256 l,
        uint8 p,
        bool isB,
        LmSlot.Operand memory g,
        LmSlot.Operand memory tokens,
        LmSlot.Operand[] memory next
    ) private pure {
        LmNames.Config memory c = b.c;
        (uint256 inp, uint256 out) = LmNames.dims(c, p);
        uint256[2] memory shape = isB ? [out, c.rank] : [c.rank, inp];
        (g.rows, g.cols) = (shape[0], 2 * shape[1]);
        adamAt(b, LmNames.stateIndex(c, l, p, isB, 0), shape, g, tokens, next);
    }

    /// @notice Adam on state tensor `w` (`shape`), its moments at `w + 1` and `w + 2`.
    function adamAt(
        LmSlot.Builder memory b,
        uint256 w,
        uint256[2] memory shape,
        LmSlot.Operand memory g,
        LmSlot.Operand memory tokens,
        LmSlot.Operand[] memory next
    ) internal pure {
        uint256[2] memory wide = [shape[0], 2 * shape[1]];
        uint256 m = LmSlot.push3(b, LmStep.ADAM_M, wide, LmSlot.state(w + 1, wide[0], wide[1]), g, tokens);
        next[w + 1] = LmSlot.leaf(m, wide[0], wide[1]);
        uint256 v = LmSlot.push3(b, LmStep.ADAM_V, wide, LmSlot.state(w + 2, wide[0], wide[1]), g, tokens);
        next[w + 2] = LmSlot.leaf(v, wide[0], wide[1]);
        _descend(b, w, shape, next);
    }

    function _descend(
        LmSlot.Builder memory b,
        uint256 w,
        uint256[2] memory shape,
        LmSlot.Operand[] memory next
    ) private pure {
        LmSlot.Operand memory master = LmSlot.state(w, shape[0], shape[1]);
        next[w] = LmSlot.leaf(
            LmSlot.push3(b, LmStep.ADAM_W, shape, master, next[w + 1], next[w + 2]), shape[0], shape[1]
        );
    }
}
