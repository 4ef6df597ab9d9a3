//! `p2pctl predict SPEC.toml`.

use std::path::PathBuf;

use clap::Args;

use super::JsonArgs;

/// `p2pctl predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The machine description (see docs/topology-spec.md).
    pub spec: PathBuf,
    #[command(flatten)]
    pub output: JsonArgs,
    /// Also write the predicted topology as a sysfs tree into DIR (created; must be empty).
    #[arg(long, value_name = "DIR")]
    pub emit_sysfs: Option<PathBuf>,
    /// With --emit-sysfs: replace DIR if it holds a tree an earlier --emit-sysfs wrote
    /// (never any other directory).
    #[arg(long, requires = "emit_sysfs")]
    pub force: bool,
    /// Predict what amdkfd publishes, bug included: peer links' max_bandwidth is the accessor's
    /// own link only (kfd_add_peer_prop's min(iolink2, iolink2)), not the narrowest hop.
    #[arg(long)]
    pub as_amdkfd: bool,
    /// What if: change a field of the spec (KEY=VALUE, e.g. gpu1.bar=32G, platform.iommu=remap,
    /// gpu0.parent=sw0.1; repeatable) and print only the GPU pairs whose verdict changes.
    #[arg(
        long = "set",
        value_name = "KEY=VALUE",
        conflicts_with_all = ["json", "emit_sysfs"]
    )]
    pub set: Vec<String>,
}
