// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmHead} from "./libraries/LmHead.sol";
import {LmNames} from "./libraries/LmNames.sol";
import {LmSpec} from "./libraries/LmSpec.sol";
import {LmVocab} from "./libraries/LmVocab.sol";

/// @title LmAdmission
/// @notice The bounds of a fine-tuning spec that `LmDisputeGame` can adjudicate
///         (docs/protocol.md §9 "Admission"): the shapes whose rows a move opens whole, the
///         rows an output has, and the calldata of the moves that grow with the spec, each
///         under what one transaction may carry and cost. `LmDisputeGame.admitSpec` calls
///         `check` before it builds the program; a spec past a bound is refused with the field,
///         its value and the bounds.
contract LmAdmission {
    /// @notice Most examples per step the game admits (the commit carries every slot's row).
    uint256 public constant MAX_BATCH = 64;
    /// @notice Most blocks the game admits.
    uint256 public constant MAX_LAYERS = 64;
    /// @notice The most values a row of any op may hold (twice the hidden or intermediate
    ///         width: moments are committed two to a value; a vocabulary of more tokens is laid
    ///         out in chunks): an element reading two such rows (the head's input gradient,
    ///         about 1 300 gas a value with calldata) stays near 11M gas, under the 15M a move
    ///         may cost, and its rows at 64 KiB of calldata.
    uint256 public constant MAX_ROW = 8192;
    /// @notice The most tokens a vocabulary may have: one over `MAX_ROW` is laid out in chunks
    ///         of `R` = 2 048 (docs/protocol.md §9 "Long rows"), and a chunk row must hold the
    ///         64-bit partial sums of all `⌈V / R⌉` chunks (`2·⌈V / R⌉ ≤ R`).
    uint256 public constant MAX_VOCAB = 1 << 21;
    /// @notice The most rows an op's output may have (a long vocabulary's chunk rows): past
    ///         `2^ROW_CHUNK_LOG` rows their hashes are revealed by chunks, so neither the
    ///         chunks' nodes nor a chunk's hashes pass 1 024 (about 1.9M gas a move).
    uint256 public constant MAX_ROWS = 1 << 20;
    /// @notice The most `context · (heads + heads / kv_heads)` the game admits: the values of
    ///         the two rows a `dk` or `dv` element reads (a `ds.t` or `probs.t` row of
    ///         `context · heads`, a `q.g` or `do.g` row of `context · heads / kv_heads`), 64 KiB
    ///         of calldata; it also bounds the score rows an output has.
    uint256 public constant MAX_SCORES = 16_384;
    /// @notice The longest context the game admits: a weight gradient's element reads four rows
    ///         of `context` values (64 KiB of calldata at this bound).
    uint256 public constant MAX_CONTEXT = 4096;
    /// @notice The most calldata a move may need: nodes relay transactions of up to 128 KiB
    ///         (8 KiB left here for the rest of the transaction), and a move no node relays is
    ///         lost by its sender's clock. Admission bounds the largest moves that grow with
    ///         the spec under it: the commit (every slot's data row, proven) and the naming of
    ///         the state hash (every new tensor's root, proven, and `h_i`'s entries).
    uint256 public constant MAX_MOVE_BYTES = 120 << 10;
    /// @dev Hashes in an opening among at most `2^14` op-trace leaves (`LmDisputeGame.MAX_LEAVES`).
    uint256 internal constant LEAF_DEPTH = 14;

    /// @notice A spec field out of the range the game can adjudicate.
    error Inadmissible(string field, uint256 value, uint256 min, uint256 max);

    /// @notice Reverts with `Inadmissible` unless the game can adjudicate `spec`'s every step
    ///         (its op-trace leaves aside: the game counts them with the program's builder).
    function check(LmSpec.Spec calldata spec) external pure {
        LmSpec.Arch calldata a = spec.arch;
        _bound("layers", a.layers, 1, MAX_LAYERS);
        _bound("batch", spec.batch, 1, MAX_BATCH);
        _bound("count", spec.count, 1, type(uint32).max);
        _bound("kv_heads", a.kvHeads, 1, a.heads);
        if (a.heads % a.kvHeads != 0) revert Inadmissible("heads", a.heads, a.kvHeads, a.kvHeads);
        if (a.headDim % 2 != 0) revert Inadmissible("head_dim", a.headDim, 2, 512);
        _bound("head_dim", a.headDim, 2, 512);
        _bound("hidden", a.hidden, 1, MAX_ROW / 2);
        _bound("intermediate", a.intermediate, 1, MAX_ROW / 2);
        _bound("vocab", a.vocab, 2, MAX_VOCAB);
        if (a.vocab > LmVocab.LONG_ROW) _boundChunks(a);
        _bound("context", a.context, 1, MAX_CONTEXT);
        _bound(
            "context x (heads + group)", uint256(a.context) * (a.heads + a.heads / a.kvHeads), 1, MAX_SCORES
        );
        // The attention's rows are `heads · head_dim` wide, twice that for the raw sums.
        _bound("heads x head_dim", uint256(a.heads) * a.headDim, 1, MAX_ROW / 2);
        if (spec.full) {
            _checkFull(spec);
        } else {
            _bound("rank", spec.rank, 1, 64);
            _bound("targets", spec.targets, 1, a.gpt2 ? 0x6f : 0x7f);
            if (a.gpt2 && spec.targets & 0x10 != 0) revert Inadmissible("targets", spec.targets, 1, 0x6f);
            int256 sigma = LmSpec.scaleLog2(spec.rank, spec.alpha);
            _bound("alpha / rank", uint256(sigma + 8), 0, 16);
        }
        _boundMoves(spec);
    }

    /// @dev A full fine-tune (docs/protocol.md §9 "Full fine-tuning"): no adapter terms, and a
    ///      vocabulary in one row (the head's weight gradient over chunks is not in the game).
    function _checkFull(LmSpec.Spec calldata spec) internal pure {
        _bound("rank", spec.rank, 0, 0);
        _bound("alpha", spec.alpha, 0, 0);
        _bound("targets", spec.targets, 0, 0);
        _bound("vocab", spec.arch.vocab, 2, LmVocab.LONG_ROW);
    }

    /// @dev A vocabulary in chunks (docs/protocol.md §9 "Long rows"): `head.t`'s `(d + 1)·k`
    ///      rows, a slot's `T·k` logits rows and `T·⌈d / J⌉` partial input-gradient rows.
    function _boundChunks(LmSpec.Arch calldata a) internal pure {
        (uint256 r, uint256 d) = (LmVocab.VOCAB_CHUNK, a.hidden);
        uint256 k = (a.vocab + r - 1) / r;
        uint256 per = LmHead.perPartRow(k, r);
        // Ceiling divisions below: counts of chunks and partial rows, not rounded values.
        // slither-disable-next-line divide-before-multiply
        _bound("head rows in chunks", (d + 1) * k, 1, MAX_ROWS);
        // slither-disable-next-line divide-before-multiply
        _bound("context x vocabulary chunks", a.context * k, 1, MAX_ROWS);
        // slither-disable-next-line divide-before-multiply
        _bound("context x head gradient parts", a.context * ((d + per - 1) / per), 1, MAX_ROWS);
    }

    /// @dev The calldata of the moves that grow with the spec, under `MAX_MOVE_BYTES` less 8 KiB
    ///      for the rest of the move (the spec, the op trace's 128 nodes, the state proofs):
    ///      the commit's data rows (`4·(context + 2)` bytes, the row's and its proof's offsets
    ///      and lengths, a proof of `⌈log2 count⌉` hashes each) and the state-hash naming's
    ///      tensors (three entry words, and a leaf opening: its offset, root, proof offset and
    ///      length, 14 hashes; the tensors are `step` and a value, `.m`, `.v` per adapter
    ///      matrix, or per weight of a full fine-tune).
    function _boundMoves(LmSpec.Spec calldata spec) internal pure {
        uint256 depth = 0;
        while (uint256(1) << depth < spec.count) ++depth;
        uint256 budget = MAX_MOVE_BYTES - (8 << 10);
        uint256 row = 4 * (uint256(spec.arch.context) + 2) + 31 + 128 + 32 * depth;
        _bound("batch x data row bytes", spec.batch * row, 1, budget);
        uint256 targets = 0;
        for (uint256 m = spec.targets; m != 0; m >>= 1) {
            targets += m & 1;
        }
        uint256 tensors = 1 + 6 * uint256(spec.arch.layers) * targets;
        if (spec.full) tensors = 1 + 3 * LmNames.params(LmSpec.forwardConfig(spec.arch));
        _bound("state tensor bytes", tensors * (96 + 32 * (4 + LEAF_DEPTH)), 1, budget);
    }

    function _bound(string memory field, uint256 value, uint256 min, uint256 max) internal pure {
        if (value < min || value > max) revert Inadmissible(field, value, min, max);
    }

    /// @notice The spec's hash: sha2-256 of its canonical bytes (commitments.md §6).
    function specHash(LmSpec.Spec memory spec) external pure returns (bytes32) {
        return sha256(LmSpec.specBytes(spec));
    }
}
