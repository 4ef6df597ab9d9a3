//! Typed parsers of the ROCm tools' text outputs, one file per tool.
//!
//! Every parser takes the whole output as the tool printed it and returns a typed report or a
//! [`ParseError`] naming the line (1-based) that broke it. The tables they read share one shape
//! — a header of column labels, then one row per label — and the helpers here read it.

pub mod amd_smi;
pub mod bandwidth_test;
pub mod rocm_smi;
pub mod transfer_bench;

use hsa_p2p_core::facts::PciAddress;
use hsa_p2p_core::link::LinkType;

/// Why a tool's output could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// A section every output of the tool has is missing.
    #[error("no \"{section}\" section (after line {lines}, the end of the output)")]
    MissingSection {
        /// The section's title.
        section: &'static str,
        /// Lines in the output.
        lines: usize,
    },
    /// The output is of another version's format, which this parser does not read.
    #[error("line {line}: {format}")]
    OtherFormat {
        /// 1-based line number of what gives the format away.
        line: usize,
        /// Which format, and what reads it.
        format: &'static str,
    },
    /// A line is not what the format has there.
    #[error("line {line}: expected {expected}, found {found:?}")]
    Unexpected {
        /// 1-based line number.
        line: usize,
        /// What the format has there.
        expected: String,
        /// The line.
        found: String,
    },
    /// A table row has another number of cells than its header.
    #[error("line {line}: row {label:?} has {found} cells, its header {expected}")]
    RowWidth {
        /// 1-based line number.
        line: usize,
        /// The row's label.
        label: String,
        /// Columns in the header.
        expected: usize,
        /// Cells in the row.
        found: usize,
    },
    /// A cell cannot be read as the table's values.
    #[error("line {line}: cell {cell:?} of column {column} is not {expected}")]
    BadCell {
        /// 1-based line number.
        line: usize,
        /// 0-based column.
        column: usize,
        /// The cell.
        cell: String,
        /// What the table holds.
        expected: &'static str,
    },
}

/// The output's lines with their 1-based numbers.
pub(crate) fn numbered(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .collect()
}

/// One row of a table: its line, label and cells.
#[derive(Clone, Debug)]
pub(crate) struct Row<'a> {
    pub line: usize,
    pub label: String,
    pub cells: Vec<&'a str>,
}

/// Reads a cell with `parse`, or names the cell in the error.
pub(crate) fn cell<T>(
    row: &Row<'_>,
    column: usize,
    expected: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, ParseError> {
    let text = row.cells[column];
    parse(text).ok_or_else(|| ParseError::BadCell {
        line: row.line,
        column,
        cell: text.to_string(),
        expected,
    })
}

/// Reads every cell of `rows` with `parse` into a square matrix.
pub(crate) fn matrix<T>(
    rows: &[Row<'_>],
    expected: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<Vec<T>>, ParseError> {
    rows.iter()
        .map(|row| {
            (0..row.cells.len())
                .map(|column| cell(row, column, expected, &parse))
                .collect()
        })
        .collect()
}

/// Reads `count` rows from `lines`: row `index` is the next line, its first word is a label
/// `is_label(index, label)` accepts, and it has `count` cells after it. `name(index)` names the
/// row in errors; `end` is the output's last line number.
pub(crate) fn rows<'a>(
    mut lines: impl Iterator<Item = (usize, &'a str)>,
    end: usize,
    count: usize,
    name: impl Fn(usize) -> String,
    is_label: impl Fn(usize, &str) -> bool,
) -> Result<Vec<Row<'a>>, ParseError> {
    (0..count)
        .map(|index| {
            let Some((line, text)) = lines.next() else {
                return Err(ParseError::Unexpected {
                    line: end,
                    expected: name(index),
                    found: "the end of the output".into(),
                });
            };
            let mut cells = text.split_whitespace();
            let label = cells.next().unwrap_or_default().to_string();
            if !is_label(index, &label) {
                return Err(ParseError::Unexpected {
                    line,
                    expected: name(index),
                    found: text.to_string(),
                });
            }
            let row = Row {
                line,
                label,
                cells: cells.collect(),
            };
            check_width(&row, count)?;
            Ok(row)
        })
        .collect()
}

/// Reads a square table whose diagonal cells are `diagonal` (`None`) and whose other cells
/// `parse` reads.
pub(crate) fn off_diagonal<T>(
    rows: &[Row<'_>],
    diagonal: &'static str,
    expected: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<Vec<Option<T>>>, ParseError> {
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            (0..row.cells.len())
                .map(|column| {
                    if column == index {
                        cell(row, column, diagonal, |text| {
                            (text == diagonal).then_some(None)
                        })
                    } else {
                        cell(row, column, expected, &parse).map(Some)
                    }
                })
                .collect()
        })
        .collect()
}

/// Checks that a row has one cell per column.
pub(crate) fn check_width(row: &Row<'_>, columns: usize) -> Result<(), ParseError> {
    if row.cells.len() == columns {
        Ok(())
    } else {
        Err(ParseError::RowWidth {
            line: row.line,
            label: row.label.clone(),
            expected: columns,
            found: row.cells.len(),
        })
    }
}

/// `N/A` (the tools' "nothing measured") as `None`, anything else through `parse`.
pub(crate) fn or_not_available<T>(
    parse: impl Fn(&str) -> Option<T>,
) -> impl Fn(&str) -> Option<Option<T>> {
    move |text| {
        if text == "N/A" {
            Some(None)
        } else {
            parse(text).map(Some)
        }
    }
}

/// A bandwidth in GB/s: a finite, non-negative decimal.
pub(crate) fn gigabytes_per_second(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && *value >= 0.0)
}

/// The link types the SMI tools print (`PCIE`, `XGMI`); `None` for anything else.
pub(crate) fn smi_link_type(text: &str) -> Option<LinkType> {
    match text {
        "PCIE" => Some(LinkType::Pcie),
        "XGMI" => Some(LinkType::Xgmi),
        _ => None,
    }
}

/// A full PCI address, `0000:19:00.0`.
pub(crate) fn pci_address(text: &str) -> Option<PciAddress> {
    crate::machine_facts::parse_address(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidths_and_not_available_cells() {
        let parse = or_not_available(gigabytes_per_second);
        assert_eq!(parse("10.261399"), Some(Some(10.261399)));
        assert_eq!(parse("N/A"), Some(None));
        assert_eq!(parse("-1.0"), None);
        assert_eq!(parse("inf"), None);
        assert_eq!(parse("fast"), None);
    }
}
