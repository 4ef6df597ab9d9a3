//! A view table as RFC 4180 CSV: a header row (the corner label, then the columns), then one
//! row per table row; fields holding a comma, quote or line break are quoted.

use super::ViewTable;

/// `table` as CSV.
pub fn render_csv(table: &ViewTable) -> String {
    let mut out = String::new();
    let header = std::iter::once(table.corner.clone()).chain(table.columns.iter().cloned());
    push_record(&mut out, header);
    for row in &table.rows {
        let fields = std::iter::once(row.label.clone()).chain(row.cells.iter().map(|c| c.symbol()));
        push_record(&mut out, fields);
    }
    out
}

fn push_record(out: &mut String, fields: impl Iterator<Item = String>) {
    let fields: Vec<String> = fields.map(|field| quote(&field)).collect();
    out.push_str(&fields.join(","));
    out.push_str("\r\n");
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_separators_are_quoted() {
        assert_eq!(quote("0-7,16-23"), "\"0-7,16-23\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("PIX"), "PIX");
    }
}
