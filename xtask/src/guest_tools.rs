//! User-space tools for the guest: the workspace's binaries built static, so they run in the
//! busybox initramfs without a C library.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::util::{self, note, phase};

/// The target triple the guest runs (the host's; only the linking differs).
const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds `bin` of `package` as a static release binary under `target/guest/` and returns it.
/// A separate target directory keeps the static build from invalidating the host build.
fn static_binary(package: &str, bin: &str) -> Result<PathBuf> {
    let target_dir = util::target_dir().join("guest");
    phase(format!("static {bin} for the guest"));
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(util::workspace_root())
        .args([
            "build",
            "--release",
            "--locked",
            "--package",
            package,
            "--bin",
            bin,
        ])
        .args(["--target", GUEST_TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    util::run(&mut cargo).with_context(|| format!("building a static {bin} for the guest"))?;
    let binary = target_dir.join(GUEST_TARGET).join("release").join(bin);
    if !binary.is_file() {
        anyhow::bail!("cargo reported success but {} is missing", binary.display());
    }
    note(format!("{bin}: {}", binary.display()));
    Ok(binary)
}

/// The static `p2pctl`.
pub fn static_p2pctl() -> Result<PathBuf> {
    static_binary("hsa-p2p-runtime", "p2pctl")
}

/// The static `hwtests`.
pub fn static_hwtests() -> Result<PathBuf> {
    static_binary("hsa-p2p-hwtests", "hwtests")
}
