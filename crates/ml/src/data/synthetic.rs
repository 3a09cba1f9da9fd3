//! A seeded synthetic dataset: Gaussian-like class blobs made with integer arithmetic only,
//! so it has the same bits on every machine.
//!
//! ```text
//! stream    = SplitMix64(seed)
//! uniform(n) = (next() · n) >> 64                  (128-bit product; 0 <= uniform(n) < n)
//! centred(a) = uniform(2a + 1) − a                 (uniform on −a..=a)
//! centre[c][j] = centred(256)                      c in 0..classes, j in 0..features, c-major
//! for each sample i in 0..samples:
//!     label_i = uniform(classes)
//!     x_i[j]  = centre[label_i][j] + Σ_{k<4} centred(128)     j in 0..features
//! ```
//!
//! Centres are uniform on ±1.0 (Q8 ±256); the noise is a sum of four uniforms on ±0.5 (an
//! Irwin–Hall distribution, close to a Gaussian of standard deviation ≈ 0.58, Q8 ≈ 148),
//! so every input lies within ±768, well inside `INPUT_MAX`. Draws are taken from the stream
//! in exactly the order above.

use super::{DataError, Dataset, check_classes};

/// Q8 half-width of the class centres: ±1.0.
pub(crate) const CENTRE_SPREAD: i64 = 256;
/// Q8 half-width of each of the noise terms: ±0.5.
pub(crate) const NOISE_SPREAD: i64 = 128;
/// Number of uniform terms summed into the noise of one value.
pub(crate) const NOISE_TERMS: usize = 4;

/// The SplitMix64 generator (Steele, Lea and Flood, 2014): a 64-bit counter stepped by the
/// golden-ratio constant and passed through a fixed mixing function.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A stream whose state starts at `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64-bit output.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A draw in `0..n` (`0` when `n == 0`): the high 64 bits of `next() · n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A draw in `-a..=a`.
    fn centred(&mut self, a: i64) -> i64 {
        self.below((2 * a + 1) as u64) as i64 - a
    }
}

impl Dataset {
    /// A seeded synthetic dataset of `samples` samples with `features` inputs each, in
    /// `classes` Gaussian-like blobs, made with integer arithmetic only (see
    /// `docs/datasets.md` for the algorithm): the same seed gives the same bits on every
    /// machine. Inputs lie within ±768 (±3.0); labels are drawn uniformly.
    ///
    /// Fails if `features` is 0, `classes` is not in `1..=MAX_CLASSES`, or the dataset would
    /// not fit in memory.
    pub fn synthetic(
        seed: u64,
        samples: usize,
        features: usize,
        classes: u32,
    ) -> Result<Dataset, DataError> {
        check_classes(classes)?;
        if features == 0 {
            return Err(DataError::NoFeatures);
        }
        let too_large = || DataError::TooLarge {
            what: format!("a synthetic dataset of {samples} samples × {features} features"),
            reason: "it has more values than this machine can address".to_owned(),
        };
        let values = samples.checked_mul(features).ok_or_else(too_large)?;
        let centre_values = (classes as usize)
            .checked_mul(features)
            .ok_or_else(too_large)?;

        let mut stream = SplitMix64::new(seed);
        let centres: Vec<i32> = (0..centre_values)
            .map(|_| stream.centred(CENTRE_SPREAD) as i32)
            .collect();
        let mut inputs = Vec::with_capacity(values);
        let mut labels = Vec::with_capacity(samples);
        for _ in 0..samples {
            let label = stream.below(u64::from(classes)) as u32;
            let centre = &centres[label as usize * features..][..features];
            for &c in centre {
                let noise: i64 = (0..NOISE_TERMS).map(|_| stream.centred(NOISE_SPREAD)).sum();
                inputs.push(c + noise as i32);
            }
            labels.push(label);
        }
        Ok(Dataset {
            name: format!("synthetic-s{seed}-{samples}x{features}-c{classes}"),
            features,
            classes,
            inputs,
            labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::INPUT_MAX;

    #[test]
    fn splitmix64_matches_the_reference() {
        // The first outputs of the reference C implementation (splitmix64.c) for seed 0 …
        let mut s = SplitMix64::new(0);
        let got: Vec<u64> = (0..3).map(|_| s.next_u64()).collect();
        assert_eq!(
            got,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f
            ]
        );
        // … and for seed 1234567.
        let mut s = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..5).map(|_| s.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821,
            ]
        );
    }

    #[test]
    fn below_stays_in_range() {
        let mut s = SplitMix64::new(0);
        assert_eq!(s.below(0), 0);
        assert_eq!(s.below(1), 0);
        for n in [2u64, 3, 10, 1 << 40, u64::MAX] {
            for _ in 0..100 {
                assert!(s.below(n) < n);
            }
        }
        for _ in 0..1000 {
            let x = s.centred(3);
            assert!((-3..=3).contains(&x));
        }
    }

    #[test]
    fn is_deterministic_and_valid() {
        let a = Dataset::synthetic(42, 200, 5, 3).expect("valid");
        let b = Dataset::synthetic(42, 200, 5, 3).expect("valid");
        assert_eq!(a, b);
        assert_ne!(a, Dataset::synthetic(43, 200, 5, 3).expect("valid"));
        assert!(a.validate().is_ok());
        assert_eq!((a.len(), a.features, a.classes), (200, 5, 3));
        assert!(
            a.inputs
                .iter()
                .all(|q| q.abs() <= 768 && q.abs() <= INPUT_MAX)
        );
        assert!(
            a.class_counts().iter().all(|&n| n > 40),
            "{:?}",
            a.class_counts()
        );
        assert_eq!(a.name, "synthetic-s42-200x5-c3");
    }

    #[test]
    fn a_prefix_of_samples_is_stable() {
        // More samples only append: the centres are drawn first.
        let short = Dataset::synthetic(9, 10, 4, 2).expect("valid");
        let long = Dataset::synthetic(9, 30, 4, 2).expect("valid");
        assert_eq!(short.inputs[..], long.inputs[..40]);
        assert_eq!(short.labels[..], long.labels[..10]);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(
            Dataset::synthetic(0, 1, 0, 2),
            Err(DataError::NoFeatures)
        ));
        assert!(matches!(
            Dataset::synthetic(0, 1, 1, 0),
            Err(DataError::NoClasses)
        ));
        assert!(matches!(
            Dataset::synthetic(0, usize::MAX, 2, 2),
            Err(DataError::TooLarge { .. })
        ));
        let empty = Dataset::synthetic(0, 0, 3, 2).expect("valid");
        assert!(empty.is_empty() && empty.validate().is_ok());
    }
}
