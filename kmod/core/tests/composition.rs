//! Link composition: direct GPU/CPU links, path extension, indirect, peer and XGMI links.
//!
//! A composed link is never faster than any of its hops, costs the sum of their weights and
//! latencies, and is as symmetric as the upstream rules are. The fixed peer `max_bandwidth`
//! differs from upstream's exactly when the owner's link is the narrowest hop.

mod common;

use hsa_p2p_core::compose::{
    cpu_to_cpu_link, cpu_to_gpu_link, extend_path, gpu_to_cpu_link, indirect_link, peer_link,
    upstream_peer_max_bandwidth, xgmi_link, PCIE_WEIGHT, XGMI_WEIGHT_PER_HOP,
};
use hsa_p2p_core::facts::{
    xgmi_link_rate_mbs, XgmiFacts, XgmiLinkTable, XgmiWiring, XGMI_MAX_HIVE,
};
use hsa_p2p_core::link::{LinkFlags, LinkProperties, LinkType};
use hsa_p2p_core::pcie::PcieLink;
use proptest::prelude::*;

fn hops(links: &[&LinkProperties]) -> (u64, u64, u64, u32, u32) {
    (
        links.iter().map(|l| u64::from(l.weight)).sum(),
        links.iter().map(|l| u64::from(l.min_latency)).sum(),
        links.iter().map(|l| u64::from(l.max_latency)).sum(),
        links.iter().map(|l| l.min_bandwidth).min().unwrap(),
        links.iter().map(|l| l.max_bandwidth).min().unwrap(),
    )
}

fn sat(sum: u64) -> u32 {
    u32::try_from(sum).unwrap_or(u32::MAX)
}

/// Two GPUs, their node ids and their CPU nodes, with the CPU<->CPU link between them when the
/// CPU nodes differ (weight = a symmetric SLIT distance).
/// Two GPUs' links to their CPUs over PCIe (peer links exist only between PCIe GPUs: the gate
/// refuses an owner with XGMI to the CPU), and the CPU hop between them.
fn gpu_pair() -> impl Strategy<Value = (LinkProperties, LinkProperties, Option<u32>, u32)> {
    (
        common::gpu(2),
        common::gpu(2),
        select_distance(),
        prop_oneof![Just(0u32), 1u32..100_000],
    )
        .prop_map(|(mut a, mut b, distance, cpu_bandwidth)| {
            a.xgmi_connected_to_cpu = false;
            b.xgmi_connected_to_cpu = false;
            let link_a = gpu_to_cpu_link(2, a.numa_node, &a);
            let link_b = gpu_to_cpu_link(3, b.numa_node, &b);
            let distance = (a.numa_node != b.numa_node).then_some(distance);
            (link_a, link_b, distance, cpu_bandwidth)
        })
}

fn select_distance() -> impl Strategy<Value = u32> {
    proptest::sample::select(vec![12u32, 16, 20, 21, 32, 40])
}

fn cpu_hop(
    owner: &LinkProperties,
    accessor: &LinkProperties,
    distance: Option<u32>,
    bandwidth: u32,
) -> Option<LinkProperties> {
    distance.map(|d| cpu_to_cpu_link(owner.node_to, accessor.node_to, d, bandwidth))
}

/// How a generated hive is wired: the shorthands, or a random symmetric link table.
#[derive(Clone, Debug)]
enum Wiring {
    Full(u8),
    Ring(u8),
    Links(Box<XgmiLinkTable>),
}

fn wiring() -> impl Strategy<Value = Wiring> {
    prop_oneof![
        (1u8..4).prop_map(Wiring::Full),
        (1u8..4).prop_map(Wiring::Ring),
        proptest::collection::vec(0u8..5, XGMI_MAX_HIVE * XGMI_MAX_HIVE).prop_map(|raw| {
            let mut table: XgmiLinkTable = [[0; XGMI_MAX_HIVE]; XGMI_MAX_HIVE];
            for a in 0..XGMI_MAX_HIVE {
                for b in 0..XGMI_MAX_HIVE {
                    // Symmetric, no self-links, about half the pairs unlinked.
                    let links = raw[a.min(b) * XGMI_MAX_HIVE + a.max(b)].saturating_sub(2);
                    table[a][b] = if a == b { 0 } else { links };
                }
            }
            Wiring::Links(Box::new(table))
        }),
    ]
}

