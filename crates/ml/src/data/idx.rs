//! IDX, the file format of MNIST: a pair of files, images and labels.
//!
//! ```text
//! 0x00 0x00 | type u8 = 0x08 (unsigned byte) | rank u8 | rank × dim u32 (big-endian) | data
//! images: rank 3, dims [n, rows, cols], n × rows × cols pixels, row-major
//! labels: rank 1, dims [n],             n labels
//! ```
//!
//! A pixel `p` becomes the Q8 input `p` as it is (it stands for `p / 256`), so MNIST inputs lie
//! in `0..=255`. The file must end exactly after its data.

use std::path::Path;

use super::{DataError, Dataset, check_classes};

/// The IDX type byte of unsigned bytes, the only type supported.
const IDX_UBYTE: u8 = 0x08;

/// What an IDX type byte means, for error messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "unknown",
    }
}

/// Reads an IDX header of unsigned bytes with `rank` dimensions; returns the dimensions and
/// the data, checked to be exactly as long as the dimensions imply.
fn parse_idx<'a>(
    bytes: &'a [u8],
    what: &'static str,
    rank: u8,
    layout: &'static str,
) -> Result<(Vec<u32>, &'a [u8]), DataError> {
    let header = |reason: String| DataError::IdxHeader { what, reason };
    let [z0, z1, type_code, found_rank, rest @ ..] = bytes else {
        return Err(header(format!(
            "the file is {} bytes long, shorter than the 4-byte magic",
            bytes.len()
        )));
    };
    if (*z0, *z1) != (0, 0) {
        return Err(header(format!(
            "it starts with {z0:#04x} {z1:#04x} instead of 0x00 0x00 (is it gzipped? gunzip it first)"
        )));
    }
    if *type_code != IDX_UBYTE {
        return Err(DataError::IdxUnsupportedType {
            what,
            type_code: *type_code,
            type_name: type_name(*type_code),
        });
    }
    if *found_rank != rank {
        return Err(DataError::IdxRank {
            what,
            expected: rank,
            found: *found_rank,
            layout,
        });
    }
    let dims_len = 4 * usize::from(rank);
    if rest.len() < dims_len {
        return Err(header(format!(
            "the header needs {} bytes for {rank} dimensions, but the file is {} bytes long",
            4 + dims_len,
            bytes.len()
        )));
    }
    let (dims_bytes, data) = rest.split_at(dims_len);
    let dims: Vec<u32> = dims_bytes
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
        .collect();
    let count = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)));
    match count {
        Some(count) if count == data.len() as u64 => Ok((dims, data)),
        Some(count) if count < data.len() as u64 => Err(DataError::IdxTrailingBytes {
            what,
            count: data.len() - count as usize,
        }),
        _ => Err(DataError::IdxTruncated {
            what,
            expected: count
                .and_then(|c| c.checked_add((4 + dims_len) as u64))
                .unwrap_or(u64::MAX),
            actual: bytes.len(),
        }),
    }
}

impl Dataset {
    /// Parses an IDX pair: `images` of unsigned bytes with dimensions `[n, rows, cols]` and
    /// `labels` of unsigned bytes with dimension `[n]`. Each pixel `p` becomes the Q8 input
    /// `p`; samples have `rows × cols` features; every label must be below `classes`.
    pub fn from_idx(images: &[u8], labels: &[u8], classes: u32) -> Result<Dataset, DataError> {
        check_classes(classes)?;
        let (image_dims, pixels) = parse_idx(images, "images", 3, "[samples, rows, columns]")?;
        let (label_dims, label_bytes) = parse_idx(labels, "labels", 1, "[samples]")?;
        let (n_images, n_labels) = (image_dims[0], label_dims[0]);
        if n_images != n_labels {
            return Err(DataError::CountMismatch {
                images: n_images.into(),
                labels: n_labels.into(),
            });
        }
        let features = u64::from(image_dims[1]) * u64::from(image_dims[2]);
        if features == 0 {
            return Err(DataError::NoFeatures);
        }
        if n_images == 0 {
            return Err(DataError::Empty {
                what: "the IDX pair".to_owned(),
            });
        }
        if let Some((sample, &label)) = label_bytes
            .iter()
            .enumerate()
            .find(|(_, label)| u32::from(**label) >= classes)
        {
            return Err(DataError::LabelOutOfRange {
                sample,
                label: label.into(),
                classes,
            });
        }
        Ok(Dataset {
            name: "idx".to_owned(),
            // The pixels are in memory, so their count, and `features`, fit in a usize.
            features: pixels.len() / n_images as usize,
            classes,
            inputs: pixels.iter().map(|&p| i32::from(p)).collect(),
            labels: label_bytes.iter().map(|&l| u32::from(l)).collect(),
        })
    }

