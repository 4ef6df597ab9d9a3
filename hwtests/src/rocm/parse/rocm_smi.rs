//! `rocm-smi --showtopo` (optionally with `--showbus`): weight, hops and link type between every
//! two GPUs.
//!
//! Output shape:
//!
//! ```text
//! =========================== Weight between two GPUs ============================
//!        GPU0         GPU1
//! GPU0   0            15
//! GPU1   15           0
//! ============================ Hops between two GPUs =============================
//! ========================== Link Type between two GPUs ==========================
//! GPU0   0            XGMI
//! ================================== Numa Nodes ==================================
//! GPU[0]          : PCI Bus: 0000:19:00.0            (with --showbus)
//! ```
//!
//! The diagonal is `0`. `rocm-smi` numbers GPUs in its own order (rocm_smi_lib sorts them by
//! PCI address); `--showbus` prints each one's address.

use hsa_p2p_core::facts::PciAddress;
use hsa_p2p_core::link::LinkType;

use super::{numbered, off_diagonal, pci_address, rows, smi_link_type, ParseError, Row};

/// A square matrix over the GPUs; `None` on the diagonal.
pub type Matrix<T> = Vec<Vec<Option<T>>>;

/// What `rocm-smi --showtopo` printed.
#[derive(Clone, Debug, PartialEq)]
pub struct RocmSmiTopology {
    /// Number of GPUs.
    pub gpus: usize,
    /// `Weight between two GPUs`.
    pub weight: Matrix<u32>,
    /// `Hops between two GPUs`.
    pub hops: Matrix<u32>,
    /// `Link Type between two GPUs`.
    pub link_type: Matrix<LinkType>,
    /// Each GPU's PCI address, when `--showbus` printed them.
    pub addresses: Option<Vec<PciAddress>>,
}

const WEIGHT: &str = "Weight between two GPUs";
const HOPS: &str = "Hops between two GPUs";
const LINK_TYPE: &str = "Link Type between two GPUs";

/// The rows of the table under the banner with `title`.
fn table<'a>(lines: &[(usize, &'a str)], title: &'static str) -> Result<Vec<Row<'a>>, ParseError> {
    let start = lines
        .iter()
        .position(|(_, text)| text.starts_with('=') && text.contains(title))
        .ok_or(ParseError::MissingSection {
            section: title,
            lines: lines.len(),
        })?;
    let (header_line, header) = lines.get(start + 1).copied().unwrap_or((start + 1, ""));
    let columns: Vec<&str> = header.split_whitespace().collect();
    let expected: Vec<String> = (0..columns.len()).map(|i| format!("GPU{i}")).collect();
    if columns.is_empty() || columns != expected {
        return Err(ParseError::Unexpected {
            line: header_line,
            expected: format!("the header \"GPU0 GPU1 ..\" of \"{title}\""),
            found: header.to_string(),
        });
    }
    rows(
        lines[start + 2..].iter().copied(),
        lines.len(),
        columns.len(),
        |index| format!("row GPU{index} of \"{title}\""),
        |index, label| label == format!("GPU{index}"),
    )
}

/// `GPU[0]          : PCI Bus: 0000:19:00.0`.
fn addresses(lines: &[(usize, &str)], gpus: usize) -> Result<Option<Vec<PciAddress>>, ParseError> {
    let mut found = vec![None; gpus];
    for &(line, text) in lines {
        let Some((device, bus)) = text.split_once(": PCI Bus:") else {
            continue;
        };
        let index = device
            .trim()
            .strip_prefix("GPU[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|index| index.parse::<usize>().ok())
            .filter(|index| *index < gpus);
        match (index, pci_address(bus.trim())) {
            (Some(index), Some(address)) => found[index] = Some(address),
            _ => {
                return Err(ParseError::Unexpected {
                    line,
                    expected: "\"GPU[n] : PCI Bus: dddd:bb:dd.f\" of a listed GPU".into(),
                    found: text.to_string(),
                })
            }
        }
    }
    Ok(found
        .iter()
        .all(Option::is_some)
        .then(|| found.into_iter().flatten().collect()))
}

/// Parses the output of `rocm-smi --showtopo [--showbus]`.
pub fn parse(text: &str) -> Result<RocmSmiTopology, ParseError> {
    let lines = numbered(text);
    let weight_rows = table(&lines, WEIGHT)?;
    let gpus = weight_rows.len();
    let number = |text: &str| text.parse::<u32>().ok();
    let weight = off_diagonal(&weight_rows, "0", "a weight", number)?;
    let hops_rows = table(&lines, HOPS)?;
    let link_rows = table(&lines, LINK_TYPE)?;
    for rows in [&hops_rows, &link_rows] {
        if rows.len() != gpus {
            return Err(ParseError::Unexpected {
                line: rows.first().map_or(0, |row| row.line),
                expected: format!("{gpus} GPUs, as in \"{WEIGHT}\""),
                found: format!("{} GPUs", rows.len()),
            });
        }
    }
    Ok(RocmSmiTopology {
        gpus,
        weight,
        hops: off_diagonal(&hops_rows, "0", "a hop count", number)?,
        link_type: off_diagonal(&link_rows, "0", "PCIE or XGMI", smi_link_type)?,
        addresses: addresses(&lines, gpus)?,
    })
}
