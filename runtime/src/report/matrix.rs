//! `p2pctl matrix` (and the end of `p2pctl predict`) as text: the chosen view tables, each with
//! its legend (row = accessor, column = owner).

use crate::views::{build_table, render_text, TableKind, ViewInput};

/// Renders the tables `kinds` of `input`.
pub fn render_matrices(input: &ViewInput<'_>, kinds: &[TableKind]) -> String {
    if input.gpus.is_empty() {
        return "no GPU nodes\n".to_string();
    }
    kinds
        .iter()
        .map(|&kind| render_text(&build_table(kind, input)))
        .collect::<Vec<_>>()
        .join("\n")
}
