//! Hugging Face checkpoints: a folder with `config.json`, `model.safetensors` (or shards listed
//! by `model.safetensors.index.json`) and optionally `tokenizer.json`, read into `f32` tensors
//! under this crate's own names and layouts, and written back the same way. Nothing is ever
//! downloaded: the user gives the folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::config::{Family, LmConfig};
use crate::error::LmError;

/// A float tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub data: Vec<f32>,
}

/// A model's float weights under canonical names (see [`canonical_shapes`]); every matrix is
/// `out × in`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its shape.
    pub config: LmConfig,
    /// The tensors.
    pub tensors: BTreeMap<String, Tensor>,
    /// `tokenizer.json`, if the folder had one.
    pub tokenizer: Option<Vec<u8>>,
    /// `config.json` as the folder had it (export writes it back).
    pub hf_config: String,
}

/// Every canonical tensor of a config with its shape: `embed`, `pos_embed` (GPT-2), `head`
/// (untied), `final_norm.{weight,bias}`, and per block `b<i>.` + `attn_norm.*`, `q.*`, `k.*`,
/// `v.*`, `o.*`, `mlp_norm.*`, `gate.*` (Llama), `up.*`, `down.*`.
pub fn canonical_shapes(c: &LmConfig) -> Vec<(String, Vec<usize>)> {
    let gpt2 = c.family == Family::Gpt2;
    let (d, i) = (c.hidden, c.intermediate);
    let mut out = vec![("embed".to_owned(), vec![c.vocab, d])];
    if gpt2 {
        out.push(("pos_embed".into(), vec![c.context, d]));
    }
    if !c.tied {
        out.push(("head".into(), vec![c.vocab, d]));
    }
    let norm = |out: &mut Vec<(String, Vec<usize>)>, name: String| {
        out.push((format!("{name}.weight"), vec![d]));
        if gpt2 {
            out.push((format!("{name}.bias"), vec![d]));
        }
    };
    let linear =
        |out: &mut Vec<(String, Vec<usize>)>, name: String, o: usize, inp: usize, bias: bool| {
            out.push((format!("{name}.weight"), vec![o, inp]));
            if bias {
                out.push((format!("{name}.bias"), vec![o]));
            }
        };
    for l in 0..c.layers {
        let p = format!("b{l}.");
        norm(&mut out, format!("{p}attn_norm"));
        linear(&mut out, format!("{p}q"), c.q_width(), d, c.qkv_bias);
        linear(&mut out, format!("{p}k"), c.kv_width(), d, c.qkv_bias);
        linear(&mut out, format!("{p}v"), c.kv_width(), d, c.qkv_bias);
        linear(&mut out, format!("{p}o"), d, c.q_width(), c.out_bias);
        norm(&mut out, format!("{p}mlp_norm"));
        if !gpt2 {
            linear(&mut out, format!("{p}gate"), i, d, c.mlp_bias);
        }
        linear(&mut out, format!("{p}up"), i, d, c.mlp_bias);
        linear(&mut out, format!("{p}down"), d, i, c.mlp_bias);
    }
    norm(&mut out, "final_norm".into());
    out
}

fn read(path: &Path) -> Result<Vec<u8>, LmError> {
    std::fs::read(path).map_err(|e| LmError::io(path, e))
}

fn to_f32(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>, LmError> {
    let out: Vec<f32> = match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(LmError::tensor(
                name,
                format!("dtype {other:?}; expected F32, F16 or BF16"),
            ));
        }
    };
    if let Some(bad) = out.iter().find(|v| !v.is_finite()) {
        return Err(LmError::tensor(
            name,
            format!("holds {bad}; a checkpoint with NaN or infinite weights cannot be quantized"),
        ));
    }
    Ok(out)
}

/// The raw tensors of every weights file of a folder, by their Hugging Face names.
fn read_hf_tensors(dir: &Path) -> Result<BTreeMap<String, Tensor>, LmError> {
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<String> = if index.exists() {
        let v: serde_json::Value =
            serde_json::from_slice(&read(&index)?).map_err(|e| LmError::Checkpoint {
                path: index.clone(),
                reason: format!("not JSON: {e}"),
            })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| LmError::Checkpoint {
                path: index.clone(),
                reason: "no `weight_map`".into(),
            })?;
        map.values()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    } else {
        vec!["model.safetensors".into()]
    };
    let mut tensors = BTreeMap::new();
    for file in files {
        let path = dir.join(&file);
        if file.contains('/') || file.contains("..") {
            return Err(LmError::Checkpoint {
                path,
                reason: "a shard name outside the folder".into(),
            });
        }
        let bytes = read(&path)?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| LmError::Checkpoint {
            path: path.clone(),
            reason: format!("not a valid safetensors file ({e})"),
        })?;
        for (name, view) in st.tensors() {
            let data = to_f32(&name, view.dtype(), view.data())?;
            tensors.insert(
                name,
                Tensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
    }
    Ok(tensors)
}

