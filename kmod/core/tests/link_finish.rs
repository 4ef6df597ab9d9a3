//! amdkfd's exact link details on concrete machines: which CPU -> GPU links exist, the flags of
//! the second pass and the recommended SDMA engines. Each test names the upstream function (Linux
//! 7.3, drivers/gpu/drm/amd/amdkfd) it follows.

mod common;

use common::{sample_gpu, Machine, TableOracle, GIB};
use hsa_p2p_core::builder::build_topology;
use hsa_p2p_core::facts::{
    CpuFacts, GpuFacts, IommuMode, PeerBandwidthRule, PlatformFacts, XgmiFacts, XgmiWiring,
};
use hsa_p2p_core::link::{LinkFlags, LinkProperties, LinkType};
use hsa_p2p_core::topology::Topology;

const ENABLED_NON_COHERENT: LinkFlags = LinkFlags(3);
const NO_ATOMICS: LinkFlags = LinkFlags(12);

/// `cpus` CPU nodes (SLIT 10 / 32) and `gpus`, every pair allowed by the PCI core.
fn machine(cpus: usize, gpus: Vec<GpuFacts>) -> Machine {
    let numa_distances = (0..cpus * cpus)
        .map(|i| if i / cpus == i % cpus { 10 } else { 32 })
        .collect();
    let oracle = TableOracle(vec![vec![Some(4); gpus.len()]; gpus.len()]);
    Machine {
        cpus: vec![
            CpuFacts {
                cpu_cores: 8,
                memory_bytes: 64 * GIB,
            };
            cpus
        ],
        numa_distances,
        cpu_link_bandwidth_mbs: 0,
        gpus,
        platform: PlatformFacts {
            iommu: IommuMode::Remap,
            pcie_p2p: true,
            hsa_amd_p2p: true,
        },
        oracle,
        peer_bandwidth: PeerBandwidthRule::Corrected,
    }
}

fn build(machine: &Machine) -> Topology {
    let mut topology = Topology::default();
    build_topology(&machine.facts(), &machine.oracle, &mut topology).unwrap();
    topology
}

fn small_bar(gpu: GpuFacts) -> GpuFacts {
    GpuFacts {
        bar_size: 256 << 20,
        ..gpu
    }
}

fn on_cpu(numa_node: u32, gpu: GpuFacts) -> GpuFacts {
    GpuFacts { numa_node, ..gpu }
}

fn link(topology: &Topology, io: bool, from: u32, to: u32) -> LinkProperties {
    let link = if io {
        topology.io_link(from, to)
    } else {
        topology.p2p_link(from, to)
    };
    *link.unwrap_or_else(|| panic!("no link {from} -> {to}"))
}

/// kfd_fill_gpu_direct_io_link_to_cpu (kfd_crat.c) marks the GPU's link BI_DIRECTIONAL only for
/// a large BAR (or an XGMI-to-CPU part); kfd_parse_subtype_iolink (kfd_crat.c) adds the CPU ->
/// GPU io_link only for such links; kfd_create_indirect_link_prop (kfd_topology.c) adds no
/// far-CPU -> GPU p2p link for a small BAR.
#[test]
fn small_bar_gpus_get_no_cpu_to_gpu_links() {
    let topology = build(&machine(2, vec![small_bar(sample_gpu()), sample_gpu()]));
    // Node 2: small BAR; node 3: large BAR; both on CPU 0.
    assert!(topology.io_link(0, 2).is_none());
    assert!(topology.p2p_link(1, 2).is_none());
    assert!(topology.io_link(0, 3).is_some());
    assert!(topology.p2p_link(1, 3).is_some());
    // CPU 0: its link to CPU 1 and to the large-BAR GPU only.
    assert_eq!(topology.node(0).unwrap().counts().io_links, 2);
    // The GPU -> CPU direction stays.
    assert!(topology.io_link(2, 0).is_some() && topology.p2p_link(2, 1).is_some());

    let apu_like = GpuFacts {
        xgmi_connected_to_cpu: true,
        ..small_bar(sample_gpu())
    };
    let topology = build(&machine(1, vec![apu_like]));
    assert!(
        topology.io_link(0, 1).is_some(),
        "XGMI to the CPU is always bi-directional"
    );
}

