//! Canonical bytes of a model and optimizer state, and the state hash `h_i`: a commitment
//! to every tensor's name, shape and row root (docs/commitments.md §3), so that a dispute can
//! open one tensor of a state on-chain without the rest of its bytes.
//!
//! ```text
//! "PDLS" | version u16 = 1 | tensor count u32 |
//!   per tensor, in ascending byte order of name:
//!   name length u16 | name (UTF-8) | rank u8 | rank × dim u32 | data: i32 × Π dims, row-major
//! ```
//!
//! Every integer is little-endian. There is exactly one encoding of a state, so the hash is
//! the same on every machine.

use alloy_primitives::{B256, keccak256};

use crate::CoreError;

/// The first four bytes of canonical state bytes.
pub const STATE_MAGIC: [u8; 4] = *b"PDLS";
/// The version of the state encoding that this build reads and writes.
pub const STATE_VERSION: u16 = 1;

/// Domain tag at the start of every state hash preimage.
pub const STATE_HASH_TAG: &[u8; 14] = b"pedals.state.2";

/// One tensor's part of a state hash: `keccak256(name)`, [`shape_hash`] of its shape, and its
/// row root (zero for a tensor of no elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateEntry {
    /// `keccak256` of the UTF-8 name.
    pub name_hash: B256,
    /// [`shape_hash`] of the shape.
    pub shape_hash: B256,
    /// The tensor's row root.
    pub root: B256,
}

/// `keccak256(u8 rank ‖ u32_be(dim)…)`: the shape as the state hash commits to it.
pub fn shape_hash(shape: &[u32]) -> B256 {
    let mut buf = Vec::with_capacity(1 + 4 * shape.len());
    buf.push(shape.len() as u8);
    for dim in shape {
        buf.extend_from_slice(&dim.to_be_bytes());
    }
    keccak256(buf)
}

/// The state hash of canonical state bytes: they must decode (strictly), then
/// [`ModelState::state_hash`]. What a node checks a checkpoint or a result blob with.
pub fn state_hash_of_bytes(bytes: &[u8]) -> Result<B256, CoreError> {
    ModelState::from_canonical_bytes(bytes)?.state_hash()
}

/// The trace leaf that a checkpoint blob stands for: its state hash when the bytes are a
/// canonical state (a training checkpoint, an inference job's model), otherwise the keccak256
/// of the bytes (a batch-inference chunk's outputs, which never start with the state magic:
/// they are logits within ±1024). docs/commitments.md §3 and §7.
pub fn checkpoint_hash(bytes: &[u8]) -> B256 {
    state_hash_of_bytes(bytes).unwrap_or_else(|_| keccak256(bytes))
}

/// The state hash of `entries` (in encoding order): see [`ModelState::state_hash`].
pub fn state_hash_of(entries: &[StateEntry]) -> B256 {
    let mut buf = Vec::with_capacity(STATE_HASH_TAG.len() + 4 + 96 * entries.len());
    buf.extend_from_slice(STATE_HASH_TAG);
    buf.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        buf.extend_from_slice(e.name_hash.as_slice());
        buf.extend_from_slice(e.shape_hash.as_slice());
        buf.extend_from_slice(e.root.as_slice());
    }
    keccak256(buf)
}

/// Bytes of the header: magic, version, tensor count.
const HEADER_LEN: usize = 4 + 2 + 4;
/// The fewest bytes a tensor can take: empty name, rank 0, one element.
const MIN_TENSOR_LEN: usize = 2 + 1 + 4;

/// A named integer tensor of a state: its shape and its elements in row-major order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateTensor {
    /// Name, unique within a state (for example `layer1.weight` or `layer1.weight.momentum`).
    pub name: String,
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: Vec<u32>,
    /// Elements, row-major; exactly the product of `shape` of them (1 for a scalar).
    pub data: Vec<i32>,
}

impl StateTensor {
    /// A tensor, checked with [`Self::validate`].
    pub fn new(
        name: impl Into<String>,
        shape: Vec<u32>,
        data: Vec<i32>,
    ) -> Result<Self, CoreError> {
        let tensor = Self {
            name: name.into(),
            shape,
            data,
        };
        tensor.validate()?;
        Ok(tensor)
    }

