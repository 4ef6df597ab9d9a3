//! The flags and recommended SDMA engines amdkfd gives a new GPU's links in its second pass
//! (`kfd_fill_iolink_non_crat_info`, kfd_topology.c), after the CRAT parse and after
//! `kfd_dev_create_p2p_links` have created them with flags 0 and no engine mask.
//!
//! The pass visits each link of the new GPU and, for each, the links coming back to it from
//! the other end ("inbound"): only then does it set NON_COHERENT and the SDMA masks. A link
//! with no way back keeps what it had. The model has one atomics fact per GPU, so it stands for
//! both the GPU's `pci_atomic_requested` and its PCIe atomic completer capability.

use crate::facts::GpuFacts;
use crate::link::{LinkFlags, LinkType};

/// SDMA engines a GPU uses for PCIe copies (`kfd_get_num_sdma_engines`).
pub const NUM_SDMA_ENGINES: u32 = 2;
/// SDMA engines a hive member adds for XGMI copies (`kfd_get_num_xgmi_sdma_engines`).
pub const NUM_SDMA_XGMI_ENGINES: u32 = 6;

/// gfx target version of GC 9.4.0 (Vega20), whose XGMI links are not coherent.
const VEGA20_GFX_TARGET_VERSION: u32 = 90006;
/// gfx target versions of the multi-AID parts (GC 9.4.3/9.4.4 = gfx942, 9.5.0 = gfx950): the
/// only ones with `adev->aid_mask`, which the per-socket engine table needs.
const MULTI_AID_GFX_TARGET_VERSIONS: [u32; 2] = [90402, 90500];
/// Hive size the per-socket engine table is written for (`REC_SDMA_NUM_GPU`).
const REC_SDMA_NUM_GPU: usize = 8;
/// `rec_sdma_eng_map` of kfd_topology.c: the engine for a copy from socket row to socket
/// column (-1 on the diagonal, which a link never uses).
const REC_SDMA_ENG_MAP: [[i8; REC_SDMA_NUM_GPU]; REC_SDMA_NUM_GPU] = [
    [-1, 14, 12, 2, 4, 8, 10, 6],
    [14, -1, 2, 10, 8, 4, 6, 12],
    [10, 2, -1, 12, 14, 6, 4, 8],
    [2, 12, 10, -1, 6, 14, 8, 4],
    [4, 8, 14, 6, -1, 10, 12, 2],
    [8, 4, 6, 14, 12, -1, 2, 10],
    [10, 6, 4, 8, 12, 2, -1, 14],
    [6, 12, 8, 4, 2, 10, 14, -1],
];

/// XGMI SDMA engines of `gpu`: only hive members have them.
pub const fn num_sdma_xgmi_engines(gpu: &GpuFacts) -> u32 {
    if gpu.xgmi.is_some() {
        NUM_SDMA_XGMI_ENGINES
    } else {
        0
    }
}

/// Whether the GPU's PCIe link to its CPU is bi-directional in its CRAT
/// (`kfd_fill_gpu_direct_io_link_to_cpu`, kfd_crat.c): only with a large BAR, or when XGMI
/// connects the GPU to the CPU. Only then does the CPU get an io_link back to the GPU
/// (`kfd_parse_subtype_iolink`).
pub const fn cpu_reaches_gpu_memory(gpu: &GpuFacts) -> bool {
    gpu.is_large_bar() || gpu.xgmi_connected_to_cpu
}

const fn no_atomics(gpu: &GpuFacts, link_type: LinkType) -> LinkFlags {
    // XGMI always supports atomics.
    if matches!(link_type, LinkType::Xgmi) || gpu.pcie_atomics {
        LinkFlags::NONE
    } else {
        LinkFlags(LinkFlags::NO_ATOMICS_32.0 | LinkFlags::NO_ATOMICS_64.0)
    }
}

