//! `p2pctl export slurm|nfd`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::SourceArgs;

/// What to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Slurm gres.conf lines (Name=gpu Type= File= Cores= Links=).
    Slurm,
    /// A node-feature-discovery local feature file (features.d: name=value lines).
    Nfd,
}

/// `p2pctl export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The format.
    #[arg(value_enum)]
    pub format: ExportFormat,
    #[command(flatten)]
    pub source: SourceArgs,
    /// slurm: the Type= of every GPU [default: the GPU's KFD name, e.g. gfx942].
    #[arg(long = "type", value_name = "NAME")]
    pub gpu_type: Option<String>,
    /// Write to FILE (replaced atomically, as NFD reads features.d at any time) instead of
    /// stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Where the machine's `sys/` is, for CPU affinity (Cores=) and path classes of a read tree
    /// [default: `/` when reading the running kernel's topology].
    #[arg(long, value_name = "DIR", conflicts_with = "spec")]
    pub machine_root: Option<PathBuf>,
}
