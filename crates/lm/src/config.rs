//! The model description: one struct covers the Llama family (RMSNorm, rotary positions,
//! SwiGLU) and the GPT-2 family (LayerNorm, learned positions, GELU). It is read from a Hugging
//! Face `config.json` and checked against exact mode's bounds before any tensor is touched.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::LmError;
use crate::exact::ops::{EPS_MAX, MAX_HEAD_DIM, MAX_WIDTH};

/// The architectures `config.json`'s `model_type` may name.
pub const SUPPORTED: &[&str] = &["llama", "gpt2"];

/// A model family: which norm, positions and MLP the blocks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// RMSNorm, rotary position embedding, SwiGLU MLP, grouped-query attention.
    Llama,
    /// LayerNorm, learned position embedding, GELU (tanh form) MLP, biases.
    Gpt2,
}

/// Everything the engine needs to know about a model's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// The family.
    pub family: Family,
    /// Vocabulary size.
    pub vocab: usize,
    /// Width of the residual stream.
    pub hidden: usize,
    /// Number of transformer blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (`heads` is a multiple of it).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate: usize,
    /// Longest sequence (prompt and generated tokens).
    pub context: usize,
    /// The norms' epsilon.
    pub norm_eps: f64,
    /// Rotary base (Llama family).
    pub rope_theta: Option<f64>,
    /// The output head reuses the token embedding.
    pub tied: bool,
    /// The query, key and value projections have biases.
    pub qkv_bias: bool,
    /// The attention output projection has a bias.
    pub out_bias: bool,
    /// The MLP projections have biases.
    pub mlp_bias: bool,
}

fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| v.get(*n).filter(|x| !x.is_null()))
}

fn usize_field(v: &Value, names: &[&str]) -> Result<usize, LmError> {
    field(v, names)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .ok_or_else(|| LmError::Config(format!("config.json has no whole number `{}`", names[0])))
}

fn f64_field(v: &Value, names: &[&str], default: f64) -> Result<f64, LmError> {
    match field(v, names) {
        None => Ok(default),
        Some(x) => x.as_f64().ok_or_else(|| {
            LmError::Config(format!("config.json's `{}` is not a number", names[0]))
        }),
    }
}

fn bool_field(v: &Value, name: &str, default: bool) -> bool {
    v.get(name).and_then(Value::as_bool).unwrap_or(default)
}

fn require_str(v: &Value, name: &str, allowed: &[&str]) -> Result<(), LmError> {
    match v.get(name).and_then(Value::as_str) {
        Some(s) if allowed.contains(&s) => Ok(()),
        other => Err(LmError::Unsupported(format!(
            "`{name}` is {other:?}; exact mode implements {allowed:?}"
        ))),
    }
}

