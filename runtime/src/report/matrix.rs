//! `p2pctl matrix`: GPU x GPU matrices of access, link type, weight and bandwidth, the way
//! rocm_bandwidth_test and `nvidia-smi topo -m` print them (row = accessor, column = owner).

use std::fmt::Write;

use hsa_p2p_core::topology::Topology;

use super::json::{matrix_document, MatrixDocument, Source};
use super::labels::Labels;
use super::table::columns;

/// Renders the four matrices of `topology`.
pub fn render_matrices(topology: &Topology, labels: &Labels) -> String {
    let document = matrix_document(
        topology,
        labels,
        Source::Sysfs {
            path: String::new(),
        },
    );
    if document.gpus.is_empty() {
        return "no GPU nodes\n".to_string();
    }
    let mut out = String::new();
    section(
        &mut out,
        &document,
        "Access (Y = row GPU may access the column GPU's VRAM)",
        |r, c| match document.access[r][c] {
            Some(true) => "Y".to_string(),
            Some(false) => "N".to_string(),
            None => "-".to_string(),
        },
    );
    section(&mut out, &document, "Link type", |r, c| {
        document.link_type[r][c].unwrap_or("-").to_string()
    });
    section(&mut out, &document, "Weight", |r, c| {
        document.weight[r][c].map_or_else(|| "-".to_string(), |w| w.to_string())
    });
    section(&mut out, &document, "Max bandwidth (MB/s)", |r, c| {
        document.max_bandwidth[r][c].map_or_else(|| "-".to_string(), |b| b.to_string())
    });
    out
}

fn section(
    out: &mut String,
    document: &MatrixDocument,
    title: &str,
    cell: impl Fn(usize, usize) -> String,
) {
    let _ = writeln!(out, "{title}");
    let mut rows = Vec::new();
    let mut header = vec![String::new()];
    header.extend(document.gpus.iter().map(|gpu| gpu.label.clone()));
    rows.push(header);
    for (r, gpu) in document.gpus.iter().enumerate() {
        let mut row = vec![gpu.label.clone()];
        row.extend((0..document.gpus.len()).map(|c| cell(r, c)));
        rows.push(row);
    }
    out.push_str(&columns(&rows));
    out.push('\n');
}
