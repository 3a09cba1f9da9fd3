//! Export: an exact model back to a Hugging Face checkpoint folder (`config.json`,
//! `model.safetensors` in `f32` under the original names and layouts, `tokenizer.json`). Every
//! exact value is an `f32` exactly, so importing the export gives the same exact model (and CID).

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::Dtype;

use crate::checkpoint::{Checkpoint, Tensor, canonical_shapes, canonical_to_hf};
use crate::config::Family;
use crate::error::LmError;
use crate::format::Raw;
use crate::weights::ExactModel;

impl ExactModel {
    /// The real values of every tensor, as a float checkpoint.
    pub fn to_checkpoint(&self) -> Checkpoint {
        let (mats, vecs) = self.parts();
        let mut tensors = BTreeMap::new();
        for (name, m) in mats {
            tensors.insert(
                name,
                Tensor {
                    shape: vec![m.rows, m.cols],
                    data: m.to_f32(),
                },
            );
        }
        for (name, v) in vecs {
            let frac = if name.ends_with("norm.weight") {
                16
            } else {
                12
            };
            let scale = (-f64::from(frac)).exp2();
            let data = v.iter().map(|&x| (f64::from(x) * scale) as f32).collect();
            tensors.insert(
                name,
                Tensor {
                    shape: vec![v.len()],
                    data,
                },
            );
        }
        Checkpoint {
            config: self.config.clone(),
            tensors,
            tokenizer: self.tokenizer.clone(),
            hf_config: self.hf_config.clone(),
        }
    }
}

pub(crate) fn f32s(t: &Tensor) -> Raw {
    let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    Raw {
        dtype: Dtype::F32,
        shape: t.shape.clone(),
        bytes,
    }
}

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), LmError> {
    std::fs::write(path, bytes).map_err(|e| LmError::io(path, e))
}

impl Checkpoint {
    /// Writes a Hugging Face checkpoint folder (created if missing; its three files are
    /// replaced).
    pub fn save_hf(&self, dir: &Path) -> Result<(), LmError> {
        std::fs::create_dir_all(dir).map_err(|e| LmError::io(dir, e))?;
        let family = self.config.family;
        let mut out: BTreeMap<String, Raw> = BTreeMap::new();
        let mut fused: BTreeMap<String, Vec<Tensor>> = BTreeMap::new();
        for (name, _) in canonical_shapes(&self.config) {
            let t = self.get(&name)?;
            let (hf, transposed) = canonical_to_hf(family, &name);
            let t = if transposed {
                crate::checkpoint::transpose(t)
            } else {
                t.clone()
            };
            if family == Family::Gpt2 && hf.contains(".attn.c_attn.") {
                fused.entry(hf).or_default().push(t);
            } else {
                out.insert(hf, f32s(&t));
            }
        }
        // GPT-2's c_attn: q, k, v side by side along the output axis (the last, after the
        // transpose for the weight).
        for (hf, parts) in fused {
            let shape0 = &parts[0].shape;
            let t = if shape0.len() == 2 {
                let (rows, cols) = (shape0[0], shape0[1]);
                let mut data = Vec::with_capacity(rows * cols * 3);
                for r in 0..rows {
                    for p in &parts {
                        data.extend_from_slice(&p.data[r * cols..(r + 1) * cols]);
                    }
                }
                Tensor {
                    shape: vec![rows, cols * 3],
                    data,
                }
            } else {
                Tensor {
                    shape: vec![shape0[0] * 3],
                    data: parts.iter().flat_map(|p| p.data.clone()).collect(),
                }
            };
            out.insert(hf, f32s(&t));
        }
        let meta = std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]);
        let bytes = safetensors::serialize(out.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
            .map_err(|e| LmError::Format(e.to_string()))?;
        write(&dir.join("model.safetensors"), &bytes)?;
        write(&dir.join("config.json"), self.hf_config.as_bytes())?;
        if let Some(t) = &self.tokenizer {
            write(&dir.join("tokenizer.json"), t)?;
        }
        Ok(())
    }
}
