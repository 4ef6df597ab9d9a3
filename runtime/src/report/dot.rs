//! `p2pctl dot`: the topology as a Graphviz digraph. io_links are solid, p2p links dashed,
//! recorded denials dotted red; edge labels give type, weight and bandwidth.

use std::fmt::Write;

use hsa_p2p_core::link::LinkProperties;
use hsa_p2p_core::topology::Topology;

use super::labels::{pci_address, Labels};

/// Renders `topology` in the DOT language.
pub fn render_dot(topology: &Topology, labels: &Labels) -> String {
    let mut out =
        String::from("digraph kfd_topology {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n");
    for node in &topology.nodes {
        let (shape, detail) = match pci_address(node) {
            Some(address) => ("box", format!("\\n{} {address}", node.name)),
            None => ("ellipse", String::new()),
        };
        let _ = writeln!(
            out,
            "  n{} [shape={shape}, label=\"{}{}\"];",
            node.id,
            escape(&labels.name(node.id)),
            escape(&detail)
        );
    }
    for node in &topology.nodes {
        for link in &node.io_links {
            edge(&mut out, link, "solid");
        }
        for link in &node.p2p_links {
            edge(&mut out, link, "dashed");
        }
        for denial in &node.p2p_denials {
            let reasons: Vec<_> = denial.reasons.iter().map(|r| r.name()).collect();
            let _ = writeln!(
                out,
                "  n{} -> n{} [style=dotted, color=red, label=\"no P2P: {}\"];",
                denial.node_from,
                denial.node_to,
                escape(&reasons.join(", "))
            );
        }
    }
    out.push_str("}\n");
    out
}

fn edge(out: &mut String, link: &LinkProperties, style: &str) {
    let _ = writeln!(
        out,
        "  n{} -> n{} [style={style}, label=\"{} w{} {}MB/s\"];",
        link.node_from,
        link.node_to,
        link.link_type.name(),
        link.weight,
        link.max_bandwidth
    );
}

// Labels come from spec files; keep them inside the quoted DOT string.
fn escape(text: &str) -> String {
    text.replace('"', "\\\"")
}
