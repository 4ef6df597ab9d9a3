//! How amdkfd derives link properties: direct links from device facts, and indirect, peer and
//! XGMI links by composing them.
//!
//! Composition sums weights and latencies along the path and takes the minimum bandwidth.

use crate::facts::{xgmi_link_rate_mbs, GpuFacts, XgmiFacts};
use crate::link::{LinkFlags, LinkProperties, LinkType};
use crate::pcie::PcieLink;

/// Weight of a PCIe hop between a GPU and its CPU (KFD_CRAT_PCIE_WEIGHT... in amdkfd: 20).
pub const PCIE_WEIGHT: u32 = 20;
/// Weight of one XGMI hop.
pub const XGMI_WEIGHT_PER_HOP: u32 = 15;

fn no_atomics(gpu: &GpuFacts) -> LinkFlags {
    if gpu.pcie_atomics {
        LinkFlags::NONE
    } else {
        LinkFlags::NO_ATOMICS_32 | LinkFlags::NO_ATOMICS_64
    }
}

/// Weight of the XGMI link of a GC 9.4.3 APU to its own socket (KFD_CRAT_INTRA_SOCKET_WEIGHT).
pub const INTRA_SOCKET_WEIGHT: u32 = 13;
/// Bandwidth amdkfd gives a GC 9.4.3 APU's link to its socket, MB/s (`mem_bw` of
/// kfd_fill_gpu_direct_io_link_to_cpu).
pub const APU_MEMORY_BANDWIDTH_MBS: u32 = 819_200;
/// gfx target version of GC 9.4.3/9.4.4 (gfx942): with XGMI to the CPU, the MI300A APU.
const GFX942: u32 = 90402;

/// The GPU's own io_link to the CPU node it hangs off (always its first io_link), as
/// kfd_fill_gpu_direct_io_link_to_cpu fills it.
///
/// Over PCIe: weight 20, Gen1 x1 to the link's bandwidth, flags ENABLED plus NO_ATOMICS_32/64
/// when the GPU cannot do PCIe atomics (1 or 13). When XGMI connects the GPU to the CPU: type
/// XGMI, weight KFD_CRAT_XGMI_WEIGHT (15) and one XGMI link's rate both ways
/// (amdgpu_xgmi_get_bandwidth per link), or for the GC 9.4.3 APU KFD_CRAT_INTRA_SOCKET_WEIGHT
/// (13) and the memory bandwidth; XGMI always has atomics.
pub fn gpu_to_cpu_link(gpu_node: u32, cpu_node: u32, gpu: &GpuFacts) -> LinkProperties {
    if gpu.xgmi_connected_to_cpu {
        let (weight, bandwidth) = if gpu.gfx_target_version == GFX942 {
            (INTRA_SOCKET_WEIGHT, APU_MEMORY_BANDWIDTH_MBS)
        } else {
            let rate = match gpu.xgmi {
                Some(xgmi) => xgmi.link_bandwidth_mbs,
                None => xgmi_link_rate_mbs(gpu.gfx_target_version),
            };
            (XGMI_WEIGHT_PER_HOP, rate)
        };
        return LinkProperties {
            weight,
            min_bandwidth: bandwidth,
            max_bandwidth: bandwidth,
            flags: LinkFlags::ENABLED,
            ..LinkProperties::new(LinkType::Xgmi, gpu_node, cpu_node)
        };
    }
    LinkProperties {
        weight: PCIE_WEIGHT,
        min_bandwidth: PcieLink::MINIMUM.bandwidth_mbs(),
        max_bandwidth: gpu.pcie.bandwidth_mbs(),
        flags: LinkFlags::ENABLED | no_atomics(gpu),
        ..LinkProperties::new(LinkType::Pcie, gpu_node, cpu_node)
    }
}

/// The CPU's io_link back to a GPU: the GPU's link reversed; CPU accesses to VRAM over PCIe are
/// not coherent (flags 3, or 15 without atomics; kfd_set_iolink_non_coherent), over XGMI they
/// are.
pub fn cpu_to_gpu_link(gpu_link: &LinkProperties) -> LinkProperties {
    let flags = if gpu_link.link_type == LinkType::Pcie {
        gpu_link.flags | LinkFlags::NON_COHERENT
    } else {
        gpu_link.flags
    };
    LinkProperties {
        flags,
        ..gpu_link.reversed()
    }
}

/// An io_link between two CPU nodes: QPI type on x86-64, weight = SLIT distance, flags 0.
pub fn cpu_to_cpu_link(from: u32, to: u32, distance: u32, bandwidth_mbs: u32) -> LinkProperties {
    LinkProperties {
        weight: distance,
        min_bandwidth: bandwidth_mbs,
        max_bandwidth: bandwidth_mbs,
        ..LinkProperties::new(LinkType::Qpi11, from, to)
    }
}

