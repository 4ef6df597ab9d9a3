//! The `hsa-p2p-tools` package: the release `p2pctl`, stripped like dh_strip does, its man
//! pages and shell completions; for the `.deb`, its shared-library dependencies computed by
//! `dpkg-shlibdeps` (rpmbuild finds them itself).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::changelog::gzip;
use super::layout::{self, Layout};
use super::payload::{Payload, MODE_EXECUTABLE, MODE_FILE};
use super::{completions, manpage};
use crate::util::{self, capture, note, run_logged};

/// The package (crate) and binary that make up the tools package.
pub const RUNTIME_CRATE: &str = "hsa-p2p-runtime";
pub const BINARY: &str = hsa_p2p_runtime::cli::PROGRAM;

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

/// One line of `cargo tree --prefix none --format "{p}|{l}"` as `name version (license)`;
/// `None` for workspace crates (shown with their path: this package's own code).
fn linked_crate(line: &str) -> Option<String> {
    // cargo tree marks a crate it has shown before with ` (*)` at the end of the line.
    let line = line.trim_end().trim_end_matches(" (*)");
    let (package, license) = line.split_once('|')?;
    let package = package.trim();
    if package.contains(" (/") {
        return None;
    }
    let license = if license.trim().is_empty() {
        "license not declared"
    } else {
        license.trim()
    };
    Some(format!("{package} ({license})"))
}

/// The crates.io crates statically linked into p2pctl, `name version (license)`, sorted.
pub fn linked_crates() -> Result<Vec<String>> {
    let tree = capture(cargo().current_dir(util::workspace_root()).args([
        "tree",
        "--locked",
        "-p",
        RUNTIME_CRATE,
        // Proc-macros (clap_derive, serde_derive and their syn/quote) run at build time only.
        "-e",
        "normal,no-proc-macro",
        "--prefix",
        "none",
        "--format",
        "{p}|{l}",
    ]))
    .context("cargo tree failed")?;
    let mut crates: Vec<String> = tree.lines().filter_map(linked_crate).collect();
    crates.sort();
    crates.dedup();
    if crates.is_empty() {
        note("cargo tree listed no external crates for p2pctl");
    }
    Ok(crates)
}

/// The files of `hsa-p2p-tools` under `layout` (both formats): the stripped `binary`, the man
/// pages (gzip-compressed, as both distribution families ship them) and the bash, zsh and fish
/// completions.
pub fn payload(layout: &Layout, binary: &Path, frame: &manpage::Frame) -> Result<Payload> {
    let mut payload = Payload::default();
    payload.add_file(&format!("/usr/bin/{BINARY}"), binary, MODE_EXECUTABLE)?;
    for page in manpage::pages(frame) {
        payload.add_bytes(
            &format!("{}/{}.gz", layout::MAN1_DIR, page.file_name),
            &gzip(page.roff.as_bytes())?,
            MODE_FILE,
        );
    }
    for shell in completions::SHELLS {
        payload.add_bytes(
            &completions::install_path(shell, layout),
            &completions::script(shell),
            MODE_FILE,
        );
    }
    Ok(payload)
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

    #[test]
    fn reads_cargo_tree_lines() {
        // A repeated crate: cargo tree appends ` (*)` after the license, not the name.
        assert_eq!(
            linked_crate("clap v4.6.9|MIT OR Apache-2.0 (*)").as_deref(),
            Some("clap v4.6.9 (MIT OR Apache-2.0)")
        );
        assert_eq!(
            linked_crate("odd v0.1.0|").as_deref(),
            Some("odd v0.1.0 (license not declared)")
        );
        assert_eq!(
            linked_crate("hsa-p2p-core v0.1.0 (/src/kmod/core)|GPL-2.0-only"),
            None
        );
    }
}
