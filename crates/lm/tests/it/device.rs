//! The matrix products on a burn device give the CPU kernel's bits: every logit of both
//! families at 8 and 16 bits, and the raw sums at the bounds (the widest row of 2^16 columns,
//! two blocks, every mantissa and weight at its extreme), on burn-flex and on wgpu over Vulkan
//! (Mesa's lavapipe in CI, which sums in 32-bit integers as a GPU does).
//!
//! Without a Vulkan adapter the wgpu half fails under `CI=true` (CI must have lavapipe:
//! `scripts/system-deps.sh`) and is skipped with a message elsewhere.

use burn::tensor::Device;
use pedals_lm::exact::device::{BLOCK, dots, upload};
use pedals_lm::weights::{QData, QMat};
use pedals_lm::{KvCache, quantize};

use crate::fixtures::{FAMILIES, checkpoint};

/// The devices to compare against the CPU kernel: flex, and the Vulkan adapter if any.
fn devices() -> Vec<(String, Device)> {
    let mut out = vec![("flex".to_string(), Device::flex())];
    match pedals_ml::exact::BurnOps::gpu() {
        Ok(ops) => out.push((
            format!("wgpu ({})", ops.adapter_name().unwrap_or_default()),
            ops.device().clone(),
        )),
        Err(e) => {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(!ci, "CI must have a Vulkan adapter (lavapipe): {e}");
            eprintln!("no Vulkan adapter, wgpu not compared: {e}");
        }
    }
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    eprintln!("compared with the CPU kernel on: {names:?}");
    out
}

#[test]
fn every_logit_on_a_device_is_the_cpu_kernels() {
    let prompt: Vec<u32> = (1..40).map(|t| (t * 7) % 300).collect();
    for name in FAMILIES {
        for bits in [8, 16] {
            let model = quantize(&checkpoint(name), bits).expect("quantizes");
            let cpu = model
                .forward(&prompt, &mut KvCache::new(&model.config), true)
                .expect("cpu");
            for (device_name, device) in devices() {
                let mut on = model.clone();
                on.to_device(&device);
                assert_eq!(on, model, "the device copy takes no part in equality");
                let got = on
                    .forward(&prompt, &mut KvCache::new(&on.config), true)
                    .expect("device");
                assert!(got == cpu, "{name} w{bits} on {device_name}: logits differ");
                // Decoding token by token with the cache, as generation does.
                let mut cache = KvCache::new(&on.config);
                on.forward(&prompt[..30], &mut cache, false)
                    .expect("prefill");
                let last = on
                    .forward(&prompt[30..], &mut cache, false)
                    .expect("decode");
                let vocab = on.config.vocab;
                assert_eq!(last, cpu[cpu.len() - vocab..], "{name} w{bits} cached");
            }
        }
    }
}

#[test]
fn sums_at_the_bounds_are_exact_on_every_device() {
    // The widest row exact mode allows (2^16 columns: two blocks), the largest mantissas and
    // weights of both signs, and a mixed row.
    let cols = 2 * BLOCK;
    let mixed: Vec<i16> = (0..cols)
        .map(|k| ((k as i64 * 7919 % 65535) - 32767) as i16)
        .collect();
    let rows: Vec<Vec<i16>> = vec![vec![32767; cols], vec![-32767; cols], mixed];
    for bits in [8u8, 16] {
        let (lo, hi) = if bits == 8 {
            (-127i32, 127i32)
        } else {
            (-32768, 32767)
        };
        let values: Vec<i32> = [vec![hi; cols], vec![lo; cols]]
            .concat()
            .into_iter()
            .chain((0..cols).map(|k| if k % 3 == 0 { lo } else { hi }))
            .collect();
        let data = if bits == 8 {
            QData::I8(values.iter().map(|&v| v as i8).collect())
        } else {
            QData::I16(values.iter().map(|&v| v as i16).collect())
        };
        let w = QMat {
            rows: 3,
            cols,
            shift: vec![0; 3],
            data,
            device: Default::default(),
        };
        let plain: Vec<i64> = rows
            .iter()
            .flat_map(|m| {
                let w = &w;
                (0..w.rows).map(move |j| {
                    (0..cols)
                        .map(|k| i64::from(m[k]) * w.value(j, k))
                        .sum::<i64>()
                })
            })
            .collect();
        let m: Vec<&[i16]> = rows.iter().map(Vec::as_slice).collect();
        for (device_name, device) in devices() {
            let dw = upload(&w, &device);
            assert_eq!(dots(&w, &dw, &m), plain, "w{bits} on {device_name}");
        }
    }
}