/// Flags of a link of the new GPU `gpu` (`kfd_set_iolink_no_atomics` without a target):
/// ENABLED, plus NO_ATOMICS_32/64 on a non-XGMI link when the GPU lacks PCIe atomics.
pub const fn outbound_flags(gpu: &GpuFacts, link_type: LinkType) -> LinkFlags {
    LinkFlags(LinkFlags::ENABLED.0 | no_atomics(gpu, link_type).0)
}

/// Flags of a link coming back to the new GPU `gpu` from a CPU, or from the GPU `peer`
/// (`kfd_set_iolink_no_atomics` with `gpu` as target, then `kfd_set_iolink_non_coherent`).
///
/// The second value is whether the matching outbound link becomes NON_COHERENT as well.
/// CPU -> GPU over PCIe is not coherent; GPU <-> GPU over PCIe is not coherent either way, nor
/// is XGMI towards a Vega20 (GC 9.4.0).
pub const fn inbound_flags(
    gpu: &GpuFacts,
    peer: Option<&GpuFacts>,
    link_type: LinkType,
) -> (LinkFlags, bool) {
    let flags = outbound_flags(gpu, link_type);
    let non_coherent = match (peer, link_type) {
        (_, LinkType::Pcie) => true,
        (Some(peer), LinkType::Xgmi) => peer.gfx_target_version == VEGA20_GFX_TARGET_VERSION,
        _ => false,
    };
    if non_coherent {
        (
            LinkFlags(flags.0 | LinkFlags::NON_COHERENT.0),
            peer.is_some(),
        )
    } else {
        (flags, false)
    }
}

fn engine_mask(count: u32, shift: u32) -> u32 {
    let ones = if count >= 32 {
        u32::MAX
    } else {
        (1u32 << count) - 1
    };
    ones.checked_shl(shift).unwrap_or(0)
}

/// The engine of the per-socket table for a copy between two hive positions, as a mask.
fn table_engine(from: u32, to: u32, reshift: u32) -> u32 {
    let (from, to) = (from as usize, to as usize);
    if from >= REC_SDMA_NUM_GPU || to >= REC_SDMA_NUM_GPU {
        return 0;
    }
    let engine = REC_SDMA_ENG_MAP[from][to];
    if engine < 0 {
        return 0;
    }
    1u32.checked_shl((engine as u32) >> reshift).unwrap_or(0)
}

/// `recommended_sdma_engine_id_mask` of a new GPU's io_link (outbound) and of the io_link back
/// (inbound), as `kfd_set_recommended_sdma_engines` sets them. `peer` is the GPU at the other
/// end (`None` for a CPU); the masks come from `gpu`'s engines either way.
pub fn recommended_sdma_engines(
    gpu: &GpuFacts,
    peer: Option<&GpuFacts>,
    link_type: LinkType,
) -> (u32, u32) {
    let xgmi_engines = num_sdma_xgmi_engines(gpu);
    let sdma_mask = engine_mask(NUM_SDMA_ENGINES, 0);
    let xgmi_mask = engine_mask(xgmi_engines, NUM_SDMA_ENGINES);
    let per_socket = match (peer.and_then(|peer| peer.xgmi), gpu.xgmi) {
        (Some(theirs), Some(mine))
            if MULTI_AID_GFX_TARGET_VERSIONS.contains(&gpu.gfx_target_version)
                && mine.hive_size as usize == REC_SDMA_NUM_GPU
                && xgmi_engines >= 6
                // Not an APU: the model knows APUs only as XGMI-to-CPU parts.
                && !gpu.xgmi_connected_to_cpu =>
        {
            Some((mine.position, theirs.position))
        }
        _ => None,
    };
    if let Some((src, dst)) = per_socket {
        let reshift = u32::from(xgmi_engines == 6);
        let pick = |mask: u32| {
            if mask & sdma_mask != 0 {
                xgmi_mask
            } else {
                mask
            }
        };
        return (
            pick(table_engine(src, dst, reshift)),
            pick(table_engine(dst, src, reshift)),
        );
    }
    let mask = if matches!(link_type, LinkType::Xgmi) && xgmi_engines != 0 && peer.is_some() {
        xgmi_mask
    } else {
        sdma_mask
    };
    (mask, mask)
}
