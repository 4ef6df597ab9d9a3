//! Builds the *packaged* DKMS source with the real `dkms` against the kernel `cargo xtask
//! kernel` built, in a private DKMS tree (`--dkmstree`, `--sourcetree`): nothing is registered
//! with the system's DKMS and nothing is installed into `/lib/modules`.
//!
//! This proves that dkms.conf, the kbuild wrapper (including its choice of the kernel's rustc
//! over the rustup one first in PATH) and the packaged layout produce `hsa_p2p.ko`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::dkms::DKMS_NAME;
use crate::kernel::KernelEnv;
use crate::util::{self, note, run_logged};

/// `dkms add` + `dkms build` of the unpacked source `tree` (`…/usr/src/hsa-p2p-<version>`);
/// returns the built module.
pub fn build(tree: &Path, version: &str, verbose: bool) -> Result<PathBuf> {
    let env = KernelEnv::load()?;
    let work = util::target_dir().join("dist/dkms-check");
    let _ = fs::remove_dir_all(&work);
    let dkms_tree = work.join("dkms-tree");
    let source_tree = work.join("src");
    fs::create_dir_all(&dkms_tree)?;
    fs::create_dir_all(&source_tree)?;
    // dkms looks for <sourcetree>/<name>-<version>; a symlink keeps the packaged files as they are.
    std::os::unix::fs::symlink(tree, source_tree.join(format!("{DKMS_NAME}-{version}")))?;

    let dkms = |action: &str| {
        let mut cmd = Command::new("dkms");
        cmd.arg(action)
            .arg("--dkmstree")
            .arg(&dkms_tree)
            .arg("--sourcetree")
            .arg(&source_tree)
            .args(["-m", DKMS_NAME, "-v", version]);
        cmd
    };
    let log = work.join("dkms.log");
    run_logged(&mut dkms("add"), &work.join("dkms-add.log"), verbose)
        .context("dkms add failed (is the dkms package installed?)")?;
    note(format!(
        "dkms build -k {} --kernelsourcedir {} (log {})",
        env.kernel_release,
        env.kdir.display(),
        log.display()
    ));
    let result = run_logged(
        dkms("build")
            .args(["-k", &env.kernel_release])
            .arg("--kernelsourcedir")
            .arg(&env.kdir),
        &log,
        verbose,
    );
    let make_log = dkms_tree.join(format!("{DKMS_NAME}/{version}/build/make.log"));
    if let Err(error) = result {
        util::print_tail(&make_log, 30);
        return Err(error).context("dkms build of the packaged source failed");
    }
    let module = dkms_tree.join(format!(
        "{DKMS_NAME}/{version}/{}/x86_64/module/hsa_p2p.ko",
        env.kernel_release
    ));
    if !module.is_file() {
        bail!("dkms reported success but {} is missing", module.display());
    }
    let dkms_log = fs::read_to_string(&log).unwrap_or_default();
    if let Some(line) = dkms_log
        .lines()
        .find(|l| l.contains("can build Rust modules with"))
    {
        note(line.trim());
    }
    Ok(module)
}
