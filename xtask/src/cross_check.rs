//! `cargo xtask cross-check`: `cargo check` of the runtime (library, `p2pctl`, tests) for
//! another Linux architecture, arm64 by default, whose GPU servers run the same user space.
//!
//! Only the x86-64 standard library comes with the toolchains here and rustup cannot download
//! targets, so the other architecture's standard library comes from Debian: the package that
//! holds the installed Debian rustc's standard library (`libstd-rust-web-dev` for bookworm's
//! `rustc-web`), in the same version, for the foreign architecture. It is downloaded through a
//! private apt configuration and unpacked into `target/cross-check/<arch>/sysroot` (never
//! installed), and that rustc checks the crates against it with `--sysroot`. A check does not
//! link, so no cross linker or foreign C library is needed.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::apt::{self, PrivateApt};
use crate::util::{self, note, phase, run, run_logged};

/// The rustc whose standard library Debian packages for every architecture.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// Debian's standard-library packages, for `rustc-web` (bookworm) and `rustc`.
const STD_PACKAGES: &[&str] = &["libstd-rust-web-dev", "libstd-rust-dev"];
/// The crate checked: everything of it that builds on the target (lib, bins, tests).
const CRATE: &str = "hsa-p2p-runtime";

/// Options of `cargo xtask cross-check`.
#[derive(clap::Args, Debug)]
pub struct CrossCheckArgs {
    /// Rust target triple to check for.
    #[arg(long, default_value = "aarch64-unknown-linux-gnu")]
    pub target: String,
    /// Fetch the foreign package lists again even if present.
    #[arg(long)]
    pub refresh: bool,
    /// Show cargo's output.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Debian's architecture name of a Rust target triple.
pub fn debian_architecture(triple: &str) -> Result<&'static str> {
    Ok(match triple.split('-').next().unwrap_or_default() {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        "riscv64gc" => "riscv64",
        "powerpc64le" => "ppc64el",
        "s390x" => "s390x",
        other => bail!("no Debian architecture known for {other} ({triple})"),
    })
}

/// The installed standard-library package of Debian's rustc and its version.
fn installed_std_package() -> Result<(&'static str, String)> {
    STD_PACKAGES
        .iter()
        .find_map(|package| apt::installed_version(package).map(|v| (*package, v)))
        .with_context(|| {
            format!(
                "none of {STD_PACKAGES:?} is installed: run `cargo xtask kernel` (it installs \
                 Debian's rustc-web) or apt-get install rustc-web"
            )
        })
}

/// `cargo xtask cross-check`.
pub fn cross_check(args: &CrossCheckArgs) -> Result<()> {
    let arch = debian_architecture(&args.target)?;
    let (std_package, version) = installed_std_package()?;
    let work = util::target_dir().join("cross-check").join(arch);
    let sysroot = work.join("sysroot");
    let stamp = work.join("sysroot.stamp");
    let wanted = format!("{std_package}:{arch}={version}");

    phase(format!(
        "{std_package}:{arch} {version} (Debian's standard library for {})",
        args.target
    ));
    if util::read_stamp(&stamp).as_deref() == Some(wanted.as_str()) && !args.refresh {
        note(format!("unpacked already in {}", sysroot.display()));
    } else {
        let apt = PrivateApt::bookworm_foreign(arch)?;
        apt.ensure_lists(args.refresh)?;
        let candidate = apt.candidate(&format!("{std_package}:{arch}"))?;
        if candidate != version {
            note(format!(
                "{std_package}:{arch} candidate is {candidate}, the installed rustc's is \
                 {version}: downloading {version}"
            ));
        }
        let downloads = work.join("downloads");
        let _ = fs::remove_dir_all(&downloads);
        let deb = apt.download(&format!("{std_package}:{arch}"), &version, &downloads)?;
        let _ = fs::remove_dir_all(&sysroot);
        fs::create_dir_all(&sysroot)?;
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&sysroot))
            .with_context(|| format!("cannot unpack {}", deb.display()))?;
        util::write_stamp(&stamp, &wanted)?;
    }
    let sysroot_usr = sysroot.join("usr");
    let target_lib: PathBuf = sysroot_usr.join(format!("lib/rustlib/{}/lib", args.target));
    if !target_lib.is_dir() {
        bail!(
            "{std_package}:{arch} has no {} (the package does not hold the standard library \
             for {})",
            target_lib.display(),
            args.target
        );
    }

    phase(format!(
        "cargo check -p {CRATE} --all-targets --target {} with {DEBIAN_RUSTC}",
        args.target
    ));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let log = work.join("cargo-check.log");
    run_logged(
        Command::new(cargo)
            .current_dir(util::workspace_root())
            // rustup's rustc has no standard library for the target and a different version;
            // the sysroot's libraries were built by Debian's rustc.
            .env("RUSTC", DEBIAN_RUSTC)
            .env_remove("RUSTC_WRAPPER")
            // With --target, RUSTFLAGS reach only the target's crates: build scripts and
            // proc-macros still use the host's own standard library.
            .env("RUSTFLAGS", format!("--sysroot {}", sysroot_usr.display()))
            .env("CARGO_TARGET_DIR", work.join("target"))
            .args([
                "check",
                "--locked",
                "--all-targets",
                "-p",
                CRATE,
                "--target",
            ])
            .arg(&args.target),
        &log,
        args.verbose,
    )
    .with_context(|| {
        format!(
            "cargo check for {} failed (log {})",
            args.target,
            log.display()
        )
    })?;
    note(format!("{CRATE} checks for {}", args.target));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_rust_triples_to_debian_architectures() {
        assert_eq!(
            debian_architecture("aarch64-unknown-linux-gnu").unwrap(),
            "arm64"
        );
        assert_eq!(
            debian_architecture("x86_64-unknown-linux-gnu").unwrap(),
            "amd64"
        );
        assert!(debian_architecture("mips-unknown-linux-gnu").is_err());
    }
}
