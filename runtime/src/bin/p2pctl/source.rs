//! Loading a command's topology: a sysfs tree (`--root`, default the running kernel's) or a
//! prediction from a spec (`--spec`).

use std::path::Path;

use anyhow::Result;

use hsa_p2p_core::facts::PeerBandwidthRule;
use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::cli::SourceArgs;
use hsa_p2p_runtime::machine_facts::Inventory;
use hsa_p2p_runtime::peers::gpu_nodes;
use hsa_p2p_runtime::predict::predict_with;
use hsa_p2p_runtime::report::json::Source;
use hsa_p2p_runtime::report::Labels;
use hsa_p2p_runtime::spec::Spec;
use hsa_p2p_runtime::sysfs::{default_root, read_topology};
use hsa_p2p_runtime::views::{Placement, ViewInput};

/// A topology with the names to show for its nodes.
pub struct Loaded {
    pub topology: Topology,
    pub labels: Labels,
    pub source: Source,
    /// What the views need beyond the tree (the spec's layout, or what the tree says alone
    /// until [`Loaded::with_machine_facts`]).
    pub placement: Placement,
}

impl Loaded {
    /// Takes the placement facts from the machine below `machine_root` (`/` on the machine
    /// itself). Facts that cannot be collected stay unknown, with a note on stderr.
    pub fn with_machine_facts(mut self, machine_root: &Path) -> Self {
        let inventory = match Inventory::collect(machine_root) {
            Ok(inventory) => Some(inventory),
            Err(error) => {
                eprintln!("p2pctl: note: PCI facts not read ({error}): PCIe paths unknown");
                None
            }
        };
        self.placement = Placement::from_machine(&self.topology, inventory.as_ref());
        self
    }

    /// The views' input over every GPU.
    pub fn view_input(&self) -> ViewInput<'_> {
        ViewInput {
            topology: &self.topology,
            labels: &self.labels,
            placement: &self.placement,
            gpus: gpu_nodes(&self.topology).iter().map(|n| n.id).collect(),
        }
    }
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
        placement: Placement::from_machine(&topology, None),
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
        placement: Placement::from_prediction(&spec, &prediction),
        topology: prediction.topology,
        source: Source::Spec {
            path: path.display().to_string(),
            name: spec.name,
        },
    })
}
