//! Whole topologies from random machines: what the builder publishes, how it renders, and what
//! removing a GPU leaves behind. Also the PCIe bandwidth figure the links start from.

mod common;

use std::collections::BTreeSet;

use common::Machine;
use hsa_p2p_core::builder::{build_topology, gpu_node_id, BuildError};
use hsa_p2p_core::compose::{gpu_to_cpu_link, PCIE_WEIGHT};
use hsa_p2p_core::gate::check_peer_access;
use hsa_p2p_core::link::{LinkFlags, LinkType};
use hsa_p2p_core::link_finish::outbound_flags;
use hsa_p2p_core::pcie::{PcieGen, PcieLink, PCIE_WIDTHS};
use hsa_p2p_core::properties::{
    parse_link_properties, parse_mem_bank_properties, parse_node_properties, parse_peer_denial,
    parse_single_value, parse_system_properties,
};
use hsa_p2p_core::topology::Topology;
use proptest::prelude::*;
use proptest::sample::Index;

fn build(machine: &Machine) -> Topology {
    let mut topology = Topology {
        generation_id: 1,
        ..Topology::default()
    };
    build_topology(&machine.facts(), &machine.oracle, &mut topology).unwrap();
    topology
}

/// The topology with every `gpu_id` zeroed and generation 0: what must agree between removing a
/// GPU and building without it (`gpu_id`s are kept on removal, and a rebuild may resolve a
/// hash collision differently).
fn without_ids(topology: &Topology) -> Topology {
    let mut topology = topology.clone();
    topology.generation_id = 0;
    for node in &mut topology.nodes {
        node.gpu_id = 0;
    }
    topology
}

fn check_structure(topology: &Topology, machine: &Machine) -> Result<(), TestCaseError> {
    let cpus = machine.cpus.len();
    prop_assert_eq!(topology.nodes.len(), cpus + machine.gpus.len());
    for (index, node) in topology.nodes.iter().enumerate() {
        prop_assert_eq!(
            node.id as usize,
            index,
            "node ids are contiguous and in order"
        );
        prop_assert_eq!(node.is_gpu(), index >= cpus, "CPU nodes come first");
        prop_assert_eq!(node.mem_banks.len(), 1);
    }
    let gpu_ids: BTreeSet<u32> = topology.nodes[cpus..].iter().map(|n| n.gpu_id).collect();
    prop_assert_eq!(gpu_ids.len(), machine.gpus.len(), "gpu_ids are unique");
    prop_assert!(gpu_ids.iter().all(|&id| id != 0 && id <= 0xffff));
    prop_assert_eq!(topology.dangling_links(), vec![]);
    Ok(())
}

/// Every rendered file parses back to what the topology holds.
fn check_rendering(topology: &Topology) -> Result<(), TestCaseError> {
    let files = topology.render_sysfs();
    let paths: BTreeSet<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    prop_assert_eq!(paths.len(), files.len(), "paths are unique");
    let mut seen = 0;
    for (path, text) in &files {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["generation_id"] => {
                prop_assert_eq!(parse_single_value(text), Ok(topology.generation_id))
            }
            ["system_properties"] => {
                prop_assert_eq!(parse_system_properties(text), Ok(topology.system))
            }
            ["nodes", id, rest @ ..] => {
                let node = topology.node(id.parse().unwrap()).unwrap();
                match rest {
                    ["gpu_id"] => {
                        prop_assert_eq!(parse_single_value(text), Ok(u64::from(node.gpu_id)))
                    }
                    ["name"] => prop_assert_eq!(text, &format!("{}\n", node.name)),
                    ["properties"] => prop_assert_eq!(
                        parse_node_properties(text),
                        Ok((node.properties, node.counts()))
                    ),
                    ["mem_banks", i, "properties"] => prop_assert_eq!(
                        parse_mem_bank_properties(text),
                        Ok(node.mem_banks[i.parse::<usize>().unwrap()])
                    ),
                    ["io_links", i, "properties"] => prop_assert_eq!(
                        parse_link_properties(text),
                        Ok(node.io_links[i.parse::<usize>().unwrap()])
                    ),
                    ["p2p_links", i, "properties"] => prop_assert_eq!(
                        parse_link_properties(text),
                        Ok(node.p2p_links[i.parse::<usize>().unwrap()])
                    ),
                    ["p2p_denials", i, "properties"] => prop_assert_eq!(
                        parse_peer_denial(text),
                        Ok(node.p2p_denials[i.parse::<usize>().unwrap()])
                    ),
                    other => prop_assert!(false, "unexpected file {:?}", other),
                }
            }
            other => prop_assert!(false, "unexpected file {:?}", other),
        }
        seen += 1;
    }
    let expected: usize = 2 + topology
        .nodes
        .iter()
        .map(|n| 3 + n.mem_banks.len() + n.io_links.len() + n.p2p_links.len() + n.p2p_denials.len())
        .sum::<usize>();
    prop_assert_eq!(seen, expected, "one file per record");
    Ok(())
}

