// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

/// @title LmNames
/// @notice Where a fine-tuning step's inputs sit among the model commitment's and the state's
///         tensors, which are numbered in name order (docs/protocol.md §9): blocks sort as
///         strings (`b1` < `b10` < `b2`), a block's tensors alphabetically.
library LmNames {
    /// @notice Projections, in `pedals_lm::train::Target` order.
    uint8 internal constant Q = 0;
    uint8 internal constant K = 1;
    uint8 internal constant V = 2;
    uint8 internal constant O = 3;
    uint8 internal constant GATE = 4;
    uint8 internal constant UP = 5;
    uint8 internal constant DOWN = 6;

    /// @notice A model's shape and its adapters: what a fine-tune spec fixes.
    struct Config {
        bool gpt2;
        uint256 hidden;
        uint256 layers;
        uint256 heads;
        uint256 kvHeads;
        uint256 headDim;
        uint256 intermediate;
        uint256 vocab;
        /// Tokens per chunk of a long vocabulary (docs/protocol.md §9 "Long rows"), 0 when
        /// rows are whole.
        uint256 chunk;
        uint256 context;
        bool tied;
        bool qkvBias;
        bool outBias;
        bool mlpBias;
        uint256 rank;
        int256 scaleLog2;
        /// Bit `p` set: projection `p` is adapted.
        uint8 targets;
        /// A full fine-tune: every weight is a state tensor (no adapters), read through its
        /// quantized leaf (docs/protocol.md §9, "Full fine-tuning").
        bool full;
        /// Filled by `order`: block `l`'s place in name order.
        uint256[] blockOrder;
    }

    /// @notice Fills `c.blockOrder` (once): every block's place in name order.
    function order(Config memory c) internal pure {
        if (c.blockOrder.length == c.layers) return;
        c.blockOrder = new uint256[](c.layers);
        for (uint256 l = 0; l < c.layers; ++l) {
            c.blockOrder[l] = blockRank(c.layers, l);
        }
    }

    /// @notice Whether projection `p` exists in the model (GPT-2 has no gate).
    function exists(Config memory c, uint8 p) internal pure returns (bool) {
        return p != GATE || !c.gpt2;
    }

    function adapted(Config memory c, uint8 p) internal pure returns (bool) {
        return c.targets & (uint8(1) << p) != 0;
    }

    function hasBias(Config memory c, uint8 p) internal pure returns (bool) {
        if (p <= V) return c.qkvBias;
        if (p == O) return c.outBias;
        return c.mlpBias;
    }

    /// @notice `(in, out)` of projection `p`.
    function dims(Config memory c, uint8 p) internal pure returns (uint256, uint256) {
        return (inWidth(c, p), outWidth(c, p));
    }

    /// @notice The input width of projection `p`.
    function inWidth(Config memory c, uint8 p) internal pure returns (uint256) {
        if (p == O) return c.heads * c.headDim;
        if (p == DOWN) return c.intermediate;
        return c.hidden;
    }

    /// @notice The output width of projection `p`.
    function outWidth(Config memory c, uint8 p) internal pure returns (uint256) {
        if (p == Q) return c.heads * c.headDim;
        if (p == K || p == V) return c.kvHeads * c.headDim;
        if (p == O || p == DOWN) return c.hidden;
        return c.intermediate;
    }

    /// @notice Blocks whose name sorts before block `l`'s (`b<m>` < `b<l>` as strings).
    function blockRank(uint256 layers, uint256 l) internal pure returns (uint256 n) {
        bytes memory s = bytes(Strings.toString(l));
        for (uint256 m = 0; m < layers; ++m) {
            if (_less(bytes(Strings.toString(m)), s)) ++n;
        }
    }

    function _less(bytes memory a, bytes memory b) private pure returns (bool) {
        uint256 n = a.length < b.length ? a.length : b.length;
        for (uint256 i = 0; i < n; ++i) {
            if (a[i] != b[i]) return a[i] < b[i];
        }
        return a.length < b.length;
    }

    /// @notice Projections in the alphabetical order of their names, with the MLP norm's
    ///         place among them (`7`): down, gate, k, mlp_norm, o, q, up, v.
    function _alphabetical() private pure returns (uint8[8] memory) {
        return [DOWN, GATE, K, 7, O, Q, UP, V];
    }

    function _normCount(Config memory c) private pure returns (uint256) {
        return c.gpt2 ? 2 : 1;
    }

    /// @notice Model tensors per block.
    function blockTensors(Config memory c) internal pure returns (uint256 n) {
        n = 2 * _normCount(c);
        for (uint8 p = 0; p < 7; ++p) {
            if (exists(c, p)) n += hasBias(c, p) ? 2 : 1;
        }
    }

    /// @notice Model tensor index of `b<l>.<norm>.gamma` (`beta` false) or `.beta`, `mlp`
    ///         choosing the MLP norm.
    function normIndex(Config memory c, uint256 l, bool mlp, bool beta) internal pure returns (uint256) {
        uint256 base = c.blockOrder[l] * blockTensors(c);
        uint256 off = beta ? 0 : _normCount(c) - 1;
        if (!mlp) return base + off;
        return base + _before(c, 7) + off;
    }

    /// @notice Model tensor index of `b<l>.<p>.weight` (`bias` false) or `.bias`.
    function weightIndex(Config memory c, uint256 l, uint8 p, bool bias) internal pure returns (uint256) {
        uint256 base = c.blockOrder[l] * blockTensors(c) + _before(c, p);
        return bias || !hasBias(c, p) ? base : base + 1;
    }

    /// @dev Tensors of a block before entry `p` of the alphabetical list (7: the MLP norm).
    function _before(Config memory c, uint8 p) private pure returns (uint256 n) {
        n = _normCount(c);
        uint8[8] memory byName = _alphabetical();
        for (uint256 i = 0; i < 8 && byName[i] != p; ++i) {
            uint8 q = byName[i];
            if (q == 7) n += _normCount(c);
            else if (exists(c, q)) n += hasBias(c, q) ? 2 : 1;
        }
    }

    /// @notice Model tensor indexes of the tensors after the blocks: `embed`, the final norm's
    ///         `gamma` (and `beta` one before it), `head` (untied), `pos_embed` or `rope.cos`
    ///         (and `rope.sin` one after).
    function tailIndex(Config memory c, uint8 which) internal pure returns (uint256) {
        uint256 base = c.layers * blockTensors(c);
        if (which == 0) return base; // embed
        uint256 i = base + 1 + _normCount(c);
        if (which == 1) return i - 1; // final_norm.gamma
        if (which == 2) return i; // head
        return c.tied ? i : i + 1; // pos_embed or rope.cos
    }

    /// @notice Model tensor index of the head (`embed` when tied).
    function headIndex(Config memory c) internal pure returns (uint256) {
        return c.tied ? tailIndex(c, 0) : tailIndex(c, 2);
    }

    /// @notice Ops of the prelude before the blocks' own: `head.t`, and `head.smin` when the
    ///         vocabulary is in chunks.
    function headOps(Config memory c) internal pure returns (uint256) {
        return c.chunk == 0 ? 1 : 2;
    }

    /// @notice State tensor index of `b<l>.<p>.lora_<A|B>[.m|.v]`: `which` 0 the matrix, 1 its
    ///         first moment, 2 its second; `b` chooses `B`.
    function stateIndex(Config memory c, uint256 l, uint8 p, bool b, uint256 which)
        internal
        pure
        returns (uint256 n)
    {
        uint256 per = 0;
        uint8[8] memory byName = _alphabetical();
        for (uint256 i = 0; i < 8; ++i) {
            uint8 q = byName[i];
            if (q == 7 || !adapted(c, q)) continue;
            if (q == p) n = per * 6;
            ++per;
        }
        n += c.blockOrder[l] * per * 6 + (b ? 3 : 0) + which;
    }

    /// @notice A full fine-tune's weights: the model commitment's tensors but the rotary
    ///         tables, which sort last, so weight `i` is model tensor `i`.
    function params(Config memory c) internal pure returns (uint256) {
        return c.layers * blockTensors(c) + 1 + _normCount(c) + (c.tied ? 0 : 1) + (c.gpt2 ? 1 : 0);
    }

    /// @notice Ops before the prelude's own: a full fine-tune's quantized masters, one per weight.
    function masters(Config memory c) internal pure returns (uint256) {
        return c.full ? params(c) : 0;
    }

    /// @notice The shape of weight `i` (model tensor `i`, matrices without their shift column)
    ///         and how the forward reads it: `kind` 0 a matrix, 1 a norm's γ, 2 a bias or β.
    function paramShape(Config memory c, uint256 i)
        internal
        pure
        returns (uint256 rows, uint256 cols, uint8 kind)
    {
        uint256 bt = blockTensors(c);
        uint256 n = _normCount(c);
        if (i >= c.layers * bt) {
            uint256 j = i - c.layers * bt;
            if (j == 0) return (c.vocab, c.hidden, 0); // embed
            if (j <= n) return (1, c.hidden, j == n ? 1 : 2); // final_norm.beta, .gamma
            if (j == n + 1 && !c.tied) return (c.vocab, c.hidden, 0); // head
            return (c.context, c.hidden, 0); // pos_embed
        }
        uint256 at = i % bt;
        if (at < n) return (1, c.hidden, at == n - 1 ? 1 : 2); // attn_norm
        at -= n;
        uint8[8] memory byName = _alphabetical();
        for (uint256 k = 0; k < 8; ++k) {
            uint8 q = byName[k];
            if (q == 7) {
                if (at < n) return (1, c.hidden, at == n - 1 ? 1 : 2); // mlp_norm
                at -= n;
            } else if (exists(c, q)) {
                (uint256 inp, uint256 out) = dims(c, q);
                if (hasBias(c, q)) {
                    if (at == 0) return (1, out, 2);
                    --at;
                }
                if (at == 0) return (out, inp, 0);
                --at;
            }
        }
    }

    /// @notice State tensor index of `step` (the last name).
    function stepIndex(Config memory c) internal pure returns (uint256) {
        uint256 per = 0;
        for (uint8 p = 0; p < 7; ++p) {
            if (adapted(c, p)) ++per;
        }
        return c.layers * per * 6;
    }
}
