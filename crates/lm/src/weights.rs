//! The exact model's tensors: weight matrices as 8- or 16-bit integers with one power-of-two
//! scale per output row, biases and norm parameters as fixed-point `i32` (docs/exact-ops.md).

use crate::config::{Family, LmConfig};
use crate::exact::ops::ROPE_BITS;
use crate::exact::rotary_table;

/// A weight matrix's integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QData {
    /// 8-bit weights, `|q| ≤ 127`.
    I8(Vec<i8>),
    /// 16-bit weights, `|q| ≤ 32767`.
    I16(Vec<i16>),
}

/// A `rows × cols` weight matrix (row `j` is output `j`, as in a Hugging Face `Linear`):
/// the real weight is `q[j][k] · 2^(−shift[j])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QMat {
    /// Output rows.
    pub rows: usize,
    /// Input columns.
    pub cols: usize,
    /// Per-row scale exponents.
    pub shift: Vec<i8>,
    /// Row-major values.
    pub data: QData,
    /// Its copy on a burn device ([`ExactModel::to_device`]), used by the products when set.
    pub device: crate::exact::device::OnDevice,
}

impl QMat {
    /// Value `(r, k)`.
    #[inline]
    pub fn value(&self, r: usize, k: usize) -> i64 {
        match &self.data {
            QData::I8(q) => i64::from(q[r * self.cols + k]),
            QData::I16(q) => i64::from(q[r * self.cols + k]),
        }
    }

    /// 8 or 16.
    pub fn bits(&self) -> u8 {
        match self.data {
            QData::I8(_) => 8,
            QData::I16(_) => 16,
        }
    }

    /// The real values, `q · 2^(−shift)`, exactly (every such value is an `f32`).
    pub fn to_f32(&self) -> Vec<f32> {
        (0..self.rows)
            .flat_map(|r| {
                let scale = (-f64::from(self.shift[r])).exp2();
                (0..self.cols).map(move |k| (self.value(r, k) as f64 * scale) as f32)
            })
            .collect()
    }

    /// Bytes of the values and scales.
    pub fn bytes(&self) -> usize {
        self.rows * self.cols * usize::from(self.bits() / 8) + self.rows
    }
}

/// A projection: weight and optional Q12 bias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linear {
    /// The weight.
    pub w: QMat,
    /// The bias, Q12.
    pub b: Option<Vec<i32>>,
}

/// A norm's parameters: γ in Q16, β (LayerNorm) in Q12.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Norm {
    /// Scale, Q16.
    pub gamma: Vec<i32>,
    /// Shift, Q12 (LayerNorm only).
    pub beta: Option<Vec<i32>>,
}

/// One transformer block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Norm before attention.
    pub attn_norm: Norm,
    /// Query projection.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Attention output projection.
    pub o: Linear,
    /// Norm before the MLP.
    pub mlp_norm: Norm,
    /// SwiGLU's gate (Llama family).
    pub gate: Option<Linear>,
    /// The MLP's first projection.
    pub up: Linear,
    /// The MLP's second projection.
    pub down: Linear,
}

/// The rotary table at Q16, `[position][pair]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotary {
    /// Cosines.
    pub cos: Vec<i32>,
    /// Sines.
    pub sin: Vec<i32>,
}

/// A language model in exact mode.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactModel {
    /// Its shape.
    pub config: LmConfig,
    /// Token embedding, `vocab × hidden` (also the output head when tied).
    pub embed: QMat,
    /// Learned positions, `context × hidden` (GPT-2 family).
    pub pos_embed: Option<QMat>,
    /// The blocks.
    pub blocks: Vec<Block>,
    /// The final norm.
    pub final_norm: Norm,
    /// The output head, `vocab × hidden`, when not tied.
    pub head: Option<QMat>,
    /// The rotary table (Llama family), derived from the config.
    pub rotary: Option<Rotary>,
    /// `tokenizer.json`, when the checkpoint had one.
    pub tokenizer: Option<Vec<u8>>,
    /// The checkpoint's `config.json`, the source of `config`.
    pub hf_config: String,
}

