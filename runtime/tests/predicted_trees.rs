//! The sysfs tree the kernel rules publish for every shipped topology spec, file by file,
//! against the one reference: `tests/fixtures/predicted/<spec>/` (also the `--root` input of
//! the CLI tests and the source of hwtests' module fixtures). A change to the rules, the
//! property writers or a spec shows up as a failing file here and, once accepted with
//! `UPDATE_PREDICTED=1 cargo nextest run -p hsa-p2p-runtime --test predicted_trees`, as a
//! reviewable `git diff` of the tree.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hsa_p2p_runtime::predict::predict;
use hsa_p2p_runtime::spec::Spec;
use hsa_p2p_runtime::sysfs::write_tree;

fn topologies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies")
}

fn predicted_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/predicted")
}

/// The shipped specs, sorted by file name.
fn spec_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(topologies_dir())
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

/// Every file under `dir`, relative path -> content.
fn read_dir_tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(relative, fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    }
    out
}

#[test]
fn rendered_sysfs_trees_match_the_predicted_fixtures() {
    let update = std::env::var_os("UPDATE_PREDICTED").is_some();
    let paths = spec_paths();
    assert!(
        paths.len() >= 6,
        "expected the shipped specs, found {paths:?}"
    );
    let mut problems = Vec::new();
    for path in paths {
        let spec = Spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let rendered: BTreeMap<String, String> = predict(&spec)
            .unwrap_or_else(|e| panic!("{e}"))
            .topology
            .render_sysfs()
            .into_iter()
            .collect();
        let dir = predicted_dir().join(stem(&path));
        if update {
            let _ = fs::remove_dir_all(&dir);
            write_tree(&dir, &rendered).unwrap();
        }
        let committed = read_dir_tree(&dir);
        for (file, content) in &rendered {
            match committed.get(file) {
                None => problems.push(format!("{}: missing {file}", stem(&path))),
                Some(found) if found != content => problems.push(format!(
                    "{}: {file} differs:\n--- committed\n{found}--- rendered\n{content}",
                    stem(&path)
                )),
                Some(_) => {}
            }
        }
        for file in committed
            .keys()
            .filter(|file| !rendered.contains_key(*file))
        {
            problems.push(format!("{}: {file} is no longer rendered", stem(&path)));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n(accept a reviewed change with UPDATE_PREDICTED=1)",
        problems.join("\n")
    );
}

/// Every committed tree belongs to a shipped spec (a renamed or deleted spec must take its
/// tree along).
#[test]
fn no_predicted_tree_without_a_spec() {
    let specs: Vec<String> = spec_paths().iter().map(|p| stem(p)).collect();
    for entry in fs::read_dir(predicted_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            specs.contains(&name),
            "predicted/{name} has no topologies/{name}.toml"
        );
    }
}
