// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmNames} from "./LmNames.sol";
import {LmSlot} from "./LmSlot.sol";
import {LmStep} from "./LmStep.sol";
import {LmUpdate} from "./LmUpdate.sol";

/// @title LmFull
/// @notice The ops only a full fine-tune's step program has (docs/protocol.md §9, "Full
///         fine-tuning"), for the builder (`LmProgram`, `LmSlot`), as
///         `pedals_lm::dispute::program_full` orders them: the masters quantized first in the
///         prelude, each weight's gradient of a slot beside the signals, every weight's running
///         sum, and Adam on every weight. Weight `i` is model tensor `i` and state tensors
///         `3i` (masters), `3i + 1`, `3i + 2` (moments); `step` is `3P`.
library LmFull {
    /// @notice This library's sections, for the builder (`LmProgram.fullOpAt`).
    function sections() internal pure returns (LmSlot.Full memory f) {
        (f.masters, f.projectGrads, f.normGrads) = (masters, projectGrads, normGrads);
        (f.headGrads, f.embedGrads, f.sums, f.update) = (headGrads, embedGrads, sums, update);
    }

    /// @notice The masters as the forward reads them: a matrix through the row quantizer (its
    ///         rows' shifts last), γ `requant` by 8, β and biases by 12. Leaf `i + 1` is weight
    ///         `i`'s.
    function masters(LmSlot.Builder memory b) internal pure {
        LmNames.Config memory c = b.c;
        uint256 n = LmNames.params(c);
        for (uint256 i = 0; i < n; ++i) {
            (uint256 rows, uint256 cols, uint8 kind) = LmNames.paramShape(c, i);
            LmSlot.Operand[] memory ins = new LmSlot.Operand[](1);
            ins[0] = LmSlot.state(3 * i, rows, cols);
            // The masters' leaves are found again by number (LmSlot.weight), not by these returns.
            if (kind == 0) {
                // slither-disable-next-line unused-return
                LmSlot.push(b, LmStep.QUANT, rows, cols + 1, ins, 0);
            } else {
                // slither-disable-next-line unused-return
                LmSlot.push(b, LmStep.REQUANT, rows, cols, ins, kind == 1 ? int256(8) : int256(12));
            }
        }
    }

    /// @notice A projection's weight gradient over `dy.t` and `x.t` (leaf `xt`) and its bias's
    ///         over `dy.t`, remembered by weight.
    function projectGrads(LmSlot.Builder memory b, uint256 l, uint8 p, uint256 xt, uint256 dyt)
        internal
        pure
    {
        LmNames.Config memory c = b.c;
        (uint256 inp, uint256 out) = LmNames.dims(c, p);
        LmSlot.Operand memory d = LmSlot.leaf(dyt, out + 1, b.t);
        LmSlot.Operand memory x = LmSlot.leaf(xt, inp + 1, b.t);
        LmSlot.Operand[] memory ins = new LmSlot.Operand[](4);
        (ins[0], ins[1], ins[2], ins[3]) = (d, d, x, x);
        _keep(
            b, LmNames.weightIndex(c, l, p, false), LmSlot.push(b, LmStep.WEIGHT_GRAD, out, 2 * inp, ins, 0)
        );
        if (!LmNames.hasBias(c, p)) return;
        _keep(b, LmNames.weightIndex(c, l, p, true), LmSlot.push1(b, LmStep.BIAS_GRAD, 1, 2 * out, d));
    }

    /// @notice A norm's parameter gradients from its input `x` and its output's signal `dy`:
    ///         the normalized rows, their transpose, `dy.t`, then γ's (weight `gamma`) and
    ///         β's (weight `gamma − 1`) gradients.
    function normGrads(LmSlot.Builder memory b, uint256 x, uint256 dy, uint256 gamma) internal pure {
        (uint256 t, uint256 d) = (b.t, b.c.hidden);
        uint256 n = LmSlot.push1(b, LmStep.NORM_N, t, d, LmSlot.leaf(x, t, d));
        LmSlot.Operand memory nt = LmSlot.leaf(LmSlot.transposeExp(b, n, d), d + 1, t);
        LmSlot.Operand memory dyt = LmSlot.leaf(LmSlot.transposeExp(b, dy, d), d + 1, t);
        _keep(b, gamma, LmSlot.push2(b, LmStep.GAMMA_GRAD, 1, 2 * d, dyt, nt));
        if (b.c.gpt2) _keep(b, gamma - 1, LmSlot.push1(b, LmStep.BIAS_GRAD, 1, 2 * d, dyt));
    }

    /// @notice The head's weight gradient over the loss signal `dz` and the final norm's
    ///         output `xf` (the tied embedding's share when the head is the embedding).
    function headGrads(LmSlot.Builder memory b, uint256 dz, uint256 xf) internal pure {
        LmNames.Config memory c = b.c;
        (uint256 t, uint256 d, uint256 v) = (b.t, c.hidden, c.vocab);
        LmSlot.Operand memory dzt = LmSlot.leaf(LmSlot.transposeExp(b, dz, v), v + 1, t);
        LmSlot.Operand memory xft = LmSlot.leaf(LmSlot.transposeExp(b, xf, d), d + 1, t);
        LmSlot.Operand[] memory ins = new LmSlot.Operand[](4);
        (ins[0], ins[1], ins[2], ins[3]) = (dzt, dzt, xft, xft);
        b.headGrad = LmSlot.push(b, LmStep.WEIGHT_GRAD, v, 2 * d, ins, 0);
        if (!c.tied) _keep(b, LmNames.headIndex(c), b.headGrad);
    }

    /// @notice The embeddings' gradients from the signal `dh` of block 0's input: the table
    ///         rows of the slot's tokens (added to the head's share when tied) and the learned
    ///         positions' rows.
    function embedGrads(LmSlot.Builder memory b, uint256 dh) internal pure {
        LmNames.Config memory c = b.c;
        (uint256 t, uint256 d, uint256 v) = (b.t, c.hidden, c.vocab);
        LmSlot.Operand memory dht = LmSlot.leaf(LmSlot.transposeExp(b, dh, d), d + 1, t);
        uint256 g = LmSlot.push2(b, LmStep.EMBED_GRAD, v, 2 * d, LmSlot.data(b), dht);
        if (c.tied) {
            LmSlot.Operand memory head = LmSlot.leaf(b.headGrad, v, 2 * d);
            g = LmSlot.push2(b, LmStep.GRAD_SUM, v, 2 * d, LmSlot.leaf(g, v, 2 * d), head);
        }
        _keep(b, LmNames.tailIndex(c, 0), g);
        if (!c.gpt2) return;
        LmSlot.Operand memory dho = LmSlot.leaf(dh, t, d);
        _keep(b, LmNames.tailIndex(c, 3), LmSlot.push1(b, LmStep.POS_GRAD, c.context, 2 * d, dho));
    }

    /// @dev Weight `i`'s gradient of this slot is leaf `k`.
    function _keep(LmSlot.Builder memory b, uint256 i, uint256 k) private pure {
        b.g[i] = k - b.slotStart;
    }

    /// @notice The running token count of slot `slot` and, after slot 0, every weight's
    ///         running gradient sum (`core_`: a slot's core op count).
    function sums(LmSlot.Builder memory b, uint256 slot, uint256 t, uint256 core_) internal pure {
        LmUpdate.sums(b, slot, t, core_);
        if (slot == 0) return;
        uint256 n = LmNames.params(b.c);
        for (uint256 i = 0; i < n; ++i) {
            // How the forward reads the weight matters only to the prelude.
            // slither-disable-next-line unused-return
            (uint256 rows, uint256 cols,) = LmNames.paramShape(b.c, i);
            LmSlot.Operand memory prev =
                LmSlot.leaf(_sumLeaf(b, b.prevStart, slot == 1, core_, i), rows, 2 * cols);
            LmSlot.Operand memory cur = LmSlot.leaf(b.slotStart + b.g[i], rows, 2 * cols);
            // slither-disable-next-line unused-return
            LmSlot.push2(b, LmStep.GRAD_SUM, rows, 2 * cols, prev, cur);
        }
    }

    /// @dev Weight `i`'s gradient sum after the slot starting at `from` (`first`: slot 0,
    ///      whose sum is its own gradient).
    function _sumLeaf(LmSlot.Builder memory b, uint256 from, bool first, uint256 core_, uint256 i)
        private
        pure
        returns (uint256)
    {
        return first ? from + b.g[i] : from + core_ + 2 + i;
    }

    /// @notice Adam on every weight after the last slot (`slot`), the step counter and the
    ///         state hash.
    function update(LmSlot.Builder memory b, uint256 slot, uint256 core_) internal pure {
        uint256 n = LmNames.params(b.c);
        LmSlot.Operand memory tokens = LmSlot.leaf(b.slotStart + core_ + 1, 1, 1);
        LmSlot.Operand[] memory next = new LmSlot.Operand[](3 * n + 1);
        for (uint256 i = 0; i < n; ++i) {
            // How the forward reads the weight matters only to the prelude.
            // slither-disable-next-line unused-return
            (uint256 rows, uint256 cols,) = LmNames.paramShape(b.c, i);
            LmSlot.Operand memory g =
                LmSlot.leaf(_sumLeaf(b, b.slotStart, slot == 0, core_, i), rows, 2 * cols);
            LmUpdate.adamAt(b, 3 * i, [rows, cols], g, tokens, next);
        }
        next[3 * n] = LmSlot.leaf(LmSlot.push1(b, LmStep.STEP, 1, 1, LmSlot.state(3 * n, 1, 1)), 1, 1);
        // slither-disable-next-line unused-return
        LmSlot.push(b, LmStep.STATE_HASH, 1, 1, next, 0);
    }
}
