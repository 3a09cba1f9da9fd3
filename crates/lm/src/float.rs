//! Float mode: the same models in `f32`, computed the way Hugging Face `transformers` computes
//! them (norms, rotary angles and softmax in `f32`), for users who accept tolerance-checked
//! results and as the accuracy reference of exact mode.

use crate::checkpoint::Checkpoint;
use crate::config::Family;
use crate::error::LmError;

fn linear(x: &[f32], w: &[f32], b: Option<&[f32]>, inp: usize, out: usize) -> Vec<f32> {
    let mut y = vec![0f32; x.len() / inp * out];
    for (xr, yr) in x.chunks(inp).zip(y.chunks_mut(out)) {
        for (j, v) in yr.iter_mut().enumerate() {
            let row = &w[j * inp..(j + 1) * inp];
            *v = xr.iter().zip(row).map(|(a, b)| a * b).sum::<f32>() + b.map_or(0.0, |b| b[j]);
        }
    }
    y
}

fn norm(x: &[f32], gamma: &[f32], beta: Option<&[f32]>, eps: f32, center: bool) -> Vec<f32> {
    let d = gamma.len();
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(d) {
        let mean = if center {
            row.iter().sum::<f32>() / d as f32
        } else {
            0.0
        };
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let inv = 1.0 / (var + eps).sqrt();
        out.extend(
            row.iter()
                .enumerate()
                .map(|(k, v)| (v - mean) * inv * gamma[k] + beta.map_or(0.0, |b| b[k])),
        );
    }
    out
}

fn gelu_tanh(x: f32) -> f32 {
    let c = (2.0f32 / std::f32::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// A checkpoint run in `f32`.
pub struct FloatModel<'a> {
    ck: &'a Checkpoint,
}

impl<'a> FloatModel<'a> {
    /// Float mode over a checkpoint's weights.
    pub fn new(ck: &'a Checkpoint) -> Self {
        Self { ck }
    }

    fn t(&self, name: &str) -> &'a [f32] {
        // Checkpoint::check_shapes ran when it was made, so every canonical tensor is there.
        self.ck.tensors.get(name).map_or(&[], |t| &t.data[..])
    }

    fn opt(&self, name: &str) -> Option<&'a [f32]> {
        self.ck.tensors.get(name).map(|t| &t.data[..])
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.ck.config.vocab
    }

    /// The logits of every position of `tokens` (`tokens.len() × vocab`), no cache.
    pub fn forward(&self, tokens: &[u32]) -> Result<Vec<f32>, LmError> {
        let c = &self.ck.config;
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= c.vocab) {
            return Err(LmError::Token { id, vocab: c.vocab });
        }
        if tokens.len() > c.context {
            return Err(LmError::TooLong {
                tokens: tokens.len(),
                context: c.context,
            });
        }
        let (d, n, hd) = (c.hidden, tokens.len(), c.head_dim);
        let gpt2 = c.family == Family::Gpt2;
        let eps = c.norm_eps as f32;
        let embed = self.t("embed");
        let mut h: Vec<f32> = Vec::with_capacity(n * d);
        for (p, &tok) in tokens.iter().enumerate() {
            let row = &embed[tok as usize * d..(tok as usize + 1) * d];
            match self.opt("pos_embed") {
                Some(pe) => h.extend(row.iter().zip(&pe[p * d..(p + 1) * d]).map(|(a, b)| a + b)),
                None => h.extend_from_slice(row),
            }
        }
        let rope = c.rope_theta.map(|theta| {
            let half = hd / 2;
            let inv: Vec<f32> = (0..half)
                .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / hd as f32))
                .collect();
            let angle = |p: usize, i: usize| p as f32 * inv[i];
            let cos: Vec<f32> = (0..n)
                .flat_map(|p| (0..half).map(move |i| angle(p, i).cos()))
                .collect();
            let sin: Vec<f32> = (0..n)
                .flat_map(|p| (0..half).map(move |i| angle(p, i).sin()))
                .collect();
            (cos, sin)
        });
        let scale = 1.0 / (hd as f32).sqrt();
        let group = c.heads / c.kv_heads;
        for l in 0..c.layers {
            let p = |s: &str| format!("b{l}.{s}");
            let lin = |x: &[f32], name: &str, inp: usize, out: usize| {
                linear(
                    x,
                    self.t(&p(&format!("{name}.weight"))),
                    self.opt(&p(&format!("{name}.bias"))),
                    inp,
                    out,
                )
            };
            let x = norm(
                &h,
                self.t(&p("attn_norm.weight")),
                self.opt(&p("attn_norm.bias")),
                eps,
                gpt2,
            );
            let mut q = lin(&x, "q", d, c.q_width());
            let mut k = lin(&x, "k", d, c.kv_width());
            let v = lin(&x, "v", d, c.kv_width());
            if let Some((cos, sin)) = &rope {
                let half = hd / 2;
                for (width, m) in [(c.q_width(), &mut q), (c.kv_width(), &mut k)] {
                    for (pos, row) in m.chunks_mut(width).enumerate() {
                        for head in row.chunks_mut(hd) {
                            for i in 0..half {
                                let (a, b) = (head[i], head[i + half]);
                                let (co, si) = (cos[pos * half + i], sin[pos * half + i]);
                                head[i] = a * co - b * si;
                                head[i + half] = b * co + a * si;
                            }
                        }
                    }
                }
            }
            let mut o = vec![0f32; n * c.q_width()];
            for t in 0..n {
                for head in 0..c.heads {
                    let g = head / group;
                    let qh = &q[t * c.q_width() + head * hd..][..hd];
                    let scores: Vec<f32> = (0..=t)
                        .map(|j| {
                            qh.iter()
                                .zip(&k[j * c.kv_width() + g * hd..][..hd])
                                .map(|(a, b)| a * b)
                                .sum::<f32>()
                                * scale
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f32 = e.iter().sum();
                    let out = &mut o[t * c.q_width() + head * hd..][..hd];
                    for (j, w) in e.iter().enumerate() {
                        for (x, vv) in out.iter_mut().zip(&v[j * c.kv_width() + g * hd..][..hd]) {
                            *x += w / total * vv;
                        }
                    }
                }
            }
            let a = lin(&o, "o", c.q_width(), d);
            h.iter_mut().zip(&a).for_each(|(x, y)| *x += y);
            let x = norm(
                &h,
                self.t(&p("mlp_norm.weight")),
                self.opt(&p("mlp_norm.bias")),
                eps,
                gpt2,
            );
            let up = lin(&x, "up", d, c.intermediate);
            let act: Vec<f32> = if gpt2 {
                up.iter().map(|&u| gelu_tanh(u)).collect()
            } else {
                lin(&x, "gate", d, c.intermediate)
                    .iter()
                    .zip(&up)
                    .map(|(&g, &u)| silu(g) * u)
                    .collect()
            };
            let m = lin(&act, "down", c.intermediate, d);
            h.iter_mut().zip(&m).for_each(|(x, y)| *x += y);
        }
        let x = norm(
            &h,
            self.t("final_norm.weight"),
            self.opt("final_norm.bias"),
            eps,
            gpt2,
        );
        let head = self.opt("head").unwrap_or(embed);
        Ok(linear(&x, head, None, d, c.vocab))
    }
}
