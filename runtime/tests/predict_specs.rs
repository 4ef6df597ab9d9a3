//! The predictor on the shipped topology specs: the upstream rules' outcomes the issue names.

use std::path::PathBuf;

use hsa_p2p_core::abi::{MAP_TYPE_BUS_ADDR, MAP_TYPE_THRU_HOST_BRIDGE};
use hsa_p2p_core::builder::gpu_node_id;
use hsa_p2p_core::gate::DenialReason;
use hsa_p2p_core::link::{LinkFlags, LinkType};
use hsa_p2p_runtime::predict::{predict, Prediction};
use hsa_p2p_runtime::spec::{LayoutP2pdma, Spec};

fn topologies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies")
}

fn predict_shipped(name: &str) -> Prediction {
    let spec = Spec::load(&topologies_dir().join(format!("{name}.toml"))).unwrap();
    predict(&spec).unwrap()
}

fn node(prediction: &Prediction, label: &str) -> u32 {
    prediction.node_of(label).unwrap()
}

#[test]
fn every_shipped_spec_loads_and_predicts_without_dangling_links() {
    let mut count = 0;
    for entry in std::fs::read_dir(topologies_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let spec = Spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let prediction = predict(&spec).unwrap();
            assert!(prediction.topology.dangling_links().is_empty(), "{path:?}");
            count += 1;
        }
    }
    assert!(count >= 6, "expected the six required specs, found {count}");
}

#[test]
fn same_switch_pair_has_p2p_both_ways_with_weight_40() {
    let p = predict_shipped("same-switch");
    let (a, b) = (node(&p, "gpu0"), node(&p, "gpu1"));
    for (from, to) in [(a, b), (b, a)] {
        let link = p.topology.p2p_link(from, to).expect("p2p link");
        assert_eq!(link.weight, 40);
        assert_eq!(link.link_type, LinkType::Pcie);
        assert_eq!(link.max_bandwidth, 32000);
        assert!(link.flags.allows_peer_dma());
        assert!(link.flags.contains(LinkFlags::NON_COHERENT));
    }
}

#[test]
fn separate_root_ports_on_unwhitelisted_bridge_are_refused_by_the_chipset() {
    let p = predict_shipped("separate-root-ports");
    let (a, b) = (node(&p, "gpu0"), node(&p, "gpu1"));
    for (from, to) in [(a, b), (b, a)] {
        assert!(p.topology.p2p_link(from, to).is_none());
        let denial = p.topology.denial(from, to).expect("denial");
        assert_eq!(denial.reasons.primary(), Some(DenialReason::Chipset));
        assert_eq!(denial.reasons.iter().count(), 1);
        assert_eq!(denial.p2pdma_distance, None);
    }
}

#[test]
fn small_bar_gpu_cannot_be_accessed_but_can_access_its_peer() {
    let p = predict_shipped("small-bar");
    let (large, small) = (node(&p, "large"), node(&p, "small"));
    assert!(p.topology.p2p_link(large, small).is_none());
    let denial = p.topology.denial(large, small).unwrap();
    assert_eq!(denial.reasons.primary(), Some(DenialReason::SmallBar));
    assert_eq!(denial.p2pdma_distance, Some(4));
    assert!(p.topology.p2p_link(small, large).is_some());
}

#[test]
fn xgmi_hive_links_are_type_11_weighing_15_per_hop_and_no_pcie_p2p() {
    let p = predict_shipped("xgmi-hive-4");
    let gpus: Vec<u32> = (0..4).map(|i| node(&p, &format!("gpu{i}"))).collect();
    for (i, &from) in gpus.iter().enumerate() {
        for (j, &to) in gpus.iter().enumerate() {
            if i == j {
                continue;
            }
            let link = p.topology.io_link(from, to).expect("xgmi io_link");
            assert_eq!(link.link_type, LinkType::Xgmi);
            let ring_hops = i.abs_diff(j).min(4 - i.abs_diff(j)) as u32;
            assert_eq!(link.weight, 15 * ring_hops);
            assert!(p.topology.p2p_link(from, to).is_none());
            assert!(p.topology.denial(from, to).is_none());
        }
    }
}

#[test]
fn two_socket_weights_and_indirect_links() {
    let p = predict_shipped("two-socket");
    let g: Vec<u32> = (0..4).map(|i| node(&p, &format!("gpu{i}"))).collect();
    assert_eq!(p.topology.p2p_link(g[0], g[1]).unwrap().weight, 40);
    assert_eq!(p.topology.p2p_link(g[0], g[2]).unwrap().weight, 72);
    assert_eq!(p.topology.p2p_link(g[3], g[1]).unwrap().weight, 72);
    // gpu0 hangs off CPU 0: an indirect link to CPU 1 (20 + 32), and back since it is large-BAR.
    assert_eq!(p.topology.p2p_link(g[0], 1).unwrap().weight, 52);
    assert_eq!(p.topology.p2p_link(1, g[0]).unwrap().weight, 52);
}

