// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmNames} from "./LmNames.sol";
import {LmSlot} from "./LmSlot.sol";
import {LmStep} from "./LmStep.sol";
import {LmVocab} from "./LmVocab.sol";

/// @title LmHead
/// @notice The step program's ops over the vocabulary (docs/protocol.md §9), for the builder
///         (`LmProgram`, `LmSlot`): the head's transpose in the prelude, and per slot the
///         logits, the loss signal and the head's input gradient. A vocabulary of more than
///         `LmVocab.LONG_ROW` tokens is laid out in chunks of `c.chunk` ("Long rows"): the
///         prelude gains `head.smin` and each slot's three ops become seven.
library LmHead {
    /// @notice The prelude's first ops: `head.t`, and `head.smin` over a vocabulary in chunks.
    function prelude(LmSlot.Builder memory b) internal pure {
        LmNames.Config memory c = b.c;
        uint256 d = c.hidden;
        LmSlot.Operand memory head = LmSlot.weight(b, LmNames.headIndex(c), c.vocab, d + 1);
        if (c.chunk == 0) {
            // slither-disable-next-line unused-return
            LmSlot.push1(b, LmStep.TRANSPOSE, d + 1, c.vocab, head);
            return;
        }
        uint256 k = _chunks(c);
        int256 v = int256(c.vocab);
        // The prelude's leaves are found again by number (`leaf(1, ..)`, `leaf(2, ..)`).
        // slither-disable-next-line unused-return
        LmSlot.push(b, LmVocab.TRANSPOSE_CHUNK, (d + 1) * k, c.chunk, _one(head), v);
        // slither-disable-next-line unused-return
        LmSlot.push(b, LmVocab.SHIFT_MIN, 1, k, _one(LmSlot.leaf(1, (d + 1) * k, c.chunk)), v);
    }

    /// @notice The logits of the final norm's output `xf`, the loss signal, and the head's
    ///         input gradient `dxf` (returned).
    function back(LmSlot.Builder memory b, uint256 xf) internal pure returns (uint256) {
        LmNames.Config memory c = b.c;
        LmSlot.Operand memory x = LmSlot.leaf(xf, b.t, c.hidden);
        LmSlot.Operand memory head = LmSlot.weight(b, LmNames.headIndex(c), c.vocab, c.hidden + 1);
        if (c.chunk != 0) return _chunked(b, x, head);
        uint256 z = LmSlot.push2(b, LmStep.LINEAR, b.t, c.vocab, x, head);
        return _whole(b, z);
    }

    /// @dev The loss signal `dz` of the logits `z` and the head's input gradient.
    function _whole(LmSlot.Builder memory b, uint256 z) private pure returns (uint256) {
        (uint256 t, uint256 v) = (b.t, b.c.vocab);
        uint256 dz = LmSlot.push2(b, LmStep.XENT, t, v, LmSlot.leaf(z, t, v), LmSlot.data(b));
        LmSlot.Operand memory ht = LmSlot.leaf(LmNames.masters(b.c) + 1, b.c.hidden + 1, v);
        return LmSlot.push3(b, LmStep.INPUT_GRAD, [t, b.c.hidden], LmSlot.leaf(dz, t, v), ht, ht);
    }

    /// @dev The seven ops of a vocabulary in chunks: `logits`, `zmax`, `zsum`, then `dz`,
    ///      `dzmax`, `dxf.part`, `dxf`.
    function _chunked(LmSlot.Builder memory b, LmSlot.Operand memory x, LmSlot.Operand memory head)
        private
        pure
        returns (uint256)
    {
        (uint256 t, uint256 k, uint256 r) = (b.t, _chunks(b.c), b.c.chunk);
        int256 v = int256(b.c.vocab);
        LmSlot.Operand[] memory ins = new LmSlot.Operand[](2);
        (ins[0], ins[1]) = (x, head);
        LmSlot.Operand memory z =
            LmSlot.leaf(LmSlot.push(b, LmVocab.LINEAR_CHUNK, t * k, r, ins, v), t * k, r);
        LmSlot.Operand memory zmax = LmSlot.leaf(LmSlot.push(b, LmVocab.XENT_MAX, t, k, _one(z), v), t, k);
        ins = new LmSlot.Operand[](2);
        (ins[0], ins[1]) = (z, zmax);
        LmSlot.Operand[] memory sig = new LmSlot.Operand[](4);
        (sig[0], sig[1]) = (z, zmax);
        sig[2] = LmSlot.leaf(LmSlot.push(b, LmVocab.XENT_SUM, t, 2 * k, ins, v), t, 2 * k);
        sig[3] = LmSlot.data(b);
        return _signal(b, sig);
    }

    /// @dev `dz` from `logits`, `zmax`, `zsum` and the data row (`ins`), its chunks' largest
    ///      magnitudes `dzmax`, and the head's input gradient.
    function _signal(LmSlot.Builder memory b, LmSlot.Operand[] memory ins) private pure returns (uint256) {
        (uint256 t, uint256 k, uint256 r) = (b.t, _chunks(b.c), b.c.chunk);
        int256 v = int256(b.c.vocab);
        LmSlot.Operand memory dz = LmSlot.leaf(LmSlot.push(b, LmVocab.XENT_CHUNK, t * k, r, ins, v), t * k, r);
        LmSlot.Operand memory dzmax = LmSlot.leaf(LmSlot.push(b, LmVocab.ABS_MAX, t, k, _one(dz), v), t, k);
        return _inputGrad(b, dz, dzmax);
    }

    /// @dev The head's partial input gradients and their sum `dxf`.
    function _inputGrad(LmSlot.Builder memory b, LmSlot.Operand memory dz, LmSlot.Operand memory dzmax)
        private
        pure
        returns (uint256)
    {
        uint256 k = _chunks(b.c);
        LmSlot.Operand memory ht = LmSlot.leaf(1, (b.c.hidden + 1) * k, b.c.chunk);
        LmSlot.Operand[] memory ins = new LmSlot.Operand[](5);
        (ins[0], ins[1], ins[2], ins[3]) = (dz, ht, ht, dzmax);
        ins[4] = LmSlot.leaf(2, 1, k); // head.smin
        LmSlot.Operand memory part = _part(b, ins);
        LmSlot.Operand[] memory sum = new LmSlot.Operand[](3);
        (sum[0], sum[1], sum[2]) = (part, dzmax, ins[4]);
        int256 per = int256(perPartRow(k, b.c.chunk));
        return LmSlot.push(b, LmVocab.INPUT_GRAD_SUM, b.t, b.c.hidden, sum, per);
    }

    /// @dev `dxf.part`: `B = ⌈d / J⌉` rows per position of `2·J·k` values.
    function _part(LmSlot.Builder memory b, LmSlot.Operand[] memory ins)
        private
        pure
        returns (LmSlot.Operand memory)
    {
        uint256 per = perPartRow(_chunks(b.c), b.c.chunk);
        // Ceiling divisions: counts of partial rows and chunks, not rounded values.
        // slither-disable-next-line divide-before-multiply
        (uint256 rows, uint256 cols) = (b.t * ((b.c.hidden + per - 1) / per), 2 * per * _chunks(b.c));
        return
            LmSlot.leaf(
                LmSlot.push(b, LmVocab.INPUT_GRAD_PART, rows, cols, ins, int256(b.c.vocab)), rows, cols
            );
    }

    /// @notice Outputs of the head's input gradient per partial row, `J = max(1, ⌊R / 2k⌋)`,
    ///         for `k` chunks of `r` tokens.
    function perPartRow(uint256 k, uint256 r) internal pure returns (uint256) {
        uint256 j = r / (2 * k);
        return j == 0 ? 1 : j;
    }

    /// @dev Chunks of the vocabulary, `k = ⌈V / R⌉`.
    function _chunks(LmNames.Config memory c) private pure returns (uint256) {
        return (c.vocab + c.chunk - 1) / c.chunk;
    }

    function _one(LmSlot.Operand memory a) private pure returns (LmSlot.Operand[] memory ins) {
        ins = new LmSlot.Operand[](1);
        ins[0] = a;
    }
}
