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

/// The MI100 quad hive: fully connected, one link per pair, so every XGMI io_link is one hop
/// (kfd_fill_gpu_xgmi_link_to_gpu: weight = KFD_CRAT_XGMI_WEIGHT x amdgpu_xgmi_get_hops_count)
/// at amdgpu's GC 9.4.1 per-link rate (amdgpu_xgmi_early_init: 25 GT/s x16;
/// amdgpu_xgmi_get_bandwidth: 50000 MB/s min and num_links x that max); no PCIe p2p links
/// inside a hive (kfd_dev_create_p2p_links skips members of the same hive).
#[test]
fn xgmi_hive_links_are_type_11_one_hop_at_the_gc_rate_and_no_pcie_p2p() {
    let p = predict_shipped("xgmi-hive-4");
    let gpus: Vec<u32> = (0..4).map(|i| node(&p, &format!("gpu{i}"))).collect();
    for (i, &from) in gpus.iter().enumerate() {
        for (j, &to) in gpus.iter().enumerate() {
            if i == j {
                continue;
            }
            let link = p.topology.io_link(from, to).expect("xgmi io_link");
            assert_eq!(link.link_type, LinkType::Xgmi);
            assert_eq!(
                (link.weight, link.min_bandwidth, link.max_bandwidth),
                (15, 50_000, 50_000)
            );
            assert!(p.topology.p2p_link(from, to).is_none());
            assert!(p.topology.denial(from, to).is_none());
        }
    }
}

/// The MI250 node: links per pair as amdgpu_xgmi_get_bandwidth reads the PSP's num_links
/// (4 inside a package: 200000 MB/s; 2 between GCDs 0-4: 100000; 1: 50000), pairs joined by
/// no link of their own reached through others: weight 15 x hops and no bandwidth.
#[test]
fn mi250_links_follow_num_links_and_hops_per_pair() {
    let p = predict_shipped("mi250-8gcd");
    let link = |a: &str, b: &str| {
        let l = p
            .topology
            .io_link(node(&p, a), node(&p, b))
            .expect("xgmi io_link");
        assert_eq!(l.link_type, LinkType::Xgmi);
        (l.weight, l.min_bandwidth, l.max_bandwidth)
    };
    let cases = [
        ("gcd0", "gcd1", (15, 50_000, 200_000)),
        ("gcd7", "gcd6", (15, 50_000, 200_000)),
        ("gcd0", "gcd4", (15, 50_000, 100_000)),
        ("gcd6", "gcd2", (15, 50_000, 100_000)),
        ("gcd1", "gcd3", (15, 50_000, 50_000)),
        ("gcd0", "gcd3", (30, 0, 0)),
        ("gcd0", "gcd2", (45, 0, 0)),
        ("gcd0", "gcd6", (60, 0, 0)),
    ];
    for (a, b, expected) in cases {
        assert_eq!(link(a, b), expected, "{a} -> {b}");
        assert_eq!(link(b, a), expected, "{b} -> {a}");
    }
    // One hive: no PCIe peer links at all, only indirect links to the other socket.
    let gpus = p.topology.nodes.iter().filter(|n| n.is_gpu());
    for gpu in gpus {
        assert!(
            gpu.p2p_links.iter().all(|l| l.node_to < 2),
            "{:?}",
            gpu.p2p_links
        );
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

/// amdkfd reports the platform's link, not the GPU's: amdgpu_amdkfd_get_pcie_bandwidth_mbytes
/// reads only the platform bits of pcie_gen_mask/pcie_mlw_mask, which amdgpu_device_get_pcie_info
/// fills from the link partner's capability (amdgpu_device_partner_bandwidth). A port's `pcie`
/// is that partner; without one the GPU's own link stands in.
#[test]
fn the_gpu_link_reports_the_port_above_it() {
    let machine = |port: &str, switch: &str, gpu: &str| {
        format!(
            "name = \"links\"\n[[cpu]]\n[[root_port]]\nid = \"rp0\"\n{port}\n[[root_port]]\nid = \
             \"rp1\"\n[[switch]]\nid = \"sw\"\nparent = \"rp1\"\ndownstream_ports = 1\n{switch}\n\
             [[gpu]]\nid = \"a\"\nparent = \"rp0\"\nvram = \"1G\"\n{gpu}\n[[gpu]]\nid = \"b\"\n\
             parent = \"sw.0\"\nvram = \"1G\"\n{gpu}\n"
        )
    };
    let gen4_x16 = "pcie = { gen = 4, width = 16 }";
    let gen3_x16 = "pcie = { gen = 3, width = 16 }";
    let gen4_x8 = "pcie = { gen = 4, width = 8 }";
    let gen3_x4 = "pcie = { gen = 3, width = 4 }";
    let cases = [
        (
            "no port link: the GPU's own",
            "",
            "",
            gen3_x16,
            [16000, 16000],
        ),
        (
            "Gen4 GPUs in Gen3 slots",
            gen3_x16,
            gen3_x16,
            gen4_x16,
            [16000, 16000],
        ),
        ("an x8 switch port", "", gen4_x8, gen4_x16, [32000, 16000]),
        (
            "Gen3 x4 GPUs in Gen4 x16 slots: the slot's",
            gen4_x16,
            gen4_x16,
            gen3_x4,
            [32000, 32000],
        ),
    ];
    for (what, port, switch, gpu, expected) in cases {
        let spec = Spec::parse(&machine(port, switch, gpu), "links.toml").unwrap();
        let p = predict(&spec).unwrap();
        let got: Vec<u32> = ["a", "b"]
            .iter()
            .map(|gpu| p.topology.io_link(node(&p, gpu), 0).unwrap().max_bandwidth)
            .collect();
        assert_eq!(got, expected, "{what}");
    }
    let bad = machine("pcie = { gen = 6, width = 16 }", "", "");
    let error = Spec::parse(&bad, "links.toml").unwrap_err().to_string();
    assert!(
        error.contains("root port \"rp0\": pcie gen must be 1..=5"),
        "{error}"
    );
}
