//! Canonical bytes of a dataset ("PDDS" v1) and its CID: one encoding per dataset, whatever
//! format it was loaded from, so a job can name exactly the samples it trains on.
//!
//! ```text
//! "PDDS" | version u16 = 1 | features u32 | classes u32 | samples u32 |
//!   inputs: samples × features × i16 (row-major, Q8) | labels: samples × u32
//! ```
//!
//! Every integer is little-endian; the bytes end exactly after the last label. The name is not
//! encoded: it is a label for people, not content.

use alloy_primitives::B256;
use pedals_core::{Cid, cid_of, hash_row, merkle_root};

use super::{DataError, Dataset};

/// The first four bytes of canonical dataset bytes.
pub const DATASET_MAGIC: [u8; 4] = *b"PDDS";
/// The version of the dataset encoding that this build reads and writes.
pub const DATASET_VERSION: u16 = 1;

/// Bytes of the header: magic, version, features, classes, samples.
const HEADER_LEN: usize = 4 + 2 + 4 + 4 + 4;

impl Dataset {
    /// The canonical bytes of the dataset (see `docs/datasets.md`). Fails if the dataset does
    /// not [`validate`](Self::validate) or has more than `u32::MAX` samples or features.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, DataError> {
        self.validate()?;
        let too_large = |what: &str| DataError::TooLarge {
            what: format!("dataset {:?}", self.name),
            reason: format!("its {what} do not fit the u32 of the canonical encoding"),
        };
        let features = u32::try_from(self.features).map_err(|_| too_large("features"))?;
        let samples = u32::try_from(self.len()).map_err(|_| too_large("samples"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + self.inputs.len() * 2 + self.len() * 4);
        out.extend_from_slice(&DATASET_MAGIC);
        out.extend_from_slice(&DATASET_VERSION.to_le_bytes());
        out.extend_from_slice(&features.to_le_bytes());
        out.extend_from_slice(&self.classes.to_le_bytes());
        out.extend_from_slice(&samples.to_le_bytes());
        for &q in &self.inputs {
            // validate() bounded every input by INPUT_MAX, so it fits an i16.
            out.extend_from_slice(&(q as i16).to_le_bytes());
        }
        for &label in &self.labels {
            out.extend_from_slice(&label.to_le_bytes());
        }
        Ok(out)
    }

    /// The CID of the canonical bytes: what a job spec names the dataset by.
    pub fn cid(&self) -> Result<Cid, DataError> {
        Ok(cid_of(&self.to_canonical_bytes()?))
    }

    /// Sample `i` as the dispute referee opens it: its inputs followed by its label, as one
    /// row of `features + 1` i32 values.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`, like slice indexing.
    pub fn dispute_row(&self, i: usize) -> Vec<i32> {
        let (inputs, label) = self.sample(i);
        let mut row = Vec::with_capacity(inputs.len() + 1);
        row.extend_from_slice(inputs);
        row.push(label as i32);
        row
    }

    /// The row root of the dataset: the Merkle root (docs/commitments.md §1) over one leaf
    /// per sample, `keccak256` of [`Self::dispute_row`] as i32 little-endian. A job spec
    /// commits to it so the referee can open any sample on-chain. Fails on an empty or
    /// invalid dataset.
    pub fn row_root(&self) -> Result<B256, DataError> {
        self.validate()?;
        let leaves: Vec<B256> = (0..self.len())
            .map(|i| hash_row(&self.dispute_row(i)))
            .collect();
        merkle_root(&leaves).map_err(|e| DataError::Canonical {
            reason: format!("the dataset has no rows to commit to: {e}"),
        })
    }

