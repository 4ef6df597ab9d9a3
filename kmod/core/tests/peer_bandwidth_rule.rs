//! `PeerBandwidthRule::AsAmdkfd` reproduces what amdkfd publishes, bug included: kfd_add_peer_prop
//! (kfd_topology.c, Linux 7.3) computes `max_bandwidth = min(iolink2->max_bandwidth,
//! iolink2->max_bandwidth)`, the accessor's own link (then the CPU<->CPU hop), ignoring the
//! owner's. Nothing else differs from the corrected rule.

mod common;

use common::Machine;
use hsa_p2p_core::builder::{build_topology, gpu_node_id};
use hsa_p2p_core::compose::{cpu_to_cpu_link, gpu_to_cpu_link, upstream_peer_max_bandwidth};
use hsa_p2p_core::facts::PeerBandwidthRule;
use hsa_p2p_core::link::LinkProperties;
use hsa_p2p_core::topology::Topology;
use proptest::prelude::*;

fn build(machine: &Machine, rule: PeerBandwidthRule) -> Topology {
    let machine = Machine {
        peer_bandwidth: rule,
        ..machine.clone()
    };
    let mut topology = Topology::default();
    build_topology(&machine.facts(), &machine.oracle, &mut topology).unwrap();
    topology
}

proptest! {
    #![proptest_config(config!("peer_bandwidth_rule", 128))]

    #[test]
    fn as_amdkfd_changes_only_peer_max_bandwidth_to_the_accessors_link(
        machine in common::machine(5)
    ) {
        let corrected = build(&machine, PeerBandwidthRule::Corrected);
        let upstream = build(&machine, PeerBandwidthRule::AsAmdkfd);
        let cpus = machine.cpus.len();
        let facts = machine.facts();
        let gpu_index = |node: u32| (node as usize).checked_sub(cpus);
        prop_assert_eq!(corrected.nodes.len(), upstream.nodes.len());
        for (fixed, amdkfd) in corrected.nodes.iter().zip(&upstream.nodes) {
            prop_assert_eq!(&fixed.io_links, &amdkfd.io_links);
            prop_assert_eq!(&fixed.p2p_denials, &amdkfd.p2p_denials);
            prop_assert_eq!(fixed.p2p_links.len(), amdkfd.p2p_links.len());
            for (a, b) in fixed.p2p_links.iter().zip(&amdkfd.p2p_links) {
                let (Some(accessor), Some(owner)) = (gpu_index(a.node_from), gpu_index(a.node_to))
                else {
                    prop_assert_eq!(a, b, "indirect links do not change");
                    continue;
                };
                prop_assert_eq!(
                    &LinkProperties { max_bandwidth: b.max_bandwidth, ..*a },
                    b
                );
                let (accessor_gpu, owner_gpu) = (&machine.gpus[accessor], &machine.gpus[owner]);
                let accessor_link = gpu_to_cpu_link(
                    gpu_node_id(cpus, accessor),
                    accessor_gpu.numa_node,
                    accessor_gpu,
                );
                let cpu_hop = (accessor_gpu.numa_node != owner_gpu.numa_node).then(|| {
                    cpu_to_cpu_link(
                        owner_gpu.numa_node,
                        accessor_gpu.numa_node,
                        facts.numa_distance(owner_gpu.numa_node, accessor_gpu.numa_node).unwrap(),
                        machine.cpu_link_bandwidth_mbs,
                    )
                });
                prop_assert_eq!(
                    b.max_bandwidth,
                    upstream_peer_max_bandwidth(&accessor_link, cpu_hop.as_ref())
                );
                // The corrected figure also counts the owner's link.
                prop_assert_eq!(
                    a.max_bandwidth,
                    b.max_bandwidth.min(owner_gpu.pcie.bandwidth_mbs())
                );
            }
        }
    }
}