impl Wiring {
    fn as_core(&self) -> XgmiWiring<'_> {
        match self {
            Wiring::Full(links) => XgmiWiring::Full(*links),
            Wiring::Ring(links) => XgmiWiring::Ring(*links),
            Wiring::Links(table) => XgmiWiring::Links(table),
        }
    }
}

fn xgmi_member() -> impl Strategy<Value = (XgmiFacts, XgmiFacts, Wiring)> {
    (1u32..=8, wiring(), 1u32..50_000)
        .prop_flat_map(|(hive_size, wiring, bw)| {
            (Just((hive_size, wiring, bw)), 0..hive_size, 0..hive_size)
        })
        .prop_map(|((hive_size, wiring, bw), a, b)| {
            let member =
                |position| XgmiFacts::member(0x42, position, hive_size, bw, wiring.as_core());
            (member(a), member(b), wiring)
        })
}

/// Fewest hops from `a` to `b` over the links, by exhaustive relaxation (independent of the
/// breadth-first search under test); `None` when unreachable.
fn shortest_hops(wiring: &XgmiWiring<'_>, size: usize, a: usize, b: usize) -> Option<u32> {
    let mut dist = vec![None; size];
    dist[a] = Some(0u32);
    for _ in 0..size {
        for from in 0..size {
            for to in 0..size {
                if let (Some(d), true) = (dist[from], wiring.links(from, to, size) > 0) {
                    if dist[to].is_none_or(|old| d + 1 < old) {
                        dist[to] = Some(d + 1);
                    }
                }
            }
        }
    }
    dist[b]
}

