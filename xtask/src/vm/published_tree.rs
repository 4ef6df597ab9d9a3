//! The comparison of a topology tree the guest published (read with
//! [`super::protocol::read_tree`]) with a prediction, file by file, in the shape of
//! `Topology::render_sysfs()`.

pub use super::protocol::Tree;

/// Files whose content depends on the run rather than on the rules: `generation_id` (a counter
/// checked separately) and the CPU nodes' memory bank (the guest kernel's own memory accounting).
fn is_machine_specific(path: &str, expected: &Tree) -> bool {
    if path == "generation_id" {
        return true;
    }
    // nodes/<cpu>/mem_banks/0/properties, where nodes/<cpu>/gpu_id is 0.
    let mut parts = path.split('/');
    if let (Some("nodes"), Some(node), Some("mem_banks")) =
        (parts.next(), parts.next(), parts.next())
    {
        return expected
            .get(&format!("nodes/{node}/gpu_id"))
            .is_some_and(|id| id.trim() == "0");
    }
    false
}

/// Every difference between the expected and the actual tree, one line each.
pub fn differences(expected: &Tree, actual: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (path, want) in expected {
        if is_machine_specific(path, expected) {
            continue;
        }
        match actual.get(path) {
            None => out.push(format!("missing file {path}")),
            Some(got) if got != want => {
                let want_lines: Vec<_> = want.lines().collect();
                let got_lines: Vec<_> = got.lines().collect();
                let detail = want_lines
                    .iter()
                    .zip(&got_lines)
                    .find(|(w, g)| w != g)
                    .map(|(w, g)| format!("expected `{w}`, found `{g}`"))
                    .unwrap_or_else(|| {
                        format!(
                            "{} lines expected, {} found",
                            want_lines.len(),
                            got_lines.len()
                        )
                    });
                out.push(format!("{path}: {detail}"));
            }
            Some(_) => {}
        }
    }
    for path in actual.keys() {
        if !expected.contains_key(path) && !is_machine_specific(path, expected) {
            out.push(format!("unexpected file {path}"));
        }
    }
    out
}

/// A rendered topology as a [`Tree`].
pub fn tree_of(files: Vec<(String, String)>) -> Tree {
    files.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_file_and_the_line() {
        let expected = tree_of(vec![
            ("generation_id".into(), "1\n".into()),
            ("nodes/0/gpu_id".into(), "0\n".into()),
            (
                "nodes/0/mem_banks/0/properties".into(),
                "size_in_bytes 1\n".into(),
            ),
            ("nodes/1/gpu_id".into(), "77\n".into()),
            (
                "nodes/1/mem_banks/0/properties".into(),
                "size_in_bytes 64\n".into(),
            ),
            (
                "nodes/1/p2p_links/0/properties".into(),
                "weight 40\nflags 3\n".into(),
            ),
        ]);
        let mut actual = expected.clone();
        actual.insert("generation_id".into(), "9\n".into());
        actual.insert(
            "nodes/0/mem_banks/0/properties".into(),
            "size_in_bytes 2\n".into(),
        );
        assert!(differences(&expected, &actual).is_empty());
        actual.insert(
            "nodes/1/p2p_links/0/properties".into(),
            "weight 41\nflags 3\n".into(),
        );
        actual.insert(
            "nodes/1/mem_banks/0/properties".into(),
            "size_in_bytes 32\n".into(),
        );
        actual.insert("nodes/1/p2p_links/1/properties".into(), "x\n".into());
        actual.remove("nodes/1/gpu_id");
        assert_eq!(
            differences(&expected, &actual),
            vec![
                "missing file nodes/1/gpu_id",
                "nodes/1/mem_banks/0/properties: expected `size_in_bytes 64`, found `size_in_bytes 32`",
                "nodes/1/p2p_links/0/properties: expected `weight 40`, found `weight 41`",
                "unexpected file nodes/1/p2p_links/1/properties",
            ]
        );
    }
}
