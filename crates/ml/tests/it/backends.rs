//! Backends: the same exact-mode work gives the same bits on burn-flex (the CPU backend), on
//! burn-wgpu over Vulkan (Mesa's lavapipe where there is no GPU, as in CI; the GPU's own driver
//! elsewhere) and on the reference, state hash by state hash, op trace by op trace, op by op,
//! and for the raw burn primitives the ops are built from.
//!
//! burn-flex is single-threaded in this build (burn's `rayon` feature is off, so flex's integer
//! matmul runs on one thread whatever the machine has): there is no flex thread count to vary.
//! The thread counts vary on the crate's own CPU kernels (`CpuOps` on 1 and 2 threads, in the
//! state-hash test below) and on wgpu, which splits every op over many invocations (lavapipe
//! runs them on all the CPU's cores).
//!
//! Without a Vulkan adapter these tests fail under `CI=true` (CI must have lavapipe:
//! `scripts/system-deps.sh`) and skip with a message elsewhere.
#![cfg(feature = "wgpu")]

use std::sync::Once;

use burn::tensor::{Int, Tensor, TensorData};
use pedals_ml::{
    Dataset, MlpConfig, MlpState, TrainConfig, TrainOutcome, Trainer,
    exact::{
        ACT_MAX, BIAS_MAX, BurnOps, ExactOps, GRAD_MAX, HYPER_MAX, Mat, Reference, VELOCITY_MAX,
        W_MASTER_MAX, exp_table,
    },
};
use proptest::prelude::*;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The exact ops on the best Vulkan adapter, or `None` (the test skips) outside CI when there is
/// none.
fn gpu() -> Option<BurnOps> {
    match BurnOps::gpu() {
        Ok(ops) => {
            static NAMED: Once = Once::new();
            NAMED.call_once(|| {
                eprintln!(
                    "wgpu (Vulkan) adapter: {} ({:?})",
                    ops.adapter_name().unwrap_or_else(|| "(unnamed)".into()),
                    ops.device()
                );
            });
            Some(ops)
        }
        Err(e) if in_ci() => {
            panic!("CI must have a Vulkan adapter (scripts/system-deps.sh installs lavapipe): {e}")
        }
        Err(e) => {
            static SAID: Once = Once::new();
            SAID.call_once(|| eprintln!("skipped: {e}"));
            None
        }
    }
}

/// Panics with the first differing element and the number of differences.
fn assert_same(what: &str, backend: &str, got: &Mat, want: &Mat) {
    assert_eq!(
        (got.rows, got.cols),
        (want.rows, want.cols),
        "{what}: {backend} gives another shape"
    );
    let diffs: Vec<usize> = (0..want.data.len())
        .filter(|&i| got.data[i] != want.data[i])
        .collect();
    if let Some(&i) = diffs.first() {
        panic!(
            "{what}: {backend} differs from the reference in {} of {} elements; first at \
             [{}][{}]: {} instead of {}",
            diffs.len(),
            want.data.len(),
            i / want.cols,
            i % want.cols,
            got.data[i],
            want.data[i]
        );
    }
}

/// The job of the cross-backend check: 784-wide inputs, so the first layer's dot products run
/// over 784 terms and its weight gradient over the batch.
fn wide_job(steps: u64) -> (TrainConfig, Dataset) {
    let config = TrainConfig {
        model: MlpConfig {
            layers: vec![784, 64, 10],
            batch: 32,
            lr_q12: 410,
            momentum_q12: 3686,
            conv: None,
        },
        seed: 11,
        steps,
        checkpoint_every: 2,
    };
    let data = Dataset::synthetic(5, 512, 784, 10).expect("synthetic data");
    (config, data)
}

