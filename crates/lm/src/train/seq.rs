//! One sequence's forward pass with LoRA adapters, keeping what the backward pass reads, and
//! its backward pass: the order of ops of docs/exact-ops.md ("Fine-tuning"). Every op is an
//! exact op of `crate::exact::ops` or `super::grad`.

use crate::config::Family;
use crate::exact::arith::{clamp, rowquant};
use crate::exact::ops::{
    gather_row, gelu, linear, norm_row, residual_add, rope, score, score_scale, softmax_q16,
    swiglu, weighted_sum,
};
use crate::weights::{ExactModel, Linear, Norm};

use super::full::Sums as FullSums;
use super::grad::{
    GSUM_MAX, HeadGrad, Transposed, add_grad, bias_grads, finish_kv, gelu_backward, head_backward,
    input_grad, norm_backward, norm_param_grads, rope_backward, swiglu_backward, weight_grad,
    xent_grad,
};
use super::lora::{LoraState, Target, qmat};

/// An adapter as the forward reads it: `A` and `B' = 2^σ·B` as 16-bit matrices.
pub(crate) struct Pair {
    a: crate::weights::QMat,
    b: crate::weights::QMat,
    at: Transposed,
    bt: Transposed,
    sigma: i32,
}

/// Every adapter of the model as the forward reads it, `[block][target]`.
pub(crate) struct Adapters(Vec<Vec<Option<Pair>>>);

impl Adapters {
    pub(crate) fn new(model: &ExactModel, state: &LoraState, rank: usize, sigma: i32) -> Self {
        Self(
            state
                .adapters
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(Target::ALL)
                        .map(|(ad, t)| {
                            ad.as_ref().map(|ad| {
                                let (inp, out) = t.dims(&model.config);
                                let (a, b) =
                                    (qmat(&ad.a, rank, inp, 0), qmat(&ad.b, out, rank, sigma));
                                Pair {
                                    at: Transposed::of(&a),
                                    bt: Transposed::of(&b),
                                    a,
                                    b,
                                    sigma,
                                }
                            })
                        })
                        .collect()
                })
                .collect(),
        )
    }
}

/// The frozen matrices transposed, for the signals to their inputs: `[block][target]` (no
/// `gate_proj` in the GPT-2 family) and the head.
pub(crate) struct Frozen {
    blocks: Vec<Vec<Option<Transposed>>>,
    head: Transposed,
}

impl Frozen {
    pub(crate) fn of(model: &ExactModel) -> Self {
        let blocks = model
            .blocks
            .iter()
            .map(|b| {
                [
                    Some(&b.q),
                    Some(&b.k),
                    Some(&b.v),
                    Some(&b.o),
                    b.gate.as_ref(),
                    Some(&b.up),
                    Some(&b.down),
                ]
                .iter()
                .map(|l| l.map(|l| Transposed::of(&l.w)))
                .collect()
            })
            .collect();
        Self {
            blocks,
            head: Transposed::of(model.head()),
        }
    }

    fn w(&self, block: usize, t: Target) -> &Transposed {
        self.blocks[block][t.index()]
            .as_ref()
            .expect("the model has every projection its config names")
    }
}

/// Raw gradient sums of one sequence, `[block][target] = (gA, gB)`, Q32.
pub(crate) type Sums = super::Gradients;

/// A projection with its adapter: `y = clamp(linear(x, W, b) + linear(linear(x, A), B'))`.
/// Returns `y` and the adapter's middle `u = linear(x, A)` (empty without an adapter).
fn project(x: &[i32], l: &Linear, ad: Option<&Pair>) -> (Vec<i32>, Vec<i32>) {
    let mut y = linear(x, &l.w, l.b.as_deref());
    let Some(ad) = ad else {
        return (y, Vec::new());
    };
    let u = linear(x, &ad.a, None);
    residual_add(&mut y, &linear(&u, &ad.b, None));
    (y, u)
}