impl ExactModel {
    /// The rotary table the config defines (docs/exact-ops.md), or `None` for learned positions.
    pub fn rotary_for(config: &LmConfig) -> Result<Option<Rotary>, crate::LmError> {
        match (config.family, config.rope_theta) {
            (Family::Llama, Some(theta)) => {
                let (cos, sin) =
                    rotary_table(theta, config.head_dim / 2, config.context, ROPE_BITS)?;
                Ok(Some(Rotary { cos, sin }))
            }
            _ => Ok(None),
        }
    }

    /// A model from its tensors, each fetched by canonical name (see
    /// [`crate::checkpoint::canonical_shapes`]): the one place a model's structure is spelled
    /// out, for the quantizer and the stored-model reader alike. Only blocks `blocks` are
    /// fetched (a span server's share, [`ExactModel::span_from_bytes`]).
    pub(crate) fn assemble(
        config: LmConfig,
        blocks: std::ops::Range<usize>,
        hf_config: String,
        tokenizer: Option<Vec<u8>>,
        matrix: impl Fn(&str) -> Result<QMat, crate::LmError>,
        linear: impl Fn(&str) -> Result<Linear, crate::LmError>,
        norm: impl Fn(&str) -> Result<Norm, crate::LmError>,
    ) -> Result<Self, crate::LmError> {
        let llama = config.family == Family::Llama;
        let blocks = blocks
            .map(|l| {
                let p = |s: &str| format!("b{l}.{s}");
                Ok(Block {
                    attn_norm: norm(&p("attn_norm"))?,
                    q: linear(&p("q"))?,
                    k: linear(&p("k"))?,
                    v: linear(&p("v"))?,
                    o: linear(&p("o"))?,
                    mlp_norm: norm(&p("mlp_norm"))?,
                    gate: if llama {
                        Some(linear(&p("gate"))?)
                    } else {
                        None
                    },
                    up: linear(&p("up"))?,
                    down: linear(&p("down"))?,
                })
            })
            .collect::<Result<Vec<_>, crate::LmError>>()?;
        Ok(Self {
            embed: matrix("embed")?,
            pos_embed: if llama {
                None
            } else {
                Some(matrix("pos_embed")?)
            },
            head: if config.tied {
                None
            } else {
                Some(matrix("head")?)
            },
            final_norm: norm("final_norm")?,
            blocks,
            rotary: Self::rotary_for(&config)?,
            tokenizer,
            config,
            hf_config,
        })
    }

    /// Runs this model's matrix products on `device` (burn's flex on the CPU, or wgpu over
    /// Vulkan: `pedals_ml::exact::BurnOps::gpu()`'s device): uploads every projection and the
    /// head once. The results are bit for bit the CPU kernel's (`exact::device`).
    pub fn to_device(&mut self, device: &burn::tensor::Device) {
        let up = |w: &mut QMat| {
            w.device = crate::exact::device::OnDevice(Some(std::sync::Arc::new(
                crate::exact::device::upload(w, device),
            )));
        };
        for b in &mut self.blocks {
            for l in [
                &mut b.q,
                &mut b.k,
                &mut b.v,
                &mut b.o,
                &mut b.up,
                &mut b.down,
            ] {
                up(&mut l.w);
            }
            if let Some(g) = &mut b.gate {
                up(&mut g.w);
            }
        }
        match &mut self.head {
            Some(h) => up(h),
            None => up(&mut self.embed),
        }
    }

    /// The output head's matrix.
    pub fn head(&self) -> &QMat {
        self.head.as_ref().unwrap_or(&self.embed)
    }

    /// Bytes of the quantized weights (values, scales, biases and norms).
    pub fn weight_bytes(&self) -> usize {
        let lin = |l: &Linear| l.w.bytes() + l.b.as_ref().map_or(0, |b| 4 * b.len());
        let norm = |n: &Norm| 4 * n.gamma.len() + n.beta.as_ref().map_or(0, |b| 4 * b.len());
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| {
                norm(&b.attn_norm)
                    + norm(&b.mlp_norm)
                    + [&b.q, &b.k, &b.v, &b.o, &b.up, &b.down]
                        .into_iter()
                        .map(lin)
                        .sum::<usize>()
                    + b.gate.as_ref().map_or(0, lin)
            })
            .sum();
        self.embed.bytes()
            + self.pos_embed.as_ref().map_or(0, QMat::bytes)
            + self.head.as_ref().map_or(0, QMat::bytes)
            + norm(&self.final_norm)
            + blocks
    }
}
