//! The invariants of `docs/architecture.md` that a program can check, checked on the source
//! tree: each test names the invariant it enforces.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file under `dir` (relative to the workspace root) whose name ends with one of
/// `extensions`, with its text.
fn files(dir: &str, extensions: &[&str]) -> Vec<(String, String)> {
    fn walk(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, extensions, out);
            } else if extensions
                .iter()
                .any(|ext| path.extension().is_some_and(|e| e == *ext))
            {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&root().join(dir), extensions, &mut paths);
    paths.sort();
    assert!(!paths.is_empty(), "no {extensions:?} file under {dir}");
    paths
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let name = path.strip_prefix(root()).unwrap().display().to_string();
            (name, text)
        })
        .collect()
}

/// `file:line: text` for every line of `files` that `bad` flags.
fn offending(files: &[(String, String)], bad: impl Fn(&str) -> bool) -> Vec<String> {
    files
        .iter()
        .flat_map(|(name, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| bad(line))
                .map(move |(index, line)| format!("{name}:{}: {}", index + 1, line.trim()))
        })
        .collect()
}

/// The code of a Rust file before its unit tests.
fn before_tests(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn the_module_stays_within_the_kernels_100_columns() {
    // It goes upstream as it is (`cargo xtask patches`).
    let mut module = files("kmod/src", &["rs", "c", "h"]);
    module.extend(files("kmod/core/src", &["rs"]));
    let long = offending(&module, |line| line.chars().count() > 100);
    assert!(
        long.is_empty(),
        "lines over 100 columns:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_core_allocates_only_in_topology() {
    let core: Vec<(String, String)> = files("kmod/core/src", &["rs"])
        .into_iter()
        .filter(|(name, _)| !name.ends_with("/topology.rs") && !name.ends_with("/lib.rs"))
        .map(|(name, text)| (name, before_tests(&text).to_string()))
        .collect();
    let allocating = [
        "alloc::",
        "Vec<",
        "vec!",
        "Box<",
        "String",
        "format!",
        "to_owned()",
    ];
    let found = offending(&core, |line| {
        !line.trim_start().starts_with("//") && allocating.iter().any(|a| line.contains(a))
    });
    assert!(
        found.is_empty(),
        "allocation outside topology.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn xtask_asserts_nothing_about_the_module_in_the_guest() {
    // The checks inside a machine are hwtests cases; xtask neither talks to the device nor
    // ships a guest program of its own.
    let xtask = files("xtask/src", &["rs"]);
    let found = offending(&xtask, |line| {
        line.contains("hsa_p2p_runtime::device") || line.contains("guest_checks")
    });
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_vm_harness_does_not_import_from_the_test_suite() {
    let found = offending(&files("xtask/src/vm", &["rs"]), |line| {
        line.contains("vm_test")
    });
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn our_own_json_documents_are_read_into_types() {
    // Untyped `serde_json::Value` hides a renamed or retyped field until run time.
    let mut code = Vec::new();
    for dir in ["xtask/src", "hwtests/src", "hwtests/tests", "runtime/src"] {
        code.extend(files(dir, &["rs"]));
    }
    let found = offending(&code, |line| line.contains("serde_json::Value"));
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn markers_of_the_guest_protocol_live_in_one_module() {
    let xtask: Vec<(String, String)> = files("xtask/src", &["rs"])
        .into_iter()
        .filter(|(name, _)| !name.ends_with("vm/protocol.rs"))
        .collect();
    let found = offending(&xtask, |line| line.contains("@@"));
    assert!(
        found.is_empty(),
        "console markers outside vm/protocol.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_hwtests_suite_is_registered() {
    let registry = fs::read_to_string(root().join("hwtests/src/cases/mod.rs")).unwrap();
    for (name, text) in files("hwtests/src/cases", &["rs"]) {
        if !name.ends_with("/mod.rs") && text.contains("pub const TESTS") {
            let module = Path::new(&name)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(
                registry.contains(&format!("{module}::TESTS")),
                "{name} declares a suite that cases::SUITES does not list"
            );
        }
    }
}

/// The string literals of a line of Rust (escaped quotes kept inside), none in a comment line.
fn string_literals(line: &str) -> Vec<String> {
    if line.trim_start().starts_with("//") {
        return Vec::new();
    }
    let mut literals = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (&mut current, c) {
            (None, '"') => current = Some(String::new()),
            (Some(text), '"') => {
                literals.push(std::mem::take(text));
                current = None;
            }
            (Some(text), '\\') => {
                text.push('\\');
                text.extend(chars.next());
            }
            (Some(text), c) => text.push(c),
            (None, _) => {}
        }
    }
    literals
}

#[test]
fn kernel_report_markers_are_listed_once() {
    // How each kind of kernel report starts is listed once, in hwtests'
    // `guest::kernel_report`, for the guest's dmesg check and the host's splat finder alike:
    // a second list drifts from it. Code (not its tests) with string literals that are two or
    // more of the markers (or of their `: `-separated parts: `"KASAN:"`) holds a second list.
    use hsa_p2p_hwtests::guest::kernel_report::MARKERS;
    const OWNER: &str = "hwtests/src/guest/kernel_report.rs";
    let normal = |text: &str| text.trim().trim_end_matches(':').trim().to_owned();
    let markers: Vec<String> = MARKERS
        .iter()
        .map(|marker| match marker.starts_with {
            "" => marker.contains,
            start => start,
        })
        .flat_map(|marker| {
            let parts = marker.split(": ").filter(|part| !part.trim().is_empty());
            parts.map(normal).chain([normal(marker)])
        })
        .collect();
    let is_marker = |literal: &str| markers.contains(&normal(literal));
    let mut code = Vec::new();
    for dir in ["xtask/src", "hwtests/src", "hwtests/tests", "runtime/src"] {
        code.extend(files(dir, &["rs"]));
    }
    let lists: Vec<String> = code
        .iter()
        .filter(|(name, _)| name != OWNER)
        .filter_map(|(name, text)| {
            let mut found: Vec<String> = before_tests(text)
                .lines()
                .flat_map(string_literals)
                .filter(|literal| is_marker(literal))
                .collect();
            found.sort();
            found.dedup();
            (found.len() >= 2).then(|| format!("{name}: {found:?}"))
        })
        .collect();
    assert!(
        lists.is_empty(),
        "kernel report markers outside {OWNER}:\n{}",
        lists.join("\n")
    );
}

#[test]
fn string_literals_are_read_from_code_lines() {
    assert_eq!(
        string_literals(r#"const M: &[&str] = &["BUG:", "say \"hi\"", ""];"#),
        ["BUG:", r#"say \"hi\""#, ""]
    );
    assert!(string_literals(r#"    // "BUG:", "Oops:""#).is_empty());
}