#[test]
fn flex_wgpu_and_the_reference_agree_on_every_state_hash() {
    let Some(gpu) = gpu() else { return };
    let (config, data) = wide_job(5);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    fn train<O: ExactOps>(ops: O, c: &TrainConfig, d: &Dataset, s: &MlpState) -> TrainOutcome {
        let trainer = Trainer::new(ops, c.clone()).expect("trainer");
        trainer.train(d, s).expect("train")
    }
    let on_flex = train(BurnOps::cpu(), &config, &data, &init);
    let on_wgpu = train(gpu, &config, &data, &init);
    let by_reference = train(Reference, &config, &data, &init);
    for cpu in crate::exact::cpu_variants(&[1, 2]) {
        let on_cpu = train(cpu, &config, &data, &init);
        assert_eq!(on_cpu.hashes, by_reference.hashes, "{cpu:?}");
    }
    assert_eq!(on_flex.hashes.len(), 6);
    for (step, ((f, w), r)) in on_flex
        .hashes
        .iter()
        .zip(&on_wgpu.hashes)
        .zip(&by_reference.hashes)
        .enumerate()
    {
        eprintln!("h_{step}: flex {f}  wgpu {w}  reference {r}");
        assert_eq!(f, r, "h_{step}: flex differs from the reference");
        assert_eq!(w, f, "h_{step}: wgpu differs from flex");
    }
    assert_ne!(on_flex.hashes[0], on_flex.hashes[5], "training moved");
    assert_eq!(on_wgpu.final_state, on_flex.final_state);
    assert_eq!(
        on_wgpu.trace().expect("trace").root(),
        on_flex.trace().expect("trace").root()
    );
}

#[test]
fn flex_wgpu_and_the_reference_give_the_same_op_trace() {
    let Some(gpu) = gpu() else { return };
    let (config, data) = wide_job(2);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let flex = Trainer::new(BurnOps::cpu(), config.clone()).expect("trainer");
    let after_one = flex.replay_step(&data, &init, 0).expect("step 0");
    let on_flex = flex.trace_step(&data, &after_one, 1).expect("trace");
    let on_wgpu = Trainer::new(gpu, config.clone())
        .expect("trainer")
        .trace_step(&data, &after_one, 1)
        .expect("trace");
    let by_reference = Trainer::new(Reference, config)
        .expect("trainer")
        .trace_step(&data, &after_one, 1)
        .expect("trace");
    let names =
        |t: &[pedals_ml::TracedTensor]| t.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&on_wgpu), names(&by_reference));
    assert_eq!(names(&on_flex), names(&by_reference));
    for ((f, w), r) in on_flex.iter().zip(&on_wgpu).zip(&by_reference) {
        assert_same(&r.name, "flex", &f.value, &r.value);
        assert_same(&r.name, "wgpu", &w.value, &r.value);
    }
    eprintln!(
        "{} traced tensors equal on flex, wgpu and the reference",
        on_flex.len()
    );
}

#[test]
fn the_cnn_gives_the_same_state_hashes_and_op_trace_on_wgpu() {
    let Some(gpu) = gpu() else { return };
    let (config, data) = crate::cnn::small_cnn(3);
    let init = MlpState::init(&config.model, config.seed).expect("init");
    let flex = Trainer::new(BurnOps::cpu(), config.clone()).expect("trainer");
    let wgpu = Trainer::new(gpu, config).expect("trainer");
    let on_flex = flex.train(&data, &init).expect("train");
    let on_wgpu = wgpu.train(&data, &init).expect("train");
    assert_eq!(on_wgpu.hashes, on_flex.hashes);
    let traced_flex = flex.trace_step(&data, &init, 0).expect("trace");
    let traced_wgpu = wgpu.trace_step(&data, &init, 0).expect("trace");
    assert_eq!(traced_flex.len(), traced_wgpu.len());
    for (f, w) in traced_flex.iter().zip(&traced_wgpu) {
        assert_eq!(f.name, w.name);
        assert_same(&f.name, "wgpu", &w.value, &f.value);
    }
}

/// Inputs for every exact op.
#[derive(Debug, Clone)]
struct Case {
    a: Mat,
    w: Mat,
    bias: Mat,
    z: Mat,
    labels: Vec<u32>,
    d: Mat,
    v: Mat,
    g: Mat,
    mu: i32,
    lr: i32,
}