/// The signal to a projection's input from its output's `dy`; adds the adapter's gradients.
fn project_backward(
    x: &[i32],
    u: &[i32],
    dy: &[i32],
    wt: &Transposed,
    ad: Option<&Pair>,
    sums: &mut Option<(Vec<i64>, Vec<i64>)>,
) -> Vec<i32> {
    let mut dx = input_grad(dy, wt);
    if let (Some(ad), Some((ga, gb))) = (ad, sums.as_mut()) {
        let (r, inp, out) = (ad.a.rows, ad.a.cols, ad.b.rows);
        for (s, g) in gb.iter_mut().zip(weight_grad(dy, u, out, r, ad.sigma)) {
            *s += g;
        }
        let du = input_grad(dy, &ad.bt);
        for (s, g) in ga.iter_mut().zip(weight_grad(&du, x, r, inp, 0)) {
            *s += g;
        }
        add_grad(&mut dx, &input_grad(&du, &ad.at));
    }
    dx
}

fn norm_rows(x: &[i32], n: &Norm, eps: i64, center: bool, d: usize) -> Vec<i32> {
    let mut out = vec![0i32; x.len()];
    for (xr, yr) in x.chunks(d).zip(out.chunks_mut(d)) {
        norm_row(xr, &n.gamma, n.beta.as_deref(), eps, center, yr);
    }
    out
}

fn norm_rows_backward(
    x: &[i32],
    dy: &[i32],
    n: &Norm,
    eps: i64,
    center: bool,
    d: usize,
) -> Vec<i32> {
    let mut out = vec![0i32; x.len()];
    for ((xr, gr), o) in x.chunks(d).zip(dy.chunks(d)).zip(out.chunks_mut(d)) {
        norm_backward(xr, gr, &n.gamma, eps, center, o);
    }
    out
}

/// Applies `f` (the rotation or its transpose) to every head of every position of each
/// `(rows, width)`, Llama family only.
fn rotate(
    model: &ExactModel,
    rows: &mut [(&mut Vec<i32>, usize)],
    f: fn(&mut [i32], &[i32], &[i32]),
) {
    let Some(rot) = &model.rotary else {
        return;
    };
    let hd = model.config.head_dim;
    let half = hd / 2;
    for (x, width) in rows.iter_mut() {
        for (t, row) in x.chunks_mut(*width).enumerate() {
            let (cos, sin) = (
                &rot.cos[t * half..(t + 1) * half],
                &rot.sin[t * half..(t + 1) * half],
            );
            row.chunks_mut(hd).for_each(|h| f(h, cos, sin));
        }
    }
}

/// What one block's forward keeps.
pub(crate) struct Saved {
    h_in: Vec<i32>,
    x1: Vec<i32>,
    u: [Vec<i32>; 7],
    q: Vec<i32>,
    k: Vec<i32>,
    v: Vec<i32>,
    probs: Vec<Vec<i64>>,
    o: Vec<i32>,
    h_mid: Vec<i32>,
    x2: Vec<i32>,
    gate: Vec<i32>,
    up: Vec<i32>,
    act: Vec<i32>,
}

/// The loss and gradient sums of one sequence.
pub(crate) struct SeqGrad {
    /// `Σ −ln p` over the scored positions (a report, not committed).
    pub loss: f64,
    /// Scored positions.
    pub tokens: u64,
    /// Raw adapter gradient sums.
    pub sums: Sums,
}

