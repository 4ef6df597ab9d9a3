//! Machine facts for the rules, from a machine's PCI facts plus what only the tree shows.
//!
//! From sysfs PCI facts (what the prediction is about): addresses, BAR, VRAM size (amdgpu),
//! NUMA node (amdgpu), DMA mask, PCIe link, IOMMU mode, P2PDMA verdicts, `pcie_p2p`.
//! Taken from the tree itself, because sysfs shows them nowhere else: the order in which the
//! driver added the GPUs (node numbering), PCIe atomics (the GPU's io_link flags), XGMI hive
//! membership (`hive_id`) and each member's hops and link counts (its XGMI io_links), CPU<->CPU link bandwidth, and for the `hsa_p2p` module the facts of
//! an emulated GPU's descriptor page (VRAM size, NUMA node, PCIe link).

use hsa_p2p_core::compose::XGMI_WEIGHT_PER_HOP;
use hsa_p2p_core::facts::{
    xgmi_link_rate_mbs, CpuFacts, GpuFacts, MachineFacts, PeerBandwidthRule, PlatformFacts,
    XgmiFacts, XgmiPeer, XGMI_MAX_HIVE,
};
use hsa_p2p_core::link::{LinkFlags, LinkType};
use hsa_p2p_core::pcie::{PcieGen, PcieLink, PCIE_WIDTHS};
use hsa_p2p_core::topology::{Node, Topology};

use super::TreeKind;
use crate::machine_facts::{Inventory, PciDevice, AMD_GPU_VENDOR};

/// DMA mask assumed when sysfs does not show one (amdgpu's gfx9 and newer use 44 bits).
pub const DEFAULT_DMA_MASK_BITS: u32 = 44;

/// The GPU nodes of `tree` paired with their PCI devices, or every mismatch between the tree's
/// GPUs and the devices the driver of `kind` bound.
pub fn match_gpus<'a>(
    inventory: &'a Inventory,
    tree: &Topology,
    kind: TreeKind,
) -> Result<Vec<(u32, &'a PciDevice)>, Vec<String>> {
    let mut problems = Vec::new();
    let mut pairs = Vec::new();
    for node in tree.nodes.iter().filter(|node| node.is_gpu()) {
        let address = node.pci_address();
        match inventory.device(address) {
            None => problems.push(format!(
                "node {} (gpu_id {}) names PCI device {address}, which does not exist",
                node.id, node.gpu_id
            )),
            Some(device) if device.driver.as_deref() != Some(kind.driver()) => {
                problems.push(format!(
                    "node {} is PCI device {address}, which is bound to {} instead of {}",
                    node.id,
                    device.driver.as_deref().unwrap_or("no driver"),
                    kind.driver()
                ))
            }
            Some(device) if kind == TreeKind::Kfd && device.vendor != AMD_GPU_VENDOR => problems
                .push(format!(
                    "node {} is PCI device {address} of vendor {:04x}, not an AMD GPU",
                    node.id, device.vendor
                )),
            Some(device) => pairs.push((node.id, device)),
        }
    }
    let bound = match kind {
        TreeKind::Kfd => inventory.amdgpu_devices(),
        TreeKind::HsaP2p => inventory.bound_to(kind.driver()),
    };
    for device in bound {
        if !pairs.iter().any(|(_, d)| d.address == device.address) {
            problems.push(format!(
                "{} is bound to {} but has no node in the topology",
                device.address,
                kind.driver()
            ));
        }
    }
    if problems.is_empty() {
        Ok(pairs)
    } else {
        Err(problems)
    }
}

/// Owned inputs of [`MachineFacts`], with the GPUs in the tree's node order.
#[derive(Clone, Debug)]
pub struct ObservedMachine<'a> {
    /// CPU nodes.
    pub cpus: Vec<CpuFacts>,
    /// SLIT distances, `cpus x cpus`.
    pub numa_distances: Vec<u32>,
    /// CPU<->CPU link bandwidth the tree reports.
    pub cpu_link_bandwidth_mbs: u32,
    /// GPUs in the tree's order.
    pub gpus: Vec<GpuFacts>,
    /// Each GPU's PCI device.
    pub devices: Vec<&'a PciDevice>,
    /// Each GPU's node id in the tree.
    pub gpu_nodes: Vec<u32>,
    /// Platform settings.
    pub platform: PlatformFacts,
    /// Facts that had to be assumed, for the report.
    pub assumptions: Vec<String>,
}