/// kfd_fill_gpu_direct_io_link_to_cpu (kfd_crat.c) for a GPU with XGMI to the CPU: an XGMI
/// io_link weighing KFD_CRAT_XGMI_WEIGHT with one link's rate (amdgpu_xgmi_get_bandwidth per
/// link: GC 9.4.2 = 25 GT/s x16 = 50000 MB/s), or for the GC 9.4.3 APU
/// KFD_CRAT_INTRA_SOCKET_WEIGHT with mem_bw 819200; kfd_set_iolink_non_coherent leaves XGMI
/// CPU -> GPU coherent and kfd_set_iolink_no_atomics leaves XGMI with atomics.
#[test]
fn xgmi_to_cpu_parts_get_an_xgmi_link_to_their_cpu() {
    let cases = [
        ("MI250X with XGMI to its CPU (gfx90a)", 90010, (15, 50_000)),
        ("MI300A APU (gfx942)", 90402, (13, 819_200)),
    ];
    for (what, gfx_target_version, (weight, bandwidth)) in cases {
        let gpu = GpuFacts {
            xgmi_connected_to_cpu: true,
            pcie_atomics: false,
            gfx_target_version,
            ..sample_gpu()
        };
        let topology = build(&machine(1, vec![gpu]));
        let up = link(&topology, true, 1, 0);
        let down = link(&topology, true, 0, 1);
        for l in [up, down] {
            assert_eq!(l.link_type, LinkType::Xgmi, "{what}");
            assert_eq!(
                (l.weight, l.min_bandwidth, l.max_bandwidth),
                (weight, bandwidth, bandwidth),
                "{what}"
            );
            assert_eq!(
                l.flags,
                LinkFlags::ENABLED,
                "{what}: coherent, with atomics"
            );
        }
    }
}

/// kfd_fill_iolink_non_crat_info with kfd_set_iolink_no_atomics and kfd_set_iolink_non_coherent
/// (kfd_topology.c): CPU -> GPU over PCIe is non-coherent, for the io_link and for the far-CPU
/// -> GPU indirect link alike (the pass visits the p2p links too); GPU -> CPU is not.
#[test]
fn cpu_to_gpu_links_are_non_coherent_io_and_indirect() {
    let no_atomics = GpuFacts {
        pcie_atomics: false,
        ..sample_gpu()
    };
    let topology = build(&machine(2, vec![sample_gpu(), on_cpu(1, no_atomics)]));
    assert_eq!(link(&topology, true, 2, 0).flags, LinkFlags::ENABLED);
    assert_eq!(link(&topology, true, 0, 2).flags, ENABLED_NON_COHERENT);
    assert_eq!(link(&topology, false, 2, 1).flags, LinkFlags::ENABLED);
    assert_eq!(link(&topology, false, 1, 2).flags, ENABLED_NON_COHERENT);
    assert_eq!(
        link(&topology, true, 3, 1).flags,
        LinkFlags::ENABLED | NO_ATOMICS
    );
    assert_eq!(link(&topology, true, 1, 3).flags.0, 15);
    assert_eq!(link(&topology, false, 0, 3).flags.0, 15);
    assert_eq!(
        link(&topology, false, 3, 0).flags,
        LinkFlags::ENABLED | NO_ATOMICS
    );
}

fn hive_member(gfx_target_version: u32, position: u32, hive_size: u32) -> GpuFacts {
    GpuFacts {
        gfx_target_version,
        xgmi: Some(XgmiFacts::member(
            0x1234,
            position,
            hive_size,
            25_000,
            XgmiWiring::Full(1),
        )),
        ..sample_gpu()
    }
}

/// kfd_set_iolink_non_coherent (kfd_topology.c): XGMI between GPUs is non-coherent only towards
/// a Vega20 (GC 9.4.0, gfx906); kfd_set_iolink_no_atomics: XGMI always has atomics.
#[test]
fn vega20_xgmi_links_are_non_coherent() {
    let pair = |gfx| {
        let mut gpus = vec![hive_member(gfx, 0, 2), hive_member(gfx, 1, 2)];
        for gpu in &mut gpus {
            gpu.pcie_atomics = false;
        }
        build(&machine(1, gpus))
    };
    let vega20 = pair(90006);
    assert_eq!(link(&vega20, true, 1, 2).flags, ENABLED_NON_COHERENT);
    assert_eq!(link(&vega20, true, 2, 1).flags, ENABLED_NON_COHERENT);
    let mi250 = pair(90010);
    assert_eq!(link(&mi250, true, 1, 2).flags, LinkFlags::ENABLED);
    assert_eq!(link(&mi250, true, 2, 1).flags, LinkFlags::ENABLED);
}

