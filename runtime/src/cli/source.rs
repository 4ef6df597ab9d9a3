//! `--root DIR` / `--spec FILE`: where a command's topology comes from.

use std::path::PathBuf;

use clap::Args;

/// `--root DIR` or `--spec FILE`.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// KFD-style topology directory [default: /sys/class/kfd/kfd/topology, else
    /// /sys/kernel/hsa_p2p/topology when only the hsa_p2p module publishes one].
    #[arg(long, value_name = "DIR", conflicts_with = "spec")]
    pub root: Option<PathBuf>,
    /// Use the topology predicted for this machine description instead of sysfs.
    #[arg(long, value_name = "SPEC.toml")]
    pub spec: Option<PathBuf>,
}

impl SourceArgs {
    /// Where to read the machine's own facts (`sys/`, `proc/`): `explicit`, else `/` when the
    /// topology is the running kernel's (neither --root nor --spec), else nowhere.
    pub fn machine_root(&self, explicit: Option<&PathBuf>) -> Option<PathBuf> {
        explicit
            .cloned()
            .or_else(|| (self.root.is_none() && self.spec.is_none()).then(|| PathBuf::from("/")))
    }
}
