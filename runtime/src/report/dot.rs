//! `p2pctl dot`: the topology as a Graphviz digraph that stays readable at 16 GPUs.
//!
//! GPUs are clustered by CPU node (socket) and PCIe switch, with the switches drawn and the
//! PCIe tree as grey lines; every GPU pair gets at most one edge (`dir=both` when both
//! directions have the same link), coloured by path class and labelled with the class and
//! weight; pairs refused both ways with a recorded reason get one dotted red edge. Indirect
//! GPU<->CPU links (through another CPU node) are hidden unless asked for. A legend explains
//! colours and styles. Peer edges do not constrain the layout (`constraint=false`), which keeps
//! `dot` fast: the ranks come from the tree alone.

use std::collections::BTreeMap;
use std::fmt::Write;

use hsa_p2p_core::link::LinkProperties;

use super::labels::pci_address;
use crate::peers::{peer_pair, PeerPair};
use crate::views::{link_between, pair_class, PathClass, ViewInput};

/// What `p2pctl dot` draws beyond the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct DotOptions {
    /// Also draw each GPU's links to the CPU nodes it is not attached to.
    pub cpu_links: bool,
}

/// The colour of a path class (ColorBrewer RdYlBu, dark enough on white).
fn colour(class: Option<PathClass>) -> &'static str {
    match class {
        Some(PathClass::Pix) => "#1a9850",
        Some(PathClass::Pxb) => "#66a61e",
        Some(PathClass::Phb) => "#4575b4",
        Some(PathClass::Node) => "#8073ac",
        Some(PathClass::Sys) => "#e66101",
        Some(PathClass::Xgmi { .. }) => "#b2182b",
        None => "#636363",
    }
}

const TREE_EDGE: &str = "dir=none, color=\"#bdbdbd\", penwidth=2";

/// Renders the topology of `input` (its GPUs and every CPU node) in the DOT language.
pub fn render_dot(input: &ViewInput<'_>, options: DotOptions) -> String {
    let topology = input.topology;
    let mut out = String::from(
        "digraph kfd_topology {\n  graph [rankdir=TB, newrank=true, fontname=\"Helvetica\", \
         nodesep=0.6, ranksep=0.6];\n  node [fontname=\"Helvetica\", fontsize=10];\n  \
         edge [fontname=\"Helvetica\", fontsize=8];\n",
    );
    let cpus: Vec<u32> = topology
        .nodes
        .iter()
        .filter(|n| !n.is_gpu())
        .map(|n| n.id)
        .collect();
    // CPU node -> switch (None: on a root port) -> GPUs.
    let mut tree: BTreeMap<Option<u32>, BTreeMap<Option<String>, Vec<u32>>> = BTreeMap::new();
    for &gpu in &input.gpus {
        let switch = input.placement.gpu(gpu).switch;
        tree.entry(input.numa_node(gpu))
            .or_default()
            .entry(switch)
            .or_default()
            .push(gpu);
    }
    let mut groups: Vec<Group> = Vec::new();
    for switches in tree.values() {
        for (switch, gpus) in switches {
            match switch {
                Some(switch) => groups.push(Group {
                    node: switch_node(switch),
                    gpus: gpus.clone(),
                }),
                None => groups.extend(gpus.iter().map(|&gpu| Group {
                    node: format!("n{gpu}"),
                    gpus: vec![gpu],
                })),
            }
        }
    }
    for &cpu in &cpus {
        let name = escape(&input.labels.name(cpu));
        let _ = writeln!(
            out,
            "  subgraph cluster_cpu{cpu} {{\n    label=\"{name} (CPU node {cpu})\"; \
             style=rounded; color=\"#969696\";\n    n{cpu} [shape=box, style=filled, \
             fillcolor=\"#f0f0f0\", label=\"{name}\"];"
        );
        for (switch, gpus) in tree.remove(&Some(cpu)).unwrap_or_default() {
            draw_switch(&mut out, input, cpu, switch.as_deref(), &gpus, "    ");
        }
        out.push_str("  }\n");
    }
    // GPUs whose CPU node is not known.
    for (_, switches) in tree {
        for gpus in switches.into_values() {
            for gpu in gpus {
                gpu_node(&mut out, input, gpu, "  ");
            }
        }
    }
    for (i, &a) in cpus.iter().enumerate() {
        for &b in &cpus[i + 1..] {
            if let Some(link) = topology.io_link(a, b) {
                let _ = writeln!(
                    out,
                    "  n{a} -> n{b} [dir=both, penwidth=2, label=\"{} w{}\"];",
                    link.link_type.name(),
                    link.weight
                );
            }
        }
    }
    peer_edges(&mut out, input, &groups);
    if options.cpu_links {
        for &gpu in &input.gpus {
            for &cpu in cpus.iter().filter(|&&c| Some(c) != input.numa_node(gpu)) {
                if let Some(link) = link_between(topology, gpu, cpu) {
                    let _ = writeln!(
                        out,
                        "  n{gpu} -> n{cpu} [style=dashed, color=\"#969696\", constraint=false, \
                         label=\"{} w{}\"];",
                        link.link_type.name(),
                        link.weight
                    );
                }
            }
        }
    }
    out.push_str(&legend(options));
    out.push_str("}\n");
    out
}