proptest! {
    #![proptest_config(config!("removal", 96))]

    #[test]
    fn built_topologies_are_well_formed_and_render_faithfully(machine in common::machine(6)) {
        let topology = build(&machine);
        check_structure(&topology, &machine)?;
        check_rendering(&topology)?;
    }

    /// The builder applies the rules: per ordered GPU pair outside a hive exactly one of a p2p
    /// link (gate passed) or a denial (with the gate's reasons); hive pairs use XGMI io_links;
    /// indirect links reach every other CPU, and back only for large-BAR GPUs.
    #[test]
    fn every_gpu_pair_gets_a_link_or_a_denial(machine in common::machine(6)) {
        let topology = build(&machine);
        let facts = machine.facts();
        let cpus = machine.cpus.len() as u32;
        for (a, gpu_a) in machine.gpus.iter().enumerate() {
            let node_a = gpu_node_id(facts.cpus.len(), a);
            // Indirect links.
            for cpu in (0..cpus).filter(|&c| c != gpu_a.numa_node) {
                let link = topology.p2p_link(node_a, cpu);
                prop_assert!(link.is_some());
                let distance = facts.numa_distance(cpu, gpu_a.numa_node).unwrap();
                // The GPU's own link (PCIe 20, XGMI to the CPU 15 or 13) and the CPU hop.
                let own = gpu_to_cpu_link(node_a, gpu_a.numa_node, gpu_a).weight;
                prop_assert_eq!(link.unwrap().weight, own + distance);
                prop_assert_eq!(topology.p2p_link(cpu, node_a).is_some(), gpu_a.is_large_bar());
            }
            for (b, gpu_b) in machine.gpus.iter().enumerate().filter(|(b, _)| *b != a) {
                let node_b = gpu_node_id(facts.cpus.len(), b);
                let link = topology.p2p_link(node_a, node_b);
                let denial = topology.denial(node_a, node_b);
                if gpu_a.shares_hive_with(gpu_b) {
                    prop_assert!(link.is_none() && denial.is_none());
                    let xgmi = topology.io_link(node_a, node_b);
                    prop_assert_eq!(xgmi.map(|l| l.link_type), Some(LinkType::Xgmi));
                    let back = topology.io_link(node_b, node_a).unwrap();
                    prop_assert_eq!(xgmi.unwrap().weight, back.weight);
                    continue;
                }
                prop_assert!(topology.io_link(node_a, node_b).is_none());
                // a accesses b's BAR: b is the owner.
                let distance = machine.oracle.0[b][a];
                let reasons = check_peer_access(gpu_b, gpu_a, &machine.platform, distance);
                prop_assert_eq!(link.is_some(), reasons.is_empty());
                prop_assert_eq!(denial.is_some(), !reasons.is_empty());
                if let Some(denial) = denial {
                    prop_assert_eq!(denial.reasons, reasons);
                    prop_assert_eq!(denial.p2pdma_distance, distance);
                }
                if let Some(link) = link {
                    let cpu_hop = if gpu_a.numa_node == gpu_b.numa_node {
                        0
                    } else {
                        facts.numa_distance(gpu_a.numa_node, gpu_b.numa_node).unwrap()
                    };
                    // kfd_add_peer_prop: both GPUs' own links (an accessor with XGMI to the CPU
                    // brings its XGMI link) and the CPU hop.
                    let (own_a, own_b) = (
                        gpu_to_cpu_link(node_a, gpu_a.numa_node, gpu_a),
                        gpu_to_cpu_link(node_b, gpu_b.numa_node, gpu_b),
                    );
                    prop_assert_eq!(link.weight, own_a.weight + own_b.weight + cpu_hop);
                    if !gpu_a.xgmi_connected_to_cpu {
                        prop_assert_eq!(link.weight, 2 * PCIE_WEIGHT + cpu_hop);
                    }
                    prop_assert!(link.max_bandwidth <= own_a.max_bandwidth);
                    prop_assert!(link.max_bandwidth <= own_b.max_bandwidth);
                    // kfd_fill_iolink_non_crat_info (kfd_topology.c) sets flags on the new
                    // GPU's links and on the links back to it only: a link towards the newer GPU
                    // with no way back keeps the zero flags of the copy it was made from.
                    let back = topology.p2p_link(node_b, node_a);
                    let newer = if a > b { gpu_a } else { gpu_b };
                    let expected = match (back.is_some(), a > b) {
                        (false, false) => LinkFlags::NONE,
                        (false, true) => outbound_flags(newer, LinkType::Pcie),
                        (true, _) => outbound_flags(newer, LinkType::Pcie) | LinkFlags::NON_COHERENT,
                    };
                    prop_assert_eq!(link.flags, expected);
                    // Symmetric GPUs would get the same link back.
                    if let Some(back) = back {
                        prop_assert_eq!(back.weight, link.weight);
                        prop_assert_eq!(back.max_bandwidth, link.max_bandwidth);
                    }
                }
            }
        }
    }

    /// Removing any GPU: no dangling link, contiguous ids, a new generation, the other GPUs keep
    /// their gpu_id, and the rest is what building without that GPU gives.
    #[test]
    fn removing_a_gpu_equals_building_without_it(
        machine in common::machine(6).prop_filter("needs a GPU", |m| !m.gpus.is_empty()),
        which in any::<Index>(),
    ) {
        let index = which.index(machine.gpus.len());
        let original = build(&machine);
        let node = gpu_node_id(machine.facts().cpus.len(), index);
        let mut removed = original.clone();
        removed.remove_node(node);

        let smaller = machine.without_gpu(index);
        check_structure(&removed, &smaller)?;
        prop_assert_ne!(removed.generation_id, original.generation_id);
        prop_assert!(removed.nodes.iter().flat_map(|n| n.p2p_denials.iter())
            .all(|d| (d.node_from as usize) < removed.nodes.len() && (d.node_to as usize) < removed.nodes.len()));
        let kept_ids: Vec<u32> = original.nodes.iter().filter(|n| n.id != node).map(|n| n.gpu_id).collect();
        let ids_after: Vec<u32> = removed.nodes.iter().map(|n| n.gpu_id).collect();
        prop_assert_eq!(ids_after, kept_ids);
        prop_assert_eq!(without_ids(&removed), without_ids(&build(&smaller)));
        check_rendering(&removed)?;
    }

    /// Unplugging every GPU in any order ends with the CPU-only topology, one generation per step.
    #[test]
    fn removing_every_gpu_leaves_the_cpu_only_topology(
        machine in common::machine(5),
        picks in proptest::collection::vec(any::<Index>(), 5),
    ) {
        let mut topology = build(&machine);
        let cpus = machine.cpus.len();
        let mut generations = vec![topology.generation_id];
        for pick in picks.iter().take(machine.gpus.len()) {
            let gpus_left = topology.nodes.len() - cpus;
            topology.remove_node(gpu_node_id(cpus, pick.index(gpus_left)));
            prop_assert_eq!(topology.dangling_links(), vec![]);
            prop_assert!(!generations.contains(&topology.generation_id));
            generations.push(topology.generation_id);
        }
        let mut cpu_only = machine.clone();
        cpu_only.gpus.clear();
        cpu_only.oracle.0.clear();
        prop_assert_eq!(without_ids(&topology), without_ids(&build(&cpu_only)));
        prop_assert!(topology.nodes.iter().all(|n| n.p2p_links.is_empty() && n.p2p_denials.is_empty()));
    }

    #[test]
    fn pcie_bandwidth_is_monotonic_in_generation_and_width(
        a in common::pcie_link(), b in common::pcie_link(),
    ) {
        if a.gen <= b.gen && a.width <= b.width {
            prop_assert!(a.bandwidth_mbs() <= b.bandwidth_mbs(), "{:?} vs {:?}", a, b);
        }
        if a.gen < b.gen && a.width == b.width {
            prop_assert!(a.bandwidth_mbs() < b.bandwidth_mbs());
        }
        if a.gen == b.gen && a.width < b.width {
            prop_assert!(a.bandwidth_mbs() < b.bandwidth_mbs());
        }
        prop_assert_eq!(a.bandwidth_mbs(), a.width * a.gen.lane_mbits() / 8);
        prop_assert!(PcieLink::MINIMUM.bandwidth_mbs() <= a.bandwidth_mbs());
    }

    /// Absurd widths saturate rather than overflow or panic.
    #[test]
    fn pcie_bandwidth_never_overflows(gen in common::pcie_gen(), width in any::<u32>()) {
        let bandwidth = PcieLink { gen, width }.bandwidth_mbs();
        let exact = u64::from(width) * u64::from(gen.lane_mbits()) / 8;
        prop_assert!(u64::from(bandwidth) <= exact);
        if exact * 8 <= u64::from(u32::MAX) {
            prop_assert_eq!(u64::from(bandwidth), exact);
        }
    }
}

