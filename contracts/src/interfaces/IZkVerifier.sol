// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IZkVerifier
/// @notice A Groth16 (BN254) verifier of pedals-zk inference proofs, as `pedals-zk` generates
///         them from a verifying key (contracts/src/zk). Three public inputs: the job commitment
///         `c_job = H(4, c_w, c_x)`, the output commitment `c_out`, and the worker's address.
interface IZkVerifier {
    /// @notice Whether `(a, b, c)` proves the statement `input`. Never reverts: a malformed proof
    ///         or an input at or above the scalar field's modulus gives false.
    /// @param a The proof's A, `(x, y)`.
    /// @param b The proof's B, `(x.c1, x.c0, y.c1, y.c0)`.
    /// @param c The proof's C, `(x, y)`.
    /// @param input `[c_job, c_out, uint160(worker)]`.
    function verifyProof(
        uint256[2] calldata a,
        uint256[4] calldata b,
        uint256[2] calldata c,
        uint256[3] calldata input
    ) external view returns (bool ok);
}
