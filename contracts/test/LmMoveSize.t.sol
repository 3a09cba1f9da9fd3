// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {GameBase} from "../src/GameBase.sol";
import {LmAdmission} from "../src/LmAdmission.sol";
import {LmDisputeGame} from "../src/LmDisputeGame.sol";
import {LmSpec} from "../src/libraries/LmSpec.sol";

/// @notice The two moves that grow with a fine-tuning spec, encoded at the largest specs
///         `LmAdmission` admits, fit the 128 KiB a node relays (less 1 KiB for the
///         transaction's envelope and signature): the commit (every slot's data row a whole
///         context long, proven at the deepest sample, 128 chunk nodes, the deepest trace's
///         proofs) and the naming of the state hash (every new tensor opened among 16 384
///         leaves with `h_i`'s entries, a whole batch of lengths). One step past either bound
///         is refused.
contract LmMoveSizeTest is Test {
    LmAdmission internal admission;
    uint256 internal constant RELAY = (128 << 10) - 1024;

    function setUp() public {
        admission = new LmAdmission();
    }

    /// @dev A Llama-shaped spec of `layers` blocks, `targets` adapted, `batch` examples of a
    ///      `context`-long context over 2^20 samples (CIDs of 59 characters).
    function _spec(uint64 layers, uint8 targets, uint64 batch, uint64 context)
        internal
        pure
        returns (LmSpec.Spec memory s)
    {
        string memory cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
        (s.model, s.dataset, s.count) = (cid, cid, 1 << 20);
        LmSpec.Arch memory a = s.arch;
        (a.vocab, a.hidden, a.layers, a.heads, a.kvHeads, a.headDim) = (8192, 1024, layers, 2, 2, 64);
        (a.intermediate, a.context, a.epsQ40) = (4096, context, 1 << 20);
        (s.rank, s.alpha, s.targets, s.batch, s.steps, s.seed) = (8, 8, targets, batch, 1 << 20, 1);
        (s.lrQ32, s.lrEndQ32, s.beta1Q30, s.beta2Q30, s.epsQ32, s.warmup) = (1, 1, 1, 1, 1, 1);
    }

    function _hashes(uint256 n) internal pure returns (bytes32[] memory h) {
        h = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            h[i] = keccak256(abi.encode(i));
        }
    }

    /// @dev The commit of `s` with every row `context + 2` values long.
    function _commit(LmSpec.Spec memory s) internal pure returns (bytes memory) {
        LmDisputeGame.Commitment memory c;
        (c.nodes, c.stateInProof, c.stateOutProof) = (_hashes(128), _hashes(21), _hashes(21));
        (c.firstLeafProof, c.lastLeafProof) = (_hashes(14), _hashes(14));
        LmDisputeGame.DataRows memory d;
        (d.rows, d.proofs) = (new bytes[](s.batch), new bytes32[][](s.batch));
        for (uint256 j = 0; j < s.batch; ++j) {
            (d.rows[j], d.proofs[j]) = (new bytes(4 * (s.arch.context + 2)), _hashes(20));
        }
        return abi.encodeCall(LmDisputeGame.commitOpTrace, (1, s, c, d));
    }

    /// @dev The naming of the state hash of `s`: `tensors` new tensors.
    function _naming(LmSpec.Spec memory s, uint256 tensors) internal pure returns (bytes memory) {
        uint256[] memory lens = new uint256[](s.batch);
        LmDisputeGame.LeafOpening[] memory inputs = new LmDisputeGame.LeafOpening[](tensors);
        for (uint256 i = 0; i < tensors; ++i) {
            inputs[i] = LmDisputeGame.LeafOpening(bytes32(i), _hashes(14));
        }
        LmDisputeGame.Entries memory e = LmDisputeGame.Entries(_hashes(3 * tensors), new bytes32[](0));
        LmDisputeGame.LeafOpening memory out = LmDisputeGame.LeafOpening(bytes32(0), _hashes(14));
        return abi.encodeCall(LmDisputeGame.disputeOp, (1, s, lens, 16_383, out, inputs, e));
    }

    function test_theLargestCommitAdmittedFitsARelayedTransaction() public {
        // 12 slots of a 2 048-token context: 12 · (8 200 + 159 + 640) bytes of rows.
        LmSpec.Spec memory s = _spec(2, 0x21, 12, 2048);
        admission.check(s);
        uint256 size = _commit(s).length;
        emit log_named_uint("commit bytes", size);
        vm.assertLe(size, RELAY, "relayed");
        s.batch = 13;
        vm.expectRevert(
            abi.encodeWithSelector(
                GameBase.Inadmissible.selector, "batch x data row bytes", 13 * 8999, 1, 112 << 10
            )
        );
        admission.check(s);
    }

    function test_theLargestStateHashNamingAdmittedFitsARelayedTransaction() public {
        // 14 blocks with two adapted projections: 1 + 6 · 28 = 169 tensors, a batch of 64.
        LmSpec.Spec memory s = _spec(14, 0x21, 64, 16);
        admission.check(s);
        uint256 size = _naming(s, 169).length;
        emit log_named_uint("naming bytes", size);
        vm.assertLe(size, RELAY, "relayed");
        s.arch.layers = 15;
        vm.expectRevert(
            abi.encodeWithSelector(
                GameBase.Inadmissible.selector, "state tensor bytes", 181 * 672, 1, 112 << 10
            )
        );
        admission.check(s);
    }

    event log_named_uint(string key, uint256 val);
}
