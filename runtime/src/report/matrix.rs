//! `p2pctl matrix`: GPU x GPU matrices of access, link type, weight and bandwidth, the way
//! rocm_bandwidth_test and `nvidia-smi topo -m` print them (row = accessor, column = owner).

use std::fmt::Write;

use hsa_p2p_core::topology::Topology;

use super::json::{pair_matrices, PairMatrices};
use super::labels::Labels;
use super::table::columns;

/// Renders the four matrices of `topology`.
pub fn render_matrices(topology: &Topology, labels: &Labels) -> String {
    let matrices = pair_matrices(topology, labels);
    if matrices.gpus.is_empty() {
        return "no GPU nodes\n".to_string();
    }
    let mut out = String::new();
    section(
        &mut out,
        &matrices,
        "Access (Y = row GPU may access the column GPU's VRAM)",
        |r, c| match matrices.access[r][c] {
            Some(true) => "Y".to_string(),
            Some(false) => "N".to_string(),
            None => "-".to_string(),
        },
    );
    section(&mut out, &matrices, "Link type", |r, c| {
        matrices.link_type[r][c].unwrap_or("-").to_string()
    });
    section(&mut out, &matrices, "Weight", |r, c| {
        matrices.weight[r][c].map_or_else(|| "-".to_string(), |w| w.to_string())
    });
    section(&mut out, &matrices, "Max bandwidth (MB/s)", |r, c| {
        matrices.max_bandwidth[r][c].map_or_else(|| "-".to_string(), |b| b.to_string())
    });
    out
}

fn section(
    out: &mut String,
    matrices: &PairMatrices,
    title: &str,
    cell: impl Fn(usize, usize) -> String,
) {
    let _ = writeln!(out, "{title}");
    let mut rows = Vec::new();
    let mut header = vec![String::new()];
    header.extend(matrices.gpus.iter().map(|gpu| gpu.label.clone()));
    rows.push(header);
    for (r, gpu) in matrices.gpus.iter().enumerate() {
        let mut row = vec![gpu.label.clone()];
        row.extend((0..matrices.gpus.len()).map(|c| cell(r, c)));
        rows.push(row);
    }
    out.push_str(&columns(&rows));
    out.push('\n');
}