proptest! {
    #![proptest_config(config!("composition", 256))]

    /// A GPU's own link (kfd_fill_gpu_direct_io_link_to_cpu): over PCIe type PCIe, weight 20,
    /// Gen1 x1 minimum, its link's bandwidth as the maximum, flags 1 (13 without atomics), the
    /// CPU's reverse link the same but non-coherent (kfd_set_iolink_non_coherent). With XGMI to
    /// the CPU: type XGMI, KFD_CRAT_XGMI_WEIGHT and one link's rate
    /// (amdgpu_xgmi_get_bandwidth per link), or for a GC 9.4.3 APU KFD_CRAT_INTRA_SOCKET_WEIGHT
    /// and mem_bw; flags 1 both ways (atomics, coherent).
    #[test]
    fn direct_links_follow_amdgpu(mut gpu in common::gpu(4), node in 4u32..64, apu in any::<bool>()) {
        if apu && gpu.xgmi_connected_to_cpu {
            gpu.gfx_target_version = 90402;
        }
        let link = gpu_to_cpu_link(node, gpu.numa_node, &gpu);
        let expected = if !gpu.xgmi_connected_to_cpu {
            let flags = if gpu.pcie_atomics { 1 } else { 13 };
            (LinkType::Pcie, PCIE_WEIGHT, PcieLink::MINIMUM.bandwidth_mbs(), gpu.pcie.bandwidth_mbs(), flags)
        } else if gpu.gfx_target_version == 90402 {
            (LinkType::Xgmi, 13, 819_200, 819_200, 1)
        } else {
            let rate = gpu.xgmi.map_or(xgmi_link_rate_mbs(gpu.gfx_target_version), |x| x.link_bandwidth_mbs);
            (LinkType::Xgmi, 15, rate, rate, 1)
        };
        prop_assert_eq!(
            (link.link_type, link.weight, link.min_bandwidth, link.max_bandwidth, link.flags.0),
            expected
        );
        prop_assert_eq!((link.node_from, link.node_to), (node, gpu.numa_node));
        prop_assert!(link.min_bandwidth <= link.max_bandwidth);

        let back = cpu_to_gpu_link(&link);
        prop_assert_eq!((back.node_from, back.node_to), (gpu.numa_node, node));
        let back_flags = match (gpu.xgmi_connected_to_cpu, gpu.pcie_atomics) {
            (true, _) => 1,
            (false, true) => 3,
            (false, false) => 15,
        };
        prop_assert_eq!(back.flags.0, back_flags);
        prop_assert_eq!(
            (back.weight, back.min_bandwidth, back.max_bandwidth, back.link_type),
            (link.weight, link.min_bandwidth, link.max_bandwidth, link.link_type)
        );
    }

    #[test]
    fn cpu_links_weigh_the_slit_distance_and_carry_no_flags(
        from in 0u32..8, to in 0u32..8, distance in any::<u32>(), bandwidth in any::<u32>(),
    ) {
        let link = cpu_to_cpu_link(from, to, distance, bandwidth);
        prop_assert_eq!(link.link_type, LinkType::Qpi11);
        prop_assert_eq!(link.flags, LinkFlags::NONE);
        prop_assert_eq!((link.weight, link.min_bandwidth, link.max_bandwidth), (distance, bandwidth, bandwidth));
        prop_assert_eq!(cpu_to_cpu_link(to, from, distance, bandwidth), link.reversed());
    }

    /// Extending a path: sums (saturating) and minimums; identity fields stay the path's.
    #[test]
    fn extend_path_sums_costs_and_takes_the_narrowest_hop(
        path in common::any_link(), next in common::any_link(),
    ) {
        let joined = extend_path(&path, &next);
        let (weight, min_latency, max_latency, min_bandwidth, max_bandwidth) = hops(&[&path, &next]);
        prop_assert_eq!(joined.weight, sat(weight));
        prop_assert_eq!(joined.min_latency, sat(min_latency));
        prop_assert_eq!(joined.max_latency, sat(max_latency));
        prop_assert_eq!(joined.min_bandwidth, min_bandwidth);
        prop_assert_eq!(joined.max_bandwidth, max_bandwidth);
        prop_assert!(joined.max_bandwidth <= path.max_bandwidth && joined.max_bandwidth <= next.max_bandwidth);
        prop_assert_eq!(
            (joined.link_type, joined.flags, joined.node_from, joined.node_to, joined.version_major,
             joined.recommended_transfer_size, joined.recommended_sdma_engine_id_mask),
            (path.link_type, path.flags, path.node_from, path.node_to, path.version_major,
             path.recommended_transfer_size, path.recommended_sdma_engine_id_mask)
        );
    }

    /// Composition does not depend on how a path is bracketed.
    #[test]
    fn extend_path_is_associative(a in common::any_link(), b in common::any_link(), c in common::any_link()) {
        prop_assert_eq!(
            extend_path(&extend_path(&a, &b), &c),
            extend_path(&a, &extend_path(&b, &c))
        );
    }

    /// GPU -> far CPU: the GPU's link then the far CPU's link to the GPU's CPU.
    #[test]
    fn indirect_links_compose_the_gpu_link_and_the_cpu_link(
        gpu in common::gpu(1), node in 2u32..64, far_cpu in 1u32..4, distance in select_distance(),
        bandwidth in prop_oneof![Just(0u32), 1u32..100_000],
    ) {
        let gpu_link = gpu_to_cpu_link(node, 0, &gpu);
        let cpu_link = cpu_to_cpu_link(far_cpu, 0, distance, bandwidth);
        let link = indirect_link(&gpu_link, &cpu_link);
        prop_assert_eq!((link.node_from, link.node_to), (node, far_cpu));
        prop_assert_eq!(link.link_type, gpu_link.link_type);
        prop_assert_eq!(link.flags, gpu_link.flags);
        prop_assert_eq!(link.weight, gpu_link.weight + distance);
        prop_assert!(link.max_bandwidth <= gpu_link.max_bandwidth);
        prop_assert!(link.max_bandwidth <= cpu_link.max_bandwidth);
        prop_assert_eq!(link.max_bandwidth, gpu_link.max_bandwidth.min(bandwidth));
        prop_assert_eq!(link.min_bandwidth, gpu_link.min_bandwidth.min(bandwidth));
    }

    /// A peer link costs both GPU links (plus the CPU<->CPU hop across NUMA nodes) and is never
    /// faster than any hop; it lives on the accessor and points at the owner.
    #[test]
    fn peer_links_never_exceed_any_hop((owner, accessor, distance, cpu_bw) in gpu_pair()) {
        let cpu = cpu_hop(&owner, &accessor, distance, cpu_bw);
        let link = peer_link(&owner, &accessor, cpu.as_ref(), accessor.node_from, owner.node_from);
        let mut path = vec![&owner, &accessor];
        path.extend(cpu.as_ref());
        let (weight, min_latency, max_latency, min_bandwidth, max_bandwidth) = hops(&path);
        for hop in &path {
            prop_assert!(link.max_bandwidth <= hop.max_bandwidth);
            prop_assert!(link.min_bandwidth <= hop.min_bandwidth);
        }
        prop_assert_eq!(link.max_bandwidth, max_bandwidth);
        prop_assert_eq!(link.min_bandwidth, min_bandwidth);
        prop_assert_eq!(u64::from(link.weight), weight);
        prop_assert_eq!(u64::from(link.min_latency), min_latency);
        prop_assert_eq!(u64::from(link.max_latency), max_latency);
        prop_assert_eq!(link.weight, 2 * PCIE_WEIGHT + distance.unwrap_or(0));
        prop_assert_eq!((link.node_from, link.node_to), (accessor.node_from, owner.node_from));
        prop_assert_eq!(link.link_type, LinkType::Pcie);
        // The record is a copy of the owner's io_link (kfd_add_peer_prop): the second pass
        // (tests/link_finish.rs) decides flags later.
        prop_assert_eq!(link.flags, owner.flags);
        prop_assert_eq!(
            link.recommended_sdma_engine_id_mask,
            owner.recommended_sdma_engine_id_mask
        );
    }

    /// A->B and B->A cost the same and carry the same bandwidth (upstream only differs in the
    /// buggy max_bandwidth, which is not symmetric).
    #[test]
    fn peer_links_are_symmetric((a, b, distance, cpu_bw) in gpu_pair()) {
        let cpu_ab = cpu_hop(&b, &a, distance, cpu_bw);
        let cpu_ba = cpu_hop(&a, &b, distance, cpu_bw);
        let a_to_b = peer_link(&b, &a, cpu_ab.as_ref(), a.node_from, b.node_from);
        let b_to_a = peer_link(&a, &b, cpu_ba.as_ref(), b.node_from, a.node_from);
        // Everything but what each copies from its owner's io_link.
        let a_to_b_reversed = LinkProperties {
            flags: b_to_a.flags,
            recommended_sdma_engine_id_mask: b_to_a.recommended_sdma_engine_id_mask,
            ..a_to_b.reversed()
        };
        prop_assert_eq!(a_to_b_reversed, b_to_a);
        let upstream_ab = upstream_peer_max_bandwidth(&a, cpu_ab.as_ref());
        let upstream_ba = upstream_peer_max_bandwidth(&b, cpu_ba.as_ref());
        if a.max_bandwidth == b.max_bandwidth {
            prop_assert_eq!(upstream_ab, upstream_ba);
        }
    }

    /// The fix changes max_bandwidth exactly when the owner's link is narrower than every other
    /// hop; then upstream over-reports (never under-reports), and the fixed value is the owner's.
    #[test]
    fn fixed_max_bandwidth_differs_from_upstream_exactly_when_the_owner_is_narrowest(
        (owner, accessor, distance, cpu_bw) in gpu_pair(),
    ) {
        let cpu = cpu_hop(&owner, &accessor, distance, cpu_bw);
        let fixed = peer_link(&owner, &accessor, cpu.as_ref(), accessor.node_from, owner.node_from).max_bandwidth;
        let upstream = upstream_peer_max_bandwidth(&accessor, cpu.as_ref());
        let others = cpu.map_or(accessor.max_bandwidth, |c| c.max_bandwidth.min(accessor.max_bandwidth));
        prop_assert!(fixed <= upstream);
        prop_assert_eq!(upstream, others);
        prop_assert_eq!(fixed != upstream, owner.max_bandwidth < others);
        if fixed != upstream {
            prop_assert_eq!(fixed, owner.max_bandwidth);
        }
    }

    /// XGMI (kfd_fill_gpu_xgmi_link_to_gpu): type 11, flags ENABLED, symmetric, weight
    /// KFD_CRAT_XGMI_WEIGHT (15) x the PSP's hop count (amdgpu_xgmi_get_hops_count: the fewest
    /// hops over the hive's links); bandwidth as amdgpu_xgmi_get_bandwidth gives it per peer:
    /// one link's rate as the minimum, num_links x the rate as the maximum, 0/0 for a peer
    /// joined by no link of its own.
    #[test]
    fn xgmi_links_follow_the_psp_topology_table((a, b, wiring) in xgmi_member(), from in 0u32..16, to in 0u32..16) {
        let forward = xgmi_link(from, to, &a, &b);
        let backward = xgmi_link(to, from, &b, &a);
        let size = a.hive_size as usize;
        let (pa, pb) = (a.position as usize, b.position as usize);
        let hops = shortest_hops(&wiring.as_core(), size, pa, pb).unwrap_or(0);
        prop_assert_eq!(a.hops_to(&b), hops & 0x7);
        prop_assert_eq!(forward.link_type, LinkType::Xgmi);
        prop_assert_eq!(forward.link_type.as_raw(), 11);
        prop_assert_eq!(forward.flags, LinkFlags::ENABLED);
        prop_assert_eq!(forward.weight, XGMI_WEIGHT_PER_HOP * (hops & 0x7));
        prop_assert_eq!((forward.node_from, forward.node_to), (from, to));
        prop_assert_eq!(forward.reversed(), backward);
        match &wiring {
            Wiring::Full(_) if pa != pb => prop_assert_eq!(hops, 1),
            Wiring::Ring(_) if pa != pb => {
                let d = a.position.abs_diff(b.position) ;
                prop_assert_eq!(hops, d.min(a.hive_size - d));
            }
            _ => {}
        }
        let links = u32::from(wiring.as_core().links(pa, pb, size));
        if links > 0 {
            prop_assert_eq!(hops, 1);
            prop_assert_eq!(forward.min_bandwidth, a.link_bandwidth_mbs);
            prop_assert_eq!(forward.max_bandwidth, a.link_bandwidth_mbs * links);
        } else {
            prop_assert_eq!((forward.min_bandwidth, forward.max_bandwidth), (0, 0));
        }
    }
}

