// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title LmRows
/// @notice The row loops of the transformer referee in assembly: an element that reads a whole
///         row (a dot product, a row quantizer's exponent, the loss over the vocabulary) spends
///         its gas here, per value of the row. Each loop is the formula of docs/exact-ops.md that
///         its caller states; rows are packed `i32` little-endian. Every intermediate stays far
///         inside 256 bits (a mantissa is under 2^15, a value under 2^31, a row under 2^16).
library LmRows {
    /// @notice `Σ_t rs(dy_t · n_t, 8)` over two rows of equal length: a γ's gradient from a
    ///         column of the signal and one of the normalized rows (docs/protocol.md §9, "Full
    ///         fine-tuning"). Each product is under 2^54.
    function gammaSum(bytes calldata dy, bytes calldata n) internal pure returns (int256 acc) {
        require(n.length == dy.length);
        assembly ("memory-safe") {
            let end := add(dy.offset, and(dy.length, not(3)))
            let delta := sub(n.offset, dy.offset)
            for { let p := dy.offset } lt(p, end) { p := add(p, 4) } {
                let w := shr(224, calldataload(p))
                let a :=
                    signextend(
                        3,
                        or(
                            or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                            or(shr(8, and(w, 0xff0000)), shr(24, w))
                        )
                    )
                w := shr(224, calldataload(add(p, delta)))
                let b :=
                    signextend(
                        3,
                        or(
                            or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                            or(shr(8, and(w, 0xff0000)), shr(24, w))
                        )
                    )
                acc := add(acc, sar(8, add(mul(a, b), 128)))
            }
        }
    }

    /// @notice `Σ_t col_t` over the positions `t` whose input token is `token`: the data row
    ///         is `[prompt, token_0, …]`, at least one longer than `col`.
    function tokenSum(bytes calldata data, bytes calldata col, uint256 token)
        internal
        pure
        returns (int256 acc)
    {
        require(data.length >= col.length + 4);
        assembly ("memory-safe") {
            let end := add(col.offset, and(col.length, not(3)))
            let delta := sub(add(data.offset, 4), col.offset)
            for { let p := col.offset } lt(p, end) { p := add(p, 4) } {
                let w := shr(224, calldataload(add(p, delta)))
                let tok :=
                    or(
                        or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                        or(shr(8, and(w, 0xff0000)), shr(24, w))
                    )
                if eq(tok, token) {
                    w := shr(224, calldataload(p))
                    acc := add(
                        acc,
                        signextend(
                            3,
                            or(
                                or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                                or(shr(8, and(w, 0xff0000)), shr(24, w))
                            )
                        )
                    )
                }
            }
        }
    }

    /// @notice `max |x_k|` over a row.
    function maxAbs(bytes calldata x) internal pure returns (uint256 max) {
        assembly ("memory-safe") {
            let end := add(x.offset, and(x.length, not(3)))
            for { let p := x.offset } lt(p, end) { p := add(p, 4) } {
                let w := shr(224, calldataload(p))
                let v :=
                    signextend(
                        3,
                        or(
                            or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                            or(shr(8, and(w, 0xff0000)), shr(24, w))
                        )
                    )
                if slt(v, 0) { v := sub(0, v) }
                if gt(v, max) { max := v }
            }
        }
    }

    /// @notice `Σ_k mant(x_k, e) · q_k` over the values of `x` (`q` may be longer: a weight
    ///         row with its shift last). `mant(v, e)` is `v · 2^-e` for `e ≤ 0`, else
    ///         `clamp(rs(v, e), ±32767)`.
    function mantDot(bytes calldata x, int256 e, bytes calldata q) internal pure returns (int256 acc) {
        require(q.length >= x.length);
        assembly ("memory-safe") {
            let end := add(x.offset, and(x.length, not(3)))
            let delta := sub(q.offset, x.offset)
            for { let p := x.offset } lt(p, end) { p := add(p, 4) } {
                let w := shr(224, calldataload(p))
                let v :=
                    signextend(
                        3,
                        or(
                            or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                            or(shr(8, and(w, 0xff0000)), shr(24, w))
                        )
                    )
                let u := shr(224, calldataload(add(p, delta)))
                let b :=
                    signextend(
                        3,
                        or(
                            or(shl(24, and(u, 0xff)), shl(8, and(u, 0xff00))),
                            or(shr(8, and(u, 0xff0000)), shr(24, u))
                        )
                    )
                let m
                switch sgt(e, 0)
                case 0 { m := shl(sub(0, e), v) }
                default {
                    // Yul's shl(s, x) is x << s: 2^(e-1), the rounding half (slither reads it reversed).
                    // slither-disable-next-line incorrect-shift
                    m := sar(e, add(v, shl(sub(e, 1), 1)))
                    if sgt(m, 32767) { m := 32767 }
                    if slt(m, sub(0, 32767)) { m := sub(0, 32767) }
                }
                acc := add(acc, mul(m, b))
            }
        }
    }

    /// @notice `linear`'s signal sum: `Σ_j a_j · q_j` with `a_j = rs(mant(dy_j, e), s_j − smin)`
    ///         (0 when the shift difference passes 62).
    function inputDot(bytes calldata dy, bytes calldata q, bytes calldata shifts, int256 e, int256 smin)
        internal
        pure
        returns (int256 acc)
    {
        require(q.length >= dy.length && shifts.length >= dy.length);
        assembly ("memory-safe") {
            function le(p) -> v {
                let w := shr(224, calldataload(p))
                v := signextend(
                    3,
                    or(
                        or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                        or(shr(8, and(w, 0xff0000)), shr(24, w))
                    )
                )
            }
            let end := add(dy.offset, and(dy.length, not(3)))
            let dq := sub(q.offset, dy.offset)
            let ds := sub(shifts.offset, dy.offset)
            for { let p := dy.offset } lt(p, end) { p := add(p, 4) } {
                let t := sub(le(add(p, ds)), smin)
                if iszero(sgt(t, 62)) {
                    let v := le(p)
                    let m
                    switch sgt(e, 0)
                    case 0 { m := shl(sub(0, e), v) }
                    default {
                        // Yul's shl(s, x) is x << s: 2^(e-1), the rounding half (slither reads it reversed).
                        // slither-disable-next-line incorrect-shift
                        m := sar(e, add(v, shl(sub(e, 1), 1)))
                        if sgt(m, 32767) { m := 32767 }
                        if slt(m, sub(0, 32767)) { m := sub(0, 32767) }
                    }
                    // slither-disable-next-line incorrect-shift
                    if sgt(t, 0) { m := sar(t, add(m, shl(sub(t, 1), 1))) }
                    acc := add(acc, mul(m, le(add(p, dq))))
                }
            }
        }
    }

    /// @notice `Σ_{q<t, i<n} a[q·heads + base + i] · b[i·t + q]`: a key's or value's gradient
    ///         over the `n` query heads its head serves (`dk`, `dv`).
    function groupDot(bytes calldata a, bytes calldata b, uint256 t, uint256 heads, uint256 base, uint256 n)
        internal
        pure
        returns (int256 acc)
    {
        if (t == 0 || n == 0) return 0;
        require(a.length >= 4 * ((t - 1) * heads + base + n) && b.length >= 4 * n * t);
        assembly ("memory-safe") {
            function le(p) -> v {
                let w := shr(224, calldataload(p))
                v := signextend(
                    3,
                    or(
                        or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                        or(shr(8, and(w, 0xff0000)), shr(24, w))
                    )
                )
            }
            let stride := mul(4, heads)
            let column := mul(4, t)
            let pa := add(a.offset, mul(4, base))
            let pb := b.offset
            for { let q := 0 } lt(q, t) { q := add(q, 1) } {
                for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                    acc := add(acc, mul(le(add(pa, mul(4, i))), le(add(pb, mul(column, i)))))
                }
                pa := add(pa, stride)
                pb := add(pb, 4)
            }
        }
    }

    /// @notice The loss's softmax over a row of logits (Q12): with `s_i = clamp(rs(z_i, 2),
    ///         ±2^24)`, the largest `s` and `Σ_i expWeight(max − s_i)`, looking the weights up in
    ///         `hi` and `lo` (LmTables' exponential tables, already in memory).
    function xentSums(bytes calldata z, bytes memory hi, bytes memory lo)
        internal
        pure
        returns (int256 max, int256 total)
    {
        return _scores(z, 0, true, hi, lo);
    }

    /// @notice The largest `s_i = clamp(rs(z_i, 2), ±2^24)` over a row of logits.
    function scoreMax(bytes calldata z) internal pure returns (int256 max) {
        (max,) = _scores(z, 0, true, "", "");
    }

    /// @notice `Σ_i expWeight(max − s_i)` over a row of logits, `s_i` as in `scoreMax`, `max`
    ///         at least every `s_i` (a weight past the table's range is 0).
    function expSum(bytes calldata z, int256 max, bytes memory hi, bytes memory lo)
        internal
        pure
        returns (int256 total)
    {
        (, total) = _scores(z, max, false, hi, lo);
    }

    /// @dev The largest score of the row (or `given` when `findMax` is false), and the sum of
    ///      the weights below it when tables are given (`hi` not empty).
    function _scores(bytes calldata z, int256 given, bool findMax, bytes memory hi, bytes memory lo)
        private
        pure
        returns (int256 max, int256 total)
    {
        assembly ("memory-safe") {
            function score(p) -> s {
                let w := shr(224, calldataload(p))
                let v :=
                    signextend(
                        3,
                        or(
                            or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                            or(shr(8, and(w, 0xff0000)), shr(24, w))
                        )
                    )
                s := sar(2, add(v, 2))
                let cap := shl(24, 1)
                if sgt(s, cap) { s := cap }
                if slt(s, sub(0, cap)) { s := sub(0, cap) }
            }
            let end := add(z.offset, and(z.length, not(3)))
            max := given
            if findMax {
                max := sub(0, shl(255, 1))
                for { let p := z.offset } lt(p, end) { p := add(p, 4) } {
                    let s := score(p)
                    if sgt(s, max) { max := s }
                }
            }
            if mload(hi) {
                let h := add(hi, 32)
                let l := add(lo, 32)
                for { let p := z.offset } lt(p, end) { p := add(p, 4) } {
                    let d := sub(max, score(p))
                    if lt(d, 16384) {
                        let a := shr(224, mload(add(h, mul(shr(6, d), 4))))
                        let b := shr(224, mload(add(l, mul(and(d, 63), 4))))
                        total := add(total, shr(30, add(mul(a, b), shl(29, 1))))
                    }
                }
            }
        }
    }

    /// @notice `Σ x_k` over a row.
    function sum(bytes calldata x) internal pure returns (int256 acc) {
        assembly ("memory-safe") {
            let end := add(x.offset, and(x.length, not(3)))
            for { let p := x.offset } lt(p, end) { p := add(p, 4) } {
                let w := shr(224, calldataload(p))
                acc := add(
                    acc,
                    signextend(
                        3,
                        or(
                            or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                            or(shr(8, and(w, 0xff0000)), shr(24, w))
                        )
                    )
                )
            }
        }
    }

    /// @notice `max |c_k|` over the centred row `c_k = clamp(x_k − mean, ±2^29)`.
    function centredMax(bytes calldata x, int256 mean) internal pure returns (uint256 max) {
        assembly ("memory-safe") {
            let cap := shl(29, 1)
            let end := add(x.offset, and(x.length, not(3)))
            for { let p := x.offset } lt(p, end) { p := add(p, 4) } {
                let w := shr(224, calldataload(p))
                let c :=
                    sub(
                        signextend(
                            3,
                            or(
                                or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                                or(shr(8, and(w, 0xff0000)), shr(24, w))
                            )
                        ),
                        mean
                    )
                if sgt(c, cap) { c := cap }
                if slt(c, sub(0, cap)) { c := sub(0, cap) }
                if slt(c, 0) { c := sub(0, c) }
                if gt(c, max) { max := c }
            }
        }
    }

    /// @notice `Σ mant(c_k, e)²` over the centred row `c_k = clamp(x_k − mean, ±2^29)`.
    function centredSquares(bytes calldata x, int256 mean, int256 e) internal pure returns (int256 squares) {
        assembly ("memory-safe") {
            let cap := shl(29, 1)
            let end := add(x.offset, and(x.length, not(3)))
            for { let p := x.offset } lt(p, end) { p := add(p, 4) } {
                let w := shr(224, calldataload(p))
                let c :=
                    sub(
                        signextend(
                            3,
                            or(
                                or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                                or(shr(8, and(w, 0xff0000)), shr(24, w))
                            )
                        ),
                        mean
                    )
                if sgt(c, cap) { c := cap }
                if slt(c, sub(0, cap)) { c := sub(0, cap) }
                let m
                switch sgt(e, 0)
                case 0 { m := shl(sub(0, e), c) }
                default {
                    // slither-disable-next-line incorrect-shift
                    m := sar(e, add(c, shl(sub(e, 1), 1)))
                    if sgt(m, 32767) { m := 32767 }
                    if slt(m, sub(0, 32767)) { m := sub(0, 32767) }
                }
                squares := add(squares, mul(m, m))
            }
        }
    }

    /// @notice `max |dn_k|` over the signal `dn_k = clamp(rs(dy_k · γ_k, 16), ±2^30)` of a norm.
    function signalMax(bytes calldata dy, bytes calldata gamma) internal pure returns (uint256 max) {
        require(gamma.length >= dy.length);
        assembly ("memory-safe") {
            function le(p) -> v {
                let w := shr(224, calldataload(p))
                v := signextend(
                    3,
                    or(
                        or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                        or(shr(8, and(w, 0xff0000)), shr(24, w))
                    )
                )
            }
            let cap := shl(30, 1)
            let end := add(dy.offset, and(dy.length, not(3)))
            let dg := sub(gamma.offset, dy.offset)
            for { let p := dy.offset } lt(p, end) { p := add(p, 4) } {
                let v := sar(16, add(mul(le(p), le(add(p, dg))), shl(15, 1)))
                if sgt(v, cap) { v := cap }
                if slt(v, sub(0, cap)) { v := sub(0, cap) }
                if slt(v, 0) { v := sub(0, v) }
                if gt(v, max) { max := v }
            }
        }
    }

    /// @notice A norm's backward sums: with `k = [mean, e, inv, f]`, `n_i = rs(mant(c_i, e) ·
    ///         inv, 16)` of the centred input and `g_i = mant(dn_i, f)` of its signal,
    ///         `Σ g_i · n_i` and `Σ g_i`.
    function normSums(bytes calldata x, bytes calldata dy, bytes calldata gamma, int256[4] memory k)
        internal
        pure
        returns (int256 dot, int256 gsum)
    {
        require(dy.length >= x.length && gamma.length >= x.length);
        assembly ("memory-safe") {
            function le(p) -> v {
                let w := shr(224, calldataload(p))
                v := signextend(
                    3,
                    or(
                        or(shl(24, and(w, 0xff)), shl(8, and(w, 0xff00))),
                        or(shr(8, and(w, 0xff0000)), shr(24, w))
                    )
                )
            }
            function clampTo(v, cap) -> r {
                r := v
                if sgt(r, cap) { r := cap }
                if slt(r, sub(0, cap)) { r := sub(0, cap) }
            }
            function mant(v, e) -> m {
                switch sgt(e, 0)
                case 0 { m := shl(sub(0, e), v) }
                default {
                    // slither-disable-next-line incorrect-shift
                    m := clampTo(sar(e, add(v, shl(sub(e, 1), 1))), 32767)
                }
            }
            let mean := mload(k)
            let e := mload(add(k, 0x20))
            let inv := mload(add(k, 0x40))
            let f := mload(add(k, 0x60))
            let end := add(x.offset, and(x.length, not(3)))
            let dd := sub(dy.offset, x.offset)
            let dg := sub(gamma.offset, x.offset)
            for { let p := x.offset } lt(p, end) { p := add(p, 4) } {
                let n := sar(16, add(mul(mant(clampTo(sub(le(p), mean), shl(29, 1)), e), inv), shl(15, 1)))
                let dn := clampTo(sar(16, add(mul(le(add(p, dd)), le(add(p, dg))), shl(15, 1))), shl(30, 1))
                let g := mant(dn, f)
                dot := add(dot, mul(g, n))
                gsum := add(gsum, g)
            }
        }
    }
}