#[test]
fn pcie_bandwidth_table() {
    let x16 = |gen| PcieLink { gen, width: 16 }.bandwidth_mbs();
    assert_eq!(x16(PcieGen::Gen1), 5000);
    assert_eq!(x16(PcieGen::Gen2), 10000);
    assert_eq!(x16(PcieGen::Gen3), 16000);
    assert_eq!(x16(PcieGen::Gen4), 32000);
    assert_eq!(x16(PcieGen::Gen5), 64000);
    assert_eq!(PcieLink::MINIMUM.bandwidth_mbs(), 312);
    for number in 1..=5 {
        assert_eq!(PcieGen::from_number(number).unwrap().number(), number);
    }
    assert_eq!(PcieGen::from_number(0), None);
    assert_eq!(PcieGen::from_number(6), None);
    assert!(PCIE_WIDTHS.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn builder_rejects_inconsistent_facts() {
    let gpu = common::sample_gpu();
    let machine = |cpus: usize, distances: Vec<u32>, gpus: Vec<_>| Machine {
        cpus: vec![Default::default(); cpus],
        numa_distances: distances,
        cpu_link_bandwidth_mbs: 0,
        gpus,
        platform: hsa_p2p_core::facts::PlatformFacts {
            iommu: hsa_p2p_core::facts::IommuMode::Remap,
            pcie_p2p: true,
            hsa_amd_p2p: true,
        },
        oracle: common::TableOracle(vec![]),
        peer_bandwidth: Default::default(),
    };
    let try_build = |m: &Machine| {
        let mut topology = Topology::default();
        build_topology(&m.facts(), &m.oracle, &mut topology)
    };
    assert_eq!(
        try_build(&machine(0, vec![], vec![])),
        Err(BuildError::NoCpu)
    );
    assert_eq!(
        try_build(&machine(2, vec![10], vec![])),
        Err(BuildError::DistanceTableSize)
    );
    let far = hsa_p2p_core::facts::GpuFacts {
        numa_node: 1,
        ..gpu
    };
    assert_eq!(
        try_build(&machine(1, vec![10], vec![gpu, far])),
        Err(BuildError::NumaNodeOutOfRange { gpu: 1 })
    );
    assert_eq!(
        try_build(&machine(1, vec![10], vec![gpu; 129])),
        Err(BuildError::TooManyGpus)
    );
}
