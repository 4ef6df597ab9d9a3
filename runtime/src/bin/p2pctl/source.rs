//! Loading a command's topology: a sysfs tree (`--root`, default the running kernel's) or a
//! prediction from a spec (`--spec`).

use std::path::Path;

use anyhow::Result;

use hsa_p2p_core::facts::PeerBandwidthRule;
use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::cli::SourceArgs;
use hsa_p2p_runtime::predict::predict_with;
use hsa_p2p_runtime::report::json::Source;
use hsa_p2p_runtime::report::Labels;
use hsa_p2p_runtime::spec::Spec;
use hsa_p2p_runtime::sysfs::{default_root, read_topology};

/// A topology with the names to show for its nodes.
pub struct Loaded {
    pub topology: Topology,
    pub labels: Labels,
    pub source: Source,
}

/// Reads the sysfs tree or runs the prediction `args` name.
pub fn load(args: &SourceArgs) -> Result<Loaded> {
    if let Some(spec_path) = &args.spec {
        return load_spec(spec_path, PeerBandwidthRule::Corrected);
    }
    let root = args.root.clone().unwrap_or_else(default_root);
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

/// Loads `path` and predicts its topology, peer bandwidth by `rule`.
pub fn load_spec(path: &Path, rule: PeerBandwidthRule) -> Result<Loaded> {
    let spec = Spec::load(path)?;
    let prediction = predict_with(&spec, rule)?;
    Ok(Loaded {
        labels: Labels::from_prediction(&prediction),
        topology: prediction.topology,
        source: Source::Spec {
            path: path.display().to_string(),
            name: spec.name,
        },
    })
}
