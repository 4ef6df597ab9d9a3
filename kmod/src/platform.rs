// SPDX-License-Identifier: GPL-2.0

//! Facts about the machine outside the GPUs: NUMA nodes, their distances, the IOMMU.

use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::prelude::*;

use crate::facts::{CpuFacts, IommuMode};
use crate::shim::{
    hsa_p2p_iommu_mode, hsa_p2p_next_online_node, hsa_p2p_numa_distance, hsa_p2p_numa_node_count,
    hsa_p2p_numa_node_cpus, hsa_p2p_numa_node_memory, raw_pci_dev,
};
use kernel::pci;

/// The CPU nodes and their SLIT distances (row-major).
pub(crate) struct NumaFacts {
    pub(crate) cpus: KVec<CpuFacts>,
    pub(crate) distances: KVec<u32>,
}

/// Number of online NUMA nodes (KFD CPU nodes, numbered densely in node-id order, as KFD
/// does, whatever the node ids).
pub(crate) fn numa_node_count() -> u32 {
    // SAFETY: no arguments; reads the online node mask.
    unsafe { hsa_p2p_numa_node_count() }
}

/// The ids of the online NUMA nodes, ascending (`for_each_online_node`): they need not be
/// `0..count` (a node without memory or CPUs may be offline between two online ones).
fn online_nodes() -> Result<KVec<i32>> {
    let mut nodes = KVec::new();
    let mut node = -1;
    loop {
        // SAFETY: takes a node id or -1, reads the online node mask.
        node = unsafe { hsa_p2p_next_online_node(node) };
        if node < 0 {
            return Ok(nodes);
        }
        nodes.push(node, GFP_KERNEL)?;
    }
}

/// Reads the CPU nodes of the running system.
pub(crate) fn numa_facts() -> Result<NumaFacts> {
    let nodes = online_nodes()?;
    let mut cpus = KVec::new();
    let mut distances = KVec::new();
    for &node in nodes.iter() {
        // SAFETY: `node` is an online node id.
        let (cpu_cores, memory_bytes) =
            unsafe { (hsa_p2p_numa_node_cpus(node), hsa_p2p_numa_node_memory(node)) };
        cpus.push(
            CpuFacts {
                cpu_cores,
                memory_bytes,
            },
            GFP_KERNEL,
        )?;
        for &other in nodes.iter() {
            // SAFETY: both are online node ids.
            let distance = unsafe { hsa_p2p_numa_distance(node, other) };
            distances.push(distance, GFP_KERNEL)?;
        }
    }
    Ok(NumaFacts { cpus, distances })
}

/// How the IOMMU treats DMA of `pdev` (amdgpu_device_check_iommu_remap).
pub(crate) fn iommu_mode(pdev: &pci::Device) -> IommuMode {
    // SAFETY: `pdev` is a live device for the duration of the call.
    match unsafe { hsa_p2p_iommu_mode(raw_pci_dev(pdev)) } {
        2 => IommuMode::Remap,
        1 => IommuMode::Passthrough,
        _ => IommuMode::Off,
    }
}
