// SPDX-License-Identifier: GPL-2.0

//! Facts about the machine outside the GPUs: NUMA nodes, their distances, the IOMMU.

use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::ffi::c_int;
use kernel::pci;
use kernel::prelude::*;

use crate::facts::{CpuFacts, IommuMode};
use crate::numa::{cpu_nodes, NumaPlatform};
use crate::shim::{
    hsa_p2p_iommu_mode, hsa_p2p_next_online_node, hsa_p2p_numa_distance, hsa_p2p_numa_node_count,
    hsa_p2p_numa_node_cpus, hsa_p2p_numa_node_memory, raw_pci_dev,
};

/// The CPU nodes and their SLIT distances (row-major).
pub(crate) struct NumaFacts {
    pub(crate) cpus: KVec<CpuFacts>,
    pub(crate) distances: KVec<u32>,
}

/// Number of online NUMA nodes (KFD CPU nodes, numbered densely in node-id order, as KFD
/// does, whatever the node ids: see [`crate::numa`]).
pub(crate) fn numa_node_count() -> u32 {
    // SAFETY: no arguments; reads the online node mask.
    unsafe { hsa_p2p_numa_node_count() }
}

/// The running kernel's NUMA nodes.
struct KernelNuma;

/// A node id for the shims: every id the core passes came from `next_online_node`, which
/// returns ids below `MAX_NUMNODES`.
fn node_id(node: u32) -> c_int {
    c_int::try_from(node).unwrap_or(c_int::MAX)
}

impl NumaPlatform for KernelNuma {
    fn next_online_node(&self, after: Option<u32>) -> Option<u32> {
        let after = after.map_or(-1, node_id);
        // SAFETY: takes a node id or -1, reads the online node mask.
        let next = unsafe { hsa_p2p_next_online_node(after) };
        u32::try_from(next).ok()
    }

    fn cpu_cores(&self, node: u32) -> u32 {
        // SAFETY: `node` is an online node id (see `node_id`).
        unsafe { hsa_p2p_numa_node_cpus(node_id(node)) }
    }

    fn memory_bytes(&self, node: u32) -> u64 {
        // SAFETY: as above.
        unsafe { hsa_p2p_numa_node_memory(node_id(node)) }
    }

    fn distance(&self, from: u32, to: u32) -> u32 {
        // SAFETY: both are online node ids.
        unsafe { hsa_p2p_numa_distance(node_id(from), node_id(to)) }
    }
}

/// Reads the CPU nodes of the running system.
pub(crate) fn numa_facts() -> Result<NumaFacts> {
    let mut cpus = KVec::new();
    let mut distances = KVec::new();
    cpu_nodes(
        &KernelNuma,
        |facts| cpus.push(facts, GFP_KERNEL),
        |distance| distances.push(distance, GFP_KERNEL),
    )?;
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
