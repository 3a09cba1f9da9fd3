//! CSV: one sample per line, a label column first or last, numeric feature cells quantized to
//! Q8.
//!
//! ```text
//! label,x1,x2        ← optional header: the first row is one when any of its cells is not a number
//! 1,0.5,-0.25        → label 1, inputs [128, -64]
//! 0,0.001953125,1e-2 → label 0, inputs [0 (0.5 rounds to even), 3 (2.56)]
//! ```
//!
//! Cells are separated by commas and trimmed of whitespace; lines may end in `\n` or `\r\n`;
//! blank lines are skipped. Quoting is not supported.

use serde::{Deserialize, Serialize};

use super::error::shorten;
use super::{DataError, Dataset, INPUT_FRAC_BITS, INPUT_MAX, MAX_CLASSES, check_classes};

/// Which column of a CSV holds the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelColumn {
    /// The first cell of each row is the label.
    First,
    /// The last cell of each row is the label.
    Last,
}

/// Quantizes a real input to Q8: `round_half_even(x · 256)`, or `None` if that is not
/// finite or its magnitude exceeds [`INPUT_MAX`].
///
/// The product with 256 is exact in `f64` (a power of two), and rounding half to even is
/// exact, so the result is a pure function of the `f64` value: `0.5 / 256 = 0.001953125`
/// gives 0, `1.5 / 256` gives 2, `-0.5 / 256` gives 0, and 4.001953125 (1024.5 / 256) gives
/// 1024.
pub fn quantize_input(x: f64) -> Option<i32> {
    let q = (x * f64::from(1u32 << INPUT_FRAC_BITS)).round_ties_even();
    // The comparison is false for NaN, so NaN and ±inf are rejected too.
    if q.abs() <= f64::from(INPUT_MAX) {
        Some(q as i32)
    } else {
        None
    }
}

/// A cell as a finite number, by Rust's correctly rounded `f64` parser.
fn parse_number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// A label cell: ASCII digits only (leading zeros allowed), fitting in a `u32`.
fn parse_label(cell: &str) -> Option<u32> {
    if cell.is_empty() || !cell.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    cell.parse().ok()
}

impl Dataset {
    /// Parses CSV text: one sample per line, the label in the first or last column, every
    /// other cell a feature. Feature cells are parsed as `f64` by Rust's standard parser
    /// (correctly rounded, the same on every machine) and quantized with
    /// [`quantize_input`]; a value that quantizes beyond `±INPUT_MAX` is an error naming its
    /// line and column. Labels are non-negative integers written with digits only.
    ///
    /// The first non-blank row is a header, and skipped, when any of its cells does not parse
    /// as a finite number. `classes` of `None` means the largest label + 1. Every row must
    /// have as many cells as the first row, and at least two.
    pub fn from_csv(
        text: &str,
        label_column: LabelColumn,
        classes: Option<u32>,
    ) -> Result<Dataset, DataError> {
        if let Some(classes) = classes {
            check_classes(classes)?;
        }
        let mut width = None;
        let mut inputs = Vec::new();
        let mut labels = Vec::new();
        for (index, row) in text.lines().enumerate() {
            let line = index + 1;
            if row.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = row.split(',').map(str::trim).collect();
            let Some(width) = width else {
                if cells.len() < 2 {
                    return Err(DataError::CsvTooFewColumns {
                        line,
                        found: cells.len(),
                    });
                }
                width = Some(cells.len());
                if cells.iter().any(|cell| parse_number(cell).is_none()) {
                    continue; // a header
                }
                parse_row(
                    &cells,
                    line,
                    label_column,
                    classes,
                    &mut inputs,
                    &mut labels,
                )?;
                continue;
            };
            if cells.len() != width {
                return Err(DataError::CsvRagged {
                    line,
                    expected: width,
                    found: cells.len(),
                });
            }
            parse_row(
                &cells,
                line,
                label_column,
                classes,
                &mut inputs,
                &mut labels,
            )?;
        }
        let (Some(width), false) = (width, labels.is_empty()) else {
            return Err(DataError::Empty {
                what: "the CSV text".to_owned(),
            });
        };
        let classes = match classes {
            Some(classes) => classes,
            None => {
                let max = labels.iter().copied().max().unwrap_or(0);
                if max >= MAX_CLASSES {
                    return Err(DataError::TooManyClasses {
                        classes: max.saturating_add(1),
                    });
                }
                max + 1
            }
        };
        Ok(Dataset {
            name: "csv".to_owned(),
            features: width - 1,
            classes,
            inputs,
            labels,
        })
    }

    /// Reads a CSV file (UTF-8) and parses it with [`Self::from_csv`]; the dataset is named
    /// after the file's stem. [`crate::DatasetSource`] does the same and also returns the
    /// file's CID.
    pub fn from_csv_file(
        path: impl AsRef<std::path::Path>,
        label_column: LabelColumn,
        classes: Option<u32>,
    ) -> Result<Dataset, DataError> {
        let source = super::DatasetSource::Csv {
            path: path.as_ref().to_path_buf(),
            label_column,
            classes,
        };
        Ok(source.load()?.dataset)
    }
}