    /// Reads canonical dataset bytes, checking every field; the dataset is named after the
    /// CID of the bytes.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Dataset, DataError> {
        let fail = |reason: String| DataError::Canonical { reason };
        if bytes.len() < HEADER_LEN {
            return Err(fail(format!(
                "{} bytes is shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        let (header, body) = bytes.split_at(HEADER_LEN);
        if header[..4] != DATASET_MAGIC {
            return Err(fail(format!(
                "the bytes start with {:02x?}, not the magic b\"PDDS\"",
                &header[..4]
            )));
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let version = u16::from_le_bytes([header[4], header[5]]);
        if version != DATASET_VERSION {
            return Err(fail(format!(
                "version {version} is not supported (this build reads version {DATASET_VERSION}); upgrade pedals to read it"
            )));
        }
        let (features, classes, samples) = (u32_at(6), u32_at(10), u32_at(14));
        let expected = u64::from(samples)
            .checked_mul(u64::from(features))
            .and_then(|values| values.checked_mul(2))
            .and_then(|input_bytes| input_bytes.checked_add(4 * u64::from(samples)));
        if expected != Some(body.len() as u64) {
            return Err(fail(format!(
                "{samples} samples × {features} features need {} bytes after the header, but \
                 {} follow",
                expected.map_or_else(|| "more than u64::MAX".to_owned(), |n| n.to_string()),
                body.len()
            )));
        }
        // The body is in memory, so these sizes fit a usize.
        let input_len = samples as usize * features as usize * 2;
        let (input_bytes, label_bytes) = body.split_at(input_len);
        let dataset = Dataset {
            name: cid_of(bytes).to_string(),
            features: features as usize,
            classes,
            inputs: input_bytes
                .chunks_exact(2)
                .map(|b| i32::from(i16::from_le_bytes([b[0], b[1]])))
                .collect(),
            labels: label_bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        };
        dataset.validate()?;
        Ok(dataset)
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
            inputs: vec![-1024, 1, 1024, -2],
            labels: vec![2, 0],
        }
    }

    #[test]
    fn encodes_little_endian() {
        let bytes = tiny().to_canonical_bytes().expect("valid");
        let mut expected = b"PDDS".to_vec();
        expected.extend_from_slice(&[1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0]);
        expected.extend_from_slice(&[0x00, 0xfc, 1, 0, 0x00, 0x04, 0xfe, 0xff]);
        expected.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes, expected);
        let back = Dataset::from_canonical_bytes(&bytes).expect("valid");
        assert_eq!((back.inputs, back.labels), (tiny().inputs, tiny().labels));
        assert_eq!(back.name, cid_of(&bytes).to_string());
        assert_eq!(tiny().cid().expect("valid"), cid_of(&bytes));
    }

    #[test]
    fn the_name_is_not_content() {
        let mut renamed = tiny();
        renamed.name = "other".into();
        assert_eq!(renamed.cid().expect("valid"), tiny().cid().expect("valid"));
        let mut relabelled = tiny();
        relabelled.labels[0] = 1;
        assert_ne!(
            relabelled.cid().expect("valid"),
            tiny().cid().expect("valid")
        );
    }

    #[test]
    fn rejects_bad_bytes() {
        let bytes = tiny().to_canonical_bytes().expect("valid");
        let bad = |b: &[u8]| Dataset::from_canonical_bytes(b).expect_err("must fail");
        assert!(matches!(bad(&bytes[..10]), DataError::Canonical { .. }));
        assert!(matches!(
            bad(&bytes[..bytes.len() - 1]),
            DataError::Canonical { .. }
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(bad(&longer), DataError::Canonical { .. }));
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert!(matches!(bad(&magic), DataError::Canonical { .. }));
        let mut version = bytes.clone();
        version[4] = 2;
        assert!(matches!(bad(&version), DataError::Canonical { .. }));
        let mut label = bytes.clone();
        let at = label.len() - 8;
        label[at] = 3;
        assert!(matches!(
            bad(&label),
            DataError::LabelOutOfRange {
                sample: 0,
                label: 3,
                ..
            }
        ));
        let mut input = bytes.clone();
        input[18..20].copy_from_slice(&(-1025i16).to_le_bytes());
        assert!(matches!(
            bad(&input),
            DataError::InputOutOfRange { value: -1025, .. }
        ));
        let mut huge = bytes.clone();
        huge[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        huge[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(bad(&huge), DataError::Canonical { .. }));
        let mut invalid = tiny();
        invalid.labels.push(0);
        assert!(invalid.to_canonical_bytes().is_err());
    }
}