#[test]
fn same_switch_gen4_pair_is_weight_40_at_32000() {
    let mut a = common::sample_gpu();
    let owner = gpu_to_cpu_link(1, 0, &a);
    let accessor = gpu_to_cpu_link(2, 0, &a);
    let link = peer_link(&owner, &accessor, None, 2, 1);
    assert_eq!((link.weight, link.max_bandwidth), (40, 32000));
    // The documented upstream bug: a Gen3 x4 owner does not limit upstream's figure.
    a.pcie = PcieLink {
        gen: hsa_p2p_core::pcie::PcieGen::Gen3,
        width: 4,
    };
    let narrow_owner = gpu_to_cpu_link(1, 0, &a);
    let link = peer_link(&narrow_owner, &accessor, None, 2, 1);
    assert_eq!(link.max_bandwidth, 4000);
    assert_eq!(upstream_peer_max_bandwidth(&accessor, None), 32000);
}

#[test]
fn xgmi_ring_of_eight_has_hops_up_to_four() {
    let member = |position| XgmiFacts::member(1, position, 8, 1000, XgmiWiring::Ring(1));
    let weights: Vec<u32> = (0..8)
        .map(|p| xgmi_link(0, 1, &member(0), &member(p)).weight)
        .collect();
    assert_eq!(weights, [0, 15, 30, 45, 60, 45, 30, 15]);
}

