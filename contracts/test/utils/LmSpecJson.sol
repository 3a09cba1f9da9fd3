// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmSpec} from "../../src/libraries/LmSpec.sol";
import {Vm} from "./Test.sol";

/// @notice A fine-tuning spec read from a vector file: the Rust `FinetuneSpec` at `<at>.spec`
///         and its targets as a mask at `<at>.target_mask`.
library LmSpecJson {
    Vm internal constant VM = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function read(string memory doc, string memory prefix) internal pure returns (LmSpec.Spec memory s) {
        string memory p = string.concat(prefix, ".spec.");
        s.model = VM.parseJsonString(doc, string.concat(p, "model"));
        s.dataset = VM.parseJsonString(doc, string.concat(p, "dataset"));
        s.count = _u(doc, p, "count");
        s.arch = arch(doc, string.concat(p, "arch."));
        s.full = keccak256(bytes(VM.parseJsonString(doc, string.concat(p, "method")))) == keccak256("full");
        (s.rank, s.alpha) = (_u(doc, p, "rank"), _u(doc, p, "alpha"));
        s.targets = uint8(VM.parseJsonUint(doc, string.concat(prefix, ".target_mask")));
        (s.lrQ32, s.lrEndQ32) = (_u(doc, p, "lr_q32"), _u(doc, p, "lr_end_q32"));
        (s.beta1Q30, s.beta2Q30, s.epsQ32) =
        (_u(doc, p, "beta1_q30"), _u(doc, p, "beta2_q30"), _u(doc, p, "eps_q32"));
        (s.warmup, s.steps) = (_u(doc, p, "warmup"), _u(doc, p, "steps"));
        (s.batch, s.seed) = (_u(doc, p, "batch"), _u(doc, p, "seed"));
        s.modelRoot = VM.parseJsonBytes32(doc, string.concat(p, "model_root"));
        s.dataRoot = VM.parseJsonBytes32(doc, string.concat(p, "data_root"));
        s.initHash = VM.parseJsonBytes32(doc, string.concat(p, "init_hash"));
    }

    function _u(string memory doc, string memory p, string memory k) private pure returns (uint64) {
        return uint64(VM.parseJsonUint(doc, string.concat(p, k)));
    }

    function _b(string memory doc, string memory p, string memory k) private pure returns (bool) {
        return VM.parseJsonBool(doc, string.concat(p, k));
    }

    function arch(string memory doc, string memory p) internal pure returns (LmSpec.Arch memory a) {
        a.gpt2 = keccak256(bytes(VM.parseJsonString(doc, string.concat(p, "family")))) == keccak256("gpt2");
        (a.vocab, a.hidden, a.layers) = (_u(doc, p, "vocab"), _u(doc, p, "hidden"), _u(doc, p, "layers"));
        (a.heads, a.kvHeads, a.headDim) =
        (_u(doc, p, "heads"), _u(doc, p, "kv_heads"), _u(doc, p, "head_dim"));
        (a.intermediate, a.context) = (_u(doc, p, "intermediate"), _u(doc, p, "context"));
        a.epsQ40 = int64(VM.parseJsonInt(doc, string.concat(p, "eps_q40")));
        (a.tied, a.qkvBias) = (_b(doc, p, "tied"), _b(doc, p, "qkv_bias"));
        (a.outBias, a.mlpBias) = (_b(doc, p, "out_bias"), _b(doc, p, "mlp_bias"));
    }
}
