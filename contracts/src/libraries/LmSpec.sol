// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {LmGrads} from "./LmGrads.sol";
import {LmNames} from "./LmNames.sol";
import {LmStep} from "./LmStep.sol";
import {LmVocab} from "./LmVocab.sol";

/// @title LmSpec
/// @notice A fine-tuning job's spec (`pedals_lm::FinetuneSpec`, docs/commitments.md §6) from its
///         fields: its canonical bytes, whose sha2-256 is the job's `specHash`, so a game can
///         take the fields from calldata and bind them to the job; and what the step program
///         and its referee read from it (protocol.md §9).
library LmSpec {
    /// @notice `arch`: the model's shape.
    struct Arch {
        bool gpt2;
        uint64 vocab;
        uint64 hidden;
        uint64 layers;
        uint64 heads;
        uint64 kvHeads;
        uint64 headDim;
        uint64 intermediate;
        uint64 context;
        int64 epsQ40;
        bool tied;
        bool qkvBias;
        bool outBias;
        bool mlpBias;
    }

    /// @notice The spec's fields, in its order.
    struct Spec {
        string model;
        string dataset;
        uint64 count;
        Arch arch;
        /// A full fine-tune (every weight trained; `rank`, `alpha`, `targets` 0), else LoRA.
        bool full;
        uint64 rank;
        uint64 alpha;
        /// Bit `p` set: projection `p` (`LmNames` order) is adapted.
        uint8 targets;
        uint64 lrQ32;
        uint64 lrEndQ32;
        uint64 beta1Q30;
        uint64 beta2Q30;
        uint64 epsQ32;
        uint64 warmup;
        uint64 steps;
        uint64 batch;
        uint64 seed;
        bytes32 modelRoot;
        bytes32 dataRoot;
        bytes32 initHash;
    }

    /// @notice Spec version this library builds.
    uint256 internal constant VERSION = 3;

    /// @notice `alpha / rank` is not a power of two from 2^-8 to 2^8.
    error BadScale(uint64 rank, uint64 alpha);

    /// @notice The spec's canonical bytes.
    function specBytes(Spec memory s) internal pure returns (bytes memory) {
        return bytes.concat(
            '{"kind":"lm-finetune","version":',
            _u(VERSION),
            ',"model":"',
            bytes(s.model),
            '","dataset":"',
            bytes(s.dataset),
            '","count":',
            _u(s.count),
            ',"arch":',
            _arch(s.arch),
            s.full ? bytes(',"method":"full"') : bytes(',"method":"lora"'),
            _terms(s),
            ',"model_root":"',
            _h(s.modelRoot),
            '","data_root":"',
            _h(s.dataRoot),
            '","init_hash":"',
            _h(s.initHash),
            '"}'
        );
    }

    function _arch(Arch memory a) private pure returns (bytes memory) {
        bytes memory shape = bytes.concat(
            '{"family":"',
            a.gpt2 ? bytes("gpt2") : bytes("llama"),
            '","vocab":',
            _u(a.vocab),
            ',"hidden":',
            _u(a.hidden),
            ',"layers":',
            _u(a.layers),
            ',"heads":',
            _u(a.heads),
            ',"kv_heads":',
            _u(a.kvHeads),
            ',"head_dim":',
            _u(a.headDim),
            ',"intermediate":',
            _u(a.intermediate)
        );
        return bytes.concat(
            shape,
            ',"context":',
            _u(a.context),
            ',"eps_q40":',
            bytes(Strings.toStringSigned(a.epsQ40)),
            ',"tied":',
            _b(a.tied),
            ',"qkv_bias":',
            _b(a.qkvBias),
            ',"out_bias":',
            _b(a.outBias),
            ',"mlp_bias":',
            _b(a.mlpBias),
            "}"
        );
    }

    function _terms(Spec memory s) private pure returns (bytes memory) {
        bytes memory lora = bytes.concat(
            ',"rank":', _u(s.rank), ',"alpha":', _u(s.alpha), ',"targets":', _targets(s.targets)
        );
        bytes memory adam = bytes.concat(
            ',"lr_q32":',
            _u(s.lrQ32),
            ',"lr_end_q32":',
            _u(s.lrEndQ32),
            ',"beta1_q30":',
            _u(s.beta1Q30),
            ',"beta2_q30":',
            _u(s.beta2Q30),
            ',"eps_q32":',
            _u(s.epsQ32),
            ',"warmup":',
            _u(s.warmup)
        );
        return
            bytes.concat(
                lora, adam, ',"steps":', _u(s.steps), ',"batch":', _u(s.batch), ',"seed":', _u(s.seed)
            );
    }

    /// @dev The adapted projections as peft names, in `LmNames` order.
    function _targets(uint8 mask) private pure returns (bytes memory out) {
        string[7] memory names = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
        out = "[";
        for (uint8 p = 0; p < 7; ++p) {
            if (mask & (uint8(1) << p) == 0) continue;
            out = bytes.concat(out, out.length > 1 ? bytes(",") : bytes(""), '"', bytes(names[p]), '"');
        }
        out = bytes.concat(out, "]");
    }

    function _u(uint256 v) private pure returns (bytes memory) {
        return bytes(Strings.toString(v));
    }

    function _b(bool v) private pure returns (bytes memory) {
        return v ? bytes("true") : bytes("false");
    }

    function _h(bytes32 v) private pure returns (bytes memory) {
        return bytes(Strings.toHexString(uint256(v), 32));
    }

    // ─────────────────────────────────────────── what the game reads ─────────────────────────────────

    /// @notice The step program's terms.
    function config(Spec memory s) internal pure returns (LmNames.Config memory c) {
        c = forwardConfig(s.arch);
        c.full = s.full;
        if (s.full) return c;
        c.rank = s.rank;
        c.scaleLog2 = scaleLog2(s.rank, s.alpha);
        c.targets = s.targets;
    }

    /// @notice The terms of a forward pass of the model `a` describes, without adapters (a
    ///         span's program).
    function forwardConfig(Arch memory a) internal pure returns (LmNames.Config memory c) {
        c.gpt2 = a.gpt2;
        (c.hidden, c.layers, c.heads, c.kvHeads) = (a.hidden, a.layers, a.heads, a.kvHeads);
        (c.headDim, c.intermediate, c.vocab, c.context) = (a.headDim, a.intermediate, a.vocab, a.context);
        (c.tied, c.qkvBias, c.outBias, c.mlpBias) = (a.tied, a.qkvBias, a.outBias, a.mlpBias);
        if (a.vocab > LmVocab.LONG_ROW) c.chunk = LmVocab.VOCAB_CHUNK;
    }

    /// @notice The constants of a forward pass's formulas (no optimizer).
    function forwardParams(Arch memory a) internal pure returns (LmStep.Params memory p) {
        (p.heads, p.kvHeads, p.headDim) = (a.heads, a.kvHeads, a.headDim);
        (p.epsQ40, p.center) = (a.epsQ40, a.gpt2);
        p.scale = int256(_isqrt((uint256(1) << 32) / a.headDim));
    }

    /// @notice `σ` with `alpha / rank = 2^σ`.
    function scaleLog2(uint64 rank, uint64 alpha) internal pure returns (int256 sigma) {
        if (rank == 0 || alpha == 0) revert BadScale(rank, alpha);
        (uint256 big, uint256 small) =
            alpha >= rank ? (uint256(alpha), uint256(rank)) : (uint256(rank), uint256(alpha));
        if (big % small != 0) revert BadScale(rank, alpha);
        uint256 q = big / small;
        uint256 e = 0;
        while ((uint256(1) << e) < q) ++e;
        if ((uint256(1) << e) != q || e > 8) revert BadScale(rank, alpha);
        sigma = alpha >= rank ? int256(e) : -int256(e);
    }

    /// @notice The constants of step `step`'s formulas.
    function params(Spec memory s, uint256 step) internal pure returns (LmStep.Params memory p) {
        p = forwardParams(s.arch);
        (p.beta1, p.beta2) = (int256(uint256(s.beta1Q30)), int256(uint256(s.beta2Q30)));
        LmGrads.AdamTerms memory t = LmGrads.AdamTerms({
            lr: int256(uint256(s.lrQ32)),
            lrEnd: int256(uint256(s.lrEndQ32)),
            beta1: p.beta1,
            beta2: p.beta2,
            eps: int256(uint256(s.epsQ32)),
            warmup: s.warmup,
            steps: s.steps
        });
        (p.lrT, p.epsT) = LmGrads.scalars(t, step);
    }

    function _isqrt(uint256 v) private pure returns (uint256 r) {
        r = v;
        uint256 x = (v + 1) / 2;
        while (x < r) {
            r = x;
            x = (v / x + x) / 2;
        }
    }
}
