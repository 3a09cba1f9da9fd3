// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmFull} from "./LmFull.sol";
import {LmHead} from "./LmHead.sol";
import {LmNames} from "./LmNames.sol";
import {LmSlot} from "./LmSlot.sol";
import {LmUpdate} from "./LmUpdate.sol";
import {LmStep} from "./LmStep.sol";

/// @title LmProgram
/// @notice Op `k` of a fine-tuning step's program (docs/protocol.md §9), LoRA or full, built
///         from the spec's terms as `pedals_lm::dispute::program` (`program_full`) builds the
///         whole list: the prelude,
///         one section per batch slot, the update. Every slot has the same ops in the same
///         order (only their shapes follow its length), so op `k` is found by building the
///         prelude's count, one slot to learn its count and where its gradients are, and then
///         only the section that holds `k`.
library LmProgram {
    /// @notice The slot lengths or the leaf do not fit the program.
    error NoSuchOp(uint256 leaf, uint256 count);

    /// @notice Ops of the prelude: a full fine-tune's quantized masters, `head.t` (and
    ///         `head.smin` over a vocabulary in chunks), and per block and projection its
    ///         transpose and, when adapted, the adapters quantized and transposed.
    function preludeCount(LmNames.Config memory c) internal pure returns (uint256 n) {
        for (uint8 p = 0; p < 7; ++p) {
            if (LmNames.exists(c, p)) n += LmNames.adapted(c, p) ? 5 : 1;
        }
        n = LmNames.masters(c) + LmNames.headOps(c) + n * c.layers;
    }

    /// @dev Where the sections start: the prelude's and a slot's core's op counts, slot 0's
    ///      and a later slot's op counts, the last slot's end, and the slot-0 gradient offsets.
    struct Layout {
        uint256 pre;
        uint256 core;
        uint256 first;
        uint256 rest;
        uint256 end;
        uint256 total;
        uint256[] gA;
        uint256[] gB;
        uint256[] g;
        LmSlot.Tpl tpl;
    }

    function _layout(LmNames.Config memory c, uint256[] memory lens, LmSlot.Full memory f)
        private
        pure
        returns (Layout memory y)
    {
        LmNames.order(c);
        y.pre = preludeCount(c);
        // A dry run of slot 0 gives the core's op count and where its gradients are.
        LmSlot.Builder memory dry = LmSlot.start(c, 1, 0, y.pre);
        (dry.k, dry.f) = (y.pre, f);
        LmSlot.core(dry, 0, lens[0] - 1);
        y.core = dry.k - y.pre;
        (y.gA, y.gB, y.g, y.tpl) = (dry.gA, dry.gB, dry.g, dry.tpl);
        // Running sums per slot after the first, and Adam's three ops each: the adapter
        // matrices, or every weight.
        uint256 trained = c.full ? LmNames.params(c) : 2 * _adapters(c);
        y.first = y.core + 1;
        y.rest = y.core + 1 + trained;
        y.end = y.pre + y.first + (lens.length - 1) * y.rest;
        y.total = y.end + 3 * trained + 2;
    }

    /// @notice Op `leaf` (1-based) of a LoRA step whose slots hold examples of `lens[b]` tokens
    ///         drawn from `samples` examples (`c.full` must be false).
    function opAt(LmNames.Config memory c, uint256[] memory lens, uint256 samples, uint256 leaf)
        internal
        pure
        returns (LmSlot.Op memory)
    {
        // slither-disable-next-line uninitialized-local
        LmSlot.Full memory none; // a LoRA program calls none of a full one's sections
        c.full = false;
        return _opAt(c, lens, samples, leaf, none);
    }

    /// @notice Op `leaf` (1-based) of a full fine-tune's step (docs/protocol.md §9, "Full
    ///         fine-tuning"); `c` has no adapters.
    function fullOpAt(LmNames.Config memory c, uint256[] memory lens, uint256 samples, uint256 leaf)
        internal
        pure
        returns (LmSlot.Op memory)
    {
        (c.full, c.targets) = (true, 0);
        return _opAt(c, lens, samples, leaf, LmFull.sections());
    }

    /// @notice Ops of a full fine-tune's step.
    function fullOpCount(LmNames.Config memory c, uint256[] memory lens) internal pure returns (uint256) {
        (c.full, c.targets) = (true, 0);
        return _layout(c, lens, LmFull.sections()).total;
    }

    function _opAt(
        LmNames.Config memory c,
        uint256[] memory lens,
        uint256 samples,
        uint256 leaf,
        LmSlot.Full memory f
    ) private pure returns (LmSlot.Op memory) {
        Layout memory y = _layout(c, lens, f);
        if (leaf == 0 || leaf > y.total) revert NoSuchOp(leaf, y.total);
        LmSlot.Builder memory b = LmSlot.start(c, samples, leaf, y.pre);
        b.f = f;
        if (leaf <= y.pre) {
            _prelude(b);
            return b.found;
        }
        uint256 slot = leaf <= y.pre + y.first ? 0 : 1 + (leaf - y.pre - y.first - 1) / y.rest;
        if (leaf > y.end) slot = lens.length - 1;
        b.k = slot == 0 ? y.pre : y.pre + y.first + (slot - 1) * y.rest;
        (b.gA, b.gB, b.g) = (y.gA, y.gB, y.g);
        b.tpl = y.tpl;
        b.prevStart = slot == 0 ? 0 : slot == 1 ? y.pre : b.k - y.rest;
        LmSlot.core(b, slot, lens[slot] - 1);
        if (c.full) {
            f.sums(b, slot, lens[slot] - 1, y.core);
            if (leaf > y.end) f.update(b, slot, y.core);
        } else {
            LmUpdate.sums(b, slot, lens[slot] - 1, y.core);
            if (leaf > y.end) LmUpdate.update(b, slot, y.core);
        }
        return b.found;
    }

    /// @notice Ops of a LoRA step's program.
    function opCount(LmNames.Config memory c, uint256[] memory lens) internal pure returns (uint256) {
        // slither-disable-next-line uninitialized-local
        LmSlot.Full memory none;
        c.full = false;
        return _layout(c, lens, none).total;
    }

    /// @notice Op `leaf` (1-based) of the forward pass of blocks `first..end` over `t`
    ///         positions, whose input is leaf 0 (a span's program, as
    ///         `pedals_lm::dispute::span_program` builds it). `c` has no adapters.
    function spanOpAt(LmNames.Config memory c, uint256 first, uint256 end, uint256 t, uint256 leaf)
        internal
        pure
        returns (LmSlot.Op memory)
    {
        LmNames.order(c);
        LmSlot.Builder memory b = LmSlot.start(c, 0, leaf, 0);
        uint256 fwd = LmSlot.spanForward(b, first, end, t);
        uint256 total = fwd * (end - first);
        if (leaf == 0 || leaf > total) revert NoSuchOp(leaf, total);
        return b.found;
    }

    /// @notice Ops of a span's program.
    function spanOpCount(LmNames.Config memory c, uint256 first, uint256 end, uint256 t)
        internal
        pure
        returns (uint256)
    {
        LmNames.order(c);
        LmSlot.Builder memory b = LmSlot.start(c, 0, 0, 0);
        return LmSlot.spanForward(b, first, end, t) * (end - first);
    }

    function _adapters(LmNames.Config memory c) private pure returns (uint256 n) {
        for (uint8 p = 0; p < 7; ++p) {
            if (LmNames.adapted(c, p)) n += c.layers;
        }
    }

    function _prelude(LmSlot.Builder memory b) private pure {
        LmNames.Config memory c = b.c;
        if (c.full) b.f.masters(b);
        LmHead.prelude(b);
        uint256 r = c.rank;
        for (uint256 l = 0; l < c.layers; ++l) {
            for (uint8 p = 0; p < 7; ++p) {
                if (!LmNames.exists(c, p)) continue;
                (uint256 inp, uint256 out) = LmNames.dims(c, p);
                LmSlot.Operand memory w = LmSlot.weight(b, LmNames.weightIndex(c, l, p, false), out, inp + 1);
                // slither-disable-next-line unused-return
                LmSlot.push1(b, LmStep.TRANSPOSE, inp + 1, out, w);
                if (!LmNames.adapted(c, p)) continue;
                _quant(b, LmSlot.state(LmNames.stateIndex(c, l, p, false, 0), r, inp), 0);
                _quant(b, LmSlot.state(LmNames.stateIndex(c, l, p, true, 0), out, r), c.scaleLog2);
            }
        }
    }

    function _quant(LmSlot.Builder memory b, LmSlot.Operand memory src, int256 sigma) private pure {
        LmSlot.Operand[] memory ins = new LmSlot.Operand[](1);
        ins[0] = src;
        // The prelude's leaves are found again by number (LmSlot._pre), not by these returns.
        // slither-disable-next-line unused-return
        LmSlot.push(b, LmStep.QUANT, src.rows, src.cols + 1, ins, sigma);
        // slither-disable-next-line unused-return
        LmSlot.push1(b, LmStep.TRANSPOSE, src.cols + 1, src.rows, LmSlot.leaf(b.k, src.rows, src.cols + 1));
    }
}
