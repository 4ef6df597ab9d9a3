//! One cell of a view table, and the symbols that keep "diagonal", "no link", "not applicable"
//! and "not known" apart in every output.

use serde::{Serialize, Serializer};

/// A cell of a [`super::ViewTable`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// A node against itself.
    Diagonal,
    /// The topology has no link between the two nodes.
    NoLink,
    /// The question does not apply to this cell (e.g. a CPU node's render minor).
    NotApplicable,
    /// The fact exists but could not be read (e.g. no sysfs for the PCIe path).
    Unknown,
    /// A count or measure.
    Number(u64),
    /// A name or code.
    Text(String),
}

impl Cell {
    /// Diagonal symbol (nvidia-smi's).
    pub const DIAGONAL: &'static str = "X";
    /// No-link symbol.
    pub const NO_LINK: &'static str = "-";
    /// Not-applicable symbol.
    pub const NOT_APPLICABLE: &'static str = "n/a";
    /// Not-known symbol.
    pub const UNKNOWN: &'static str = "?";

    /// The text of the cell in text and CSV output.
    pub fn symbol(&self) -> String {
        match self {
            Cell::Diagonal => Self::DIAGONAL.to_string(),
            Cell::NoLink => Self::NO_LINK.to_string(),
            Cell::NotApplicable => Self::NOT_APPLICABLE.to_string(),
            Cell::Unknown => Self::UNKNOWN.to_string(),
            Cell::Number(n) => n.to_string(),
            Cell::Text(text) => text.clone(),
        }
    }

    /// The legend line of a special symbol, `None` for values.
    pub fn legend(&self) -> Option<String> {
        let meaning = match self {
            Cell::Diagonal => "the node itself",
            Cell::NoLink => "no link in the topology",
            Cell::NotApplicable => "not applicable",
            Cell::Unknown => "not known (the fact could not be read)",
            Cell::Number(_) | Cell::Text(_) => return None,
        };
        Some(format!("{} = {meaning}", self.symbol()))
    }
}

/// JSON: numbers as numbers, everything else as its symbol (documented in docs/json-output.md).
impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Number(n) => serializer.serialize_u64(*n),
            other => serializer.serialize_str(&other.symbol()),
        }
    }
}