fn draw_switch(
    out: &mut String,
    input: &ViewInput<'_>,
    cpu: u32,
    switch: Option<&str>,
    gpus: &[u32],
    indent: &str,
) {
    let Some(switch) = switch else {
        for &gpu in gpus {
            gpu_node(out, input, gpu, indent);
            let _ = writeln!(out, "{indent}n{cpu} -> n{gpu} [{TREE_EDGE}];");
        }
        return;
    };
    let id = switch_node(switch);
    let name = escape(switch);
    let _ = writeln!(
        out,
        "{indent}subgraph cluster_{id} {{\n{indent}  label=\"\"; style=dashed; \
         color=\"#bdbdbd\";\n{indent}  {id} [shape=trapezium, label=\"switch {name}\"];"
    );
    for &gpu in gpus {
        gpu_node(out, input, gpu, &format!("{indent}  "));
        let _ = writeln!(out, "{indent}  {id} -> n{gpu} [{TREE_EDGE}];");
    }
    let _ = writeln!(out, "{indent}}}\n{indent}n{cpu} -> {id} [{TREE_EDGE}];");
}

fn gpu_node(out: &mut String, input: &ViewInput<'_>, gpu: u32, indent: &str) {
    let Some(node) = input.topology.node(gpu) else {
        return;
    };
    let address = pci_address(node).unwrap_or_default();
    let _ = writeln!(
        out,
        "{indent}n{gpu} [shape=box, style=\"rounded,filled\", fillcolor=\"#fee8c8\", \
         label=\"{}\\n{}\"];",
        escape(&input.labels.name(gpu)),
        escape(&address)
    );
}

/// The one edge of a GPU pair (or of two groups of GPUs whose pairs all have the same one).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Edge {
    from: u32,
    to: u32,
    /// Every attribute but the label.
    attributes: String,
    label: String,
}

impl Edge {
    /// The edge between the group nodes `from` and `to` standing for `pairs` pairs.
    fn write(&self, out: &mut String, from: &str, to: &str, pairs: usize) {
        let label = if pairs > 1 {
            format!("{} ({pairs} pairs)", self.label)
        } else {
            self.label.clone()
        };
        // xlabel: dot places edge labels of non-constraining edges in clusters badly (or
        // fails: "trouble in init_rank"); external labels are placed after the layout.
        let _ = writeln!(
            out,
            "  {from} -> {to} [{}, xlabel=\"{}\"];",
            self.attributes,
            escape(&label)
        );
    }

    /// Whether `other` says the same thing (direction aside for symmetric edges).
    fn same_as(&self, other: &Edge) -> bool {
        self.attributes == other.attributes && self.label == other.label
    }
}

/// The edge of GPU pair `a`, `b`, if any.
fn pair_edge<'a>(input: &ViewInput<'a>, a: u32, b: u32) -> Option<Edge> {
    let topology = input.topology;
    let (ab, ba) = (peer_pair(topology, a, b), peer_pair(topology, b, a));
    let class = pair_class(input, a, b);
    let class_name = class.map_or("?".to_string(), |c| c.to_string());
    let width = if matches!(class, Some(PathClass::Xgmi { .. })) {
        2.5
    } else {
        1.2
    };
    let attributes = |dir: &str| {
        format!(
            "dir={dir}, color=\"{0}\", fontcolor=\"{0}\", penwidth={width}, constraint=false",
            colour(class)
        )
    };
    let same = |x: &LinkProperties, y: &LinkProperties| {
        x.link_type == y.link_type && x.weight == y.weight && x.max_bandwidth == y.max_bandwidth
    };
    let usable = |pair: PeerPair<'a>| pair.link.filter(|_| pair.has_access());
    let edge = |from, to, attributes, label| Edge {
        from,
        to,
        attributes,
        label,
    };
    match (usable(ab), usable(ba)) {
        (Some((_, x)), Some((_, y))) => {
            let label = if same(x, y) {
                format!("{class_name} {}", x.weight)
            } else {
                format!("{class_name} {}/{}", x.weight, y.weight)
            };
            Some(edge(a, b, attributes("both"), label))
        }
        (Some((_, l)), None) => Some(edge(
            a,
            b,
            attributes("forward"),
            format!("{class_name} {}, one way", l.weight),
        )),
        (None, Some((_, l))) => Some(edge(
            b,
            a,
            attributes("forward"),
            format!("{class_name} {}, one way", l.weight),
        )),
        (None, None) => {
            let mut reasons: Vec<&str> = Vec::new();
            for reason in [ab.denial, ba.denial]
                .into_iter()
                .flatten()
                .flat_map(|d| d.reasons.iter().map(|r| r.name()))
            {
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
            }
            (!reasons.is_empty()).then(|| {
                edge(
                    a,
                    b,
                    "dir=none, style=dotted, color=red, fontcolor=red, constraint=false"
                        .to_string(),
                    format!("no P2P: {}", reasons.join(", ")),
                )
            })
        }
    }
}

