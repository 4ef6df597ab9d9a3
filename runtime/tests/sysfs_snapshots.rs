//! insta snapshots of the sysfs tree the kernel rules publish for every shipped topology spec.
//!
//! Each snapshot is the whole rendered tree as one text: a `== path ==` header per file followed
//! by its content, in `render_sysfs` order. A change to the rules, the property writers or a spec
//! shows up here as a reviewable diff. Accept a reviewed change with
//! `INSTA_UPDATE=always cargo test -p hsa-p2p-runtime --test sysfs_snapshots`.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::predict::predict;
use hsa_p2p_runtime::spec::Spec;

fn topologies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies")
}

fn snapshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// The shipped specs, sorted by file name.
fn spec_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(topologies_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

/// The tree as one text: `== path ==` and the file's content, for every file.
fn render_tree(topology: &Topology) -> String {
    let mut text = String::new();
    for (path, content) in topology.render_sysfs() {
        writeln!(text, "== {path} ==").unwrap();
        text.push_str(&content);
        assert!(content.ends_with('\n'), "{path} lacks a final newline");
    }
    text
}

#[test]
fn rendered_sysfs_trees_match_their_snapshots() {
    let paths = spec_paths();
    assert!(
        paths.len() >= 6,
        "expected the shipped specs, found {paths:?}"
    );
    for path in paths {
        let spec = Spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let prediction = predict(&spec).unwrap_or_else(|e| panic!("{e}"));
        let mut settings = insta::Settings::clone_current();
        settings.set_description(format!(
            "topologies/{}.toml: {}",
            stem(&path),
            spec.description
        ));
        settings.set_omit_expression(true);
        settings.bind(|| {
            insta::assert_snapshot!(stem(&path), render_tree(&prediction.topology));
        });
    }
}

/// Every committed snapshot belongs to a shipped spec (a renamed or deleted spec must take its
/// snapshot along).
#[test]
fn no_snapshot_without_a_spec() {
    let specs: BTreeSet<String> = spec_paths().iter().map(|p| stem(p)).collect();
    // No directory yet: nothing committed to check.
    let Ok(entries) = std::fs::read_dir(snapshots_dir()) else {
        return;
    };
    for entry in entries {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(spec) = name
            .strip_prefix("sysfs_snapshots__")
            .and_then(|rest| rest.strip_suffix(".snap"))
        {
            assert!(
                specs.contains(spec),
                "snapshot {name} has no topologies/{spec}.toml"
            );
        }
    }
}
