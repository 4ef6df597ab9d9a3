//! The command line of `p2pctl`, defined here rather than in the binary so that tools can
//! reach the `clap::Command` itself: `cargo xtask package` renders the man pages
//! (`clap_mangen`) and shell completions (`clap_complete`) from [`command`], and they cannot
//! drift from the CLI.

mod device;
mod export;
mod heatmap;
mod matrix;
mod output;
mod predict;
mod source;
mod why;

use clap::{CommandFactory, Parser, Subcommand};

pub use device::{BenchArgs, CopyArgs, DeviceArgs};
pub use export::{ExportArgs, ExportFormat};
pub use heatmap::{HeatmapArgs, HeatmapTable};
pub use matrix::MatrixArgs;
pub use output::JsonArgs;
pub use predict::PredictArgs;
pub use source::SourceArgs;
pub use why::WhyArgs;

/// The program's name (binary, man page, completions).
pub const PROGRAM: &str = "p2pctl";

/// `p2pctl [COMMAND]`.
#[derive(Parser)]
#[command(
    name = PROGRAM,
    version,
    about = "Inspect and predict KFD peer-to-peer (HSA_AMD_P2P) topologies",
    long_about = "Inspect and predict KFD peer-to-peer (HSA_AMD_P2P) topologies.\n\n\
        p2pctl reads a KFD-format topology tree and reports which GPUs may access each other's \
        VRAM through PCIe BARs, with the reason for every refused pair. It reads amdkfd's tree \
        or the one the hsa_p2p kernel module publishes (package hsa-p2p-dkms), or predicts one \
        from a machine description; with the module loaded it also copies between GPUs through \
        /dev/hsa_p2p."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `p2pctl`.
#[derive(Subcommand)]
pub enum Command {
    /// Nodes and links of a topology as tables (or hsa-p2p/topology/v1 JSON).
    Topo {
        #[command(flatten)]
        source: SourceArgs,
        /// The hsa-p2p/topology/v1 JSON document instead of tables.
        #[command(flatten)]
        output: JsonArgs,
    },
    /// Access, link type, weight, bandwidth, hops, PCIe path and flags matrices and the GPUs'
    /// PCI address, render minor and CPU affinity (row = accessor), as text, CSV or JSON.
    Matrix(MatrixArgs),
    /// Why GPU A may or may not access GPU B's VRAM, and what to change.
    Why(WhyArgs),
    /// The topology the kernel rules produce for a machine description (topologies/*.toml).
    Predict(PredictArgs),
    /// The topology as a Graphviz digraph (`p2pctl dot | dot -Tsvg > topo.svg`): GPUs clustered
    /// by socket and switch, one edge per GPU pair coloured by path class, a legend.
    Dot {
        #[command(flatten)]
        source: SourceArgs,
        /// Also draw each GPU's links to the CPU nodes it is not attached to.
        #[arg(long)]
        cpu_links: bool,
        /// Where the machine's `sys/` is, for switches and path classes of a read tree
        /// [default: `/` when reading the running kernel's topology].
        #[arg(long, value_name = "DIR", conflicts_with = "spec")]
        machine_root: Option<std::path::PathBuf>,
    },
    /// A GPU x GPU table (bandwidth, weight, hops) or a bench result as a heat-map picture
    /// (SVG or PNG) with a colour scale.
    Heatmap(HeatmapArgs),
    /// Scheduler inputs: Slurm gres.conf lines with Links=, or a Kubernetes
    /// node-feature-discovery feature file.
    Export(ExportArgs),
    /// Copy between two GPUs' VRAM through /dev/hsa_p2p (direct when allowed), verified.
    Copy(CopyArgs),
    /// Direct and staged copy bandwidth matrix, 4 KiB latency and a memcpy baseline.
    Bench(BenchArgs),
    /// A topology spec of this machine from /sys and /proc (`p2pctl snapshot > my.toml`), for
    /// `predict` and `why`.
    Snapshot {
        /// The machine's root directory (holding sys/ and proc/).
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: std::path::PathBuf,
    },
}

/// The `clap::Command` of `p2pctl`, with every subcommand and option.
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        // clap's own checks: conflicting or missing argument names, defaults that do not parse.
        command().debug_assert();
        assert_eq!(command().get_name(), PROGRAM);
    }
}
