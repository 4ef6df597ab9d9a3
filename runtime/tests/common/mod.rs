//! Running `p2pctl` from the repository root in the integration tests (relative spec paths
//! keep outputs and snapshots free of this machine's paths). Each test crate uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs p2pctl with `args` in the repository root.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2pctl"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("p2pctl runs")
}

/// The stdout of a p2pctl run that must succeed.
pub fn p2pctl(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "p2pctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The names of the shipped specs (`topologies/*.toml`), sorted.
pub fn shipped_specs() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("topologies"))
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    names
}

/// A fixture machine of hwtests (`sys/`, `proc/`): its root directory.
pub fn hw_fixture(name: &str) -> PathBuf {
    repo().join("hwtests/tests/fixtures").join(name)
}

/// A copy of fixture machine `name` in `scratch` (symbolic links kept); its root directory.
pub fn copy_fixture(scratch: &Path, name: &str) -> PathBuf {
    let machine = scratch.join(name);
    let copied = Command::new("cp")
        .arg("-a")
        .arg(hw_fixture(name))
        .arg(&machine)
        .status()
        .unwrap();
    assert!(copied.success());
    machine
}

/// A copy of fixture machine `name` in `scratch` whose amdgpu has no `pcie_p2p` parameter (a
/// kernel built without CONFIG_HSA_AMD_P2P); its root directory.
pub fn without_pcie_p2p_parameter(scratch: &Path, name: &str) -> PathBuf {
    let machine = copy_fixture(scratch, name);
    std::fs::remove_file(machine.join("sys/module/amdgpu/parameters/pcie_p2p")).unwrap();
    machine
}