    /// Number of elements the shape implies, or `None` if that overflows `u64`.
    pub fn element_count(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
    }

    /// Checks what the encoding needs: a name of at most 65535 bytes, at most 255 dimensions,
    /// and as many elements as the shape implies.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.name.len() > usize::from(u16::MAX) {
            return Err(CoreError::TensorNameTooLong {
                name: crate::error::shorten(&self.name, 40),
                len: self.name.len(),
            });
        }
        if self.shape.len() > usize::from(u8::MAX) {
            return Err(CoreError::TensorRankTooLarge {
                name: self.name.clone(),
                rank: self.shape.len(),
            });
        }
        let expected = self.element_count();
        if expected != Some(self.data.len() as u64) {
            return Err(CoreError::TensorShapeMismatch {
                name: self.name.clone(),
                shape: self.shape.clone(),
                expected: expected.unwrap_or(u64::MAX),
                actual: self.data.len(),
            });
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        2 + self.name.len() + 1 + 4 * self.shape.len() + 4 * self.data.len()
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        // validate() has bounded the name length and the rank.
        out.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.push(self.shape.len() as u8);
        for dim in &self.shape {
            out.extend_from_slice(&dim.to_le_bytes());
        }
        put_i32s(out, &self.data);
    }
}

/// A model and optimizer state: the tensors that a training step reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ModelState {
    /// The tensors. Their order here does not matter to the encoding, which sorts them by
    /// name; [`ModelState::new`] and [`ModelState::from_canonical_bytes`] keep them sorted.
    pub tensors: Vec<StateTensor>,
}

impl ModelState {
    /// A state of `tensors`, sorted by name and checked as the encoding requires.
    pub fn new(mut tensors: Vec<StateTensor>) -> Result<Self, CoreError> {
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let state = Self { tensors };
        state.canonical_order()?;
        Ok(state)
    }

