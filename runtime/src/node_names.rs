//! How every command names a node on its command line (`why`, `copy`, …), one rule for all:
//! a node id (`3`), `node3`, `gpuN` (the N-th GPU, from 0), or a label of the topology's source
//! (a spec's GPU ids, `cpuN`). Spec validation keeps these forms from disagreeing: a GPU id may
//! not look like a node id, `nodeN` or `cpuN`, and `gpuN` must be the N-th GPU.

use hsa_p2p_core::topology::Topology;

use crate::peers::gpu_nodes;
use crate::report::Labels;

/// A name that matches no node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "no GPU named {argument:?}: the GPUs are {}; a node id, nodeN or gpuN (the N-th GPU, \
     from 0) works as well",
    .gpus.join(", ")
)]
pub struct UnknownNode {
    /// What was asked for.
    pub argument: String,
    /// The topology's GPUs as `label (node N)`.
    pub gpus: Vec<String>,
}

/// The node `argument` names. Numeric forms are not checked against the topology (the caller
/// says what is wrong with node 9); names are.
pub fn resolve_node(
    topology: &Topology,
    labels: &Labels,
    argument: &str,
) -> Result<u32, UnknownNode> {
    if let Some(id) = labels.node_of(argument) {
        return Ok(id);
    }
    let gpus = gpu_nodes(topology);
    let number = |prefix: &str| {
        argument
            .strip_prefix(prefix)
            .and_then(|rest| rest.parse::<u32>().ok())
    };
    if let Some(id) = number("").or_else(|| number("node")) {
        return Ok(id);
    }
    if let Some(gpu) = number("gpu").and_then(|index| gpus.get(index as usize)) {
        return Ok(gpu.id);
    }
    Err(UnknownNode::listing_gpus(topology, labels, argument))
}

impl UnknownNode {
    /// The error for `argument`, listing the GPUs of `topology`.
    pub fn listing_gpus(topology: &Topology, labels: &Labels, argument: &str) -> Self {
        UnknownNode {
            argument: argument.to_string(),
            gpus: gpu_nodes(topology)
                .iter()
                .enumerate()
                .map(|(index, gpu)| match labels.name(gpu.id) {
                    label
                        if label == format!("gpu{index}") || label == format!("node{}", gpu.id) =>
                    {
                        format!("gpu{index} (node {})", gpu.id)
                    }
                    label => format!("{label} = gpu{index} (node {})", gpu.id),
                })
                .collect(),
        }
    }
}
