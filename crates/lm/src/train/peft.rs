//! Adapters as Hugging Face `peft` saves them: `adapter_model.safetensors` (`f32`) and
//! `adapter_config.json`, for Llama-family models. The values written are the ones the exact
//! forward reads (each master row through the row quantizer: a 16-bit mantissa times a power of
//! two, so an `f32` exactly), so `peft` computes with the same adapter as exact mode.

use std::collections::BTreeMap;
use std::path::Path;

use super::lora::{LoraConfig, LoraState, Target, qmat};
use crate::checkpoint::Tensor;
use crate::config::{Family, LmConfig};
use crate::error::LmError;
use crate::export::{f32s, write};

/// The `peft` tensor name of an adapter matrix (`which` is `A` or `B`).
pub fn peft_name(block: usize, target: Target, which: char) -> String {
    let group = match target {
        Target::Q | Target::K | Target::V | Target::O => "self_attn",
        Target::Gate | Target::Up | Target::Down => "mlp",
    };
    format!(
        "base_model.model.model.layers.{block}.{group}.{}.lora_{which}.weight",
        target.name()
    )
}

/// Writes `adapter_model.safetensors` and `adapter_config.json` into `dir` (created if missing).
pub fn save_peft(
    dir: &Path,
    config: &LmConfig,
    lora: &LoraConfig,
    state: &LoraState,
) -> Result<(), LmError> {
    if config.family != Family::Llama {
        return Err(LmError::Unsupported(
            "peft export is for Llama-family models (GPT-2's fused c_attn takes one adapter \
             for q, k and v together)"
                .into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| LmError::io(dir, e))?;
    let mut out = BTreeMap::new();
    for (l, row) in state.adapters.iter().enumerate() {
        for (ad, t) in row.iter().zip(Target::ALL) {
            let Some(ad) = ad else { continue };
            let (inp, outw) = t.dims(config);
            for (which, master, rows, cols) in
                [('A', &ad.a, lora.rank, inp), ('B', &ad.b, outw, lora.rank)]
            {
                let tensor = Tensor {
                    shape: vec![rows, cols],
                    data: qmat(master, rows, cols, 0).to_f32(),
                };
                out.insert(peft_name(l, t, which), f32s(&tensor));
            }
        }
    }
    let meta = std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let bytes = safetensors::serialize(out.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| LmError::Format(e.to_string()))?;
    write(&dir.join("adapter_model.safetensors"), &bytes)?;
    let alpha = if lora.scale_log2 >= 0 {
        (lora.rank << lora.scale_log2) as f64
    } else {
        lora.rank as f64 / f64::from(1u32 << -lora.scale_log2)
    };
    let json = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": lora.rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": false,
        "target_modules": lora.targets.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "inference_mode": true,
        "use_rslora": false,
        "base_model_name_or_path": null,
    });
    write(
        &dir.join("adapter_config.json"),
        serde_json::to_string_pretty(&json)
            .map_err(|e| LmError::Format(e.to_string()))?
            .as_bytes(),
    )
}