/// Hugging Face buffers that are not weights.
fn ignorable(name: &str) -> bool {
    name.ends_with(".attn.bias")
        || name.ends_with(".attn.masked_bias")
        || name.ends_with("rotary_emb.inv_freq")
}

pub(crate) fn transpose(t: &Tensor) -> Tensor {
    let (r, c) = (t.shape[0], t.shape[1]);
    let mut data = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            data[j * r + i] = t.data[i * c + j];
        }
    }
    Tensor {
        shape: vec![c, r],
        data,
    }
}

/// Hugging Face name → (canonical name, transposed) for everything but GPT-2's fused `c_attn`.
fn hf_to_canonical(family: Family, name: &str) -> Option<(String, bool)> {
    let simple = |s: &str| Some((s.to_owned(), false));
    match family {
        Family::Llama => {
            let n = name.strip_prefix("model.").unwrap_or(name);
            match n {
                "embed_tokens.weight" => simple("embed"),
                "norm.weight" => simple("final_norm.weight"),
                "lm_head.weight" => simple("head"),
                _ => {
                    let rest = n.strip_prefix("layers.")?;
                    let (l, tail) = rest.split_once('.')?;
                    let part = match tail.rsplit_once('.')? {
                        ("input_layernorm", w) => format!("attn_norm.{w}"),
                        ("post_attention_layernorm", w) => format!("mlp_norm.{w}"),
                        (proj, w) => {
                            let short = match proj {
                                "self_attn.q_proj" => "q",
                                "self_attn.k_proj" => "k",
                                "self_attn.v_proj" => "v",
                                "self_attn.o_proj" => "o",
                                "mlp.gate_proj" => "gate",
                                "mlp.up_proj" => "up",
                                "mlp.down_proj" => "down",
                                _ => return None,
                            };
                            format!("{short}.{w}")
                        }
                    };
                    Some((format!("b{l}.{part}"), false))
                }
            }
        }
        Family::Gpt2 => {
            let n = name.strip_prefix("transformer.").unwrap_or(name);
            match n {
                "wte.weight" => simple("embed"),
                "wpe.weight" => simple("pos_embed"),
                "ln_f.weight" => simple("final_norm.weight"),
                "ln_f.bias" => simple("final_norm.bias"),
                "lm_head.weight" => simple("head"),
                _ => {
                    let rest = n.strip_prefix("h.")?;
                    let (l, tail) = rest.split_once('.')?;
                    let (part, transposed) = match tail {
                        "ln_1.weight" | "ln_1.bias" => (format!("attn_norm.{}", &tail[5..]), false),
                        "ln_2.weight" | "ln_2.bias" => (format!("mlp_norm.{}", &tail[5..]), false),
                        "attn.c_proj.weight" => ("o.weight".into(), true),
                        "attn.c_proj.bias" => ("o.bias".into(), false),
                        "mlp.c_fc.weight" => ("up.weight".into(), true),
                        "mlp.c_fc.bias" => ("up.bias".into(), false),
                        "mlp.c_proj.weight" => ("down.weight".into(), true),
                        "mlp.c_proj.bias" => ("down.bias".into(), false),
                        _ => return None,
                    };
                    Some((format!("b{l}.{part}"), transposed))
                }
            }
        }
    }
}

/// GPT-2's fused `c_attn` (`in × 3·out` weight, `3·out` bias) split into `q`, `k`, `v`.
fn split_c_attn(
    name: &str,
    t: &Tensor,
    layer: &str,
    out: &mut BTreeMap<String, Tensor>,
) -> Result<(), LmError> {
    let weight = name.ends_with("weight");
    let t = if weight { transpose(t) } else { t.clone() };
    let rows = t.shape[0];
    if rows % 3 != 0 {
        return Err(LmError::tensor(
            name,
            format!("{rows} outputs do not split into query, key and value"),
        ));
    }
    let (third, row) = (rows / 3, t.data.len() / rows);
    for (i, part) in ["q", "k", "v"].iter().enumerate() {
        let mut shape = t.shape.clone();
        shape[0] = third;
        let data = t.data[i * third * row..(i + 1) * third * row].to_vec();
        let suffix = if weight { "weight" } else { "bias" };
        out.insert(format!("b{layer}.{part}.{suffix}"), Tensor { shape, data });
    }
    Ok(())
}

