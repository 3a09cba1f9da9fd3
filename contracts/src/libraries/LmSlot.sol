// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmHead} from "./LmHead.sol";
import {LmNames} from "./LmNames.sol";
import {LmStep} from "./LmStep.sol";

/// @title LmSlot
/// @notice The builder of a fine-tuning step's program (docs/protocol.md §9), section by
///         section, as `pedals_lm::dispute::program` orders it: it numbers every op and keeps
///         only the one asked for. One batch slot's ops (`core`: forward, loss signal, backward;
///         `sums`: the running token count and gradient sums) and the `update`.
library LmSlot {
    uint8 internal constant FROM_STATE = 0;
    uint8 internal constant FROM_MODEL = 1;
    uint8 internal constant FROM_DATA = 2;
    uint8 internal constant FROM_LEAF = 3;

    /// @notice An op's input: where it is and its shape (a data row: its length).
    struct Operand {
        uint8 source;
        uint256 index;
        uint256 rows;
        uint256 cols;
    }

    /// @notice One op of the program.
    struct Op {
        uint8 kind;
        uint256 rows;
        uint256 cols;
        int256 arg;
        Operand[] inputs;
    }

    /// @dev The numbering so far and what is remembered of it.
    struct Builder {
        LmNames.Config c;
        uint256 samples;
        uint256 want;
        uint256 k;
        Op found;
        uint256 pre;
        uint256 slotStart;
        uint256 prevStart;
        /// Offsets from its slot's start of each adapter's `gA` and `gB`, by `7·l + p`.
        uint256[] gA;
        uint256[] gB;
        uint256 t;
        uint256 slot;
        /// One block's op counts and where its leaves sit, once known.
        Tpl tpl;
        /// A full fine-tune: offsets from its slot's start of each weight's gradient, by weight.
        uint256[] g;
        /// A full fine-tune: the head's weight gradient of this slot (the tied embedding's share).
        uint256 headGrad;
        /// A full fine-tune's own sections (`LmFull.sections`); unset in any other program.
        Full f;
    }

    /// @notice What a full fine-tune adds to the program, as functions that only the full
    ///         builder's entry (`LmProgram.fullOpAt`) sets: a LoRA or span referee never
    ///         references them, so their code stays out of its bytecode (EIP-170).
    struct Full {
        function(Builder memory) internal pure masters;
        function(Builder memory, uint256, uint8, uint256, uint256) internal pure projectGrads;
        function(Builder memory, uint256, uint256, uint256) internal pure normGrads;
        function(Builder memory, uint256, uint256) internal pure headGrads;
        function(Builder memory, uint256) internal pure embedGrads;
        function(Builder memory, uint256, uint256, uint256) internal pure sums;
        function(Builder memory, uint256, uint256) internal pure update;
    }

    /// @dev What every block shares: its forward op count, its backward op count (block 0's
    ///      is 2 fewer: no signal to the embeddings), the offsets from its forward start of the
    ///      leaves its backward reads, and from its backward start of each adapter's `gA`, `gB`.
    struct Tpl {
        bool ready;
        uint256 fwd;
        uint256 back;
        Blk rel;
        uint256[7] gA;
        uint256[7] gB;
        /// A full fine-tune: offsets from its backward start of each of the block's weights'
        /// gradients, in the block's name order.
        uint256[18] gBlk;
    }

    /// @dev The leaves of one block's forward pass that its backward pass reads.
    struct Blk {
        uint256 hIn;
        uint256 x1;
        uint256 q;
        uint256 k;
        uint256 v;
        uint256 probs;
        uint256 raw;
        uint256 attn;
        uint256 hMid;
        uint256 x2;
        uint256 gate;
        uint256 up;
        uint256 act;
        uint256[7] u;
        /// `x.t` of x1, x2, act, attn once made.
        uint256[4] xt;
    }

    function start(LmNames.Config memory c, uint256 samples, uint256 want, uint256 pre)
        internal
        pure
        returns (Builder memory b)
    {
        b.c = c;
        b.samples = samples;
        b.want = want;
        b.pre = pre;
        b.gA = new uint256[](7 * c.layers);
        b.gB = new uint256[](7 * c.layers);
        if (c.full) b.g = new uint256[](LmNames.params(c));
    }

    // ─────────────────────────────────────────── pushing ─────────────────────────────────────────────

    function push(Builder memory b, uint8 kind, uint256 rows, uint256 cols, Operand[] memory ins, int256 arg)
        internal
        pure
        returns (uint256)
    {
        b.k += 1;
        if (b.k == b.want) b.found = Op({kind: kind, rows: rows, cols: cols, arg: arg, inputs: ins});
        return b.k;
    }

    function push1(Builder memory b, uint8 kind, uint256 rows, uint256 cols, Operand memory a)
        internal
        pure
        returns (uint256)
    {
        Operand[] memory ins = new Operand[](1);
        ins[0] = a;
        return push(b, kind, rows, cols, ins, 0);
    }

    function push2(
        Builder memory b,
        uint8 kind,
        uint256 rows,
        uint256 cols,
        Operand memory a,
        Operand memory c
    ) internal pure returns (uint256) {
        Operand[] memory ins = new Operand[](2);
        (ins[0], ins[1]) = (a, c);
        return push(b, kind, rows, cols, ins, 0);
    }

    function push3(
        Builder memory b,
        uint8 kind,
        uint256[2] memory shape,
        Operand memory a,
        Operand memory c,
        Operand memory d
    ) internal pure returns (uint256) {
        Operand[] memory ins = new Operand[](3);
        (ins[0], ins[1], ins[2]) = (a, c, d);
        return push(b, kind, shape[0], shape[1], ins, 0);
    }

    function leaf(uint256 k, uint256 rows, uint256 cols) internal pure returns (Operand memory) {
        return Operand(FROM_LEAF, k, rows, cols);
    }

    function model(uint256 i, uint256 rows, uint256 cols) internal pure returns (Operand memory) {
        return Operand(FROM_MODEL, i, rows, cols);
    }

    function state(uint256 i, uint256 rows, uint256 cols) internal pure returns (Operand memory) {
        return Operand(FROM_STATE, i, rows, cols);
    }

    /// @notice Model tensor `i` as the forward reads it: from the model commitment, or in a full
    ///         fine-tune the quantized master, leaf `i + 1` (never a rotary table).
    function weight(Builder memory b, uint256 i, uint256 rows, uint256 cols)
        internal
        pure
        returns (Operand memory)
    {
        return b.c.full ? leaf(i + 1, rows, cols) : model(i, rows, cols);
    }

    function data(Builder memory b) internal pure returns (Operand memory) {
        return Operand(FROM_DATA, b.slot, b.samples, b.t + 2);
    }

    /// @dev Leaf of the prelude op `which` (0 `weight.t`, 1 `A.q`, 2 `A.q.t`, 3 `B.q`, 4
    ///      `B.q.t`) of projection `p` of block `l`.
    function _pre(LmNames.Config memory c, uint256 l, uint8 p, uint256 which)
        private
        pure
        returns (uint256 n)
    {
        uint256 per = 0;
        for (uint8 q = 0; q < 7; ++q) {
            if (!LmNames.exists(c, q)) continue;
            if (q == p) n = per;
            per += LmNames.adapted(c, q) ? 5 : 1;
        }
        return LmNames.masters(c) + LmNames.headOps(c) + l * per + n + 1 + which;
    }

    // ─────────────────────────────────────────── one slot ────────────────────────────────────────────

    /// @notice The forward pass, loss signal and backward pass of slot `slot` (`t` positions).
    ///         Blocks that do not hold the wanted op are numbered from the block template
    ///         without being built.
    function core(Builder memory b, uint256 slot, uint256 t) internal pure {
        if (!b.tpl.ready) _template(b);
        (b.slot, b.t, b.slotStart) = (slot, t, b.k);
        uint256 h = _embed(b);
        Blk[] memory blks = new Blk[](b.c.layers);
        for (uint256 l = 0; l < blks.length; ++l) {
            blks[l].hIn = h;
            uint256 from = b.k;
            if (b.want > from && b.want <= from + b.tpl.fwd) {
                h = _blockForward(b, l, blks[l]);
            } else {
                _place(blks[l], b.tpl.rel, from);
                b.k = from + b.tpl.fwd;
                h = b.k;
            }
        }
        uint256 dh = _lossBack(b, h);
        for (uint256 i = blks.length; i > 0; --i) {
            uint256 from = b.k;
            uint256 n = i == 1 && !b.c.full ? b.tpl.back - 2 : b.tpl.back;
            if (b.want > from && b.want <= from + n) {
                dh = _blockBackward(b, i - 1, blks[i - 1], dh);
            } else {
                b.k = from + n;
                dh = b.k;
            }
            for (uint8 p = 0; p < 7; ++p) {
                if (!LmNames.adapted(b.c, p)) continue;
                b.gA[7 * (i - 1) + p] = from + b.tpl.gA[p] - b.slotStart;
                b.gB[7 * (i - 1) + p] = from + b.tpl.gB[p] - b.slotStart;
            }
            if (b.c.full) _blockGrads(b, i - 1, from);
        }
        if (b.c.full) b.f.embedGrads(b, dh);
    }

    /// @dev A full fine-tune: where block `l`'s weights' gradients are, from its backward start.
    function _blockGrads(Builder memory b, uint256 l, uint256 from) private pure {
        uint256 bt = LmNames.blockTensors(b.c);
        uint256 base = b.c.blockOrder[l] * bt;
        for (uint256 j = 0; j < bt; ++j) {
            b.g[base + j] = from + b.tpl.gBlk[j] - b.slotStart;
        }
    }

    /// @notice The forward pass of blocks `first..end` over `t` positions whose input is leaf
    ///         0: a span's program (docs/split-inference.md, "Disputes"). The config must have
    ///         no adapters, so that every block has the same ops; blocks that do not hold the
    ///         wanted op are numbered without being built. Returns one block's op count.
    function spanForward(Builder memory b, uint256 first, uint256 end, uint256 t)
        internal
        pure
        returns (uint256 fwd)
    {
        b.t = t;
        uint256 h = 0;
        for (uint256 l = first; l < end; ++l) {
            uint256 from = b.k;
            if (fwd != 0 && (b.want <= from || b.want > from + fwd)) {
                b.k = from + fwd;
            } else {
                // slither-disable-next-line uninitialized-local
                Blk memory s; // every leaf 0 until the block is built
                s.hIn = h;
                _blockForward(b, l, s);
                fwd = b.k - from;
            }
            h = b.k;
        }
    }

    /// @dev Builds one block's forward and backward passes in a scratch builder to learn the
    ///      block template (a block above block 0 when there is one).
    function _template(Builder memory b) private pure {
        Builder memory s = start(b.c, b.samples, 0, b.pre);
        (s.t, s.f) = (1, b.f);
        s.tpl.ready = true;
        uint256 l = b.c.layers > 1 ? 1 : 0;
        // slither-disable-next-line uninitialized-local
        Blk memory blk; // every leaf 0 until the block is built
        _blockForward(s, l, blk);
        Tpl memory tp = b.tpl;
        tp.fwd = s.k;
        tp.rel = blk;
        uint256 from = s.k;
        _blockBackward(s, l, blk, from);
        tp.back = s.k - from + (l == 0 && !b.c.full ? 2 : 0);
        if (b.c.full) {
            uint256 bt = LmNames.blockTensors(b.c);
            for (uint256 j = 0; j < bt; ++j) {
                tp.gBlk[j] = s.g[b.c.blockOrder[l] * bt + j] - from;
            }
        }
        for (uint8 p = 0; p < 7; ++p) {
            if (!LmNames.adapted(b.c, p)) continue;
            tp.gA[p] = s.gA[7 * l + p] - from;
            tp.gB[p] = s.gB[7 * l + p] - from;
        }
        tp.ready = true;
    }

    /// @dev A block's leaves from the template's offsets and the block's first leaf `from`.
    function _place(Blk memory s, Blk memory rel, uint256 from) private pure {
        (s.x1, s.q, s.k, s.v) = (from + rel.x1, from + rel.q, from + rel.k, from + rel.v);
        (s.probs, s.raw, s.attn, s.hMid) =
        (from + rel.probs, from + rel.raw, from + rel.attn, from + rel.hMid);
        (s.x2, s.up, s.act) = (from + rel.x2, from + rel.up, from + rel.act);
        if (rel.gate != 0) s.gate = from + rel.gate;
        for (uint256 p = 0; p < 7; ++p) {
            if (rel.u[p] != 0) s.u[p] = from + rel.u[p];
        }
    }

    function _embed(Builder memory b) private pure returns (uint256) {
        LmNames.Config memory c = b.c;
        uint256 d = c.hidden;
        Operand[] memory ins = new Operand[](c.gpt2 ? 3 : 2);
        (ins[0], ins[1]) = (data(b), weight(b, LmNames.tailIndex(c, 0), c.vocab, d + 1));
        if (c.gpt2) ins[2] = weight(b, LmNames.tailIndex(c, 3), c.context, d + 1);
        return push(b, LmStep.EMBED, b.t, d, ins, 0);
    }

    /// @dev The final norm, the logits, the loss signal and its way back to the last block.
    function _lossBack(Builder memory b, uint256 h) private pure returns (uint256) {
        LmNames.Config memory c = b.c;
        (uint256 t, uint256 d) = (b.t, c.hidden);
        uint256 xf = _norm(b, h, LmNames.tailIndex(c, 1), c.gpt2 ? LmNames.tailIndex(c, 1) - 1 : 0);
        uint256 dxf = LmHead.back(b, xf);
        if (c.full) {
            // The head's input gradient follows the loss signal `dz` (a whole vocabulary).
            b.f.headGrads(b, dxf - 1, xf);
            b.f.normGrads(b, h, dxf, LmNames.tailIndex(c, 1));
        }
        Operand memory gamma = weight(b, LmNames.tailIndex(c, 1), 1, d);
        return push3(b, LmStep.NORM_BACK, [t, d], leaf(h, t, d), leaf(dxf, t, d), gamma);
    }

    function _norm(Builder memory b, uint256 x, uint256 gamma, uint256 beta) private pure returns (uint256) {
        uint256 d = b.c.hidden;
        Operand[] memory ins = new Operand[](b.c.gpt2 ? 3 : 2);
        (ins[0], ins[1]) = (leaf(x, b.t, d), weight(b, gamma, 1, d));
        if (b.c.gpt2) ins[2] = weight(b, beta, 1, d);
        return push(b, LmStep.NORM, b.t, d, ins, 0);
    }

    function _blockNorm(Builder memory b, uint256 l, uint256 x, bool mlp) private pure returns (uint256) {
        LmNames.Config memory c = b.c;
        return
            _norm(b, x, LmNames.normIndex(c, l, mlp, false), c.gpt2 ? LmNames.normIndex(c, l, mlp, true) : 0);
    }

    /// @dev `y = linear(x, W, b)`, plus the adapter's path; remembers the adapter's middle `u`.
    function _project(Builder memory b, uint256 l, uint8 p, uint256 x, Blk memory s)
        private
        pure
        returns (uint256)
    {
        LmNames.Config memory c = b.c;
        (uint256 inp, uint256 out) = LmNames.dims(c, p);
        Operand[] memory ins = new Operand[](LmNames.hasBias(c, p) ? 3 : 2);
        (ins[0], ins[1]) = (leaf(x, b.t, inp), weight(b, LmNames.weightIndex(c, l, p, false), out, inp + 1));
        if (ins.length == 3) ins[2] = weight(b, LmNames.weightIndex(c, l, p, true), 1, out);
        uint256 y0 = push(b, LmStep.LINEAR, b.t, out, ins, 0);
        if (!LmNames.adapted(c, p)) return y0;
        s.u[p] = _middle(b, l, p, x);
        return _adapterOut(b, l, p, s.u[p], y0);
    }

    /// @dev `w = linear(u, B')`, `y = y0 + w`.
    function _adapterOut(Builder memory b, uint256 l, uint8 p, uint256 u, uint256 y0)
        private
        pure
        returns (uint256)
    {
        uint256 out = LmNames.outWidth(b.c, p);
        Operand memory bq = leaf(_pre(b.c, l, p, 3), out, b.c.rank + 1);
        Operand memory uo = leaf(u, b.t, b.c.rank);
        Operand memory w = leaf(push2(b, LmStep.LINEAR, b.t, out, uo, bq), b.t, out);
        Operand memory y = leaf(y0, b.t, out);
        return push2(b, LmStep.ADD, b.t, out, y, w);
    }

    /// @dev `u = linear(x, A)`.
    function _middle(Builder memory b, uint256 l, uint8 p, uint256 x) private pure returns (uint256) {
        uint256 inp = LmNames.inWidth(b.c, p);
        Operand memory a = leaf(_pre(b.c, l, p, 1), b.c.rank, inp + 1);
        return push2(b, LmStep.LINEAR, b.t, b.c.rank, leaf(x, b.t, inp), a);
    }

    function _rope(Builder memory b, uint8 kind, uint256 x, uint256 width) private pure returns (uint256) {
        LmNames.Config memory c = b.c;
        uint256 cos = LmNames.tailIndex(c, 3);
        uint256 half = c.headDim / 2;
        return push3(
            b,
            kind,
            [b.t, width],
            leaf(x, b.t, width),
            model(cos, c.context, half),
            model(cos + 1, c.context, half)
        );
    }

    function _blockForward(Builder memory b, uint256 l, Blk memory s) private pure returns (uint256) {
        LmNames.Config memory c = b.c;
        s.x1 = _blockNorm(b, l, s.hIn, false);
        s.q = _project(b, l, LmNames.Q, s.x1, s);
        s.k = _project(b, l, LmNames.K, s.x1, s);
        s.v = _project(b, l, LmNames.V, s.x1, s);
        if (!c.gpt2) {
            s.q = _rope(b, LmStep.ROPE, s.q, c.heads * c.headDim);
            s.k = _rope(b, LmStep.ROPE, s.k, c.kvHeads * c.headDim);
        }
        _attend(b, s);
        uint256 o = _project(b, l, LmNames.O, s.attn, s);
        s.hMid = push2(b, LmStep.ADD, b.t, c.hidden, leaf(s.hIn, b.t, c.hidden), leaf(o, b.t, c.hidden));
        return _mlp(b, l, s);
    }

    /// @dev Scores, softmax weights and the attention sums, raw and rounded.
    function _attend(Builder memory b, Blk memory s) private pure {
        LmNames.Config memory c = b.c;
        (uint256 t, uint256 th) = (b.t, b.t * c.heads);
        (uint256 qw, uint256 kw) = (c.heads * c.headDim, c.kvHeads * c.headDim);
        uint256 scores = push2(b, LmStep.SCORE, th, t, leaf(s.q, t, qw), leaf(s.k, t, kw));
        s.probs = push1(b, LmStep.SOFTMAX, th, t, leaf(scores, th, t));
        uint256 vt = push1(b, LmStep.TRANSPOSE, kw, t, leaf(s.v, t, kw));
        s.raw = push2(b, LmStep.ATTEND_RAW, t, 2 * qw, leaf(s.probs, th, t), leaf(vt, kw, t));
        s.attn = push1(b, LmStep.ROUND_ATTN, t, qw, leaf(s.raw, t, 2 * qw));
    }

    function _mlp(Builder memory b, uint256 l, Blk memory s) private pure returns (uint256) {
        LmNames.Config memory c = b.c;
        (uint256 t, uint256 f) = (b.t, c.intermediate);
        s.x2 = _blockNorm(b, l, s.hMid, true);
        s.up = _project(b, l, LmNames.UP, s.x2, s);
        if (!c.gpt2) {
            s.gate = _project(b, l, LmNames.GATE, s.x2, s);
            s.act = push2(b, LmStep.SWIGLU, t, f, leaf(s.gate, t, f), leaf(s.up, t, f));
        } else {
            s.act = push1(b, LmStep.GELU, t, f, leaf(s.up, t, f));
        }
        uint256 down = _project(b, l, LmNames.DOWN, s.act, s);
        return push2(b, LmStep.ADD, t, c.hidden, leaf(s.hMid, t, c.hidden), leaf(down, t, c.hidden));
    }

    function _blockBackward(Builder memory b, uint256 l, Blk memory s, uint256 dh)
        private
        pure
        returns (uint256)
    {
        uint256 dx2 = _mlpBack(b, l, s, dh);
        if (b.c.full) b.f.normGrads(b, s.hMid, dx2, LmNames.normIndex(b.c, l, true, false));
        uint256 dn2 = _normBack(b, s.hMid, dx2, LmNames.normIndex(b.c, l, true, false));
        uint256 dhMid = _addGrad(b, dh, dn2, b.c.hidden);
        uint256 dx1 = _attentionBack(b, l, s, dhMid);
        if (b.c.full) b.f.normGrads(b, s.hIn, dx1, LmNames.normIndex(b.c, l, false, false));
        // Block 0's input signal is needed only when the embeddings are trained.
        if (l == 0 && !b.c.full) return dx1;
        uint256 dn1 = _normBack(b, s.hIn, dx1, LmNames.normIndex(b.c, l, false, false));
        return _addGrad(b, dhMid, dn1, b.c.hidden);
    }

    function _normBack(Builder memory b, uint256 x, uint256 dy, uint256 gamma)
        private
        pure
        returns (uint256)
    {
        (uint256 t, uint256 d) = (b.t, b.c.hidden);
        return push3(b, LmStep.NORM_BACK, [t, d], leaf(x, t, d), leaf(dy, t, d), weight(b, gamma, 1, d));
    }

    function _addGrad(Builder memory b, uint256 x, uint256 y, uint256 width) private pure returns (uint256) {
        return push2(b, LmStep.ADD_GRAD, b.t, width, leaf(x, b.t, width), leaf(y, b.t, width));
    }

    /// @dev The signal to the MLP norm's output from the block output's signal `dh`.
    function _mlpBack(Builder memory b, uint256 l, Blk memory s, uint256 dh) private pure returns (uint256) {
        uint256 dact = _back(b, l, LmNames.DOWN, s, 2, dh);
        if (b.c.gpt2) {
            uint256 f = b.c.intermediate;
            uint256 du = push2(b, LmStep.GELU_BACK, b.t, f, leaf(s.up, b.t, f), leaf(dact, b.t, f));
            return _back(b, l, LmNames.UP, s, 1, du);
        }
        (uint256 dg, uint256 dup) = _swigluBack(b, s, dact);
        uint256 a = _back(b, l, LmNames.GATE, s, 1, dg);
        return _addGrad(b, a, _back(b, l, LmNames.UP, s, 1, dup), b.c.hidden);
    }

    function _swigluBack(Builder memory b, Blk memory s, uint256 dact)
        private
        pure
        returns (uint256, uint256)
    {
        (uint256 t, uint256 f) = (b.t, b.c.intermediate);
        Operand memory g = leaf(s.gate, t, f);
        Operand memory u = leaf(s.up, t, f);
        uint256 dg = push3(b, LmStep.SWIGLU_BACK_GATE, [t, f], g, u, leaf(dact, t, f));
        return (dg, push3(b, LmStep.SWIGLU_BACK_UP, [t, f], g, u, leaf(dact, t, f)));
    }

    function _attentionBack(Builder memory b, uint256 l, Blk memory s, uint256 dhMid)
        private
        pure
        returns (uint256)
    {
        LmNames.Config memory c = b.c;
        uint256 dO = _back(b, l, LmNames.O, s, 3, dhMid);
        uint256 ds = _scoreGrad(b, s, dO);
        uint256 dq = _dq(b, s, ds);
        (uint256 dk, uint256 dv) = _dkdv(b, s, ds, dO);
        if (!c.gpt2) {
            dq = _rope(b, LmStep.ROPE_BACK, dq, c.heads * c.headDim);
            dk = _rope(b, LmStep.ROPE_BACK, dk, c.kvHeads * c.headDim);
        }
        return _qkvBack(b, l, s, [dq, dk, dv]);
    }

    /// @dev Back through q, k and v from their signals, summed into the signal to `x1`.
    function _qkvBack(Builder memory b, uint256 l, Blk memory s, uint256[3] memory d)
        private
        pure
        returns (uint256)
    {
        uint256 a = _back(b, l, LmNames.Q, s, 0, d[0]);
        uint256 qk = _addGrad(b, a, _back(b, l, LmNames.K, s, 0, d[1]), b.c.hidden);
        return _addGrad(b, qk, _back(b, l, LmNames.V, s, 0, d[2]), b.c.hidden);
    }

    function _scoreGrad(Builder memory b, Blk memory s, uint256 dO) private pure returns (uint256) {
        LmNames.Config memory c = b.c;
        (uint256 t, uint256 th) = (b.t, b.t * c.heads);
        uint256 qw = c.heads * c.headDim;
        Operand[] memory ins = new Operand[](4);
        (ins[0], ins[1]) = (leaf(s.probs, th, t), leaf(dO, t, qw));
        (ins[2], ins[3]) = (leaf(s.v, t, c.kvHeads * c.headDim), leaf(s.raw, t, 2 * qw));
        return push(b, LmStep.SCORE_GRAD, th, t, ins, 0);
    }

    function _dq(Builder memory b, Blk memory s, uint256 ds) private pure returns (uint256) {
        LmNames.Config memory c = b.c;
        (uint256 t, uint256 kw) = (b.t, c.kvHeads * c.headDim);
        uint256 kt = push1(b, LmStep.TRANSPOSE, kw, t, leaf(s.k, t, kw));
        return push2(b, LmStep.DQ, t, c.heads * c.headDim, leaf(ds, t * c.heads, t), leaf(kt, kw, t));
    }

    function _dkdv(Builder memory b, Blk memory s, uint256 ds, uint256 dO)
        private
        pure
        returns (uint256, uint256)
    {
        uint256 dk = _dkv(b, LmStep.DK, ds, s.q);
        return (dk, _dkv(b, LmStep.DV, s.probs, dO));
    }

    /// @dev `dk` from `ds` and `q`, or `dv` from `probs` and `do`: the first transposed, the
    ///      second grouped.
    function _dkv(Builder memory b, uint8 kind, uint256 byQuery, uint256 x) private pure returns (uint256) {
        LmNames.Config memory c = b.c;
        Operand memory a = _transpose(b, byQuery, b.t * c.heads, b.t);
        uint256 kw = c.kvHeads * c.headDim;
        Operand memory g = leaf(_group(b, x), kw, c.heads * b.t / c.kvHeads);
        return push2(b, kind, b.t, kw, a, g);
    }

    /// @dev The transpose of leaf `x` (`rows × cols`), as an operand.
    function _transpose(Builder memory b, uint256 x, uint256 rows, uint256 cols)
        private
        pure
        returns (Operand memory)
    {
        Operand memory xo = leaf(x, rows, cols);
        uint256 k = push1(b, LmStep.TRANSPOSE, cols, rows, xo);
        return leaf(k, cols, rows);
    }

    /// @dev `group_t` of a `[T, qw]` tensor.
    function _group(Builder memory b, uint256 x) private pure returns (uint256) {
        LmNames.Config memory c = b.c;
        Operand memory xo = leaf(x, b.t, c.heads * c.headDim);
        return push1(b, LmStep.GROUP_T, c.kvHeads * c.headDim, c.heads * b.t / c.kvHeads, xo);
    }

    /// @notice `X.t` with each row's exponent as a last row.
    function transposeExp(Builder memory b, uint256 x, uint256 cols) internal pure returns (uint256) {
        return push1(b, LmStep.TRANSPOSE_EXP, cols + 1, b.t, leaf(x, b.t, cols));
    }

    /// @dev The signal to projection `p`'s input (`x` is remembered input `xi`: 0 x1, 1 x2, 2
    ///      act, 3 attn), and its adapter's gradients.
    function _back(Builder memory b, uint256 l, uint8 p, Blk memory s, uint256 xi, uint256 dy)
        private
        pure
        returns (uint256)
    {
        uint256 dx0 = _baseBack(b, l, p, dy);
        if (b.c.full) {
            uint256 dyt = transposeExp(b, dy, LmNames.outWidth(b.c, p));
            if (s.xt[xi] == 0) s.xt[xi] = transposeExp(b, [s.x1, s.x2, s.act, s.attn][xi], _inWidth(b, p));
            b.f.projectGrads(b, l, p, s.xt[xi], dyt);
        }
        if (!LmNames.adapted(b.c, p)) return dx0;
        uint256 du = _gradB(b, l, p, s.u[p], dy);
        uint256 dut = transposeExp(b, du, b.c.rank);
        if (s.xt[xi] == 0) s.xt[xi] = transposeExp(b, [s.x1, s.x2, s.act, s.attn][xi], _inWidth(b, p));
        uint256 dxa = _gradA(b, l, p, [s.xt[xi], du, dut]);
        return _addGrad(b, dx0, dxa, _inWidth(b, p));
    }

    function _inWidth(Builder memory b, uint8 p) private pure returns (uint256) {
        return LmNames.inWidth(b.c, p);
    }

    /// @dev `input_grad(dy, W.t)`.
    function _baseBack(Builder memory b, uint256 l, uint8 p, uint256 dy) private pure returns (uint256) {
        (uint256 inp, uint256 out) = LmNames.dims(b.c, p);
        Operand memory wt = leaf(_pre(b.c, l, p, 0), inp + 1, out);
        Operand memory d = leaf(dy, b.t, out);
        return push3(b, LmStep.INPUT_GRAD, [b.t, inp], d, wt, wt);
    }

    /// @dev `dy.t`, `u.t`, `gB` and the signal `du` to the adapter's middle.
    function _gradB(Builder memory b, uint256 l, uint8 p, uint256 u, uint256 dy)
        private
        pure
        returns (uint256)
    {
        uint256 out = LmNames.outWidth(b.c, p);
        uint256 r = b.c.rank;
        Operand memory dyt = leaf(transposeExp(b, dy, out), out + 1, b.t);
        Operand memory ut = leaf(transposeExp(b, u, r), r + 1, b.t);
        b.gB[7 * l + p] = _weightGrad(b, [out, 2 * r], dyt, ut, b.c.scaleLog2) - b.slotStart;
        return _du(b, l, p, dy);
    }

    /// @dev `du = input_grad(dy, B.q.t)`.
    function _du(Builder memory b, uint256 l, uint8 p, uint256 dy) private pure returns (uint256) {
        uint256 out = LmNames.outWidth(b.c, p);
        Operand memory bt = leaf(_pre(b.c, l, p, 4), b.c.rank + 1, out);
        Operand memory d = leaf(dy, b.t, out);
        return push3(b, LmStep.INPUT_GRAD, [b.t, b.c.rank], d, bt, bt);
    }

    /// @dev `gA` from leaves `x.t`, `du`, `du.t` (`v`), and the adapter's signal `dxa` to `x`.
    function _gradA(Builder memory b, uint256 l, uint8 p, uint256[3] memory v)
        private
        pure
        returns (uint256)
    {
        uint256 inp = LmNames.inWidth(b.c, p);
        uint256 r = b.c.rank;
        Operand memory dut = leaf(v[2], r + 1, b.t);
        Operand memory xo = leaf(v[0], inp + 1, b.t);
        b.gA[7 * l + p] = _weightGrad(b, [r, 2 * inp], dut, xo, 0) - b.slotStart;
        Operand memory aT = leaf(_pre(b.c, l, p, 2), inp + 1, r);
        Operand memory d = leaf(v[1], b.t, r);
        return push3(b, LmStep.INPUT_GRAD, [b.t, inp], d, aT, aT);
    }

    function _weightGrad(
        Builder memory b,
        uint256[2] memory shape,
        Operand memory dyt,
        Operand memory xt,
        int256 sigma
    ) private pure returns (uint256) {
        Operand[] memory ins = new Operand[](4);
        (ins[0], ins[1], ins[2], ins[3]) = (dyt, dyt, xt, xt);
        return push(b, LmStep.WEIGHT_GRAD, shape[0], shape[1], ins, sigma);
    }
}
