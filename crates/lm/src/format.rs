//! The stored form of an exact model, the bytes its CID names: one safetensors file holding
//! every weight matrix (`I8` or `I16`, `rows × cols`) with its per-row shifts (`<name>.shift`,
//! `I8`), biases and norm parameters (`I32`), the checkpoint's `config.json` and, when there is
//! one, its `tokenizer.json` (both `U8`). Tensor order and the header are fixed by the
//! safetensors format, so the same model always gives the same bytes. Loading checks every
//! tensor's dtype and shape against the config before anything is used.

use std::collections::HashMap;

use cid::Cid;
use safetensors::{Dtype, SafeTensors, View};

use crate::checkpoint::canonical_shapes;
use crate::config::LmConfig;
use crate::error::LmError;
use crate::exact::ops::{ACT_MAX, GAMMA_MAX};
use crate::quantize::{SHIFT_MAX, SHIFT_MIN};
use crate::weights::{ExactModel, Linear, Norm, QData, QMat};

/// The `format` the metadata names.
pub const FORMAT: &str = "pedals.lm/1";

/// Every matrix and every `i32` vector of a model under its canonical name.
pub(crate) type Parts<'a> = (Vec<(String, &'a QMat)>, Vec<(String, &'a [i32])>);

/// A tensor's dtype, shape and little-endian bytes, as safetensors serializes them.
pub(crate) struct Raw {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn i32s(v: &[i32]) -> Raw {
    Raw {
        dtype: Dtype::I32,
        shape: vec![v.len()],
        bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn push_matrix(out: &mut Vec<(String, Raw)>, name: &str, m: &QMat) {
    let (dtype, bytes) = match &m.data {
        QData::I8(q) => (Dtype::I8, q.iter().map(|&v| v as u8).collect()),
        QData::I16(q) => (Dtype::I16, q.iter().flat_map(|v| v.to_le_bytes()).collect()),
    };
    out.push((
        name.to_owned(),
        Raw {
            dtype,
            shape: vec![m.rows, m.cols],
            bytes,
        },
    ));
    let shift = m.shift.iter().map(|&v| v as u8).collect();
    out.push((
        format!("{name}.shift"),
        Raw {
            dtype: Dtype::I8,
            shape: vec![m.rows],
            bytes: shift,
        },
    ));
}

impl ExactModel {
    /// Visits every tensor under its canonical name: matrices, then `i32` vectors.
    pub(crate) fn parts(&self) -> Parts<'_> {
        let mut mats = vec![("embed".to_owned(), &self.embed)];
        let mut vecs: Vec<(String, &[i32])> = Vec::new();
        if let Some(p) = &self.pos_embed {
            mats.push(("pos_embed".into(), p));
        }
        if let Some(h) = &self.head {
            mats.push(("head".into(), h));
        }
        let mut norms: Vec<(String, &Norm)> = vec![("final_norm".into(), &self.final_norm)];
        let mut lins: Vec<(String, &Linear)> = Vec::new();
        for (l, b) in self.blocks.iter().enumerate() {
            norms.push((format!("b{l}.attn_norm"), &b.attn_norm));
            norms.push((format!("b{l}.mlp_norm"), &b.mlp_norm));
            for (part, lin) in [
                ("q", &b.q),
                ("k", &b.k),
                ("v", &b.v),
                ("o", &b.o),
                ("up", &b.up),
                ("down", &b.down),
            ] {
                lins.push((format!("b{l}.{part}"), lin));
            }
            if let Some(g) = &b.gate {
                lins.push((format!("b{l}.gate"), g));
            }
        }
        for (name, n) in norms {
            vecs.push((format!("{name}.weight"), &n.gamma));
            if let Some(beta) = &n.beta {
                vecs.push((format!("{name}.bias"), beta));
            }
        }
        for (name, lin) in lins {
            mats.push((format!("{name}.weight"), &lin.w));
            if let Some(b) = &lin.b {
                vecs.push((format!("{name}.bias"), b));
            }
        }
        (mats, vecs)
    }

    /// The stored bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LmError> {
        let (mats, vecs) = self.parts();
        let mut raws: Vec<(String, Raw)> = Vec::new();
        for (name, m) in mats {
            push_matrix(&mut raws, &name, m);
        }
        for (name, v) in vecs {
            raws.push((name, i32s(v)));
        }
        let blob = |b: &[u8]| Raw {
            dtype: Dtype::U8,
            shape: vec![b.len()],
            bytes: b.to_vec(),
        };
        raws.push(("config.json".into(), blob(self.hf_config.as_bytes())));
        if let Some(t) = &self.tokenizer {
            raws.push(("tokenizer.json".into(), blob(t)));
        }
        let meta = HashMap::from([("format".to_owned(), FORMAT.to_owned())]);
        let views: Vec<(&str, &Raw)> = raws.iter().map(|(n, r)| (n.as_str(), r)).collect();
        safetensors::serialize(views, Some(meta)).map_err(|e| LmError::Format(e.to_string()))
    }

    /// The CID of the stored bytes.
    pub fn cid(&self) -> Result<Cid, LmError> {
        Ok(pedals_core::cid_of(&self.to_bytes()?))
    }

    /// Reads stored bytes, checking every tensor against the config they carry.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LmError> {
        Self::decode(bytes, None)
    }

    /// Reads only blocks `span` of stored bytes (and the config, the tokenizer and the final
    /// norm), checking them as [`ExactModel::from_bytes`] does: what a span server keeps in
    /// memory. The embeddings and the head are left empty, and block `i` of the result is
    /// block `span.start + i` of the model.
    pub fn span_from_bytes(bytes: &[u8], span: std::ops::Range<usize>) -> Result<Self, LmError> {
        Self::decode(bytes, Some(span))
    }

    /// The config of stored bytes, without decoding any weight.
    pub fn stored_config(bytes: &[u8]) -> Result<LmConfig, LmError> {
        let st = open(bytes)?;
        LmConfig::from_hf_json(&hf_config(&st)?)
    }

    fn decode(bytes: &[u8], span: Option<std::ops::Range<usize>>) -> Result<Self, LmError> {
        let bad = |m: String| LmError::Format(m);
        let st = open(bytes)?;
        let blob = |name: &str| -> Result<Option<Vec<u8>>, LmError> {
            match st.tensor(name) {
                Ok(t) if t.dtype() == Dtype::U8 => Ok(Some(t.data().to_vec())),
                Ok(_) => Err(bad(format!("`{name}` is not bytes"))),
                Err(_) => Ok(None),
            }
        };
        let hf_config = hf_config(&st)?;
        let config = LmConfig::from_hf_json(&hf_config)?;
        let layers = config.layers;
        let blocks = match span {
            Some(s) if s.is_empty() || s.end > layers => {
                return Err(LmError::Config(format!(
                    "blocks {s:?} are not a span of this model's {layers} blocks (give blocks \
                     within 0..{layers})"
                )));
            }
            Some(s) => s,
            None => 0..layers,
        };
        let partial = blocks != (0..layers);
        let shapes: HashMap<String, Vec<usize>> = canonical_shapes(&config).into_iter().collect();
        let matrix = |name: &str| -> Result<QMat, LmError> {
            let t = st
                .tensor(name)
                .map_err(|_| bad(format!("`{name}` is missing")))?;
            if partial && !name.starts_with('b') {
                // A span's model: the embeddings and the head are not kept.
                let data = match t.dtype() {
                    Dtype::I16 => QData::I16(Vec::new()),
                    _ => QData::I8(Vec::new()),
                };
                return Ok(QMat {
                    rows: 0,
                    cols: 0,
                    shift: Vec::new(),
                    data,
                    device: Default::default(),
                });
            }
            let s = st
                .tensor(&format!("{name}.shift"))
                .map_err(|_| bad(format!("`{name}.shift` is missing")))?;
            let want = &shapes[name];
            if t.shape() != &want[..] || s.shape() != [want[0]] || s.dtype() != Dtype::I8 {
                return Err(bad(format!(
                    "`{name}` has shape {:?}; the config implies {want:?}",
                    t.shape()
                )));
            }
            let data = match t.dtype() {
                Dtype::I8 => QData::I8(t.data().iter().map(|&b| b as i8).collect()),
                Dtype::I16 => QData::I16(
                    t.data()
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect(),
                ),
                other => return Err(bad(format!("`{name}` is {other:?}, not I8 or I16"))),
            };
            let shift = s.data().iter().map(|&b| b as i8).collect();
            Ok(QMat {
                rows: want[0],
                cols: want[1],
                shift,
                data,
                device: Default::default(),
            })
        };
        let vector = |name: &str| -> Result<Option<Vec<i32>>, LmError> {
            let Ok(t) = st.tensor(name) else {
                return if shapes.contains_key(name) {
                    Err(bad(format!("`{name}` is missing")))
                } else {
                    Ok(None)
                };
            };
            if t.dtype() != Dtype::I32 || Some(&t.shape().to_vec()) != shapes.get(name) {
                return Err(bad(format!("`{name}` is {:?} {:?}", t.dtype(), t.shape())));
            }
            Ok(Some(
                t.data()
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ))
        };
        let norm = |name: &str| -> Result<Norm, LmError> {
            let gamma = vector(&format!("{name}.weight"))?
                .ok_or_else(|| bad(format!("`{name}.weight` is missing")))?;
            Ok(Norm {
                gamma,
                beta: vector(&format!("{name}.bias"))?,
            })
        };
        let linear = |name: &str| -> Result<Linear, LmError> {
            Ok(Linear {
                w: matrix(&format!("{name}.weight"))?,
                b: vector(&format!("{name}.bias"))?,
            })
        };
        let tokenizer = blob("tokenizer.json")?;
        let model = Self::assemble(config, blocks, hf_config, tokenizer, matrix, linear, norm)?;
        model.check_ranges()?;
        Ok(model)
    }

    /// Every value is inside its exact format (docs/exact-ops.md): what the quantizer makes.
    fn check_ranges(&self) -> Result<(), LmError> {
        let (mats, vecs) = self.parts();
        let bits = self.embed.bits();
        for (name, m) in mats {
            let qmax = (1i64 << (m.bits() - 1)) - 1;
            if m.bits() != bits {
                return Err(LmError::Format(format!(
                    "`{name}` has {}-bit weights, the model {bits}",
                    m.bits()
                )));
            }
            if m.shift
                .iter()
                .any(|&s| !(SHIFT_MIN..=SHIFT_MAX).contains(&i32::from(s)))
            {
                return Err(LmError::Format(format!(
                    "`{name}` has a shift outside {SHIFT_MIN}..={SHIFT_MAX}"
                )));
            }
            if (0..m.rows).any(|r| (0..m.cols).any(|k| m.value(r, k).abs() > qmax)) {
                return Err(LmError::Format(format!(
                    "`{name}` has a value beyond ±{qmax}"
                )));
            }
        }
        for (name, v) in vecs {
            let max = if name.ends_with("norm.weight") {
                GAMMA_MAX
            } else {
                ACT_MAX
            };
            if v.iter().any(|&x| i64::from(x).abs() > max) {
                return Err(LmError::Format(format!(
                    "`{name}` has a value beyond ±{max}"
                )));
            }
        }
        Ok(())
    }

    /// Bits per weight (8 or 16).
    pub fn bits(&self) -> u8 {
        self.embed.bits()
    }
}

fn open(bytes: &[u8]) -> Result<SafeTensors<'_>, LmError> {
    let bad = |m: String| LmError::Format(m);
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a stored model ({e})")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let format = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format").cloned());
    if format.as_deref() != Some(FORMAT) {
        return Err(bad(format!("format {format:?}, expected {FORMAT:?}")));
    }
    Ok(st)
}

fn hf_config(st: &SafeTensors<'_>) -> Result<String, LmError> {
    let bad = |m: &str| LmError::Format(m.to_owned());
    let t = st
        .tensor("config.json")
        .map_err(|_| bad("no config.json"))?;
    if t.dtype() != Dtype::U8 {
        return Err(bad("`config.json` is not bytes"));
    }
    String::from_utf8(t.data().to_vec()).map_err(|_| bad("config.json is not UTF-8"))
}