impl LmConfig {
    /// Reads a Hugging Face `config.json`.
    pub fn from_hf_json(text: &str) -> Result<Self, LmError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| LmError::Config(format!("config.json is not valid JSON: {e}")))?;
        let kind = v.get("model_type").and_then(Value::as_str).unwrap_or("");
        let config = match kind {
            "llama" => Self::llama(&v)?,
            "gpt2" => Self::gpt2(&v)?,
            other => {
                return Err(LmError::Unsupported(format!(
                    "model_type {other:?}; supported: {}",
                    SUPPORTED.join(", ")
                )));
            }
        };
        config.validate()?;
        Ok(config)
    }

    fn llama(v: &Value) -> Result<Self, LmError> {
        require_str(v, "hidden_act", &["silu"])?;
        let rope = v
            .get("rope_parameters")
            .or_else(|| v.get("rope_scaling"))
            .filter(|r| !r.is_null());
        if let Some(kind) = rope
            .and_then(|r| r.get("rope_type").or_else(|| r.get("type")))
            .and_then(Value::as_str)
            && kind != "default"
        {
            return Err(LmError::Unsupported(format!(
                "rope_type {kind:?}; exact mode implements the default rotary embedding"
            )));
        }
        let theta = rope
            .and_then(|r| r.get("rope_theta"))
            .and_then(Value::as_f64)
            .or_else(|| v.get("rope_theta").and_then(Value::as_f64))
            .unwrap_or(10_000.0);
        let hidden = usize_field(v, &["hidden_size"])?;
        let heads = usize_field(v, &["num_attention_heads"])?;
        let attn_bias = bool_field(v, "attention_bias", false);
        Ok(Self {
            family: Family::Llama,
            vocab: usize_field(v, &["vocab_size"])?,
            hidden,
            layers: usize_field(v, &["num_hidden_layers"])?,
            heads,
            kv_heads: usize_field(v, &["num_key_value_heads"]).unwrap_or(heads),
            head_dim: usize_field(v, &["head_dim"]).unwrap_or(hidden / heads.max(1)),
            intermediate: usize_field(v, &["intermediate_size"])?,
            context: usize_field(v, &["max_position_embeddings"])?,
            norm_eps: f64_field(v, &["rms_norm_eps"], 1e-6)?,
            rope_theta: Some(theta),
            tied: bool_field(v, "tie_word_embeddings", false),
            qkv_bias: attn_bias,
            out_bias: attn_bias,
            mlp_bias: bool_field(v, "mlp_bias", false),
        })
    }

    fn gpt2(v: &Value) -> Result<Self, LmError> {
        require_str(v, "activation_function", &["gelu_new", "gelu_pytorch_tanh"])?;
        for flag in ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"] {
            if bool_field(v, flag, false) {
                return Err(LmError::Unsupported(format!("GPT-2 with `{flag}`")));
            }
        }
        if !bool_field(v, "scale_attn_weights", true) {
            return Err(LmError::Unsupported(
                "GPT-2 without `scale_attn_weights`".into(),
            ));
        }
        let hidden = usize_field(v, &["n_embd", "hidden_size"])?;
        let heads = usize_field(v, &["n_head", "num_attention_heads"])?;
        Ok(Self {
            family: Family::Gpt2,
            vocab: usize_field(v, &["vocab_size"])?,
            hidden,
            layers: usize_field(v, &["n_layer", "num_hidden_layers"])?,
            heads,
            kv_heads: heads,
            head_dim: hidden / heads.max(1),
            intermediate: usize_field(v, &["n_inner"]).unwrap_or(4 * hidden),
            context: usize_field(v, &["n_positions", "max_position_embeddings"])?,
            norm_eps: f64_field(v, &["layer_norm_epsilon"], 1e-5)?,
            rope_theta: None,
            tied: bool_field(v, "tie_word_embeddings", true),
            qkv_bias: true,
            out_bias: true,
            mlp_bias: true,
        })
    }

    /// Checks the shape against exact mode's bounds (docs/exact-ops.md).
    pub fn validate(&self) -> Result<(), LmError> {
        let bad = |what: String| Err(LmError::Config(what));
        if self.vocab == 0
            || self.hidden == 0
            || self.layers == 0
            || self.heads == 0
            || self.kv_heads == 0
        {
            return bad("vocab, hidden size, layers and heads must all be at least 1".into());
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return bad(format!(
                "{} heads do not share {} key/value heads evenly",
                self.heads, self.kv_heads
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) || self.head_dim > MAX_HEAD_DIM {
            return bad(format!(
                "head dimension {} must be even and at most {MAX_HEAD_DIM}",
                self.head_dim
            ));
        }
        if self.family == Family::Gpt2 && self.heads * self.head_dim != self.hidden {
            return bad(format!(
                "{} heads of {} do not make hidden size {}",
                self.heads, self.head_dim, self.hidden
            ));
        }
        for (name, width) in [
            ("hidden size", self.hidden),
            ("attention width", self.heads * self.head_dim),
            ("intermediate size", self.intermediate),
            ("context", self.context),
        ] {
            if width == 0 || width > MAX_WIDTH {
                return bad(format!(
                    "{name} {width} is outside 1..={MAX_WIDTH}, exact mode's bound"
                ));
            }
        }
        let eps = self.norm_eps * (1u64 << 40) as f64;
        if !(0.0..EPS_MAX as f64).contains(&eps) {
            return bad(format!("norm epsilon {} is outside 0..2^-9", self.norm_eps));
        }
        match (self.family, self.rope_theta) {
            (Family::Llama, Some(t)) if t.is_finite() && t > 1.0 => Ok(()),
            (Family::Llama, t) => bad(format!("rotary base {t:?} must be a number above 1")),
            (Family::Gpt2, _) => Ok(()),
        }
    }

    /// The norms' epsilon in Q40, rounded half to even from its exact binary value.
    pub fn eps_q40(&self) -> i64 {
        (self.norm_eps * (1u64 << 40) as f64).round_ties_even() as i64
    }

    /// Width of the query projection (`heads × head_dim`).
    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Width of the key and value projections (`kv_heads × head_dim`).
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// The number of parameters.
    pub fn parameters(&self) -> usize {
        let (d, i) = (self.hidden, self.intermediate);
        let attn = d * (self.q_width() + 2 * self.kv_width()) + self.q_width() * d;
        let mlp = if self.family == Family::Llama {
            3 * d * i
        } else {
            2 * d * i
        };
        let norms = if self.family == Family::Llama {
            2 * d
        } else {
            4 * d
        };
        let biases = if self.family == Family::Gpt2 {
            self.q_width() + 2 * self.kv_width() + d + i + d
        } else {
            0
        };
        let embed = self.vocab * d * if self.tied { 1 } else { 2 };
        let pos = if self.family == Family::Gpt2 {
            self.context * d
        } else {
            0
        };
        embed + pos + self.layers * (attn + mlp + norms + biases) + norms / 2
    }
}
