//! [`ExactOps`] on burn `Int` tensors (i32), on any burn device: `Device::flex()` on the CPU,
//! wgpu (Vulkan) or CUDA on a GPU. Integer sums are associative, so every device gives the same
//! bits.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::{
    conv::ConvConfig,
    exp_lut::EXP_LUT,
    ops::{ExactOps, Mat},
    spec::*,
};

/// Exact-mode operations on a burn device.
#[derive(Debug, Clone)]
pub struct BurnOps {
    device: Device,
    lut: Tensor<1, Int>,
}

type T2 = Tensor<2, Int>;

impl BurnOps {
    /// Operations on `device`; uploads the exponential table once.
    pub fn new(device: Device) -> Self {
        let lut = Tensor::<1, Int>::from_data(
            TensorData::new(EXP_LUT.to_vec(), [EXP_LUT.len()]),
            &device,
        );
        Self { device, lut }
    }

    /// Operations on burn's CPU backend, flex.
    pub fn cpu() -> Self {
        Self::new(Device::flex())
    }

    /// Operations on the best Vulkan adapter through burn's wgpu backend: a discrete GPU if
    /// there is one, else whatever Vulkan offers (Mesa's lavapipe, a software driver on the
    /// CPU). The graphics API is pinned to Vulkan: no fallback to OpenGL. Kernels are WGSL,
    /// which wgpu translates to SPIR-V. The device is opened once per process; later calls
    /// return the same device (or the same error).
    ///
    /// Fails, without panicking, where Vulkan has no adapter (no loader, or no driver): on
    /// Debian, `scripts/system-deps.sh` installs the loader and lavapipe.
    #[cfg(feature = "wgpu")]
    pub fn gpu() -> Result<Self, BackendError> {
        use burn::tensor::{DeviceKind, wgpu::WgpuBackend};
        static VULKAN: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
        let device = VULKAN.get_or_init(|| {
            Device::wgpu_options()
                .device_kind(DeviceKind::DefaultDevice)
                .graphics_api(WgpuBackend::Vulkan)
                .init()
                .map_err(|e| e.to_string())
        });
        match device {
            Ok(device) => Ok(Self::new(device.clone())),
            Err(reason) => Err(BackendError::NoVulkanAdapter(reason.clone())),
        }
    }

    /// The adapter's name as its driver reports it (`NVIDIA H100 80GB HBM3`, `llvmpipe (LLVM
    /// 15.0.6, 256 bits)`), `None` for a device that reports none (flex).
    #[cfg(feature = "wgpu")]
    pub fn adapter_name(&self) -> Option<String> {
        self.device.identity().map(|identity| identity.name)
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn rs(t: T2, s: u32) -> T2 {
        if s == 0 {
            t
        } else {
            t.add_scalar(1i32 << (s - 1))
                .bitwise_right_shift_scalar(s as i32)
        }
    }

    fn clamp(t: T2, max: i32) -> T2 {
        t.clamp(-max, max)
    }
}

/// A backend that cannot be used on this machine.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No Vulkan device could be opened; the string is wgpu's reason.
    #[error(
        "no Vulkan adapter could be opened ({0}): install a Vulkan loader and driver (on \
         Debian, scripts/system-deps.sh installs libvulkan1 and Mesa's lavapipe), or use the \
         CPU backend"
    )]
    NoVulkanAdapter(String),
}

impl ExactOps for BurnOps {
    type T = T2;

    fn load(&self, m: &Mat) -> T2 {
        Tensor::from_data(
            TensorData::new(m.data.clone(), [m.rows, m.cols]),
            &self.device,
        )
    }

    fn read(&self, t: &T2) -> Mat {
        let [rows, cols] = t.dims();
        let data = t.clone().into_data();
        let values = data
            .as_slice::<i32>()
            .map(<[i32]>::to_vec)
            .unwrap_or_else(|_| data.iter::<i64>().map(|v| v as i32).collect());
        Mat::new(rows, cols, values)
    }

