//! Getting the module into the kernel and out again, with errors that say what to do.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::kernel::KernelEnv;
use crate::kmod::{self, BuildArgs};
use crate::util::note;

/// The kernel tree to build the module against: `--kdir`, else the running kernel's
/// `/lib/modules/<release>/build`, else `cargo xtask kernel`'s tree when the running kernel is
/// the one it built.
pub fn kernel_tree(kdir: Option<&Path>, release: &str) -> Result<PathBuf> {
    if let Some(kdir) = kdir {
        return Ok(kdir.to_path_buf());
    }
    let installed = PathBuf::from(format!("/lib/modules/{release}/build"));
    if installed.join("Makefile").exists() {
        return Ok(installed);
    }
    if let Ok(env) = KernelEnv::load() {
        if env.kernel_release == release {
            return Ok(env.kdir);
        }
    }
    bail!(
        "no build tree for the running kernel {release} (/lib/modules/{release}/build missing): \
         pass --kdir DIR or --module KO"
    )
}

/// Builds the module against `kdir`.
pub fn build(kdir: PathBuf) -> Result<PathBuf> {
    kmod::build(&BuildArgs {
        kdir: Some(kdir),
        verbose: false,
        clippy: false,
        flavour: Default::default(),
    })
}

/// What insmod's error means for this module.
fn explain_insmod_error(stderr: &str) -> &'static str {
    if stderr.contains("Invalid module format") {
        "the module does not match the running kernel: built against another kernel tree or by \
         another rustc than the kernel's (see dmesg for the symbol or version it disagrees about)"
    } else if stderr.contains("Unknown symbol") {
        "the kernel lacks symbols the module needs: a kernel without CONFIG_RUST or \
         CONFIG_PCI_P2PDMA, or a module built against another configuration"
    } else if stderr.contains("Operation not permitted") {
        "loading was refused: not root, or the kernel is locked down (Secure Boot requires \
         signed modules)"
    } else if stderr.contains("Key was rejected") || stderr.contains("Required key") {
        "the kernel requires signed modules: sign hsa_p2p.ko with a key the kernel trusts"
    } else {
        "insmod failed"
    }
}

/// The module's state in the kernel, to undo exactly what was done.
#[derive(Debug)]
pub enum Loaded {
    /// This run loaded it: unload at the end.
    ByUs,
    /// It was already loaded: leave it.
    Already,
}

/// Whether a module named `hsa_p2p` is loaded.
pub fn is_loaded() -> bool {
    std::fs::read_to_string("/proc/modules")
        .is_ok_and(|modules| modules.lines().any(|line| line.starts_with("hsa_p2p ")))
}

/// `insmod module`.
pub fn load(module: &Path) -> Result<Loaded> {
    if is_loaded() {
        note("hsa_p2p is already loaded: testing it as it is and leaving it loaded");
        return Ok(Loaded::Already);
    }
    let output = Command::new("insmod")
        .arg(module)
        .output()
        .context("cannot run insmod (kmod not installed?)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "insmod {}: {}: {}",
            module.display(),
            explain_insmod_error(&stderr),
            stderr.trim()
        );
    }
    Ok(Loaded::ByUs)
}

/// `rmmod hsa_p2p` if this run loaded it.
pub fn unload(loaded: &Loaded) -> Result<()> {
    if let Loaded::ByUs = loaded {
        let output = Command::new("rmmod")
            .arg("hsa_p2p")
            .output()
            .context("cannot run rmmod")?;
        if !output.status.success() {
            bail!(
                "rmmod hsa_p2p: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insmod_errors_are_explained() {
        assert!(explain_insmod_error(
            "insmod: ERROR: could not insert module x.ko: Invalid module format"
        )
        .contains("another rustc"));
        assert!(explain_insmod_error("Unknown symbol in module").contains("CONFIG_RUST"));
    }
}
