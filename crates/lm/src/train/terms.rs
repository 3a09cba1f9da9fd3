//! A fine-tuning run's terms as a requester writes them (real numbers, peft's names), and
//! their conversion to the exact units, which refuses what exact mode cannot hold.

use serde::{Deserialize, Serialize};

use super::{AdamConfig, FineTune, FullTune, LoraConfig};
use crate::error::LmError;

/// LoRA and optimizer terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// LoRA rank.
    pub rank: usize,
    /// LoRA alpha (`alpha / rank` a power of two).
    pub alpha: usize,
    /// Targeted projections (`q_proj`, …).
    pub targets: Vec<String>,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate.
    pub lr_end: f64,
    /// Adam's `β1`, `β2`.
    pub betas: (f64, f64),
    /// Adam's `ε`.
    pub eps: f64,
    /// Warm-up steps.
    pub warmup: u64,
    /// Optimizer steps.
    pub steps: u64,
    /// Examples per step.
    pub batch: usize,
    /// Seed of the adapters' initialization and of the batches.
    pub seed: u64,
}

impl Terms {
    /// The run in exact units.
    pub fn fine_tune(&self) -> Result<FineTune, LmError> {
        let targets: Vec<&str> = self.targets.iter().map(String::as_str).collect();
        let lora = LoraConfig::new(self.rank, self.alpha, &targets)?;
        let FullTune { adam, batch, seed } = self.full_tune()?;
        Ok(FineTune {
            lora,
            adam,
            batch,
            seed,
        })
    }

    /// The run in exact units as a full fine-tune (every weight trained; the LoRA terms do not
    /// apply).
    pub fn full_tune(&self) -> Result<FullTune, LmError> {
        Ok(FullTune {
            adam: AdamConfig::new(
                self.lr,
                self.lr_end,
                self.betas,
                self.eps,
                self.warmup,
                self.steps,
            )?,
            batch: self.batch,
            seed: self.seed,
        })
    }
}