impl ObservedMachine<'_> {
    /// The facts as the builder takes them.
    pub fn facts(&self) -> MachineFacts<'_> {
        MachineFacts {
            cpus: &self.cpus,
            numa_distances: &self.numa_distances,
            cpu_link_bandwidth_mbs: self.cpu_link_bandwidth_mbs,
            gpus: &self.gpus,
            known_gpu_ids: &[],
            platform: self.platform,
            peer_bandwidth: PeerBandwidthRule::Corrected,
        }
    }
}

/// A PCIe link with the bandwidth an io_link reports (for emulated GPUs, whose link exists only
/// in their descriptor).
fn link_with_bandwidth(mbs: u32) -> Option<PcieLink> {
    (1..=5)
        .filter_map(PcieGen::from_number)
        .flat_map(|gen| PCIE_WIDTHS.map(|width| PcieLink { gen, width }))
        .find(|link| link.bandwidth_mbs() == mbs)
}

fn gpu_facts(
    inventory: &Inventory,
    tree: &Topology,
    node: &Node,
    device: &PciDevice,
    kind: TreeKind,
    assumed_dma_masks: &mut Vec<String>,
) -> Result<GpuFacts, String> {
    let own_link = node
        .io_links
        .iter()
        .find(|link| link.link_type == LinkType::Pcie)
        .or(node.io_links.first());
    let bar_index = kind.vram_bar();
    let bar = device.bar(bar_index).ok_or_else(|| {
        format!(
            "{}: BAR{bar_index} (VRAM aperture) is not in use",
            device.address
        )
    })?;
    let (vram_size, numa_node, pcie) = match kind {
        TreeKind::Kfd => {
            let vram = device.vram_total.ok_or_else(|| {
                format!(
                    "{}: no mem_info_vram_total (amdgpu too old?)",
                    device.address
                )
            })?;
            let link = device
                .capable_link(inventory.upstream_port(device))
                .ok_or_else(|| format!("{}: PCIe link speed/width unknown", device.address))?;
            (vram, device.numa_node.unwrap_or(0), link)
        }
        TreeKind::HsaP2p => {
            let link = own_link
                .and_then(|link| link_with_bandwidth(link.max_bandwidth))
                .ok_or_else(|| format!("node {}: no PCIe io_link to its CPU", node.id))?;
            let numa = own_link.map_or(0, |link| link.node_to);
            (node.properties.local_mem_size, numa, link)
        }
    };
    // sysfs shows the mask the driver set: amdgpu's, or the module's, which sets its
    // descriptor's (the one its rules use) at probe.
    let dma_mask_bits = device.dma_mask_bits.unwrap_or_else(|| {
        assumed_dma_masks.push(device.address.to_string());
        DEFAULT_DMA_MASK_BITS
    });
    let hive_id = node.properties.hive_id;
    let xgmi = (hive_id != 0).then(|| observed_xgmi(tree, node, hive_id));
    let no_atomics = LinkFlags::NO_ATOMICS_32 | LinkFlags::NO_ATOMICS_64;
    Ok(GpuFacts {
        pci: device.address,
        vendor_id: u32::from(device.vendor),
        device_id: u32::from(device.device),
        gfx_target_version: node.properties.gfx_target_version,
        simd_count: node.properties.simd_count,
        vram_size,
        bar_base: bar.start,
        bar_size: bar.size(),
        numa_node,
        dma_mask_bits,
        xgmi,
        xgmi_connected_to_cpu: false,
        pcie,
        pcie_atomics: !own_link.is_some_and(|link| link.flags.contains(no_atomics)),
        drm_render_minor: node.properties.drm_render_minor,
        unique_id: node.properties.unique_id,
    })
}

