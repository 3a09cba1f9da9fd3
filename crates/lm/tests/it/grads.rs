//! Each backward op of exact fine-tuning against the finite difference of its forward op:
//! the exact signal must be the derivative, to the rounding of the formats.

use pedals_lm::exact::arith::rowquant;
use pedals_lm::exact::ops::{
    gelu, norm_row, rope, score, score_scale, softmax_q16, swiglu, weighted_sum,
};
use pedals_lm::train::grad::{
    HeadGrad, finish_kv, gelu_backward, head_backward, norm_backward, rope_backward,
    swiglu_backward, xent_grad,
};
use proptest::prelude::*;

const Q12: f64 = 4096.0;
const Q24: f64 = 16_777_216.0;

/// `|a − b| ≤ abs + rel · |b|`.
fn close(a: f64, b: f64, abs: f64, rel: f64) -> bool {
    (a - b).abs() <= abs + rel * b.abs()
}

/// A row of `n` Q12 values in about ±4.0, from a seed.
fn row(seed: u64, n: usize, amp: i64) -> Vec<i32> {
    (0..n as u64)
        .map(|i| {
            let h = (seed ^ (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .wrapping_mul(0xBF58_476D_1CE4_E5B9);
            ((h >> 20) as i64 % (2 * amp + 1) - amp) as i32
        })
        .collect()
}

/// `Σ y_k · c_k` in real units, `y` Q12 and `c` Q24: a loss whose signal to `y` is `c`.
fn dot(y: &[i32], c: &[i32]) -> f64 {
    y.iter()
        .zip(c)
        .map(|(&a, &b)| f64::from(a) / Q12 * f64::from(b) / Q24)
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn norms(seed in any::<u64>(), center in any::<bool>(), d in 4usize..40) {
        let x = row(seed, d, 16_000);
        let gamma: Vec<i32> = row(seed ^ 1, d, 30_000).iter().map(|v| v + 60_000).collect();
        let c = row(seed ^ 2, d, 1 << 22);
        let mut dx = vec![0; d];
        norm_backward(&x, &c, &gamma, 1 << 20, center, &mut dx);
        let f = |x: &[i32]| {
            let mut y = vec![0; d];
            norm_row(x, &gamma, None, 1 << 20, center, &mut y);
            dot(&y, &c)
        };
        let scale = dx.iter().map(|v| f64::from(*v).abs()).fold(0.0, f64::max) / Q24;
        // Each output is rounded to Q12: the difference's noise over a step of 2·256.
        let noise = d as f64 * f64::from(1 << 22) / Q24 / 512.0;
        for k in 0..d {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[k] += 256;
            xm[k] -= 256;
            let fd = (f(&xp) - f(&xm)) / (512.0 / Q12);
            prop_assert!(close(f64::from(dx[k]) / Q24, fd, 0.02 * scale + noise, 0.05), "k {k}: {} vs {fd}", f64::from(dx[k]) / Q24);
        }
    }

    #[test]
    fn activations(g in -40_000i32..40_000, u in -40_000i32..40_000, da in -(1i32 << 24)..(1 << 24)) {
        let h = 512;
        let (dg, du) = swiglu_backward(g, u, da);
        let daf = f64::from(da) / Q24;
        // The forward rounds to Q12 (once more in silu, scaled by u): the difference's noise.
        let noise = daf.abs() * (2.0 + f64::from(u).abs() / Q12 + f64::from(g).abs() / Q12) / f64::from(h);
        let fd_g = f64::from(swiglu(g + h, u) - swiglu(g - h, u)) / Q12 / (2.0 * f64::from(h) / Q12) * daf;
        let fd_u = f64::from(swiglu(g, u + h) - swiglu(g, u - h)) / Q12 / (2.0 * f64::from(h) / Q12) * daf;
        prop_assert!(close(f64::from(dg) / Q24, fd_g, noise + 1e-6, 0.03), "dg {} vs {fd_g}", f64::from(dg) / Q24);
        prop_assert!(close(f64::from(du) / Q24, fd_u, noise + 1e-6, 0.03), "du {} vs {fd_u}", f64::from(du) / Q24);
        let dx = gelu_backward(g, da);
        let fd_x = f64::from(gelu(g + h) - gelu(g - h)) / Q12 / (2.0 * f64::from(h) / Q12) * daf;
        prop_assert!(close(f64::from(dx) / Q24, fd_x, noise + 1e-6, 0.03), "gelu {} vs {fd_x}", f64::from(dx) / Q24);
    }

    #[test]
    fn rotary_and_loss(seed in any::<u64>(), angle in 0u32..360) {
        let hd = 8;
        let a = f64::from(angle).to_radians();
        let cos = vec![(a.cos() * 65536.0).round() as i32; hd / 2];
        let sin = vec![(a.sin() * 65536.0).round() as i32; hd / 2];
        let c = row(seed, hd, 1 << 22);
        let mut dx = c.clone();
        rope_backward(&mut dx, &cos, &sin);
        let x = row(seed ^ 3, hd, 20_000);
        for k in 0..hd {
            let f = |d: i32| {
                let mut y = x.clone();
                y[k] += d;
                rope(&mut y, &cos, &sin);
                dot(&y, &c)
            };
            let fd = (f(512) - f(-512)) / (1024.0 / Q12);
            prop_assert!(close(f64::from(dx[k]) / Q24, fd, 2e-3, 0.01), "k {k}: {} vs {fd}", f64::from(dx[k]) / Q24);
        }
        // The loss signal is the derivative of −ln p_target in the logits.
        let z = row(seed ^ 4, 16, 12_000);
        let target = (seed % 16) as usize;
        let mut dz = vec![0; 16];
        let loss = xent_grad(&z, target, &mut dz);
        for k in 0..16 {
            let mut zp = z.clone();
            zp[k] += 64;
            let mut scratch = vec![0; 16];
            let fd = (xent_grad(&zp, target, &mut scratch) - loss) / (64.0 / Q12);
            prop_assert!(close(f64::from(dz[k]) / Q24, fd, 0.01, 0.02), "k {k}: {} vs {fd}", f64::from(dz[k]) / Q24);
        }
    }
}

/// One query attending over `n` positions: the output `o = Σ softmax(q·k_j/sqrt(hd)) v_j`; the
/// signals to the query, every key and every value against finite differences.
#[test]
fn attention_head() {
    let (hd, n) = (8usize, 6usize);
    let scale = score_scale(hd);
    for seed in 0..16u64 {
        let q = row(seed, hd, 6_000);
        let keys: Vec<Vec<i32>> = (0..n)
            .map(|j| row(seed ^ (10 + j as u64), hd, 6_000))
            .collect();
        let vals: Vec<Vec<i32>> = (0..n)
            .map(|j| row(seed ^ (20 + j as u64), hd, 8_000))
            .collect();
        let c = row(seed ^ 99, hd, 1 << 22);
        let out = |q: &[i32], keys: &[Vec<i32>], vals: &[Vec<i32>]| {
            let (mq, eq) = rowquant(q);
            let s: Vec<i64> = keys
                .iter()
                .map(|k| {
                    let (mk, ek) = rowquant(k);
                    score(&mq, eq, &mk, ek, scale)
                })
                .collect();
            let mut p = Vec::new();
            softmax_q16(&s, &mut p);
            let mut o = vec![0; hd];
            weighted_sum(&p, vals.iter().map(|v| v.as_slice()), &mut o);
            (p, dot(&o, &c))
        };
        let (p, _) = out(&q, &keys, &vals);
        let (mut dk_raw, mut dv_raw) = (vec![0i128; n * hd], vec![0i128; n * hd]);
        let hg = HeadGrad {
            p: &p,
            do_: &c,
            q: &q,
        };
        let dq = head_backward(
            &hg,
            |j| &keys[j],
            |j| &vals[j],
            scale,
            &mut dk_raw,
            &mut dv_raw,
        );
        let (dk, dv) = finish_kv(&dk_raw, &dv_raw);
        let step = 256;
        let fd = |f: &dyn Fn(i32) -> f64| (f(step) - f(-step)) / (2.0 * f64::from(step) / Q12);
        let max = |v: &[i32]| v.iter().map(|x| f64::from(*x).abs()).fold(0.0, f64::max) / Q24;
        let tol = 0.05 * max(&dq).max(max(&dk)).max(max(&dv)) + 1e-4;
        for d in 0..hd {
            let g = fd(&|h| {
                let mut q2 = q.clone();
                q2[d] += h;
                out(&q2, &keys, &vals).1
            });
            assert!(
                close(f64::from(dq[d]) / Q24, g, tol, 0.05),
                "seed {seed} dq[{d}]: {} vs {g}",
                f64::from(dq[d]) / Q24
            );
            for j in 0..n {
                let gk = fd(&|h| {
                    let mut k2 = keys.clone();
                    k2[j][d] += h;
                    out(&q, &k2, &vals).1
                });
                let gv = fd(&|h| {
                    let mut v2 = vals.clone();
                    v2[j][d] += h;
                    out(&q, &keys, &v2).1
                });
                assert!(
                    close(f64::from(dk[j * hd + d]) / Q24, gk, tol, 0.05),
                    "seed {seed} dk[{j}][{d}]"
                );
                assert!(
                    close(f64::from(dv[j * hd + d]) / Q24, gv, tol, 0.05),
                    "seed {seed} dv[{j}][{d}]"
                );
            }
        }
    }
}

/// The fast signal through a frozen matrix (its transpose, the SIMD dot products) is the
/// definition's, bit for bit, for 8- and 16-bit weights and shifts spread past 62.
#[test]
fn input_grad_is_its_definition() {
    use pedals_lm::train::grad::{Transposed, input_grad, input_grad_reference};
    use pedals_lm::weights::{QData, QMat};
    for (seed, bits) in [(1u64, 8u8), (2, 16), (3, 8), (4, 16)] {
        let (rows, cols) = (37, 70);
        let vals = row(seed, rows * cols, if bits == 8 { 127 } else { 32_767 });
        let shift: Vec<i8> = row(seed ^ 5, rows, 30)
            .iter()
            .enumerate()
            .map(|(j, &s)| {
                if j == 3 {
                    47
                } else if j == 4 {
                    -16
                } else {
                    (s + 10) as i8
                }
            })
            .collect();
        let w = QMat {
            rows,
            cols,
            shift,
            data: if bits == 8 {
                QData::I8(vals.iter().map(|&v| v as i8).collect())
            } else {
                QData::I16(vals.iter().map(|&v| v as i16).collect())
            },
            device: Default::default(),
        };
        let dy = row(seed ^ 9, 5 * rows, 1 << 29);
        assert_eq!(
            input_grad(&dy, &Transposed::of(&w)),
            input_grad_reference(&dy, &w)
        );
    }
}