/// The forward pass of `input` with the adapters: every block's saved tensors, the last
/// hidden rows and the Q12 logits of every position.
pub(crate) fn forward(
    model: &ExactModel,
    ads: &Adapters,
    input: &[u32],
) -> (Vec<Saved>, Vec<i32>, Vec<i32>) {
    let c = &model.config;
    let (d, t_len) = (c.hidden, input.len());
    let tokens = input;
    let center = c.family == Family::Gpt2;
    let eps = c.eps_q40();
    let (hd, qw, kw) = (c.head_dim, c.q_width(), c.kv_width());
    let group = c.heads / c.kv_heads;
    let scale = score_scale(hd);
    let mut h = vec![0i32; t_len * d];
    for (t, row) in h.chunks_mut(d).enumerate() {
        gather_row(&model.embed, tokens[t] as usize, row);
        if let Some(pos) = &model.pos_embed {
            let mut p = vec![0i32; d];
            gather_row(pos, t, &mut p);
            residual_add(row, &p);
        }
    }
    let mut saved = Vec::with_capacity(c.layers);
    for (block, ad) in model.blocks.iter().zip(&ads.0) {
        let at = |t: Target| ad[t.index()].as_ref();
        let h_in = h.clone();
        let x1 = norm_rows(&h, &block.attn_norm, eps, center, d);
        let (mut q, uq) = project(&x1, &block.q, at(Target::Q));
        let (mut k, uk) = project(&x1, &block.k, at(Target::K));
        let (v, uv) = project(&x1, &block.v, at(Target::V));
        rotate(model, &mut [(&mut q, qw), (&mut k, kw)], rope);
        let kq: Vec<(Vec<i16>, i32)> = k.chunks(hd).map(rowquant).collect();
        let mut o = vec![0i32; t_len * qw];
        let mut probs = Vec::with_capacity(t_len * c.heads);
        for t in 0..t_len {
            for head in 0..c.heads {
                let g = head / group;
                let off = t * qw + head * hd;
                let (mq, eq) = rowquant(&q[off..off + hd]);
                let scores: Vec<i64> = (0..=t)
                    .map(|j| {
                        let (mk, ek) = &kq[j * c.kv_heads + g];
                        score(&mq, eq, mk, *ek, scale)
                    })
                    .collect();
                let mut p = Vec::new();
                softmax_q16(&scores, &mut p);
                let values = (0..=t).map(|j| &v[(j * c.kv_heads + g) * hd..][..hd]);
                weighted_sum(&p, values, &mut o[off..off + hd]);
                probs.push(p);
            }
        }
        let (attn, uo) = project(&o, &block.o, at(Target::O));
        residual_add(&mut h, &attn);
        let h_mid = h.clone();
        let x2 = norm_rows(&h, &block.mlp_norm, eps, center, d);
        let (up, uup) = project(&x2, &block.up, at(Target::Up));
        let (gate, ugate, act) = match &block.gate {
            Some(gl) => {
                let (gate, ug) = project(&x2, gl, at(Target::Gate));
                let act: Vec<i32> = gate.iter().zip(&up).map(|(&g, &u)| swiglu(g, u)).collect();
                (gate, ug, act)
            }
            None => (
                Vec::new(),
                Vec::new(),
                up.iter().map(|&u| gelu(u)).collect::<Vec<i32>>(),
            ),
        };
        let (down, udown) = project(&act, &block.down, at(Target::Down));
        residual_add(&mut h, &down);
        saved.push(Saved {
            h_in,
            x1,
            u: [uq, uk, uv, uo, ugate, uup, udown],
            q,
            k,
            v,
            probs,
            o,
            h_mid,
            x2,
            gate,
            up,
            act,
        });
    }
    let xf = norm_rows(&h, &model.final_norm, eps, center, d);
    let logits = linear(&xf, model.head(), None);
    (saved, h, logits)
}

/// A norm's parameter gradients over rows `x` (its input) and `dy` (its output's signal), into
/// the full fine-tune's sums of `p.gamma` (and `p.beta`).
fn norm_params(f: &mut FullSums<'_>, p: &str, x: &[i32], dy: &[i32], eps: i64, center: bool) {
    let d = f.of(&format!("{p}.gamma")).len();
    let mut dg = vec![0i64; d];
    let mut db = center.then(|| vec![0i64; d]);
    for (xr, gr) in x.chunks(d).zip(dy.chunks(d)) {
        norm_param_grads(xr, gr, eps, center, &mut dg, db.as_deref_mut());
    }
    // A sequence's γ sums are clamped as a weight gradient's are, so that a batch's sum of
    // them stays far inside 64 bits.
    dg.iter_mut().for_each(|g| *g = clamp(*g, GSUM_MAX));
    add_into(f.of(&format!("{p}.gamma")), &dg);
    if let (Some(db), Some(s)) = (db, f.maybe(&format!("{p}.beta"))) {
        add_into(s, &db);
    }
}