/// Appends hop `next` to path `path`: weights and latencies add up, bandwidths take the minimum.
/// Everything else (type, flags, versions) stays that of `path`.
pub fn extend_path(path: &LinkProperties, next: &LinkProperties) -> LinkProperties {
    LinkProperties {
        weight: path.weight.saturating_add(next.weight),
        min_latency: path.min_latency.saturating_add(next.min_latency),
        max_latency: path.max_latency.saturating_add(next.max_latency),
        min_bandwidth: path.min_bandwidth.min(next.min_bandwidth),
        max_bandwidth: path.max_bandwidth.min(next.max_bandwidth),
        ..*path
    }
}

/// An indirect link from a GPU to a CPU node it is not attached to: the GPU's own link, then the
/// CPU<->CPU link from the far CPU (`cpu_link.node_from`) to the GPU's CPU.
///
/// (kfd_create_indirect_link_prop). The reverse, far CPU -> GPU, is the same record with ends
/// swapped, and exists only for large-BAR GPUs. The copy is made before the second pass gives
/// the GPU's link its SDMA engines, and that pass sets none on p2p links: the mask stays 0.
pub fn indirect_link(gpu_link: &LinkProperties, cpu_link: &LinkProperties) -> LinkProperties {
    LinkProperties {
        node_to: cpu_link.node_from,
        recommended_sdma_engine_id_mask: 0,
        ..extend_path(gpu_link, cpu_link)
    }
}

/// A peer link: `accessor` reaches `owner`'s BAR through both GPUs' PCIe links and, when they hang
/// off different CPU nodes, the CPU<->CPU link between them (kfd_add_peer_prop).
///
/// The record copies the owner's first io_link (flags and SDMA engines included: the second pass,
/// [`crate::link_finish`], decides them later) and is recorded on the accessor: `node_from` =
/// accessor, `node_to` = owner.
///
/// Upstream amdkfd computes `max_bandwidth = min(iolink2->max_bandwidth, iolink2->max_bandwidth)`,
/// i.e. the accessor's link alone, ignoring the owner's. Here both hops count, which is what the
/// code means; [`upstream_peer_max_bandwidth`] reproduces the upstream value for comparison with
/// real kernels.
pub fn peer_link(
    owner_link: &LinkProperties,
    accessor_link: &LinkProperties,
    cpu_link: Option<&LinkProperties>,
    accessor_node: u32,
    owner_node: u32,
) -> LinkProperties {
    let mut link = extend_path(owner_link, accessor_link);
    if let Some(cpu_link) = cpu_link {
        link = extend_path(&link, cpu_link);
    }
    LinkProperties {
        node_from: accessor_node,
        node_to: owner_node,
        ..link
    }
}

/// The `max_bandwidth` upstream amdkfd (Linux 7.3) reports for a peer link, bug included: the
/// owner's link is ignored.
pub fn upstream_peer_max_bandwidth(
    accessor_link: &LinkProperties,
    cpu_link: Option<&LinkProperties>,
) -> u32 {
    let accessor_only = accessor_link.max_bandwidth.min(accessor_link.max_bandwidth);
    match cpu_link {
        Some(cpu_link) => accessor_only.min(cpu_link.max_bandwidth),
        None => accessor_only,
    }
}

/// The XGMI io_link from one hive member to another (`kfd_fill_gpu_xgmi_link_to_gpu` with the
/// PSP's table): weight 15 per hop (`amdgpu_xgmi_get_hops_count`); bandwidth from
/// `amdgpu_xgmi_get_bandwidth` in per-peer mode: one link's rate as the minimum and
/// `num_links` times it as the maximum, or 0 and 0 for a peer joined by no link of its own.
pub fn xgmi_link(from_node: u32, to_node: u32, from: &XgmiFacts, to: &XgmiFacts) -> LinkProperties {
    let links = from.links_to(to);
    let (min_bandwidth, max_bandwidth) = if links > 0 {
        (
            from.link_bandwidth_mbs,
            from.link_bandwidth_mbs.saturating_mul(links),
        )
    } else {
        (0, 0)
    };
    LinkProperties {
        weight: XGMI_WEIGHT_PER_HOP.saturating_mul(from.hops_to(to)),
        min_bandwidth,
        max_bandwidth,
        flags: LinkFlags::ENABLED,
        ..LinkProperties::new(LinkType::Xgmi, from_node, to_node)
    }
}
