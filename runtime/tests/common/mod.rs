//! hwtests' fixture machines, shared by the runtime's integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fixture machine's root directory (`sys/`, `proc/`).
pub fn hw_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../hwtests/tests/fixtures")
        .join(name)
}

/// A copy of fixture machine `name` in `scratch` (symbolic links kept); its root directory.
pub fn copy_fixture(scratch: &Path, name: &str) -> PathBuf {
    let machine = scratch.join(name);
    let copied = std::process::Command::new("cp")
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
