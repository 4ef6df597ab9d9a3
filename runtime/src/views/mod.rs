//! The views an administrator reads first, in the vocabulary of `nvidia-smi topo -m`,
//! `rocm-smi --showtopo`/`--showtopohops` and rocm_bandwidth_test: one [`ViewTable`] model per
//! table, rendered as text (with a legend), CSV and JSON, so the three never disagree.
//!
//! What the KFD tree does not say (PCIe path class, CPU affinity, host bridges, XGMI link
//! counts) comes from a [`Placement`]: the spec's PCIe layout for a prediction, the machine's
//! sysfs for a read topology.

mod cell;
mod csv;
mod flags;
mod path_class;
mod placement;
mod tables;
mod text;

pub use cell::Cell;
pub use csv::render_csv;
pub use flags::flags_code;
pub use path_class::PathClass;
pub use placement::{GpuPlace, Placement};
pub use tables::{build_table, hops, link_between, pair_class, TableKind, ViewInput, ViewTable};
pub use text::render_text;
