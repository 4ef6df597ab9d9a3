//! `p2pctl why A B`.

use std::path::PathBuf;

use clap::Args;

use super::JsonArgs;

use super::SourceArgs;

/// `p2pctl why`.
#[derive(Args, Debug)]
pub struct WhyArgs {
    /// The accessing GPU: node id, `nodeN`, or a spec GPU id with --spec.
    pub accessor: String,
    /// The GPU whose VRAM is accessed (same forms).
    pub owner: String,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub output: JsonArgs,
    /// Where the machine's `sys/` and `proc/` are, for pairs the tree gives no reason for
    /// (amdkfd's tree): the rules are applied to its PCI facts [default: `/` when reading the
    /// running kernel's topology; not used with --root or --spec unless given].
    #[arg(long, value_name = "DIR", conflicts_with = "spec")]
    pub machine_root: Option<PathBuf>,
}
