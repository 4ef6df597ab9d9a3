//! `p2pctl matrix`.

use std::path::PathBuf;

use clap::Args;

use super::{JsonArgs, SourceArgs};
use crate::views::TableKind;

/// `p2pctl matrix`.
#[derive(Args, Debug)]
pub struct MatrixArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Show only this table [default: all of them].
    #[arg(long, value_enum)]
    pub table: Option<TableKind>,
    /// Show only these GPUs (comma-separated: labels, node ids, nodeN or gpuN), in this order.
    #[arg(long, value_name = "GPU,...", value_delimiter = ',')]
    pub gpus: Vec<String>,
    #[command(flatten)]
    pub output: JsonArgs,
    /// Print the table chosen with --table as CSV (RFC 4180: a header row, then one row per
    /// row of the table).
    #[arg(long, requires = "table", conflicts_with = "json")]
    pub csv: bool,
    /// Where the machine's `sys/` is, for the facts the KFD tree lacks (PCIe path class, CPU
    /// affinity) [default: `/` when reading the running kernel's topology; not used with --root
    /// or --spec unless given].
    #[arg(long, value_name = "DIR", conflicts_with = "spec")]
    pub machine_root: Option<PathBuf>,
}