    /// Reads an IDX pair from files (uncompressed) and parses it with [`Self::from_idx`]; the
    /// dataset is named after the images file's stem. [`crate::DatasetSource`] does the same
    /// and also returns the files' CIDs.
    pub fn from_idx_files(
        images_path: impl AsRef<Path>,
        labels_path: impl AsRef<Path>,
        classes: u32,
    ) -> Result<Dataset, DataError> {
        let source = super::DatasetSource::Idx {
            images: images_path.as_ref().to_path_buf(),
            labels: labels_path.as_ref().to_path_buf(),
            classes,
        };
        Ok(source.load()?.dataset)
    }
}

/// Encodes an IDX file of unsigned bytes (for tests and fixtures).
#[cfg(test)]
pub(crate) fn encode_idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, IDX_UBYTE, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Vec<u8>, Vec<u8>) {
        let images = encode_idx(&[3, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 255, 254, 253, 252]);
        let labels = encode_idx(&[3], &[2, 0, 1]);
        (images, labels)
    }

    #[test]
    fn parses_a_pair() {
        let (images, labels) = pair();
        let d = Dataset::from_idx(&images, &labels, 3).expect("valid");
        assert_eq!((d.len(), d.features, d.classes), (3, 4, 3));
        assert_eq!(d.sample(2), (&[255, 254, 253, 252][..], 1));
        assert_eq!(d.labels, vec![2, 0, 1]);
        assert!(d.validate().is_ok());
    }

    #[test]
    fn rejects_malformed_headers() {
        let (images, labels) = pair();
        let err =
            |i: &[u8], l: &[u8], classes| Dataset::from_idx(i, l, classes).expect_err("must fail");
        assert!(matches!(
            err(&images[..3], &labels, 3),
            DataError::IdxHeader { what: "images", .. }
        ));
        assert!(matches!(
            err(&images[..9], &labels, 3),
            DataError::IdxHeader { what: "images", .. }
        ));
        let mut gz = images.clone();
        gz[0] = 0x1f;
        assert!(matches!(err(&gz, &labels, 3), DataError::IdxHeader { .. }));
        let mut f32s = images.clone();
        f32s[2] = 0x0D;
        assert!(matches!(
            err(&f32s, &labels, 3),
            DataError::IdxUnsupportedType {
                type_code: 0x0D,
                type_name: "f32",
                ..
            }
        ));
        assert!(matches!(
            err(&labels, &images, 3),
            DataError::IdxRank {
                what: "images",
                expected: 3,
                found: 1,
                ..
            }
        ));
        assert!(matches!(
            err(&images[..images.len() - 1], &labels, 3),
            DataError::IdxTruncated {
                what: "images",
                expected: 28,
                actual: 27
            }
        ));
        let mut long = labels.clone();
        long.push(0);
        assert!(matches!(
            err(&images, &long, 3),
            DataError::IdxTrailingBytes {
                what: "labels",
                count: 1
            }
        ));
        let huge = encode_idx(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(matches!(
            err(&huge, &labels, 3),
            DataError::IdxTruncated {
                expected: u64::MAX,
                ..
            }
        ));
    }

    #[test]
    fn rejects_inconsistent_pairs() {
        let (images, labels) = pair();
        let err =
            |i: &[u8], l: &[u8], classes| Dataset::from_idx(i, l, classes).expect_err("must fail");
        let two = encode_idx(&[2], &[0, 1]);
        assert!(matches!(
            err(&images, &two, 3),
            DataError::CountMismatch {
                images: 3,
                labels: 2
            }
        ));
        assert!(matches!(
            err(&images, &labels, 2),
            DataError::LabelOutOfRange {
                sample: 0,
                label: 2,
                classes: 2
            }
        ));
        assert!(matches!(err(&images, &labels, 0), DataError::NoClasses));
        let flat = encode_idx(&[3, 0, 5], &[]);
        assert!(matches!(err(&flat, &labels, 3), DataError::NoFeatures));
        let none = encode_idx(&[0, 2, 2], &[]);
        let no_labels = encode_idx(&[0], &[]);
        assert!(matches!(err(&none, &no_labels, 3), DataError::Empty { .. }));
    }
}
