//! Where a command's topology comes from: a sysfs tree (`--root`, default the running kernel's)
//! or a prediction from a spec (`--spec`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::predict::predict;
use hsa_p2p_runtime::report::json::Source;
use hsa_p2p_runtime::report::Labels;
use hsa_p2p_runtime::spec::Spec;
use hsa_p2p_runtime::sysfs::{default_root, read_topology};

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

/// A topology with the names to show for its nodes.
pub struct Loaded {
    pub topology: Topology,
    pub labels: Labels,
    pub source: Source,
}

impl SourceArgs {
    /// Reads the sysfs tree or runs the prediction.
    pub fn load(&self) -> Result<Loaded> {
        if let Some(spec_path) = &self.spec {
            return load_spec(spec_path);
        }
        let root = self.root.clone().unwrap_or_else(default_root);
        // Every read error names the file (and line) at fault already.
        let topology = read_topology(&root)?;
        Ok(Loaded {
            labels: Labels::from_topology(&topology),
            topology,
            source: Source::Sysfs {
                path: root.display().to_string(),
            },
        })
    }
}

/// Loads `path` and predicts its topology.
pub fn load_spec(path: &Path) -> Result<Loaded> {
    let spec = Spec::load(path)?;
    let prediction = predict(&spec)?;
    Ok(Loaded {
        labels: Labels::from_prediction(&prediction),
        topology: prediction.topology,
        source: Source::Spec {
            path: path.display().to_string(),
            name: spec.name,
        },
    })
}
