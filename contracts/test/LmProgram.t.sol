// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmNames} from "../src/libraries/LmNames.sol";
import {LmProgram} from "../src/libraries/LmProgram.sol";
import {LmSlot} from "../src/libraries/LmSlot.sol";
import {JsonVectors} from "./utils/JsonVectors.sol";

/// @notice The builder from a bare config, through an external call as the game's referee
///         makes it.
contract LmProgramHarness {
    function opAt(LmNames.Config memory c, uint256[] memory lens, uint256 samples, uint256 leaf)
        external
        pure
        returns (LmSlot.Op memory)
    {
        return c.full ? LmProgram.fullOpAt(c, lens, samples, leaf) : LmProgram.opAt(c, lens, samples, leaf);
    }

    function opCount(LmNames.Config memory c, uint256[] memory lens) external pure returns (uint256) {
        return c.full ? LmProgram.fullOpCount(c, lens) : LmProgram.opCount(c, lens);
    }
}

/// @notice The on-chain builder of the fine-tuning step program against the Rust program in
///         crates/lm/tests/vectors/lm_step.json (and lm_vocab.json, the vocabulary in chunks):
///         every op of both families' programs (kind,
///         shape, constant, every input's source, index and shape). Logs the most gas one op
///         took to build.
contract LmProgramVectorsTest is JsonVectors {
    LmProgramHarness internal h;

    event log_named_uint(string key, uint256 val);

    function setUp() public {
        h = new LmProgramHarness();
        json = vm.readFile(string.concat(vm.projectRoot(), "/../crates/lm/tests/vectors/lm_step.json"));
    }

    function test_everyOpOfBothProgramsIsTheRustOne() public {
        vm.assertEq(_programs(), 2, "both families");
    }

    /// @notice The programs of crates/lm/tests/vectors/lm_vocab.json, op for op: both
    ///         fixtures' vocabularies laid out in chunks (of 60 and 100 tokens), and gpt2-tiny's
    ///         shape with GPT-2's 50 257 tokens in chunks of 2 048.
    function test_everyOpOfBothProgramsInChunksIsTheRustOne() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/../crates/lm/tests/vectors/lm_vocab.json"));
        vm.assertEq(_programs(), 3, "both families, and GPT-2's vocabulary");
    }

    /// @notice The programs of crates/lm/tests/vectors/lm_full.json, op for op: both fixtures'
    ///         full fine-tuning steps (every weight trained, docs/protocol.md §9 "Full
    ///         fine-tuning").
    function test_everyOpOfBothFullProgramsIsTheRustOne() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/../crates/lm/tests/vectors/lm_full.json"));
        vm.assertEq(_programs(), 2, "both families");
    }

    function _programs() internal returns (uint256 programs) {
        for (uint256 i = 0; vm.keyExistsJson(json, _key(i, ".kind")); ++i) {
            if (keccak256(bytes(vm.parseJsonString(json, _key(i, ".kind")))) != keccak256("program")) {
                continue;
            }
            _program(i);
            ++programs;
        }
    }

    function _program(uint256 i) internal {
        LmNames.Config memory c = _config(i);
        uint256[] memory lens = vm.parseJsonUintArray(json, _key(i, ".lens"));
        uint256 samples = vm.parseJsonUint(json, _key(i, ".samples"));
        int256[] memory flat = vm.parseJsonIntArray(json, _key(i, ".flat"));
        uint256 most;
        uint256 pos;
        uint256 k;
        while (pos < flat.length) {
            ++k;
            uint256 before = gasleft();
            LmSlot.Op memory op = h.opAt(c, lens, samples, k);
            uint256 gas = before - gasleft();
            if (gas > most) most = gas;
            pos = _check(flat, pos, k, op);
        }
        vm.assertEq(h.opCount(c, lens), k, "op count");
        emit log_named_uint(string.concat("ops of ", vm.parseJsonString(json, _key(i, ".family"))), k);
        emit log_named_uint("most gas to build one op", most);
    }

    /// @dev Checks op `k` against its entry at `pos` of the flat list; returns the next entry.
    function _check(int256[] memory flat, uint256 pos, uint256 k, LmSlot.Op memory op)
        internal
        pure
        returns (uint256)
    {
        string memory name = string.concat("op ", _str(k));
        vm.assertEq(int256(uint256(op.kind)), flat[pos], name);
        vm.assertEq(int256(op.rows), flat[pos + 1], name);
        vm.assertEq(int256(op.cols), flat[pos + 2], name);
        vm.assertEq(op.arg, flat[pos + 3], name);
        vm.assertEq(int256(op.inputs.length), flat[pos + 4], name);
        pos += 5;
        for (uint256 j = 0; j < op.inputs.length; ++j) {
            LmSlot.Operand memory o = op.inputs[j];
            vm.assertEq(int256(uint256(o.source)), flat[pos], name);
            vm.assertEq(int256(o.index), flat[pos + 1], name);
            vm.assertEq(int256(o.rows), flat[pos + 2], name);
            vm.assertEq(int256(o.cols), flat[pos + 3], name);
            pos += 4;
        }
        return pos;
    }

    function _config(uint256 i) internal view returns (LmNames.Config memory c) {
        string memory p = ".config.";
        c.gpt2 = vm.parseJsonBool(json, _key(i, string.concat(p, "gpt2")));
        c.hidden = vm.parseJsonUint(json, _key(i, string.concat(p, "hidden")));
        c.layers = vm.parseJsonUint(json, _key(i, string.concat(p, "layers")));
        c.heads = vm.parseJsonUint(json, _key(i, string.concat(p, "heads")));
        c.kvHeads = vm.parseJsonUint(json, _key(i, string.concat(p, "kv_heads")));
        c.headDim = vm.parseJsonUint(json, _key(i, string.concat(p, "head_dim")));
        c.intermediate = vm.parseJsonUint(json, _key(i, string.concat(p, "intermediate")));
        c.vocab = vm.parseJsonUint(json, _key(i, string.concat(p, "vocab")));
        c.context = vm.parseJsonUint(json, _key(i, string.concat(p, "context")));
        if (vm.keyExistsJson(json, _key(i, ".chunk"))) c.chunk = vm.parseJsonUint(json, _key(i, ".chunk"));
        c.tied = vm.parseJsonBool(json, _key(i, string.concat(p, "tied")));
        c.qkvBias = vm.parseJsonBool(json, _key(i, string.concat(p, "qkv_bias")));
        c.outBias = vm.parseJsonBool(json, _key(i, string.concat(p, "out_bias")));
        c.mlpBias = vm.parseJsonBool(json, _key(i, string.concat(p, "mlp_bias")));
        c.rank = vm.parseJsonUint(json, _key(i, ".rank"));
        c.scaleLog2 = vm.parseJsonInt(json, _key(i, ".scale_log2"));
        c.targets = uint8(vm.parseJsonUint(json, _key(i, ".target_mask")));
        if (vm.keyExistsJson(json, _key(i, ".full"))) c.full = vm.parseJsonBool(json, _key(i, ".full"));
    }
}