    fn quantize_weights(&self, w: &T2) -> T2 {
        Self::clamp(Self::rs(w.clone(), MASTER_FRAC_BITS - WQ_FRAC_BITS), WQ_MAX)
    }

    fn linear(&self, a: &T2, wq: &T2, b: &T2) -> T2 {
        let bias = b
            .clone()
            .bitwise_left_shift_scalar((WQ_FRAC_BITS + ACT_FRAC_BITS - MASTER_FRAC_BITS) as i32);
        let acc = a.clone().matmul(wq.clone()) + bias;
        Self::clamp(Self::rs(acc, WQ_FRAC_BITS), ACT_MAX)
    }

    fn relu(&self, a: &T2) -> T2 {
        a.clone().clamp_min(0)
    }

    fn im2col(&self, x: &T2, conv: &ConvConfig) -> T2 {
        let [samples, inputs] = x.dims();
        assert_eq!(inputs, conv.inputs(), "im2col: sample width");
        let index: Vec<i32> = conv
            .gather_indices(samples)
            .into_iter()
            .map(|i| i32::try_from(i).expect("input index beyond i32"))
            .collect();
        let len = index.len();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [len]), &self.device);
        x.clone()
            .reshape([samples * inputs])
            .select(0, index)
            .reshape([samples * conv.positions(), conv.patch()])
    }

    fn reshape(&self, t: &T2, rows: usize, cols: usize) -> T2 {
        t.clone().reshape([rows, cols])
    }

    fn softmax_xent_grad(&self, z: &T2, labels: &[u32]) -> T2 {
        let [rows, cols] = z.dims();
        let max = z.clone().max_dim(1);
        let index = (max - z.clone()).reshape([rows * cols]);
        let e = self.lut.clone().select(0, index).reshape([rows, cols]);
        let sum = e.clone().sum_dim(1);
        let p = e.bitwise_left_shift_scalar(PROB_FRAC_BITS as i32).div(sum);
        let mut target = Mat::zeros(rows, cols);
        for (i, &y) in labels.iter().enumerate() {
            target.data[i * cols + y as usize] = 1 << PROB_FRAC_BITS;
        }
        let d = Self::rs(p - self.load(&target), PROB_FRAC_BITS - GRAD_FRAC_BITS);
        d.mask_fill(z.clone().abs().greater_equal_elem(ACT_MAX), 0)
    }

    fn weight_grad(&self, a: &T2, d: &T2, log2_batch: u32) -> T2 {
        let acc = a.clone().transpose().matmul(d.clone());
        Self::rs(
            acc,
            ACT_FRAC_BITS + GRAD_FRAC_BITS - MASTER_FRAC_BITS + log2_batch,
        )
    }

    fn bias_grad(&self, d: &T2, log2_batch: u32) -> T2 {
        let sum = d
            .clone()
            .sum_dim(0)
            .bitwise_left_shift_scalar((MASTER_FRAC_BITS - GRAD_FRAC_BITS) as i32);
        Self::rs(sum, log2_batch)
    }

    fn input_grad(&self, d: &T2, wq: &T2) -> T2 {
        let acc = d.clone().matmul(wq.clone().transpose());
        Self::clamp(Self::rs(acc, WQ_FRAC_BITS), GRAD_MAX)
    }

    fn relu_backward(&self, d: &T2, a: &T2) -> T2 {
        let outside = a
            .clone()
            .lower_equal_elem(0)
            .bool_or(a.clone().greater_equal_elem(ACT_MAX));
        d.clone().mask_fill(outside, 0)
    }

    fn momentum(&self, v: &T2, g: &T2, momentum_q12: i32) -> T2 {
        let decayed = Self::rs(v.clone().mul_scalar(momentum_q12), HYPER_FRAC_BITS);
        Self::clamp(decayed + g.clone(), VELOCITY_MAX)
    }

    fn descend(&self, p: &T2, v: &T2, lr_q12: i32, max: i32) -> T2 {
        let step = Self::rs(v.clone().mul_scalar(lr_q12), HYPER_FRAC_BITS);
        Self::clamp(p.clone() - step, max)
    }
}
