//! A view table as aligned text with its legend below.

use std::fmt::Write;

use super::ViewTable;
use crate::report::table::columns;

/// `table` as text: title, aligned columns, `Legend:` lines.
pub fn render_text(table: &ViewTable) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", table.title);
    let mut rows = vec![std::iter::once(String::new())
        .chain(table.columns.iter().cloned())
        .collect::<Vec<_>>()];
    rows.extend(table.rows.iter().map(|row| {
        std::iter::once(row.label.clone())
            .chain(row.cells.iter().map(|cell| cell.symbol()))
            .collect()
    }));
    out.push_str(&columns(&rows));
    if !table.legend.is_empty() {
        let _ = writeln!(out, "Legend:");
        for line in &table.legend {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}
