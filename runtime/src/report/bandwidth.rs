//! A peer link's `max_bandwidth` for people: the MB/s, or, where amdkfd reports 0, what the 0
//! means for that link (a multi-hop XGMI path, a hive without per-link bandwidth, a PCIe path
//! through the CPU<->CPU link or a GPU link of unknown speed).

use hsa_p2p_core::compose::XGMI_WEIGHT_PER_HOP;
use hsa_p2p_core::link::{LinkProperties, LinkType};
use hsa_p2p_core::topology::Topology;

use super::Labels;

/// `link`'s max bandwidth, or why it is 0. `link` runs from accessor `node_from` to owner
/// `node_to` of `topology`.
pub fn max_bandwidth_text(topology: &Topology, labels: &Labels, link: &LinkProperties) -> String {
    if link.max_bandwidth != 0 {
        return format!("{} MB/s", link.max_bandwidth);
    }
    let why = match link.link_type {
        LinkType::Xgmi => match link.weight / XGMI_WEIGHT_PER_HOP {
            hops @ 2.. => format!(
                "XGMI over {hops} hops; amdkfd reports bandwidth only between directly linked \
                 hive members"
            ),
            _ => "direct XGMI link, but the hive reports no per-link bandwidth".to_string(),
        },
        _ => pcie_zero(topology, labels, link),
    };
    format!("bandwidth not reported ({why})")
}

/// Which hop of a PCIe peer path (owner's link, accessor's link, CPU<->CPU link) reports 0.
fn pcie_zero(topology: &Topology, labels: &Labels, link: &LinkProperties) -> String {
    let cpu_link = |gpu: u32| {
        topology
            .node(gpu)
            .and_then(|node| node.io_links.iter().find(|l| l.link_type == LinkType::Pcie))
    };
    let (from, to) = (cpu_link(link.node_from), cpu_link(link.node_to));
    if let Some(gpu) = [(link.node_from, from), (link.node_to, to)]
        .into_iter()
        .find_map(|(gpu, own)| own.is_some_and(|own| own.max_bandwidth == 0).then_some(gpu))
    {
        return format!("{}'s PCIe link reports no bandwidth", labels.name(gpu));
    }
    match (from, to) {
        (Some(from), Some(to)) if from.node_to != to.node_to => format!(
            "the path crosses the link between CPU nodes {} and {}, whose bandwidth amdkfd does \
             not know",
            from.node_to, to.node_to
        ),
        _ => "a link on the path reports no bandwidth".to_string(),
    }
}
