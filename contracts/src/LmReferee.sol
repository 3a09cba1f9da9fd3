// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LmProgram} from "./libraries/LmProgram.sol";
import {LmSlot} from "./libraries/LmSlot.sol";
import {LmSpec} from "./libraries/LmSpec.sol";
import {LmStep} from "./libraries/LmStep.sol";

/// @title LmProgramReferee
/// @notice The fine-tuning step program (docs/protocol.md §9), deployed on its own for the game:
///         op `k` of a step built from the spec's terms. Pure, free for anyone to call. (The
///         builder from a bare `LmNames.Config`, as the vectors give it, is the tests' harness:
///         EIP-170 leaves no room for both entry points here.)
contract LmProgramReferee {
    /// @notice Op `leaf` of a step of the job of `spec`.
    function specOpAt(LmSpec.Spec memory spec, uint256[] memory lens, uint256 leaf)
        external
        pure
        returns (LmSlot.Op memory)
    {
        return LmProgram.opAt(LmSpec.config(spec), lens, spec.count, leaf);
    }

    /// @notice Ops in a step of the job of `spec`.
    function specOpCount(LmSpec.Spec memory spec, uint256[] memory lens) external pure returns (uint256) {
        return LmProgram.opCount(LmSpec.config(spec), lens);
    }
}

/// @title LmFullProgramReferee
/// @notice A full fine-tune's step program (docs/protocol.md §9, "Full fine-tuning"), deployed on
///         its own for the game beside the LoRA one (EIP-170 leaves no room for both): op `k`
///         of a step built from the spec's terms. Pure, free for anyone to call.
contract LmFullProgramReferee {
    /// @notice Op `leaf` of a step of the full fine-tune of `spec`.
    function specOpAt(LmSpec.Spec memory spec, uint256[] memory lens, uint256 leaf)
        external
        pure
        returns (LmSlot.Op memory)
    {
        return LmProgram.fullOpAt(LmSpec.forwardConfig(spec.arch), lens, spec.count, leaf);
    }

    /// @notice Ops in a step of the full fine-tune of `spec`.
    function specOpCount(LmSpec.Spec memory spec, uint256[] memory lens) external pure returns (uint256) {
        return LmProgram.fullOpCount(LmSpec.forwardConfig(spec.arch), lens);
    }
}

/// @title LmSpanReferee
/// @notice A span's program (docs/split-inference.md, "Disputes"), deployed on its own for the
///         span dispute game: op `k` of the forward pass of a span of a model's blocks over a
///         session's positions. Pure, free for anyone to call.
contract LmSpanReferee {
    /// @notice Op `leaf` of the forward pass of blocks `first..end` of the model `a`
    ///         describes over `t` positions (a span's program).
    function spanOpAt(LmSpec.Arch memory a, uint256 first, uint256 end, uint256 t, uint256 leaf)
        external
        pure
        returns (LmSlot.Op memory)
    {
        return LmProgram.spanOpAt(LmSpec.forwardConfig(a), first, end, t, leaf);
    }

    /// @notice Ops in a span's program.
    function spanOpCount(LmSpec.Arch memory a, uint256 first, uint256 end, uint256 t)
        external
        pure
        returns (uint256)
    {
        return LmProgram.spanOpCount(LmSpec.forwardConfig(a), first, end, t);
    }

    /// @notice The constants of a forward pass's formulas.
    function forwardParams(LmSpec.Arch memory a) external pure returns (LmStep.Params memory) {
        return LmSpec.forwardParams(a);
    }
}

/// @title LmElementReferee
/// @notice The fine-tuning step program's element referee (docs/protocol.md §9), deployed on its
///         own for the game: the rows an element reads and the element recomputed from them.
contract LmElementReferee {
    /// @notice The constants of step `step`'s formulas.
    function params(LmSpec.Spec memory spec, uint256 step) external pure returns (LmStep.Params memory) {
        return LmSpec.params(spec, step);
    }

    /// @notice Which row of each input element `(r, c)` of `op` reads.
    function inputRows(
        LmStep.Op memory op,
        LmStep.Params memory p,
        uint256 r,
        uint256 c,
        uint256 sample,
        bytes calldata data
    ) external pure returns (uint256[] memory) {
        return LmStep.inputRows(op, p, r, c, sample, data);
    }

    /// @notice Element `(r, c)` of `op` from its input rows.
    function element(LmStep.Op memory op, LmStep.Params memory p, uint256 r, uint256 c, bytes[] calldata rows)
        external
        pure
        returns (int256)
    {
        return LmStep.element(op, p, r, c, rows);
    }
}