/// kfd_fill_iolink_non_crat_info (kfd_topology.c) sets flags on the new GPU's p2p links and on
/// the links back to it. kfd_add_peer_prop copied the link towards the new GPU from the new
/// GPU's io_link before that pass (flags 0): with no link back, it keeps flags 0.
#[test]
fn one_way_peer_links_keep_the_flags_of_their_copy() {
    // GPU 0 (node 1) small BAR, GPU 1 (node 2) large BAR: only 1 -> 2 passes the gate.
    let topology = build(&machine(1, vec![small_bar(sample_gpu()), sample_gpu()]));
    assert!(topology.p2p_link(2, 1).is_none());
    assert_eq!(link(&topology, false, 1, 2).flags, LinkFlags::NONE);
    // Reversed order: the newer GPU reaches the older one: ENABLED, never NON_COHERENT.
    let topology = build(&machine(1, vec![sample_gpu(), small_bar(sample_gpu())]));
    assert!(topology.p2p_link(1, 2).is_none());
    assert_eq!(link(&topology, false, 2, 1).flags, LinkFlags::ENABLED);
    // Both ways: both non-coherent.
    let topology = build(&machine(1, vec![sample_gpu(), sample_gpu()]));
    assert_eq!(link(&topology, false, 1, 2).flags, ENABLED_NON_COHERENT);
    assert_eq!(link(&topology, false, 2, 1).flags, ENABLED_NON_COHERENT);
}

/// kfd_set_recommended_sdma_engines (kfd_topology.c), called for each io_link of the new GPU
/// that has a link back: the PCIe engines (2 -> 0x3) towards a CPU, the XGMI engines (6 after
/// the 2 PCIe ones -> 0xfc) towards a hive peer. p2p links keep the mask of the io_link they
/// copied (kfd_create_indirect_link_prop, kfd_add_peer_prop).
#[test]
fn recommended_sdma_engines_follow_the_io_link_pairs() {
    let topology = build(&machine(
        2,
        vec![sample_gpu(), small_bar(sample_gpu()), sample_gpu()],
    ));
    let mask = |io, from, to| link(&topology, io, from, to).recommended_sdma_engine_id_mask;
    // Large BAR: both ends of the CPU link; small BAR: no link back, so none.
    assert_eq!((mask(true, 2, 0), mask(true, 0, 2)), (0x3, 0x3));
    assert_eq!(mask(true, 3, 0), 0);
    // Indirect links copy the CRAT link, before engines are set.
    assert_eq!((mask(false, 2, 1), mask(false, 1, 2)), (0, 0));
    // Peer links: towards the newer GPU a copy of its CRAT link (0); towards the older one a
    // copy of its finished io_link.
    assert_eq!((mask(false, 2, 4), mask(false, 4, 2)), (0, 0x3));
    assert_eq!(mask(false, 3, 2), 0x3);

    let hive = build(&machine(
        1,
        vec![hive_member(90010, 0, 2), hive_member(90010, 1, 2)],
    ));
    let mask = |from, to| link(&hive, true, from, to).recommended_sdma_engine_id_mask;
    assert_eq!((mask(1, 2), mask(2, 1)), (0xfc, 0xfc));
}

/// kfd_set_recommended_sdma_engines (kfd_topology.c): an 8-socket hive of multi-AID parts
/// (gfx942) uses `rec_sdma_eng_map`, shifted right by one for 6 XGMI engines; an engine among
/// the PCIe ones falls back to every XGMI engine.
#[test]
fn eight_socket_gfx942_hives_use_the_engine_table() {
    let gpus = (0..8)
        .map(|position| hive_member(90402, position, 8))
        .collect();
    let topology = build(&machine(1, gpus));
    let mask = |from: u32, to: u32| {
        link(&topology, true, from + 1, to + 1).recommended_sdma_engine_id_mask
    };
    // Socket 1 -> 0: engine 14 >> 1 = 7; 0 -> 1 likewise.
    assert_eq!((mask(1, 0), mask(0, 1)), (1 << 7, 1 << 7));
    // 3 -> 0: engine 2 >> 1 = 1, a PCIe engine: all XGMI engines instead.
    assert_eq!(mask(3, 0), 0xfc);
    // 0 -> 3: engine 2 as well.
    assert_eq!(mask(0, 3), 0xfc);
    // 7 -> 4: engine 2 >> 1 = 1 again; 4 -> 7: engine 2.
    assert_eq!(mask(7, 4), 0xfc);
    // 2 -> 4: engine 14 -> bit 7; 4 -> 2: 14 -> bit 7; 5 -> 0: 8 -> bit 4.
    assert_eq!(
        (mask(2, 4), mask(4, 2), mask(5, 0)),
        (1 << 7, 1 << 7, 1 << 4)
    );
    // A 2-member hive of the same parts: no table.
    let pair = build(&machine(
        1,
        vec![hive_member(90402, 0, 2), hive_member(90402, 1, 2)],
    ));
    assert_eq!(
        link(&pair, true, 1, 2).recommended_sdma_engine_id_mask,
        0xfc
    );
}
