//! `amd-smi topology`: access, weight, hops and link type between every two GPUs, by PCI
//! address.
//!
//! Output shape (the tables that follow, NUMA BW, coherency, atomics, DMA and bidirectional,
//! are not read):
//!
//! ```text
//! ACCESS TABLE:
//!              0000:03:00.0 0000:0c:00.0
//! 0000:03:00.0 ENABLED      DISABLED
//! 0000:0c:00.0 DISABLED     ENABLED
//! WEIGHT TABLE:
//! HOPS TABLE:
//! LINK TYPE TABLE:
//! 0000:03:00.0 SELF         PCIE
//! ```
//!
//! `ACCESS` is `amdsmi_is_P2P_accessible`: whether the pair may copy peer-to-peer.

use hsa_p2p_core::facts::PciAddress;
use hsa_p2p_core::link::LinkType;

use super::{matrix, numbered, off_diagonal, pci_address, rows, smi_link_type, ParseError, Row};

/// A square matrix over the GPUs, rows and columns in [`AmdSmiTopology::gpus`] order.
pub type Matrix<T> = Vec<Vec<T>>;

/// What `amd-smi topology` printed.
#[derive(Clone, Debug, PartialEq)]
pub struct AmdSmiTopology {
    /// The GPUs' PCI addresses, in table order.
    pub gpus: Vec<PciAddress>,
    /// `ACCESS TABLE`: `ENABLED` pairs.
    pub access: Matrix<bool>,
    /// `WEIGHT TABLE`.
    pub weight: Matrix<u32>,
    /// `HOPS TABLE`.
    pub hops: Matrix<u32>,
    /// `LINK TYPE TABLE`; `None` on the diagonal (`SELF`).
    pub link_type: Matrix<Option<LinkType>>,
}

const ACCESS: &str = "ACCESS TABLE:";
const WEIGHT: &str = "WEIGHT TABLE:";
const HOPS: &str = "HOPS TABLE:";
const LINK_TYPE: &str = "LINK TYPE TABLE:";

/// The GPUs of the table's header and its rows.
fn table<'a>(
    lines: &[(usize, &'a str)],
    title: &'static str,
) -> Result<(Vec<PciAddress>, Vec<Row<'a>>), ParseError> {
    let start = lines
        .iter()
        .position(|(_, text)| text.trim() == title)
        .ok_or(ParseError::MissingSection {
            section: title,
            lines: lines.len(),
        })?;
    let (header_line, header) = lines.get(start + 1).copied().unwrap_or((start + 1, ""));
    let gpus: Option<Vec<PciAddress>> = header.split_whitespace().map(pci_address).collect();
    let gpus = gpus
        .filter(|gpus| !gpus.is_empty())
        .ok_or_else(|| ParseError::Unexpected {
            line: header_line,
            expected: format!("a header of PCI addresses under \"{title}\""),
            found: header.to_string(),
        })?;
    let rows = rows(
        lines[start + 2..].iter().copied(),
        lines.len(),
        gpus.len(),
        |index| format!("the row of {} in \"{title}\"", gpus[index]),
        |index, label| pci_address(label) == Some(gpus[index]),
    )?;
    Ok((gpus, rows))
}

/// Parses the output of `amd-smi topology`.
pub fn parse(text: &str) -> Result<AmdSmiTopology, ParseError> {
    let lines = numbered(text);
    let (gpus, access_rows) = table(&lines, ACCESS)?;
    let same_gpus = |title: &'static str| -> Result<Vec<Row<'_>>, ParseError> {
        let (columns, rows) = table(&lines, title)?;
        if columns == gpus {
            Ok(rows)
        } else {
            Err(ParseError::Unexpected {
                line: rows.first().map_or(0, |row| row.line - 1),
                expected: format!("the GPUs of \"{ACCESS}\""),
                found: format!("other GPUs under \"{title}\""),
            })
        }
    };
    let number = |text: &str| text.parse::<u32>().ok();
    let link_rows = same_gpus(LINK_TYPE)?;
    let link_type = off_diagonal(&link_rows, "SELF", "PCIE or XGMI", smi_link_type)?;
    Ok(AmdSmiTopology {
        access: matrix(&access_rows, "ENABLED or DISABLED", |text| match text {
            "ENABLED" => Some(true),
            "DISABLED" => Some(false),
            _ => None,
        })?,
        weight: matrix(&same_gpus(WEIGHT)?, "a weight", number)?,
        hops: matrix(&same_gpus(HOPS)?, "a hop count", number)?,
        link_type,
        gpus,
    })
}