/// Every exact op of `ops` on `c`, named, read back.
fn every_op<O: ExactOps>(ops: &O, c: &Case) -> Vec<(&'static str, Mat)> {
    let (a, w, bias, z) = (
        ops.load(&c.a),
        ops.load(&c.w),
        ops.load(&c.bias),
        ops.load(&c.z),
    );
    let (d, v, g) = (ops.load(&c.d), ops.load(&c.v), ops.load(&c.g));
    let lb = c.a.rows.next_power_of_two().trailing_zeros();
    let wq = ops.quantize_weights(&w);
    let v2 = ops.momentum(&v, &g, c.mu);
    vec![
        ("quantize_weights", ops.read(&wq)),
        ("linear", ops.read(&ops.linear(&a, &wq, &bias))),
        ("relu", ops.read(&ops.relu(&z))),
        (
            "softmax_xent_grad",
            ops.read(&ops.softmax_xent_grad(&z, &c.labels)),
        ),
        ("weight_grad", ops.read(&ops.weight_grad(&a, &d, lb))),
        ("bias_grad", ops.read(&ops.bias_grad(&d, lb))),
        ("input_grad", ops.read(&ops.input_grad(&d, &wq))),
        ("relu_backward", ops.read(&ops.relu_backward(&d, &z))),
        ("momentum", ops.read(&v2)),
        (
            "descend weights",
            ops.read(&ops.descend(&w, &v2, c.lr, W_MASTER_MAX)),
        ),
        (
            "descend biases",
            ops.read(&ops.descend(&bias, &ops.momentum(&bias, &bias, c.mu), c.lr, BIAS_MAX)),
        ),
    ]
}

fn every_op_agrees(gpu: &BurnOps, c: &Case) {
    let want = every_op(&Reference, c);
    for (backend, got) in [
        ("flex", every_op(&BurnOps::cpu(), c)),
        ("wgpu", every_op(gpu, c)),
    ] {
        for ((name, g), (_, r)) in got.iter().zip(&want) {
            assert_same(name, backend, g, r);
        }
    }
}

fn mat(rows: usize, cols: usize, max: i32) -> impl Strategy<Value = Mat> {
    proptest::collection::vec(-max..=max, rows * cols).prop_map(move |d| Mat::new(rows, cols, d))
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..9, 1usize..40, 2usize..12).prop_flat_map(|(b, k, n)| {
        (
            (
                mat(b, k, ACT_MAX),
                mat(k, n, W_MASTER_MAX),
                mat(1, n, BIAS_MAX),
                mat(b, n, ACT_MAX),
            ),
            proptest::collection::vec(0..n as u32, b),
            (
                mat(b, n, GRAD_MAX),
                mat(k, n, VELOCITY_MAX),
                mat(k, n, 1 << 17),
            ),
            (0..=HYPER_MAX, 0..=HYPER_MAX),
        )
            .prop_map(|((a, w, bias, z), labels, (d, v, g), (mu, lr))| Case {
                a,
                w,
                bias,
                z,
                labels,
                d,
                v,
                g,
                mu,
                lr,
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn every_op_matches_the_reference_on_wgpu(c in case()) {
        if let Some(gpu) = gpu() {
            every_op_agrees(&gpu, &c);
        }
    }
}

/// A deterministic stream for the edge cases (SplitMix64).
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Mostly the extremes and the rounding boundaries of `±max`, sometimes anything between.
    fn edgy(&mut self, rows: usize, cols: usize, max: i32) -> Mat {
        let data = (0..rows * cols)
            .map(|_| {
                let r = self.next();
                let span = 2 * i64::from(max) + 1;
                let v = match r % 8 {
                    0 => max,
                    1 => -max,
                    2 => 0,
                    // Exact halves and near-halves of the rounding shifts (4 and 12 bits).
                    3 => [-8, -24, -40, 8, 24, -2048, -6144, 2048, -7, -9][(r >> 8) as usize % 10],
                    _ => ((r >> 8) as i64 % span - i64::from(max)) as i32,
                };
                v.clamp(-max, max)
            })
            .collect();
        Mat::new(rows, cols, data)
    }
}

/// Shapes and values at the bounds: full 784- and 1020-term dot products of extreme values (the
/// largest accumulators exact mode allows), sizes that are no multiple of any tile, saturated
/// logits and the whole exponential table, exact halves of every rounding shift, negative
/// values everywhere.
#[test]
fn ops_at_the_bounds_match_on_wgpu() {
    let Some(gpu) = gpu() else { return };
    let mut s = Stream(0x5eed);
    for (b, k, n) in [
        (32, 784, 64),
        (33, 777, 13),
        (1, 1020, 3),
        (64, 1020, 10),
        (256, 100, 2),
    ] {
        let mut c = Case {
            a: s.edgy(b, k, ACT_MAX),
            w: s.edgy(k, n, W_MASTER_MAX),
            bias: s.edgy(1, n, BIAS_MAX),
            z: s.edgy(b, n, ACT_MAX),
            labels: (0..b).map(|_| (s.next() % n as u64) as u32).collect(),
            d: s.edgy(b, n, GRAD_MAX),
            v: s.edgy(k, n, VELOCITY_MAX),
            g: s.edgy(k, n, 1 << 17),
            mu: HYPER_MAX,
            lr: HYPER_MAX,
        };
        every_op_agrees(&gpu, &c);
        // All inputs at the same extreme: the accumulator bound itself.
        c.a.data.fill(ACT_MAX);
        c.w.data.fill(W_MASTER_MAX);
        c.bias.data.fill(BIAS_MAX);
        c.d.data.fill(-GRAD_MAX);
        every_op_agrees(&gpu, &c);
        c.a.data.fill(-ACT_MAX);
        c.bias.data.fill(-BIAS_MAX);
        c.d.data.fill(GRAD_MAX);
        c.mu = 0;
        c.lr = 1;
        every_op_agrees(&gpu, &c);
    }
    // Softmax rows spanning the whole table (index 2048), ties, and all-saturated rows.
    let z = Mat::new(
        4,
        3,
        vec![
            1024, -1024, 0, 5, 5, 5, -1024, -1024, -1024, 1023, -1023, 1024,
        ],
    );
    let c = Case {
        a: Mat::zeros(4, 2),
        w: Mat::zeros(2, 3),
        bias: Mat::zeros(1, 3),
        z,
        labels: vec![1, 0, 2, 2],
        d: Mat::zeros(4, 3),
        v: Mat::zeros(2, 3),
        g: Mat::zeros(2, 3),
        mu: 1,
        lr: 1,
    };
    every_op_agrees(&gpu, &c);
}

fn ints(values: &[i32], ops: &BurnOps) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len()]),
        ops.device(),
    )
}