/// Parses one data row of `cells` (already checked to have the first row's width).
fn parse_row(
    cells: &[&str],
    line: usize,
    label_column: LabelColumn,
    classes: Option<u32>,
    inputs: &mut Vec<i32>,
    labels: &mut Vec<u32>,
) -> Result<(), DataError> {
    let (label_at, features) = match label_column {
        LabelColumn::First => (0, 1..cells.len()),
        LabelColumn::Last => (cells.len() - 1, 0..cells.len() - 1),
    };
    let label_cell = cells[label_at];
    let label = parse_label(label_cell).ok_or_else(|| DataError::CsvBadLabel {
        line,
        column: label_at + 1,
        cell: shorten(label_cell, 40),
    })?;
    if let Some(classes) = classes
        && label >= classes
    {
        return Err(DataError::CsvLabelOutOfRange {
            line,
            label,
            classes,
        });
    }
    for at in features {
        let cell = cells[at];
        let x = parse_number(cell).ok_or_else(|| DataError::CsvNotNumeric {
            line,
            column: at + 1,
            cell: shorten(cell, 40),
        })?;
        let q = quantize_input(x).ok_or_else(|| DataError::CsvValueOutOfRange {
            line,
            column: at + 1,
            cell: shorten(cell, 40),
        })?;
        inputs.push(q);
    }
    labels.push(label);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes_half_to_even() {
        let cases = [
            (0.0, 0),
            (-0.0, 0),
            (1.0, 256),
            (-1.0, -256),
            (0.001953125, 0),   // 0.5 / 256
            (0.005859375, 2),   // 1.5 / 256
            (0.009765625, 2),   // 2.5 / 256
            (-0.001953125, 0),  // -0.5 / 256
            (-0.005859375, -2), // -1.5 / 256
            (0.0019531251, 1),  // just above a tie
            (0.0019531249, 0),  // just below a tie
            (0.01, 3),          // 2.56
            (4.0, 1024),
            (-4.0, -1024),
            (4.001953125, 1024), // 1024.5 rounds to even
            (-4.001953125, -1024),
            (1e-300, 0),
        ];
        for (x, q) in cases {
            assert_eq!(quantize_input(x), Some(q), "{x}");
        }
        for x in [4.0058, 4.005859375, -4.006, 1e300, f64::INFINITY, f64::NAN] {
            assert_eq!(quantize_input(x), None, "{x}");
        }
    }

    #[test]
    fn parses_with_and_without_header() {
        let with = "label,a,b\n1,0.5,-0.25\r\n\n0, 0.001953125 ,1e-2\n";
        let d = Dataset::from_csv(with, LabelColumn::First, None).expect("valid");
        assert_eq!((d.features, d.classes), (2, 2));
        assert_eq!(d.inputs, vec![128, -64, 0, 3]);
        assert_eq!(d.labels, vec![1, 0]);
        assert!(d.validate().is_ok());

        let without = "0.5,-0.25,1\n0.001953125,1e-2,0";
        let e = Dataset::from_csv(without, LabelColumn::Last, Some(5)).expect("valid");
        assert_eq!(e.inputs, d.inputs);
        assert_eq!(e.labels, d.labels);
        assert_eq!(e.classes, 5);
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = |text: &str, classes| {
            Dataset::from_csv(text, LabelColumn::First, classes).expect_err("must fail")
        };
        assert!(matches!(err("", None), DataError::Empty { .. }));
        assert!(matches!(err("a,b\n\n", None), DataError::Empty { .. }));
        assert!(matches!(
            err("1\n2", None),
            DataError::CsvTooFewColumns { line: 1, found: 1 }
        ));
        assert!(matches!(
            err("1,2\n1,2,3", None),
            DataError::CsvRagged {
                line: 2,
                expected: 2,
                found: 3
            }
        ));
        assert!(matches!(
            err("1,2\n1,x", None),
            DataError::CsvNotNumeric {
                line: 2,
                column: 2,
                ..
            }
        ));
        assert!(matches!(
            err("1,2\n1,NaN", None),
            DataError::CsvNotNumeric {
                line: 2,
                column: 2,
                ..
            }
        ));
        assert!(matches!(
            err("1,2,5\n1,2,4.01", None),
            DataError::CsvValueOutOfRange {
                line: 1,
                column: 3,
                ..
            }
        ));
        assert!(matches!(
            err("1,0\n-1,0", None),
            DataError::CsvBadLabel {
                line: 2,
                column: 1,
                ..
            }
        ));
        assert!(matches!(
            err("1,0\n1.5,0", None),
            DataError::CsvBadLabel {
                line: 2,
                column: 1,
                ..
            }
        ));
        assert!(matches!(
            err("1,0\n3,0", Some(3)),
            DataError::CsvLabelOutOfRange {
                line: 2,
                label: 3,
                classes: 3
            }
        ));
        assert!(matches!(err("1,0", Some(0)), DataError::NoClasses));
        assert!(matches!(
            err("65536,0", None),
            DataError::TooManyClasses { classes: 65537 }
        ));
        assert!(matches!(
            err("4294967295,0", None),
            DataError::TooManyClasses { classes: u32::MAX }
        ));
        assert!(matches!(
            err("99999999999,0", None),
            DataError::CsvBadLabel { line: 1, .. }
        ));
    }
}