/// A hive member's XGMI facts as its io_links show them: the PSP table's hops are the weight
/// over 15 and its link counts the maximum over the minimum bandwidth
/// (`kfd_fill_gpu_xgmi_link_to_gpu`); the per-link rate is the minimum of any direct link, else
/// amdgpu's rate for the generation.
fn observed_xgmi(tree: &Topology, node: &Node, hive_id: u64) -> XgmiFacts {
    let members: Vec<u32> = tree
        .nodes
        .iter()
        .filter(|n| n.is_gpu() && n.properties.hive_id == hive_id)
        .map(|n| n.id)
        .collect();
    let mut peers = [XgmiPeer::default(); XGMI_MAX_HIVE];
    let mut rate = None;
    for link in node
        .io_links
        .iter()
        .filter(|l| l.link_type == LinkType::Xgmi)
    {
        let Some(position) = members.iter().position(|id| *id == link.node_to) else {
            continue;
        };
        let Some(entry) = peers.get_mut(position) else {
            continue;
        };
        entry.num_hops = u8::try_from(link.weight / XGMI_WEIGHT_PER_HOP).unwrap_or(u8::MAX);
        if link.min_bandwidth > 0 {
            rate = Some(link.min_bandwidth);
            entry.num_links = u8::try_from(link.max_bandwidth / link.min_bandwidth).unwrap_or(0);
        }
    }
    XgmiFacts {
        hive_id,
        position: members.iter().position(|id| *id == node.id).unwrap_or(0) as u32,
        hive_size: members.len() as u32,
        link_bandwidth_mbs: rate
            .unwrap_or_else(|| xgmi_link_rate_mbs(node.properties.gfx_target_version)),
        peers,
    }
}

/// The machine as the rules must see it, GPUs in the tree's node order.
pub fn observe<'a>(
    inventory: &'a Inventory,
    tree: &Topology,
    gpus: &[(u32, &'a PciDevice)],
    kind: TreeKind,
    pcie_p2p: bool,
) -> Result<ObservedMachine<'a>, Vec<String>> {
    let mut assumptions = Vec::new();
    let cpu_nodes: Vec<&Node> = tree.nodes.iter().filter(|node| !node.is_gpu()).collect();
    let cpus: Vec<CpuFacts> = cpu_nodes
        .iter()
        .map(|node| CpuFacts {
            cpu_cores: node.properties.cpu_cores_count,
            memory_bytes: node.mem_banks.first().map_or(0, |bank| bank.size_in_bytes),
        })
        .collect();
    let count = cpus.len();
    let slit = &inventory.platform.numa_distances;
    let numa_distances: Vec<u32> = if slit.len() == count {
        slit.iter().flatten().copied().collect()
    } else {
        assumptions.push(format!(
            "NUMA distances: sysfs shows {} nodes, the tree {count} CPU nodes; assumed 10 local, 20 remote",
            slit.len()
        ));
        (0..count * count)
            .map(|i| {
                if i / count.max(1) == i % count.max(1) {
                    10
                } else {
                    20
                }
            })
            .collect()
    };
    let cpu_link_bandwidth_mbs = cpu_nodes
        .iter()
        .flat_map(|node| &node.io_links)
        .find(|link| link.node_to < count as u32)
        .map_or(0, |link| link.max_bandwidth);

    let mut problems = Vec::new();
    let mut facts = Vec::new();
    let mut assumed_dma_masks = Vec::new();
    for (node_id, device) in gpus {
        let Some(node) = tree.node(*node_id) else {
            continue;
        };
        match gpu_facts(inventory, tree, node, device, kind, &mut assumed_dma_masks) {
            Ok(gpu) => facts.push(gpu),
            Err(problem) => problems.push(problem),
        }
    }
    if !assumed_dma_masks.is_empty() {
        assumptions.push(format!(
            "DMA mask {DEFAULT_DMA_MASK_BITS} bits for {} (not shown in sysfs)",
            assumed_dma_masks.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let devices: Vec<&PciDevice> = gpus.iter().map(|(_, device)| *device).collect();
    Ok(ObservedMachine {
        cpus,
        numa_distances,
        cpu_link_bandwidth_mbs,
        gpus: facts,
        platform: PlatformFacts {
            iommu: inventory.iommu_mode(&devices),
            pcie_p2p,
            // A tree with peer links comes from a kernel with it; one without is judged
            // against what the kernel would do with it (explain names the missing option).
            hsa_amd_p2p: true,
        },
        devices,
        gpu_nodes: gpus.iter().map(|(id, _)| *id).collect(),
        assumptions,
    })
}