/// An MI250-class node (ROCm's MI250 node diagram): eight dies, four links inside each package,
/// two links between dies 0-4 and 2-6, one between some others, none between the rest. The
/// per-link rate is amdgpu_xgmi_early_init's for GC 9.4.2 (25 GT/s x16 = 50000 MB/s), and
/// amdgpu_xgmi_get_bandwidth multiplies it by num_links; unlinked pairs weigh 15 per hop.
#[test]
fn mi250_class_package_links_per_pair() {
    let mut table: XgmiLinkTable = [[0; XGMI_MAX_HIVE]; XGMI_MAX_HIVE];
    let pairs = [
        (0, 1, 4),
        (2, 3, 4),
        (4, 5, 4),
        (6, 7, 4),
        (0, 4, 2),
        (2, 6, 2),
        (1, 3, 1),
        (5, 7, 1),
    ];
    for (a, b, links) in pairs {
        table[a][b] = links;
        table[b][a] = links;
    }
    let rate = xgmi_link_rate_mbs(90010);
    assert_eq!(rate, 50_000);
    let gcd = |position| XgmiFacts::member(7, position, 8, rate, XgmiWiring::Links(&table));
    let link = |a: u32, b: u32| {
        let l = xgmi_link(a, b, &gcd(a), &gcd(b));
        (l.weight, l.min_bandwidth, l.max_bandwidth)
    };
    assert_eq!(link(0, 1), (15, 50_000, 200_000));
    assert_eq!(link(0, 4), (15, 50_000, 100_000));
    assert_eq!(link(1, 3), (15, 50_000, 50_000));
    // Through 1 to 3, through 4 to 5; 6 is four hops away either way round (1-3-2 or 4-5-7).
    assert_eq!(link(0, 3), (30, 0, 0));
    assert_eq!(link(0, 5), (30, 0, 0));
    assert_eq!(link(0, 6), (60, 0, 0));
    assert_eq!(link(3, 4), (45, 0, 0));
}