fn add_into(sums: &mut [i64], g: &[i64]) {
    sums.iter_mut().zip(g).for_each(|(s, v)| *s += v);
}

/// A projection's weight and bias gradients (full fine-tuning) from its input rows `x` and its
/// output's signal `dy`.
fn project_params(f: &mut FullSums<'_>, name: &str, x: &[i32], dy: &[i32], out: usize, inp: usize) {
    add_into(
        f.of(&format!("{name}.weight")),
        &weight_grad(dy, x, out, inp, 0),
    );
    if let Some(s) = f.maybe(&format!("{name}.bias")) {
        bias_grads(dy, s);
    }
}

/// Forward and backward of `tokens` (the input is `tokens[..n−1]`, the targets `tokens[1..]`,
/// and target `j` is scored when `j ≥ max(prompt, 1)`). With `full`, adds every weight's
/// gradient sums there too (full fine-tuning).
pub(crate) fn run(
    model: &ExactModel,
    fz: &Frozen,
    ads: &Adapters,
    tokens: &[u32],
    prompt: usize,
    mut full: Option<&mut FullSums<'_>>,
) -> SeqGrad {
    let c = &model.config;
    let (d, t_len) = (c.hidden, tokens.len() - 1);
    let center = c.family == Family::Gpt2;
    let eps = c.eps_q40();
    let (hd, qw, kw) = (c.head_dim, c.q_width(), c.kv_width());
    let group = c.heads / c.kv_heads;
    let scale = score_scale(hd);
    let (saved, h, logits) = forward(model, ads, &tokens[..t_len]);
    // The loss signal.
    let vocab = c.vocab;
    let mut dz = vec![0i32; t_len * vocab];
    let (mut loss, mut scored) = (0.0, 0u64);
    for t in 0..t_len {
        if t + 1 >= prompt.max(1) {
            let row = &logits[t * vocab..(t + 1) * vocab];
            loss += xent_grad(
                row,
                tokens[t + 1] as usize,
                &mut dz[t * vocab..(t + 1) * vocab],
            );
            scored += 1;
        }
    }
    let mut sums: Sums = ads
        .0
        .iter()
        .map(|row| {
            row.iter()
                .map(|p| {
                    p.as_ref()
                        .map(|p| (vec![0; p.a.rows * p.a.cols], vec![0; p.b.rows * p.b.cols]))
                })
                .collect()
        })
        .collect();
    let dxf = input_grad(&dz, &fz.head);
    if let Some(f) = full.as_deref_mut() {
        let xf = norm_rows(&h, &model.final_norm, eps, center, d);
        let head = if model.head.is_some() {
            "head"
        } else {
            "embed"
        };
        add_into(f.of(head), &weight_grad(&dz, &xf, vocab, d, 0));
        norm_params(f, "final_norm", &h, &dxf, eps, center);
    }
    let mut dh = norm_rows_backward(&h, &dxf, &model.final_norm, eps, center, d);

    for (l, (block, s)) in model.blocks.iter().zip(&saved).enumerate().rev() {
        let ad = &ads.0[l];
        let sl = &mut sums[l];
        let mut back = |x: &[i32], t: Target, dy: &[i32], f: &mut Option<&mut FullSums<'_>>| {
            let i = t.index();
            if let Some(f) = f.as_deref_mut() {
                let (inp, out) = t.dims(c);
                project_params(f, &format!("b{l}.{}", t.name()), x, dy, out, inp);
            }
            project_backward(x, &s.u[i], dy, fz.w(l, t), ad[i].as_ref(), &mut sl[i])
        };
        let dact = back(&s.act, Target::Down, &dh, &mut full);
        let mut dx2 = match &block.gate {
            Some(_) => {
                let (dg, du): (Vec<i32>, Vec<i32>) = s
                    .gate
                    .iter()
                    .zip(&s.up)
                    .zip(&dact)
                    .map(|((&g, &u), &da)| swiglu_backward(g, u, da))
                    .unzip();
                let mut dx = back(&s.x2, Target::Gate, &dg, &mut full);
                add_grad(&mut dx, &back(&s.x2, Target::Up, &du, &mut full));
                dx
            }
            None => {
                let du: Vec<i32> =
                    s.up.iter()
                        .zip(&dact)
                        .map(|(&u, &da)| gelu_backward(u, da))
                        .collect();
                back(&s.x2, Target::Up, &du, &mut full)
            }
        };
        if let Some(f) = full.as_deref_mut() {
            norm_params(f, &format!("b{l}.mlp_norm"), &s.h_mid, &dx2, eps, center);
        }
        dx2 = norm_rows_backward(&s.h_mid, &dx2, &block.mlp_norm, eps, center, d);
        add_grad(&mut dh, &dx2);
        let d_o = back(&s.o, Target::O, &dh, &mut full);
        let mut dq = vec![0i32; t_len * qw];
        let mut dk_raw = vec![0i128; t_len * kw];
        let mut dv_raw = vec![0i128; t_len * kw];
        // The raw key and value sums of one kv head are kept per position, `hd` wide.
        let mut dkh = vec![0i128; t_len * hd];
        let mut dvh = vec![0i128; t_len * hd];
        for g in 0..c.kv_heads {
            dkh.iter_mut().for_each(|x| *x = 0);
            dvh.iter_mut().for_each(|x| *x = 0);
            for t in 0..t_len {
                for head in g * group..(g + 1) * group {
                    let off = t * qw + head * hd;
                    let hg = HeadGrad {
                        p: &s.probs[t * c.heads + head],
                        do_: &d_o[off..off + hd],
                        q: &s.q[off..off + hd],
                    };
                    let row = head_backward(
                        &hg,
                        |j| &s.k[(j * c.kv_heads + g) * hd..][..hd],
                        |j| &s.v[(j * c.kv_heads + g) * hd..][..hd],
                        scale,
                        &mut dkh,
                        &mut dvh,
                    );
                    dq[off..off + hd].copy_from_slice(&row);
                }
            }
            for t in 0..t_len {
                let dst = (t * c.kv_heads + g) * hd;
                dk_raw[dst..dst + hd].copy_from_slice(&dkh[t * hd..(t + 1) * hd]);
                dv_raw[dst..dst + hd].copy_from_slice(&dvh[t * hd..(t + 1) * hd]);
            }
        }
        let (mut dk, dv) = finish_kv(&dk_raw, &dv_raw);
        rotate(model, &mut [(&mut dq, qw), (&mut dk, kw)], rope_backward);
        let mut dx1 = back(&s.x1, Target::Q, &dq, &mut full);
        add_grad(&mut dx1, &back(&s.x1, Target::K, &dk, &mut full));
        add_grad(&mut dx1, &back(&s.x1, Target::V, &dv, &mut full));
        if let Some(f) = full.as_deref_mut() {
            norm_params(f, &format!("b{l}.attn_norm"), &s.h_in, &dx1, eps, center);
        }
        // The embeddings' signal is needed only when they are trained.
        if l > 0 || full.is_some() {
            let dx1 = norm_rows_backward(&s.h_in, &dx1, &block.attn_norm, eps, center, d);
            add_grad(&mut dh, &dx1);
        }
    }
    if let Some(f) = full {
        // `dh` is the signal of the embeddings' rows: `dE[token_t] += dh_t · 2^8`, and the
        // learned positions' `dP[t] += dh_t · 2^8` (Q32).
        let e = f.of("embed");
        for (t, row) in dh.chunks(d).enumerate() {
            let v = tokens[t] as usize;
            bias_grads(row, &mut e[v * d..(v + 1) * d]);
        }
        if let Some(p) = f.maybe("pos_embed") {
            bias_grads(&dh, &mut p[..t_len * d]);
        }
    }
    SeqGrad {
        loss,
        tokens: scored,
        sums,
    }
}