/// The GPU groups edges are merged over: the GPUs behind one switch, or a GPU on its own.
struct Group {
    /// The DOT node standing for the group (the switch, or the GPU).
    node: String,
    gpus: Vec<u32>,
}

/// Writes the peer edges: one per pair of groups when every GPU pair between (or within) them
/// has the same edge, else one per GPU pair.
fn peer_edges(out: &mut String, input: &ViewInput<'_>, groups: &[Group]) {
    for (i, group) in groups.iter().enumerate() {
        for other in &groups[i..] {
            let same_group = std::ptr::eq(group, other);
            let pairs: Vec<(u32, u32)> = if same_group {
                let g = &group.gpus;
                (0..g.len())
                    .flat_map(|x| (x + 1..g.len()).map(move |y| (g[x], g[y])))
                    .collect()
            } else {
                group
                    .gpus
                    .iter()
                    .flat_map(|&a| other.gpus.iter().map(move |&b| (a, b)))
                    .collect()
            };
            let edges: Vec<Option<Edge>> =
                pairs.iter().map(|&(a, b)| pair_edge(input, a, b)).collect();
            let uniform = edges.len() > 1
                && edges.iter().all(|e| match (e, &edges[0]) {
                    (Some(e), Some(first)) => {
                        e.same_as(first) && !e.attributes.starts_with("dir=forward")
                    }
                    _ => false,
                });
            match (uniform, &edges[..]) {
                (true, [Some(first), ..]) if same_group => {
                    // A loop on the switch: its GPUs all reach each other the same way.
                    first.write(out, &group.node, &group.node, edges.len());
                }
                (true, [Some(first), ..]) => {
                    first.write(out, &group.node, &other.node, edges.len())
                }
                _ => {
                    for edge in edges.into_iter().flatten() {
                        edge.write(out, &format!("n{}", edge.from), &format!("n{}", edge.to), 1);
                    }
                }
            }
        }
    }
}

fn legend(options: DotOptions) -> String {
    let mut rows = String::new();
    for (class, meaning) in [
        (Some(PathClass::Pix), "PIX: one PCIe switch"),
        (Some(PathClass::Pxb), "PXB: several PCIe bridges"),
        (Some(PathClass::Phb), "PHB: through a host bridge"),
        (Some(PathClass::Node), "NODE: between host bridges"),
        (Some(PathClass::Sys), "SYS: across sockets"),
        (Some(PathClass::Xgmi { links: None }), "XGMI (thick)"),
    ] {
        let _ = write!(
            rows,
            "<tr><td><font color=\"{}\">&#9472;&#9472;&#9472;</font></td>\
             <td align=\"left\">{meaning}</td></tr>",
            colour(class)
        );
    }
    rows.push_str(
        "<tr><td>label</td><td align=\"left\">class weight (n pairs: all GPU pairs of \
         the switch or switches)</td></tr>\
         <tr><td>&#8596;</td><td align=\"left\">P2P both ways, same link</td></tr>\
         <tr><td>&#8594;</td><td align=\"left\">P2P one way only</td></tr>\
         <tr><td><font color=\"red\">&#183;&#183;&#183;</font></td>\
         <td align=\"left\">no P2P either way (reason)</td></tr>\
         <tr><td><font color=\"#bdbdbd\">&#9473;&#9473;</font></td>\
         <td align=\"left\">PCIe tree (CPU, switch, GPU)</td></tr>",
    );
    if options.cpu_links {
        rows.push_str(
            "<tr><td>- - -</td><td align=\"left\">GPU link to another CPU node</td></tr>",
        );
    }
    format!(
        "  legend [shape=plaintext, fontsize=9, label=<<table border=\"1\" cellborder=\"0\" \
         cellspacing=\"2\"><tr><td colspan=\"2\"><b>Legend</b></td></tr>{rows}</table>>];\n"
    )
}

// Labels come from spec files; keep them inside the quoted DOT string.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The DOT node of switch `switch`.
fn switch_node(switch: &str) -> String {
    let id: String = switch
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("sw_{id}")
}
