//! The error type of the core crate.

/// Everything that can go wrong building or checking a commitment, with a message that says
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A Merkle tree needs at least one leaf.
    #[error("cannot commit to an empty list: a Merkle tree needs at least one leaf")]
    EmptyTree,
    /// A proof was asked for a leaf that the tree does not have.
    #[error(
        "leaf {index} is out of range: the tree has {leaf_count} leaves (indices 0..{leaf_count})"
    )]
    LeafIndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// Number of leaves in the tree.
        leaf_count: u64,
    },
    /// A step transition `i → i+1` was asked for a step that the trace does not have.
    #[error(
        "step {step} is out of range: a trace of {steps} steps has transitions 0..{steps} \
         (step i goes from h_i to h_(i+1))"
    )]
    StepOutOfRange {
        /// The step asked for.
        step: u64,
        /// Number of steps in the trace.
        steps: u64,
    },
    /// A state hash and its proof do not check out against the trace root.
    #[error(
        "the opening of h_{index} does not match the trace root: {reason}; ask the worker for \
         the checkpoint and its proof again, and challenge the step if it cannot produce one"
    )]
    TraceProof {
        /// Index of the state hash in the trace (`0..=steps`).
        index: u64,
        /// What was wrong.
        reason: String,
    },
    /// A string or byte string is not a CID.
    #[error(
        "cannot parse {input} as a CID ({reason}); a Pedals CID is a base32 CIDv1 string \
         starting with 'b', or its 36-byte binary form starting with 0x01"
    )]
    CidParse {
        /// The input, shortened (bytes are shown in hex).
        input: String,
        /// What the parser said.
        reason: String,
    },
    /// A valid CID of a kind that Pedals does not use.
    #[error(
        "CID {cid} is a {found}; Pedals uses only CIDv1 with the raw codec (0x55) and a 32-byte \
         sha2-256 multihash (0x12): recompute the CID over the whole blob with pedals_core::cid_of"
    )]
    UnsupportedCid {
        /// The CID, as a string.
        cid: String,
        /// What it is instead (version, codec, hash function).
        found: String,
    },
    /// Content does not hash to the CID it was fetched under.
    #[error(
        "content does not match its CID: expected {expected}, the bytes hash to {actual}; the \
         blob is corrupt or was tampered with, so discard it and fetch it from another peer"
    )]
    CidMismatch {
        /// The CID the content was fetched under.
        expected: String,
        /// The CID of the bytes received.
        actual: String,
    },
    /// Canonical state bytes end early.
    #[error(
        "state bytes end early: {what} at offset {offset} needs {needed} bytes but only \
         {available} remain; the checkpoint is truncated, fetch it again"
    )]
    StateTruncated {
        /// The field being read.
        what: &'static str,
        /// Its offset in the input.
        offset: usize,
        /// Bytes it needs (saturated at `u64::MAX` when the declared size overflows).
        needed: u64,
        /// Bytes left in the input.
        available: usize,
    },
    /// Canonical state bytes do not start with `PDLS`.
    #[error("not a Pedals state: the bytes start with {found:02x?}, not the magic b\"PDLS\"")]
    StateBadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// Canonical state bytes of a version that this build does not read.
    #[error(
        "state encoding version {found} is not supported (this build reads version {supported}); \
         upgrade pedals to read it"
    )]
    StateUnsupportedVersion {
        /// The version in the input.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// Canonical state bytes go on after the last tensor.
    #[error(
        "{count} unexpected bytes after the last tensor; canonical state bytes end exactly \
         after the last tensor's data"
    )]
    StateTrailingBytes {
        /// How many bytes are left over.
        count: usize,
    },
    /// Tensor names in canonical bytes are not in ascending byte order.
    #[error(
        "tensor {name:?} comes after {previous:?}; canonical state bytes list tensors in \
         ascending byte order of their names"
    )]
    TensorNamesNotSorted {
        /// The name before.
        previous: String,
        /// The name out of order.
        name: String,
    },
    /// Two tensors share a name.
    #[error("two tensors are named {name:?}; every tensor of a state needs a distinct name")]
    DuplicateTensorName {
        /// The repeated name.
        name: String,
    },
    /// A tensor name in canonical bytes is not UTF-8.
    #[error("the tensor name at offset {offset} is not valid UTF-8")]
    TensorNameNotUtf8 {
        /// Offset of the name in the input.
        offset: usize,
    },
    /// A tensor name is too long to encode.
    #[error("tensor name {name:?}… is {len} bytes long; names are limited to 65535 bytes")]
    TensorNameTooLong {
        /// The start of the name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A tensor has more dimensions than the encoding allows.
    #[error("tensor {name:?} has rank {rank}; the state encoding allows at most 255 dimensions")]
    TensorRankTooLarge {
        /// The tensor.
        name: String,
        /// Its rank.
        rank: usize,
    },
    /// A tensor's data does not have as many elements as its shape says.
    #[error(
        "tensor {name:?} has shape {shape:?} ({expected} elements) but {actual} data elements; \
         data is row-major with exactly the product of the dimensions"
    )]
    TensorShapeMismatch {
        /// The tensor.
        name: String,
        /// Its shape.
        shape: Vec<u32>,
        /// Elements the shape implies (saturated at `u64::MAX` on overflow).
        expected: u64,
        /// Elements in its data.
        actual: usize,
    },
    /// A tensor of rank 2 or more has rows but its last dimension is 0.
    #[error(
        "tensor {name:?} of shape {shape:?} has rows of length 0, which cannot be committed row \
         by row; give its last dimension a non-zero size or leave it out of the op trace"
    )]
    EmptyRows {
        /// The tensor.
        name: String,
        /// Its shape.
        shape: Vec<u32>,
    },
    /// A state has more tensors than the encoding allows.
    #[error("the state has {count} tensors; the state encoding allows at most 4294967295")]
    TooManyTensors {
        /// Number of tensors.
        count: usize,
    },
    /// A state published on-chain for a data-availability demand does not fill its tensors.
    #[error("the published state is incomplete or malformed: {0}")]
    Publication(String),
    /// A job id read from the chain is beyond what a node records (2^64).
    #[error("job id {0} is beyond 2^64: no node records a job numbered that high")]
    JobIdTooLarge(alloy_primitives::U256),
}

/// Shortens a user-supplied string for an error message.
pub(crate) fn shorten(s: &str, max_chars: usize) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(max_chars).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}
