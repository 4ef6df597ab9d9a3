//! How nodes are named in reports: a spec's GPU ids when the topology was predicted from a spec,
//! `nodeN` otherwise.

use std::collections::BTreeMap;

use hsa_p2p_core::topology::{Node, Topology};

use crate::predict::Prediction;

/// Node id -> display name.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    names: BTreeMap<u32, String>,
}

impl Labels {
    /// Labels derived from the topology alone: `nodeN` (what `p2pctl why` accepts as well).
    pub fn from_topology(topology: &Topology) -> Self {
        let names = topology
            .nodes
            .iter()
            .map(|node| (node.id, format!("node{}", node.id)))
            .collect();
        Labels { names }
    }

    /// Labels from the spec a prediction came from (`cpu0`, the GPUs' ids).
    pub fn from_prediction(prediction: &Prediction) -> Self {
        let topology = &prediction.topology;
        let mut names = BTreeMap::new();
        let cpus = topology.nodes.iter().filter(|node| !node.is_gpu());
        for (cpu_index, node) in cpus.enumerate() {
            names.insert(node.id, format!("cpu{cpu_index}"));
        }
        for (label, node) in prediction
            .gpu_labels
            .iter()
            .zip(topology.nodes.iter().filter(|node| node.is_gpu()))
        {
            names.insert(node.id, label.clone());
        }
        Labels { names }
    }

    /// The display name of node `id`.
    pub fn name(&self, id: u32) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("node{id}"))
    }

    /// The node id whose label is `label`.
    pub fn node_of(&self, label: &str) -> Option<u32> {
        self.names
            .iter()
            .find(|(_, name)| name.as_str() == label)
            .map(|(id, _)| *id)
    }
}

/// `dddd:bb:dd.f` of a GPU node; `None` for CPU nodes.
pub fn pci_address(node: &Node) -> Option<String> {
    node.is_gpu().then(|| node.pci_address().to_string())
}