impl Checkpoint {
    /// Reads a Hugging Face checkpoint folder.
    pub fn load_hf(dir: &Path) -> Result<Self, LmError> {
        let config_path = dir.join("config.json");
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| LmError::io(&config_path, e))?;
        let config = LmConfig::from_hf_json(&text)?;
        let hf_config = text.clone();
        let raw = read_hf_tensors(dir)?;
        let mut tensors = BTreeMap::new();
        for (name, t) in &raw {
            if ignorable(name) {
                continue;
            }
            let bare = name.strip_prefix("transformer.").unwrap_or(name);
            if config.family == Family::Gpt2
                && let Some(rest) = bare.strip_prefix("h.")
                && let Some((layer, tail)) = rest.split_once('.')
                && tail.starts_with("attn.c_attn.")
            {
                split_c_attn(name, t, layer, &mut tensors)?;
                continue;
            }
            let (canonical, transposed) = hf_to_canonical(config.family, name).ok_or_else(|| {
                LmError::tensor(name, format!("is not part of a {:?}-family model; is config.json's model_type right?", config.family))
            })?;
            if transposed && t.shape.len() != 2 {
                return Err(LmError::tensor(
                    name,
                    format!("shape {:?} is not a matrix", t.shape),
                ));
            }
            tensors.insert(canonical, if transposed { transpose(t) } else { t.clone() });
        }
        if config.tied {
            tensors.remove("head");
        }
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = tokenizer_path
            .exists()
            .then(|| read(&tokenizer_path))
            .transpose()?;
        let checkpoint = Self {
            config,
            tensors,
            tokenizer,
            hf_config,
        };
        checkpoint.check_shapes()?;
        Ok(checkpoint)
    }

    /// Every canonical tensor is present with its shape, and nothing else.
    pub fn check_shapes(&self) -> Result<(), LmError> {
        let expected = canonical_shapes(&self.config);
        for (name, shape) in &expected {
            let t = self
                .tensors
                .get(name)
                .ok_or_else(|| LmError::tensor(name, "is missing from the checkpoint"))?;
            if &t.shape != shape || t.data.len() != shape.iter().product::<usize>() {
                return Err(LmError::tensor(
                    name,
                    format!("has shape {:?}; config.json implies {shape:?}", t.shape),
                ));
            }
        }
        if let Some(extra) = self
            .tensors
            .keys()
            .find(|k| !expected.iter().any(|(n, _)| n == *k))
        {
            return Err(LmError::tensor(extra, "is not expected by config.json"));
        }
        Ok(())
    }

    /// A tensor's values.
    pub fn get(&self, name: &str) -> Result<&Tensor, LmError> {
        self.tensors
            .get(name)
            .ok_or_else(|| LmError::tensor(name, "is missing from the checkpoint"))
    }
}

/// The Hugging Face name (and layout) of every canonical tensor, for export.
pub(crate) fn canonical_to_hf(family: Family, name: &str) -> (String, bool) {
    let (block, part) = match name.strip_prefix('b').and_then(|r| r.split_once('.')) {
        Some((l, p)) if l.chars().all(|c| c.is_ascii_digit()) => (Some(l), p),
        _ => (None, name),
    };
    let plain = |s: String| (s, false);
    match (family, block) {
        (Family::Llama, None) => plain(match part {
            "embed" => "model.embed_tokens.weight".into(),
            "head" => "lm_head.weight".into(),
            _ => "model.norm.weight".into(),
        }),
        (Family::Llama, Some(l)) => {
            let (p, w) = part.split_once('.').unwrap_or((part, "weight"));
            let hf = match p {
                "attn_norm" => "input_layernorm".to_owned(),
                "mlp_norm" => "post_attention_layernorm".into(),
                "gate" | "up" | "down" => format!("mlp.{p}_proj"),
                _ => format!("self_attn.{p}_proj"),
            };
            plain(format!("model.layers.{l}.{hf}.{w}"))
        }
        (Family::Gpt2, None) => plain(match part {
            "embed" => "transformer.wte.weight".into(),
            "pos_embed" => "transformer.wpe.weight".into(),
            "head" => "lm_head.weight".into(),
            p => format!(
                "transformer.ln_f.{}",
                p.rsplit('.').next().unwrap_or("weight")
            ),
        }),
        (Family::Gpt2, Some(l)) => {
            let (p, w) = part.split_once('.').unwrap_or((part, "weight"));
            let (hf, transposed) = match p {
                "attn_norm" => ("ln_1", false),
                "mlp_norm" => ("ln_2", false),
                "o" => ("attn.c_proj", w == "weight"),
                "up" => ("mlp.c_fc", w == "weight"),
                "down" => ("mlp.c_proj", w == "weight"),
                _ => ("attn.c_attn", w == "weight"),
            };
            (format!("transformer.h.{l}.{hf}.{w}"), transposed)
        }
    }
}