    /// The tensor called `name`, if any.
    pub fn tensor(&self, name: &str) -> Option<&StateTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensors in encoding order, after checking each one and that names are distinct.
    fn canonical_order(&self) -> Result<Vec<&StateTensor>, CoreError> {
        if u32::try_from(self.tensors.len()).is_err() {
            return Err(CoreError::TooManyTensors {
                count: self.tensors.len(),
            });
        }
        let mut order: Vec<&StateTensor> = self.tensors.iter().collect();
        order.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in order.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(CoreError::DuplicateTensorName {
                    name: pair[0].name.clone(),
                });
            }
        }
        for tensor in &order {
            tensor.validate()?;
        }
        Ok(order)
    }

    fn encode_into(order: &[&StateTensor], out: &mut Vec<u8>) {
        out.extend_from_slice(&STATE_MAGIC);
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        out.extend_from_slice(&(order.len() as u32).to_le_bytes());
        for tensor in order {
            tensor.encode_into(out);
        }
    }

    /// The canonical bytes of this state.
    ///
    /// Fails on duplicate names, a name over 65535 bytes, a rank over 255, data that does not
    /// fill the shape, or more than `u32::MAX` tensors.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, CoreError> {
        let order = self.canonical_order()?;
        let len = HEADER_LEN + order.iter().map(|t| t.encoded_len()).sum::<usize>();
        let mut bytes = Vec::with_capacity(len);
        Self::encode_into(&order, &mut bytes);
        debug_assert_eq!(bytes.len(), len);
        Ok(bytes)
    }

    /// The state hash: `keccak256(STATE_HASH_TAG ‖ u32_be(count) ‖ entry…)`, one 96-byte
    /// entry per tensor in name order, `keccak256(name) ‖ shape_hash(shape) ‖ root` with
    /// `root` the tensor's row root ([`crate::tensor_root`]), or the zero word for a tensor of
    /// no elements. Fails as [`Self::to_canonical_bytes`] does.
    ///
    /// It commits to exactly what the canonical bytes hold (names, shapes, elements), and lets
    /// the dispute referee open one tensor from 96 bytes per tensor.
    pub fn state_hash(&self) -> Result<B256, CoreError> {
        Ok(state_hash_of(&self.state_entries()?))
    }

    /// The `(name hash, shape hash, row root)` entry of every tensor, in encoding order: what
    /// the referee is given to open a state hash on-chain.
    pub fn state_entries(&self) -> Result<Vec<StateEntry>, CoreError> {
        use rayon::prelude::*;
        // Tensors are hashed in parallel: the two largest of an MLP dominate, and the hash
        // runs after every training step.
        self.canonical_order()?
            .into_par_iter()
            .map(|t| {
                let root = if t.data.is_empty() {
                    B256::ZERO
                } else {
                    // Every row of a non-empty tensor holds at least one element.
                    crate::tensor_root(t)?
                };
                Ok(StateEntry {
                    name_hash: keccak256(t.name.as_bytes()),
                    shape_hash: shape_hash(&t.shape),
                    root,
                })
            })
            .collect()
    }

    /// Reads canonical bytes, strictly: the magic and version must match, names must be valid
    /// UTF-8 in strictly ascending byte order, and the input must end right after the last
    /// tensor. Never panics, and never allocates more than the input's size implies.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, CoreError> {
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.take(4, "the magic")?;
        if magic != STATE_MAGIC {
            return Err(CoreError::StateBadMagic {
                found: [magic[0], magic[1], magic[2], magic[3]],
            });
        }
        let version = r.u16("the version")?;
        if version != STATE_VERSION {
            return Err(CoreError::StateUnsupportedVersion {
                found: version,
                supported: STATE_VERSION,
            });
        }
        let count = r.u32("the tensor count")? as usize;
        let mut tensors: Vec<StateTensor> =
            Vec::with_capacity(count.min(r.remaining() / MIN_TENSOR_LEN));
        for _ in 0..count {
            let name_len = r.u16("a name length")?;
            let name_offset = r.pos;
            let name = std::str::from_utf8(r.take(u64::from(name_len), "a tensor name")?).map_err(
                |_| CoreError::TensorNameNotUtf8 {
                    offset: name_offset,
                },
            )?;
            if let Some(previous) = tensors.last() {
                if previous.name.as_str() == name {
                    return Err(CoreError::DuplicateTensorName {
                        name: name.to_owned(),
                    });
                }
                if previous.name.as_str() > name {
                    return Err(CoreError::TensorNamesNotSorted {
                        previous: previous.name.clone(),
                        name: name.to_owned(),
                    });
                }
            }
            let name = name.to_owned();
            let rank = r.u8("a rank")?;
            let dims = r.take(4 * u64::from(rank), "the dimensions")?;
            let shape: Vec<u32> = dims
                .chunks_exact(4)
                .map(|d| u32::from_le_bytes([d[0], d[1], d[2], d[3]]))
                .collect();
            let data_len = shape
                .iter()
                .try_fold(4u64, |acc, &d| acc.checked_mul(u64::from(d)))
                .unwrap_or(u64::MAX);
            let data = i32s_from_le(r.take(data_len, "tensor data")?);
            tensors.push(StateTensor { name, shape, data });
        }
        if r.remaining() != 0 {
            return Err(CoreError::StateTrailingBytes {
                count: r.remaining(),
            });
        }
        Ok(Self { tensors })
    }
}

