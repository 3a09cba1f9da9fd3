// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmNames} from "../src/libraries/LmNames.sol";
import {LmSpec} from "../src/libraries/LmSpec.sol";
import {LmStep} from "../src/libraries/LmStep.sol";
import {LmVocab} from "../src/libraries/LmVocab.sol";
import {JsonVectors} from "./utils/JsonVectors.sol";
import {LmSpecJson} from "./utils/LmSpecJson.sol";

/// @notice The fine-tuning spec rebuilt from its fields against the Rust specs of
///         crates/lm/tests/vectors/finetune_spec.json: the canonical bytes and their sha256 (the
///         job's spec hash), the step program's terms and step 2's constants.
contract LmSpecVectorsTest is JsonVectors {
    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/../crates/lm/tests/vectors/finetune_spec.json"));
    }

    function test_specsRebuildToTheirBytesAndTheirTerms() public view {
        uint256 n;
        for (uint256 i = 0; vm.keyExistsJson(json, _key(i, ".bytes")); ++i) {
            LmSpec.Spec memory s = LmSpecJson.read(json, string.concat(".cases[", _str(i), "]"));
            bytes memory built = LmSpec.specBytes(s);
            vm.assertEq(
                keccak256(built), keccak256(bytes(vm.parseJsonString(json, _key(i, ".bytes")))), "bytes"
            );
            vm.assertEq(sha256(built), vm.parseJsonBytes32(json, _key(i, ".sha256")), "spec hash");
            LmNames.Config memory c = LmSpec.config(s);
            vm.assertEq(c.scaleLog2, vm.parseJsonInt(json, _key(i, ".scale_log2")), "sigma");
            vm.assertEq(c.hidden, s.arch.hidden, "hidden");
            LmStep.Params memory p = LmSpec.params(s, 2);
            vm.assertEq(p.scale, vm.parseJsonInt(json, _key(i, ".step2.scale")), "scale");
            vm.assertEq(p.lrT, vm.parseJsonInt(json, _key(i, ".step2.lr_t_q32")), "lr_t");
            vm.assertEq(p.epsT, vm.parseJsonInt(json, _key(i, ".step2.eps_t_q32")), "eps_t");
            ++n;
        }
        vm.assertEq(n, 2, "both families");
    }

    /// @notice A vocabulary of more than `LONG_ROW` tokens is laid out in chunks of
    ///         `VOCAB_CHUNK` (docs/protocol.md §9 "Long rows"), as `pedals_lm::dispute::program`
    ///         lays it out; one of `LONG_ROW` or fewer is not.
    function test_aLongVocabularyIsLaidOutInChunks() public view {
        LmSpec.Spec memory s = LmSpecJson.read(json, ".cases[0]");
        s.arch.vocab = uint64(LmVocab.LONG_ROW);
        vm.assertEq(LmSpec.config(s).chunk, 0, "8 192 tokens: whole rows");
        s.arch.vocab = uint64(LmVocab.LONG_ROW + 1);
        vm.assertEq(LmSpec.config(s).chunk, LmVocab.VOCAB_CHUNK, "8 193 tokens: chunks");
        vm.assertEq(LmSpec.forwardConfig(s.arch).chunk, LmVocab.VOCAB_CHUNK, "a span's config too");
    }
}
