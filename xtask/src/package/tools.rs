//! The `hsa-p2p-tools` binary package: the release `p2pctl`, stripped like dh_strip does, its
//! shared-library dependencies computed by `dpkg-shlibdeps`, and a man page.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::{self, capture, note, run_logged};

/// The package (crate) and binary that make up the tools package.
pub const RUNTIME_CRATE: &str = "hsa-p2p-runtime";
pub const BINARY: &str = "p2pctl";

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cargo build --release --locked -p hsa-p2p-runtime --bin p2pctl`; returns the binary.
pub fn build_release(verbose: bool) -> Result<PathBuf> {
    run_logged(
        cargo().current_dir(util::workspace_root()).args([
            "build",
            "--release",
            "--locked",
            "-p",
            RUNTIME_CRATE,
            "--bin",
            BINARY,
        ]),
        &util::target_dir().join("dist/logs/cargo-build-p2pctl.log"),
        verbose,
    )
    .context("cannot build the release p2pctl")?;
    let binary = util::target_dir().join("release").join(BINARY);
    if !binary.is_file() {
        bail!("cargo built no {}", binary.display());
    }
    Ok(binary)
}

/// A stripped copy of `binary` at `out` (dh_strip: no debug symbols, no .comment/.note).
pub fn strip(binary: &Path, out: &Path) -> Result<()> {
    fs::create_dir_all(out.parent().expect("a file path"))?;
    capture(
        Command::new("strip")
            .args([
                "--remove-section=.comment",
                "--remove-section=.note",
                "--strip-unneeded",
                "-o",
            ])
            .arg(out)
            .arg(binary),
    )
    .context("strip failed (install binutils)")?;
    Ok(())
}

/// `dpkg-shlibdeps` of `binary`: e.g. `["libc6 (>= 2.34)", "libgcc-s1 (>= 4.2)"]`.
///
/// dpkg-shlibdeps insists on a `debian/control`; a two-paragraph one in a scratch directory is
/// all it reads.
pub fn shared_library_depends(binary: &Path, package: &str, scratch: &Path) -> Result<Vec<String>> {
    let debian = scratch.join("debian");
    fs::create_dir_all(&debian)?;
    fs::write(
        debian.join("control"),
        format!("Source: hsa-p2p\n\nPackage: {package}\nArchitecture: any\n"),
    )?;
    let binary = fs::canonicalize(binary)?;
    let output = capture(
        Command::new("dpkg-shlibdeps")
            .current_dir(scratch)
            .arg("-O")
            .arg(format!("-e{}", binary.display())),
    )
    .context("dpkg-shlibdeps failed (install dpkg-dev)")?;
    parse_shlibdeps(&output)
}

/// The dependencies of `shlibs:Depends=a (>= 1), b` output.
pub fn parse_shlibdeps(output: &str) -> Result<Vec<String>> {
    let value = output
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .with_context(|| format!("no shlibs:Depends in dpkg-shlibdeps output: {output:?}"))?;
    Ok(value
        .split(',')
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect())
}

/// The crates.io crates statically linked into p2pctl, `name version (license)`, sorted.
pub fn linked_crates() -> Result<Vec<String>> {
    let tree = capture(cargo().current_dir(util::workspace_root()).args([
        "tree",
        "--locked",
        "-p",
        RUNTIME_CRATE,
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}|{l}",
    ]))
    .context("cargo tree failed")?;
    let mut crates: Vec<String> = tree
        .lines()
        .filter_map(|line| {
            let (package, license) = line.split_once('|')?;
            let package = package.trim_end_matches(" (*)").trim();
            // Workspace crates are shown with their path; they are this package's own code.
            if package.contains(" (/") {
                return None;
            }
            let license = if license.trim().is_empty() {
                "license not declared"
            } else {
                license.trim()
            };
            Some(format!("{package} ({license})"))
        })
        .collect();
    crates.sort();
    crates.dedup();
    if crates.is_empty() {
        note("cargo tree listed no external crates for p2pctl");
    }
    Ok(crates)
}

/// `p2pctl --help` and, for each listed command, `p2pctl <command> --help`.
pub fn help_texts(binary: &Path) -> Result<(String, Vec<(String, String)>)> {
    let help = capture(Command::new(binary).arg("--help"))
        .with_context(|| format!("{} --help failed", binary.display()))?;
    let mut commands = Vec::new();
    for command in super::manpage::listed_commands(&help) {
        let text = capture(Command::new(binary).args([command.as_str(), "--help"]))
            .with_context(|| format!("{} {command} --help failed", binary.display()))?;
        commands.push((command, text));
    }
    Ok((help, commands))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shlibdeps_output() {
        assert_eq!(
            parse_shlibdeps("shlibs:Depends=libc6 (>= 2.34), libgcc-s1 (>= 4.2)\n").unwrap(),
            ["libc6 (>= 2.34)", "libgcc-s1 (>= 4.2)"]
        );
        assert!(parse_shlibdeps("misc:Depends=\n").is_err());
    }
}