#[test]
fn sixteen_gpus_all_pairs_connected() {
    let p = predict_shipped("sixteen-gpus");
    let gpus: Vec<u32> = (0..16).map(|i| node(&p, &format!("gpu{i}"))).collect();
    for &a in &gpus {
        for &b in &gpus {
            if a != b {
                let link = p.topology.p2p_link(a, b).unwrap();
                let same_socket = (a - 2) / 8 == (b - 2) / 8;
                assert_eq!(link.weight, if same_socket { 40 } else { 72 });
            }
        }
    }
}

#[test]
fn dma_mask_limit_denies_only_the_narrow_accessor() {
    let p = predict_shipped("dma-mask-limit");
    let (narrow, wide) = (node(&p, "gpu0"), node(&p, "gpu1"));
    let denial = p.topology.denial(narrow, wide).unwrap();
    assert_eq!(denial.reasons.primary(), Some(DenialReason::NotAddressable));
    assert!(p.topology.p2p_link(wide, narrow).is_some());
}

#[test]
fn dma_mask_limit_under_remap_denies_nobody() {
    let p = predict_shipped("dma-mask-limit-remap");
    let (narrow, wide) = (node(&p, "gpu0"), node(&p, "gpu1"));
    assert!(p.topology.denial(narrow, wide).is_none());
    assert!(p.topology.p2p_link(narrow, wide).is_some());
    assert!(p.topology.p2p_link(wide, narrow).is_some());
}

/// The servers the vIOMMU specs stand for map a switch pair by bus address and everything else
/// through the host bridge (an IOVA under remap).
#[test]
fn remap_specs_map_switch_pairs_by_bus_address_and_the_rest_through_the_host_bridge() {
    let map_type = |name: &str, owner: usize, accessor: usize| {
        let spec = Spec::load(&topologies_dir().join(format!("{name}.toml"))).unwrap();
        LayoutP2pdma::new(&spec).path(owner, accessor).map_type()
    };
    // epyc-iommu: gpu0 and gpu1 behind sw0, gpu2 on rp1 (ACS redirect on both root ports).
    assert_eq!(map_type("epyc-iommu", 0, 1), Some(MAP_TYPE_BUS_ADDR));
    assert_eq!(map_type("epyc-iommu", 1, 0), Some(MAP_TYPE_BUS_ADDR));
    for (owner, accessor) in [(0, 2), (2, 0), (1, 2), (2, 1)] {
        assert_eq!(
            map_type("epyc-iommu", owner, accessor),
            Some(MAP_TYPE_THRU_HOST_BRIDGE)
        );
    }
    // two-socket: four GPUs on four root ports of trusted host bridges.
    assert_eq!(
        map_type("two-socket", 0, 3),
        Some(MAP_TYPE_THRU_HOST_BRIDGE)
    );
    // sixteen-gpus: gpu0 and gpu1 share a switch.
    assert_eq!(map_type("sixteen-gpus", 0, 1), Some(MAP_TYPE_BUS_ADDR));
}

#[test]
fn mixed_three_gpus_switch_pair_talks_third_is_refused() {
    let p = predict_shipped("mixed-three-gpus");
    let (a, b, c) = (node(&p, "gpu0"), node(&p, "gpu1"), node(&p, "gpu2"));
    assert!(p.topology.p2p_link(a, b).is_some() && p.topology.p2p_link(b, a).is_some());
    for (from, to) in [(a, c), (c, a), (b, c), (c, b)] {
        assert_eq!(
            p.topology.denial(from, to).unwrap().reasons.primary(),
            Some(DenialReason::Chipset)
        );
    }
    // Depth-first bus numbering: rp0 -> bus 1, switch internal bus 2, ports -> 3 and 4, rp1 -> 5.
    let location = |n: u32| p.topology.node(n).unwrap().properties.location_id;
    assert_eq!(
        [location(a), location(b), location(c)],
        [3 << 8, 4 << 8, 5 << 8]
    );
}

#[test]
fn unbinding_a_gpu_equals_removing_its_node_for_every_shipped_spec() {
    use hsa_p2p_runtime::predict::predict_in_bind_order;
    for entry in std::fs::read_dir(topologies_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let spec = Spec::load(&path).unwrap();
        let full = predict(&spec).unwrap();
        for removed in 0..spec.gpus.len() {
            let rest: Vec<usize> = (0..spec.gpus.len()).filter(|&i| i != removed).collect();
            let rebuilt = predict_in_bind_order(&spec, &rest).unwrap();
            let mut removed_topology = full.topology.clone();
            removed_topology.remove_node(gpu_node_id(spec.cpus.len(), removed));
            removed_topology.generation_id = rebuilt.topology.generation_id;
            assert_eq!(
                removed_topology, rebuilt.topology,
                "{path:?} without GPU {removed}"
            );
        }
    }
}
