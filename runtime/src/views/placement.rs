//! What the views need beyond the KFD tree, per GPU node: the PCIe path to every other GPU (the
//! kernel's P2PDMA walk, once: [`crate::spec::LayoutP2pdma`] or [`Inventory::p2pdma`]), the host
//! bridge, the CPUs near it, the render minor and the XGMI link count.

use std::collections::BTreeMap;
use std::fs;

use hsa_p2p_core::topology::Topology;

use crate::machine_facts::Inventory;
use crate::p2pdma::P2pdmaPath;
use crate::peers::gpu_nodes;
use crate::predict::Prediction;
use crate::spec::{LayoutP2pdma, PcieElementKind, PcieLayout, Spec};

/// amdgpu's first render minor (`/dev/dri/renderD128`).
pub const FIRST_RENDER_MINOR: u32 = 128;

/// Facts about one GPU node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuPlace {
    /// The host bridge (root complex) above it.
    pub host_bridge: Option<String>,
    /// The PCIe switch right above it (its upstream port's name), if it sits behind one.
    pub switch: Option<String>,
    /// The CPUs local to it, in cpulist format (`0-95`).
    pub cpulist: Option<String>,
    /// Its DRM render minor (`/dev/dri/renderD<minor>`).
    pub render_minor: Option<u32>,
    /// XGMI links to each hive member, by its node id (amdgpu's `num_links` per pair; empty
    /// when unknown).
    pub xgmi_links: BTreeMap<u32, u32>,
}

/// [`GpuPlace`] of every GPU node and the PCIe path of every ordered GPU pair.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// By node id.
    pub gpus: BTreeMap<u32, GpuPlace>,
    /// By (accessor, owner) node ids.
    pub pcie_paths: BTreeMap<(u32, u32), P2pdmaPath>,
}

impl Placement {
    /// The facts of GPU node `node` (empty when unknown).
    pub fn gpu(&self, node: u32) -> GpuPlace {
        self.gpus.get(&node).cloned().unwrap_or_default()
    }

    /// From the spec a prediction came from (all GPUs bound in spec order). The spec model has
    /// one host bridge per CPU node; render minors are numbered as amdgpu does on a machine
    /// whose only DRM devices are these GPUs (128 upwards in bind order); CPU node `n`'s CPUs
    /// follow those of the nodes before it.
    pub fn from_prediction(spec: &Spec, prediction: &Prediction) -> Self {
        let layout = spec.layout();
        let paths = LayoutP2pdma::new(spec);
        let nodes: Vec<u32> = gpu_nodes(&prediction.topology)
            .iter()
            .map(|node| node.id)
            .collect();
        let mut placement = Placement::default();
        for (index, &node) in nodes.iter().enumerate() {
            let cpu = layout
                .gpu_element(index)
                .map(|element| layout.elements[element].cpu);
            placement.gpus.insert(
                node,
                GpuPlace {
                    host_bridge: cpu.map(|cpu| format!("cpu{cpu}")),
                    switch: spec_switch(spec, &layout, index),
                    cpulist: cpu.and_then(|cpu| spec_cpulist(spec, cpu as usize)),
                    render_minor: Some(FIRST_RENDER_MINOR + index as u32),
                    xgmi_links: xgmi_links(prediction, &nodes, index),
                },
            );
            for (owner_index, &owner) in nodes.iter().enumerate() {
                if owner != node {
                    placement
                        .pcie_paths
                        .insert((node, owner), paths.path(owner_index, index));
                }
            }
        }
        placement
    }

    /// From a read topology and, when it could be collected, the machine's PCI facts. Without
    /// them only the render minors the tree states are known.
    pub fn from_machine(topology: &Topology, inventory: Option<&Inventory>) -> Self {
        let mut placement = Placement::default();
        let gpus = gpu_nodes(topology);
        let device_of = |id: u32| {
            let node = topology.node(id)?;
            inventory?.device(node.pci_address())
        };
        for gpu in &gpus {
            let device = device_of(gpu.id);
            placement.gpus.insert(
                gpu.id,
                GpuPlace {
                    host_bridge: device.map(|d| d.host_bridge.clone()),
                    // Below a switch the chain is downstream port, upstream port, …, root port.
                    switch: device
                        .filter(|d| d.upstream.len() >= 3)
                        .map(|d| d.upstream[1].to_string()),
                    cpulist: device.and_then(|d| {
                        fs::read_to_string(d.path.join("local_cpulist"))
                            .ok()
                            .map(|text| text.trim().to_string())
                    }),
                    render_minor: Some(gpu.properties.drm_render_minor).filter(|&m| m != 0),
                    xgmi_links: BTreeMap::new(),
                },
            );
            for owner in &gpus {
                if let (Some(inventory), Some(client), Some(provider)) =
                    (inventory, device, device_of(owner.id))
                {
                    if owner.id != gpu.id {
                        placement
                            .pcie_paths
                            .insert((gpu.id, owner.id), inventory.p2pdma(provider, client));
                    }
                }
            }
        }
        placement
    }
}

/// The CPUs of spec CPU node `cpu`: its cores numbered after the earlier nodes' cores.
fn spec_cpulist(spec: &Spec, cpu: usize) -> Option<String> {
    let first: u32 = spec.cpus.get(..cpu)?.iter().map(|c| c.cores).sum();
    let cores = spec.cpus.get(cpu)?.cores;
    Some(match cores {
        0 => return None,
        1 => first.to_string(),
        _ => format!("{first}-{}", first + cores - 1),
    })
}

/// The id of the switch whose downstream port GPU `gpu` (spec index) hangs off.
fn spec_switch(spec: &Spec, layout: &PcieLayout, gpu: usize) -> Option<String> {
    let parent = layout.elements[layout.gpu_element(gpu)?].parent?;
    match layout.elements[parent].kind {
        PcieElementKind::SwitchDownstream { switch, .. } => {
            spec.switches.get(switch).map(|s| s.id.clone())
        }
        _ => None,
    }
}

/// The XGMI links of GPU `index` of a prediction to each other member of its hive, by node id.
fn xgmi_links(prediction: &Prediction, nodes: &[u32], index: usize) -> BTreeMap<u32, u32> {
    let facts = |i: usize| prediction.gpus.get(i).and_then(|gpu| gpu.xgmi);
    let Some(mine) = facts(index) else {
        return BTreeMap::new();
    };
    (nodes.iter().enumerate())
        .filter(|&(other, _)| other != index)
        .filter_map(|(other, &node)| {
            let theirs = facts(other).filter(|x| x.hive_id == mine.hive_id)?;
            Some((node, mine.links_to(&theirs)))
        })
        .collect()
}