fn host(t: Tensor<1, Int>) -> Vec<i64> {
    t.into_data().iter::<i64>().collect()
}

/// The burn primitives exact mode is built from, on values the ops never produce too:
/// arithmetic right shifts of negative numbers (every amount, `i32::MIN` included), left
/// shifts, integer division (non-negative, as softmax uses it, and negative, which exact mode
/// never does), gathers from the exponential table, clamps, masks, comparisons and sums.
#[test]
fn burn_primitives_match_on_flex_and_wgpu() {
    let Some(gpu) = gpu() else { return };
    let flex = BurnOps::cpu();
    let mut values = vec![
        i32::MIN,
        i32::MIN + 1,
        -(1 << 30),
        -65537,
        -65536,
        -32769,
        -32768,
        -2049,
        -2048,
        -1025,
        -1024,
        -9,
        -8,
        -7,
        -3,
        -2,
        -1,
        0,
        1,
        2,
        3,
        7,
        8,
        1023,
        1024,
        2047,
        2048,
        32767,
        32768,
        (1 << 30) - 1,
        i32::MAX,
    ];
    let mut s = Stream(42);
    values.extend((0..225).map(|_| s.next() as i32));
    let n = values.len();
    type Primitive = Box<dyn Fn(&BurnOps) -> Tensor<1, Int>>;
    let v = values.clone();
    let mut checks: Vec<(String, Primitive)> = Vec::new();
    for shift in 0..31 {
        let v = v.clone();
        checks.push((
            format!("x >> {shift}"),
            Box::new(move |o| ints(&v, o).bitwise_right_shift_scalar(shift)),
        ));
    }
    for shift in [1, 4, 6, 15] {
        let v = v.clone();
        checks.push((
            format!("x << {shift}"),
            Box::new(move |o| ints(&v, o).bitwise_left_shift_scalar(shift)),
        ));
    }
    let nonneg: Vec<i32> = v
        .iter()
        .map(|x| x.checked_abs().unwrap_or(i32::MAX))
        .collect();
    let divisors: Vec<i32> = (0..n)
        .map(|i| [1, 3, 32768, 65535, 7, 1 << 20][i % 6])
        .collect();
    {
        let (x, y) = (nonneg.clone(), divisors.clone());
        checks.push((
            "x / y, x ≥ 0".into(),
            Box::new(move |o| ints(&x, o).div(ints(&y, o))),
        ));
    }
    {
        let (x, y) = (v.clone(), divisors.clone());
        checks.push((
            "x / y, any x".into(),
            Box::new(move |o| ints(&x, o).div(ints(&y, o))),
        ));
    }
    {
        let index: Vec<i32> = (0..n).map(|i| ((i * 977) % 2049) as i32).collect();
        let lut = exp_table().to_vec();
        checks.push((
            "EXP_LUT.select(index)".into(),
            Box::new(move |o| ints(&lut, o).select(0, ints(&index, o))),
        ));
    }
    {
        let x = v.clone();
        checks.push((
            "clamp(x, ±1024)".into(),
            Box::new(move |o| ints(&x, o).clamp(-1024, 1024)),
        ));
    }
    {
        let x = v.clone();
        checks.push((
            "max(x, 0)".into(),
            Box::new(move |o| ints(&x, o).clamp_min(0)),
        ));
    }
    {
        let x = v.clone();
        checks.push((
            "mask_fill(|x| ≥ 1024, 0)".into(),
            Box::new(move |o| {
                let t = ints(&x, o);
                t.clone().mask_fill(t.abs().greater_equal_elem(1024), 0)
            }),
        ));
    }
    {
        let x = v.clone();
        checks.push((
            "mask_fill(x ≤ 0 or x ≥ 1024, 0)".into(),
            Box::new(move |o| {
                let t = ints(&x, o);
                let m = t
                    .clone()
                    .lower_equal_elem(0)
                    .bool_or(t.clone().greater_equal_elem(1024));
                t.mask_fill(m, 0)
            }),
        ));
    }
    {
        let x: Vec<i32> = v.iter().map(|x| x >> 12).collect();
        checks.push(("sum(x >> 12)".into(), Box::new(move |o| ints(&x, o).sum())));
    }
    {
        let x = v.clone();
        checks.push(("max(x)".into(), Box::new(move |o| ints(&x, o).max())));
    }
    {
        let x: Vec<i32> = v.iter().map(|x| x >> 16).collect();
        checks.push((
            "x·3686 (mul_scalar)".into(),
            Box::new(move |o| ints(&x, o).mul_scalar(3686)),
        ));
    }
    let mut failures = Vec::new();
    for (name, f) in &checks {
        let (on_flex, on_wgpu) = (host(f(&flex)), host(f(&gpu)));
        let diff = on_flex.iter().zip(&on_wgpu).filter(|(a, b)| a != b).count();
        if on_flex.len() != on_wgpu.len() || diff > 0 {
            let first = (0..on_flex.len().min(on_wgpu.len()))
                .find(|&i| on_flex[i] != on_wgpu[i])
                .map(|i| {
                    format!(
                        "x = {}: flex {}, wgpu {}",
                        values.get(i).copied().unwrap_or(0),
                        on_flex[i],
                        on_wgpu[i]
                    )
                })
                .unwrap_or_else(|| format!("lengths {} and {}", on_flex.len(), on_wgpu.len()));
            failures.push(format!("{name}: {diff} differ; first {first}"));
        }
    }
    // A matmul whose dot products reach the largest accumulator exact mode allows.
    let run = |o: &BurnOps| {
        let k = 1020;
        let signs = (0..5 * k)
            .map(|i| if i % 3 == 0 { -1024 } else { 1024 })
            .collect();
        let a = o.load(&Mat::new(5, k, signs));
        let b = o.load(&Mat::new(k, 7, vec![2048; k * 7]));
        o.read(&a.matmul(b))
    };
    let (f, w) = (run(&flex), run(&gpu));
    if f != w {
        failures.push(format!(
            "matmul at the bound: flex {:?}…, wgpu {:?}…",
            &f.data[..3],
            &w.data[..3]
        ));
    }
    assert!(
        failures.is_empty(),
        "flex and wgpu differ:\n{}",
        failures.join("\n")
    );
    eprintln!("{} primitives equal on flex and wgpu", checks.len() + 1);
}
