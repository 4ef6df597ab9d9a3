//! `p2pctl heatmap`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::SourceArgs;
use crate::views::TableKind;

/// The tables a heat-map can show (numeric GPU x GPU ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HeatmapTable {
    /// amdkfd's max bandwidth, MB/s.
    Bandwidth,
    /// amdkfd's link weight.
    Weight,
    /// Hops (rocm-smi --showtopohops).
    Hops,
}

impl HeatmapTable {
    /// The view table behind it.
    pub fn table(self) -> TableKind {
        match self {
            HeatmapTable::Bandwidth => TableKind::Bandwidth,
            HeatmapTable::Weight => TableKind::Weight,
            HeatmapTable::Hops => TableKind::Hops,
        }
    }

    /// The colour scale's unit.
    pub fn unit(self) -> &'static str {
        match self {
            HeatmapTable::Bandwidth => "MB/s",
            HeatmapTable::Weight => "weight",
            HeatmapTable::Hops => "hops",
        }
    }
}

/// `p2pctl heatmap`.
#[derive(Args, Debug)]
pub struct HeatmapArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The table to draw.
    #[arg(long, value_enum, default_value = "bandwidth")]
    pub table: HeatmapTable,
    /// Draw the direct-copy GB/s of a `p2pctl bench --json` result instead of a table.
    #[arg(long, value_name = "BENCH.json", conflicts_with_all = ["root", "spec", "table", "gpus"])]
    pub bench: Option<PathBuf>,
    /// Only these GPUs (comma-separated, any GPU naming), in this order.
    #[arg(long, value_name = "GPU,...", value_delimiter = ',')]
    pub gpus: Vec<String>,
    /// The picture to write: FILE.svg or FILE.png.
    #[arg(short, long, value_name = "FILE.svg|FILE.png")]
    pub output: PathBuf,
}