/// Appends `data` as i32 LE: a copy of the memory itself on a little-endian machine (fast
/// even in an unoptimized build), element by element elsewhere.
fn put_i32s(out: &mut Vec<u8>, data: &[i32]) {
    #[cfg(target_endian = "little")]
    out.extend_from_slice(bytemuck::cast_slice(data));
    #[cfg(not(target_endian = "little"))]
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads i32 LE values; `bytes.len()` is a multiple of 4.
fn i32s_from_le(bytes: &[u8]) -> Vec<i32> {
    let mut out = vec![0i32; bytes.len() / 4];
    bytemuck::cast_slice_mut::<i32, u8>(&mut out).copy_from_slice(bytes);
    #[cfg(not(target_endian = "little"))]
    for v in &mut out {
        *v = i32::from_le(*v);
    }
    out
}

/// `keccak256` of `row` as i32 LE bytes.
pub(crate) fn keccak_i32s(row: &[i32]) -> B256 {
    #[cfg(target_endian = "little")]
    let bytes: &[u8] = bytemuck::cast_slice(row);
    #[cfg(not(target_endian = "little"))]
    let bytes = &{
        let mut buf = Vec::with_capacity(4 * row.len());
        put_i32s(&mut buf, row);
        buf
    };
    keccak256(bytes)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], CoreError> {
        let available = self.remaining();
        match usize::try_from(n) {
            Ok(n) if n <= available => {
                let bytes: &'a [u8] = self.bytes;
                let out = &bytes[self.pos..self.pos + n];
                self.pos += n;
                Ok(out)
            }
            _ => Err(CoreError::StateTruncated {
                what,
                offset: self.pos,
                needed: n,
                available,
            }),
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, CoreError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, CoreError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, CoreError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ModelState {
        ModelState::new(vec![
            StateTensor::new("w", vec![2, 3], vec![1, -2, 3, -4, 5, i32::MIN]).expect("w"),
            StateTensor::new("b", vec![3], vec![0, 1, i32::MAX]).expect("b"),
            StateTensor::new("step", vec![], vec![7]).expect("step"),
        ])
        .expect("state")
    }

    #[test]
    fn layout_is_as_documented() {
        let state = ModelState::new(vec![
            StateTensor::new("b", vec![2], vec![1, -1]).expect("b"),
            StateTensor::new("a", vec![], vec![258]).expect("a"),
        ])
        .expect("state");
        let mut expected = b"PDLS".to_vec();
        expected.extend([1, 0]); // version
        expected.extend([2, 0, 0, 0]); // count
        expected.extend([1, 0, b'a', 0, 2, 1, 0, 0]); // "a", rank 0, 258
        expected.extend([1, 0, b'b', 1, 2, 0, 0, 0]); // "b", rank 1, dim 2
        expected.extend([1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]); // 1, -1
        let bytes = state.to_canonical_bytes().expect("encode");
        assert_eq!(bytes, expected);
        // The hash as docs/commitments.md §3 spells it out, by hand.
        let leaf = |row: &[u8]| keccak256([&[0u8][..], keccak256(row).as_slice()].concat());
        let mut pre = b"pedals.state.2".to_vec();
        pre.extend([0, 0, 0, 2]);
        pre.extend(keccak256(b"a"));
        pre.extend(keccak256([0u8]));
        pre.extend(leaf(&[2, 1, 0, 0]));
        pre.extend(keccak256(b"b"));
        pre.extend(keccak256([1u8, 0, 0, 0, 2]));
        pre.extend(leaf(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
        assert_eq!(state.state_hash().expect("hash"), keccak256(&pre));
        assert_eq!(
            ModelState::from_canonical_bytes(&bytes).expect("decode"),
            state
        );
    }

    #[test]
    fn order_of_tensors_does_not_change_the_encoding() {
        let state = sample();
        let mut shuffled = state.clone();
        shuffled.tensors.reverse();
        let bytes = state.to_canonical_bytes().expect("encode");
        assert_eq!(shuffled.to_canonical_bytes().expect("encode"), bytes);
        assert_eq!(
            shuffled.state_hash().expect("hash"),
            state.state_hash().expect("hash")
        );
        assert_eq!(
            ModelState::from_canonical_bytes(&bytes).expect("decode"),
            state
        );
        assert_eq!(state.tensor("b").map(|t| t.data.len()), Some(3));
    }

    #[test]
    fn large_tensors_hash_their_row_root() {
        let data: Vec<i32> = (0..5000).map(|i| i * 7919 - 3_000_000).collect();
        let state = ModelState::new(vec![
            StateTensor::new("big", vec![50, 100], data).expect("big"),
        ])
        .expect("state");
        let bytes = state.to_canonical_bytes().expect("encode");
        assert_eq!(bytes.len(), HEADER_LEN + 2 + 3 + 1 + 8 + 20_000);
        let entry = StateEntry {
            name_hash: keccak256(b"big"),
            shape_hash: shape_hash(&[50, 100]),
            root: crate::tensor_root(&state.tensors[0]).expect("root"),
        };
        assert_eq!(state.state_hash().expect("hash"), state_hash_of(&[entry]));
        let mut changed = state.clone();
        changed.tensors[0].data[4321] += 1;
        assert_ne!(changed.state_hash().expect("hash"), state_hash_of(&[entry]));
        let mut reshaped = state.clone();
        reshaped.tensors[0].shape = vec![100, 50];
        assert_ne!(
            reshaped.state_hash().expect("hash"),
            state_hash_of(&[entry])
        );
    }

    #[test]
    fn invalid_states_do_not_encode() {
        let dup = ModelState {
            tensors: vec![
                StateTensor {
                    name: "a".into(),
                    shape: vec![],
                    data: vec![1],
                },
                StateTensor {
                    name: "a".into(),
                    shape: vec![],
                    data: vec![2],
                },
            ],
        };
        assert_eq!(
            dup.to_canonical_bytes(),
            Err(CoreError::DuplicateTensorName { name: "a".into() })
        );
        assert!(matches!(
            StateTensor::new("x", vec![2, 2], vec![1, 2, 3]),
            Err(CoreError::TensorShapeMismatch {
                expected: 4,
                actual: 3,
                ..
            })
        ));
        assert!(matches!(
            StateTensor::new("x", vec![u32::MAX; 3], vec![]),
            Err(CoreError::TensorShapeMismatch {
                expected: u64::MAX,
                ..
            })
        ));
        assert!(matches!(
            StateTensor::new("x", vec![1; 256], vec![0]),
            Err(CoreError::TensorRankTooLarge { rank: 256, .. })
        ));
        assert!(matches!(
            StateTensor::new("x".repeat(65536), vec![], vec![0]),
            Err(CoreError::TensorNameTooLong { len: 65536, .. })
        ));
    }

    #[test]
    fn strict_decoding() {
        let bytes = sample().to_canonical_bytes().expect("encode");

        let mut b = bytes.clone();
        b.push(0);
        assert_eq!(
            ModelState::from_canonical_bytes(&b),
            Err(CoreError::StateTrailingBytes { count: 1 })
        );
        assert!(matches!(
            ModelState::from_canonical_bytes(&bytes[..bytes.len() - 1]),
            Err(CoreError::StateTruncated {
                what: "tensor data",
                ..
            })
        ));
        let mut b = bytes.clone();
        b[0] = b'X';
        assert!(matches!(
            ModelState::from_canonical_bytes(&b),
            Err(CoreError::StateBadMagic { .. })
        ));
        let mut b = bytes.clone();
        b[4] = 2;
        assert_eq!(
            ModelState::from_canonical_bytes(&b),
            Err(CoreError::StateUnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
        // Names are "b", "step", "w": rename "b" to "x" so the order breaks.
        let mut b = bytes.clone();
        b[HEADER_LEN + 2] = b'x';
        assert!(matches!(
            ModelState::from_canonical_bytes(&b),
            Err(CoreError::TensorNamesNotSorted { .. })
        ));
        let mut b = bytes.clone();
        b[HEADER_LEN + 2] = 0xff;
        assert_eq!(
            ModelState::from_canonical_bytes(&b),
            Err(CoreError::TensorNameNotUtf8 {
                offset: HEADER_LEN + 2
            })
        );
        // A huge declared count or shape fails cleanly instead of allocating.
        let mut b = bytes.clone();
        b[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            ModelState::from_canonical_bytes(&b),
            Err(CoreError::StateTruncated { .. })
        ));
        let mut b = b"PDLS\x01\x00\x01\x00\x00\x00\x01\x00a\x03".to_vec();
        b.extend([0xff; 12]);
        assert!(matches!(
            ModelState::from_canonical_bytes(&b),
            Err(CoreError::StateTruncated {
                needed: u64::MAX,
                ..
            })
        ));
        assert!(matches!(
            ModelState::from_canonical_bytes(b"PD"),
            Err(CoreError::StateTruncated {
                what: "the magic",
                ..
            })
        ));
    }

    #[test]
    fn duplicate_names_in_bytes_are_rejected() {
        let mut bytes = b"PDLS\x01\x00\x02\x00\x00\x00".to_vec();
        for _ in 0..2 {
            bytes.extend([1, 0, b'a', 0, 9, 0, 0, 0]);
        }
        assert_eq!(
            ModelState::from_canonical_bytes(&bytes),
            Err(CoreError::DuplicateTensorName { name: "a".into() })
        );
    }

    #[test]
    fn empty_state_encodes() {
        let bytes = ModelState::default().to_canonical_bytes().expect("encode");
        assert_eq!(bytes, b"PDLS\x01\x00\x00\x00\x00\x00");
        assert_eq!(
            ModelState::from_canonical_bytes(&bytes),
            Ok(ModelState::default())
        );
    }
}
