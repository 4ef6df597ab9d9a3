//! `p2pctl topo`: nodes and links as plain-text tables.

use std::fmt::Write;

use hsa_p2p_core::link::LinkProperties;
use hsa_p2p_core::node::HeapType;
use hsa_p2p_core::topology::Topology;

use super::json::flag_names;
use super::labels::{pci_address, Labels};

/// Renders nodes, links and denials of `topology`.
pub fn render_topology(topology: &Topology, labels: &Labels) -> String {
    let mut out = String::new();
    let gpus = topology.nodes.iter().filter(|n| n.is_gpu()).count();
    let _ = writeln!(
        out,
        "generation_id {}: {} nodes ({} CPU, {} GPU)",
        topology.generation_id,
        topology.nodes.len(),
        topology.nodes.len() - gpus,
        gpus
    );
    let _ = writeln!(out, "\nNodes");
    let mut rows = vec![row([
        "NODE", "LABEL", "KIND", "GPU_ID", "NAME", "PCI", "MEMORY", "BAR", "HIVE",
    ])];
    for node in &topology.nodes {
        let memory: u64 = node.mem_banks.iter().map(|bank| bank.size_in_bytes).sum();
        let bar = match node.mem_banks.first().map(|bank| bank.heap_type) {
            _ if !node.is_gpu() => "-",
            Some(HeapType::FrameBufferPublic) => "large",
            Some(HeapType::FrameBufferPrivate) => "small",
            _ => "?",
        };
        rows.push(vec![
            node.id.to_string(),
            labels.name(node.id),
            if node.is_gpu() { "gpu" } else { "cpu" }.to_string(),
            node.gpu_id.to_string(),
            dash_if_empty(&node.name),
            pci_address(node).unwrap_or_else(|| "-".to_string()),
            human_bytes(memory),
            bar.to_string(),
            match node.properties.hive_id {
                0 => "-".to_string(),
                hive => format!("{hive:#x}"),
            },
        ]);
    }
    out.push_str(&columns(&rows));

    let _ = writeln!(out, "\nLinks (io_links, then p2p_links)");
    let mut rows = vec![row([
        "FROM",
        "TO",
        "DIR",
        "TYPE",
        "WEIGHT",
        "LATENCY_NS",
        "BANDWIDTH_MBS",
        "FLAGS",
    ])];
    for node in &topology.nodes {
        for (dir, links) in [("io", &node.io_links), ("p2p", &node.p2p_links)] {
            rows.extend(links.iter().map(|link| link_row(link, dir, labels)));
        }
    }
    out.push_str(&columns(&rows));

    let denials: Vec<_> = topology
        .nodes
        .iter()
        .flat_map(|node| &node.p2p_denials)
        .collect();
    if !denials.is_empty() {
        let _ = writeln!(out, "\nPeer access refused (p2p_denials)");
        let mut rows = vec![row(["FROM", "TO", "REASONS", "P2PDMA_DISTANCE"])];
        for denial in denials {
            let reasons: Vec<_> = denial.reasons.iter().map(|r| r.name()).collect();
            rows.push(vec![
                labels.name(denial.node_from),
                labels.name(denial.node_to),
                reasons.join(", "),
                denial
                    .p2pdma_distance
                    .map_or_else(|| "-".to_string(), |d| d.to_string()),
            ]);
        }
        out.push_str(&columns(&rows));
    }
    out
}

fn link_row(link: &LinkProperties, dir: &str, labels: &Labels) -> Vec<String> {
    let names = flag_names(link.flags);
    let flags = if names.is_empty() {
        link.flags.0.to_string()
    } else {
        format!("{} ({})", link.flags.0, names.join("|"))
    };
    vec![
        labels.name(link.node_from),
        labels.name(link.node_to),
        dir.to_string(),
        link.link_type.name().to_string(),
        link.weight.to_string(),
        format!("{}-{}", link.min_latency, link.max_latency),
        format!("{}-{}", link.min_bandwidth, link.max_bandwidth),
        flags,
    ]
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|cell| cell.to_string()).collect()
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

/// `bytes` in the largest binary unit not above it (`64 GiB`, `1.50 GiB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    match UNITS.iter().find(|(_, size)| bytes >= *size) {
        Some((unit, size)) if bytes.is_multiple_of(*size) => format!("{} {unit}", bytes / size),
        Some((unit, size)) => format!("{:.2} {unit}", bytes as f64 / *size as f64),
        None => format!("{bytes} B"),
    }
}

/// Left-aligned columns separated by two spaces.
pub fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}
