//! `cargo xtask package`: Debian and RPM packages into `target/dist/`.
//!
//! - `hsa-p2p-dkms`: the module's source for DKMS under `/usr/src/hsa-p2p-<upstream>/` (see
//!   [`dkms`]), the udev rule for `/dev/hsa_p2p`, and scriptlets that run
//!   `dkms add`/`install`/`remove`;
//! - `hsa-p2p-tools`: the release `p2pctl`, its man pages and shell completions (see [`tools`]).
//!
//! Both formats are made from one [`payload::Payload`] per package (paths differing only where
//! the distributions' [`layout`]s do) and the same scriptlet commands. Then, always: every
//! package is unpacked into a scratch root and checked ([`inspect`]), and `lintian` (`.deb`) or
//! `rpmlint` (`.rpm`) must report no error. With `--dkms-build`, the unpacked DKMS source is
//! also built by the real `dkms` against the kernel of `cargo xtask kernel` ([`dkms_build`]).
//!
//! The version is the workspace's (`[workspace.package] version` of the root Cargo.toml) plus a
//! package revision; dates come from the last commit, so rebuilding a commit gives the same
//! files.

mod changelog;
mod completions;
mod control;
mod copyright;
mod deb;
mod deb_packages;
mod dkms;
mod dkms_build;
mod finding;
mod inspect;
mod layout;
mod lintian;
mod manpage;
mod payload;
mod rpm;
mod rpm_packages;
mod rpmlint;
mod tools;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::apt;
use crate::util::{self, capture, note, phase};
use inspect::Expected;
use layout::Layout;

/// Source name shared by both binary packages.
const SOURCE: &str = "hsa-p2p";
const DKMS_PACKAGE: &str = "hsa-p2p-dkms";
const TOOLS_PACKAGE: &str = "hsa-p2p-tools";
const DEFAULT_MAINTAINER: &str = "hsa-p2p developers <hsa-p2p@example.org>";
const COPYRIGHT_HOLDERS: &str = "2026 hsa-p2p developers";

/// Host packages the `.deb`s need: dpkg-dev (dpkg-shlibdeps), binutils (strip), lintian.
const DEB_TOOLS: &[&str] = &["dpkg-dev", "binutils", "lintian", "gzip", "man-db"];
/// Host packages the `.rpm`s need (all Debian packages): rpmbuild, rpm2cpio/cpio, rpmlint;
/// binutils and gzip for the payload they share with the `.deb`s.
const RPM_TOOLS: &[&str] = &["rpm", "rpm2cpio", "cpio", "rpmlint", "binutils", "gzip"];

/// What both formats say about the DKMS package.
const DKMS_SUMMARY: &str = "PCIe peer-to-peer between GPUs, KFD-style topology (DKMS source)";
const DKMS_DESCRIPTION: &str = "hsa_p2p is a Rust kernel module that binds GPUs, decides \
    which pairs may reach each other's VRAM through PCIe BARs (the rules of amdgpu's \
    peer-to-peer support), and publishes the result as a KFD-format topology with p2p_links \
    under /sys/kernel/hsa_p2p/topology.\n\n\
    This package provides the module's source for DKMS and a udev rule giving /dev/hsa_p2p to \
    the render group. It builds only for kernels configured with CONFIG_RUST=y whose Rust \
    build artefacts are installed, with the same rustc that built the kernel; for any other \
    kernel the build stops with a sentence saying which of these is missing.";
/// What both formats say about the tools package.
const TOOLS_SUMMARY: &str = "Inspect and explain GPU peer-to-peer topologies (p2pctl)";
const TOOLS_DESCRIPTION: &str = "p2pctl reads a KFD-format topology (the hsa_p2p module's \
    /sys/kernel/hsa_p2p/topology or amdkfd's /sys/class/kfd/kfd/topology), prints the \
    peer-access matrix and explains why two GPUs can or cannot reach each other's memory \
    over PCIe.";

/// Options of `cargo xtask package`.
#[derive(clap::Args, Debug)]
pub struct PackageArgs {
    /// Build the Debian packages (the default when neither --deb nor --rpm is given).
    #[arg(long)]
    pub deb: bool,
    /// Build the RPM packages (Fedora, RHEL, openSUSE) with rpmbuild, checked with rpmlint.
    #[arg(long)]
    pub rpm: bool,
    /// Package revision appended to the workspace version (Debian `<version>-<revision>`,
    /// RPM `Release`).
    #[arg(long, default_value_t = 1)]
    pub revision: u32,
    /// Maintainer field and changelog signature ("Name <email>").
    #[arg(long, default_value = DEFAULT_MAINTAINER)]
    pub maintainer: String,
    /// Also build the packaged DKMS source with `dkms` against the kernel of `cargo xtask
    /// kernel` (private DKMS tree; installs the dkms package if missing).
    #[arg(long)]
    pub dkms_build: bool,
    /// Do not install missing tools with apt (fail naming them instead).
    #[arg(long)]
    pub no_install: bool,
    /// Show the output of cargo and dkms.
    #[arg(short, long)]
    pub verbose: bool,
}

impl PackageArgs {
    fn deb_wanted(&self) -> bool {
        self.deb || !self.rpm
    }
}

/// The `[workspace.package]` fields the packages use.
struct WorkspaceInfo {
    version: String,
    repository: String,
}

/// Reads `version` and `repository` of `[workspace.package]` in the root Cargo.toml (a
/// line-based read: these are simple `key = "value"` lines).
fn workspace_info(manifest: &str) -> Result<WorkspaceInfo> {
    let mut in_section = false;
    let (mut version, mut repository) = (None, None);
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().trim_matches('"').to_owned();
            match key.trim() {
                "version" => version = Some(value),
                "repository" => repository = Some(value),
                _ => {}
            }
        }
    }
    Ok(WorkspaceInfo {
        version: version.context("no version in [workspace.package] of Cargo.toml")?,
        repository: repository.context("no repository in [workspace.package] of Cargo.toml")?,
    })
}

/// Unix time of the last commit (the packages' date), or now outside a git checkout.
fn source_date_epoch() -> u64 {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return epoch;
    }
    capture(
        Command::new("git")
            .current_dir(util::workspace_root())
            .args(["log", "-1", "--format=%ct"]),
    )
    .ok()
    .and_then(|t| t.trim().parse().ok())
    .unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

fn commit() -> String {
    capture(
        Command::new("git")
            .current_dir(util::workspace_root())
            .args(["rev-parse", "--short=12", "HEAD"]),
    )
    .map(|c| c.trim().to_owned())
    .unwrap_or_else(|_| "unknown".to_owned())
}

/// Settings all packages share.
struct Common<'a> {
    info: &'a WorkspaceInfo,
    /// The upstream version as both formats write it (`~` before a pre-release).
    upstream: String,
    revision: u32,
    maintainer: &'a str,
    epoch: u64,
    commit: String,
}

impl Common<'_> {
    /// The changelog line of both formats.
    fn changes(&self) -> Vec<String> {
        vec![format!(
            "Package hsa-p2p {} (workspace version), built from commit {}.",
            self.info.version, self.commit
        )]
    }
}

/// The files both formats check in the DKMS package, under `layout`.
fn expected_dkms_files(layout: &Layout, version: &str) -> Vec<Expected> {
    let usr_src = format!("usr/src/{}-{version}", dkms::DKMS_NAME);
    vec![
        Expected::file(format!("{usr_src}/dkms.conf")),
        Expected::file(format!("{usr_src}/Kbuild")),
        Expected::file(format!("{usr_src}/src/hsa_p2p_main.rs")),
        Expected::program(format!("{usr_src}/{}", dkms::KBUILD_WRAPPER)),
        Expected::file(dkms::udev_rule_path(layout)),
    ]
}

/// The files both formats check in the tools package, under `layout`: the program, its main
/// man page and the three completions.
fn expected_tools_files(layout: &Layout) -> Vec<Expected> {
    let mut expected = vec![
        Expected::program(format!("/usr/bin/{}", tools::BINARY)),
        Expected::file(format!("{}/{}.1.gz", layout::MAN1_DIR, tools::BINARY)),
    ];
    expected.extend(
        completions::SHELLS
            .iter()
            .map(|shell| Expected::file(completions::install_path(*shell, layout))),
    );
    expected
}

/// One format's pair of packages with the payloads they were made from.
struct PackagePair<'a> {
    layout: &'a Layout,
    /// `<upstream>-<revision>` as the format writes it.
    version: &'a str,
    dkms: &'a Path,
    dkms_payload: &'a payload::Payload,
    tools: &'a Path,
    tools_payload: &'a payload::Payload,
}

/// Unpacks both packages of one format into `scratch` and runs the checks both formats share
/// plus the format's own ([`inspect`]); returns the unpacked DKMS tree. `dkms_version` is the
/// workspace version as `/usr/src` and DKMS spell it.
fn install_and_check(pair: &PackagePair, dkms_version: &str, scratch: &Path) -> Result<PathBuf> {
    let _ = fs::remove_dir_all(scratch);
    let installed = inspect::install(pair.dkms, scratch)?;
    installed.check_payload(pair.dkms_payload)?;
    installed.check_expected(&expected_dkms_files(pair.layout, dkms_version))?;
    let files = installed.check_package(pair.version)?;
    let tree = inspect::check_dkms_tree(&installed, dkms_version)?;
    note(format!(
        "{DKMS_PACKAGE}: {files} files as packaged, {}, #[path] attributes resolve, udev rule \
         in {}",
        installed.integrity(),
        pair.layout.udev_rules_dir
    ));
    let installed = inspect::install(pair.tools, scratch)?;
    installed.check_payload(pair.tools_payload)?;
    installed.check_expected(&expected_tools_files(pair.layout))?;
    let files = installed.check_package(pair.version)?;
    // The binary is complete and runs where it was installed.
    capture(Command::new(scratch.join("usr/bin").join(tools::BINARY)).arg("--help"))
        .context("the installed p2pctl does not run")?;
    note(format!(
        "{TOOLS_PACKAGE}: {files} files as packaged (man pages, bash/zsh/fish completions), {}, \
         p2pctl --help runs; {}",
        installed.integrity(),
        installed.dependencies()?
    ));
    Ok(tree)
}

/// `cargo xtask package`.
/// Returns the built packages.
pub fn package(args: &PackageArgs) -> Result<Vec<PathBuf>> {
    phase("packaging tools");
    let mut needed = Vec::new();
    if args.deb_wanted() {
        needed.extend_from_slice(DEB_TOOLS);
    }
    if args.rpm {
        needed.extend_from_slice(RPM_TOOLS);
    }
    if args.dkms_build {
        needed.push("dkms");
    }
    needed.sort_unstable();
    needed.dedup();
    if args.no_install {
        let missing: Vec<_> = needed.iter().filter(|p| !apt::is_installed(p)).collect();
        if !missing.is_empty() {
            bail!("missing packages: {missing:?} (apt-get install them)");
        }
    } else {
        apt::ensure_host_packages(&needed)?;
    }

    let root = util::workspace_root();
    let manifest = fs::read_to_string(root.join("Cargo.toml")).context("cannot read Cargo.toml")?;
    let info = workspace_info(&manifest)?;
    let common = Common {
        upstream: control::upstream_version(&info.version),
        revision: args.revision,
        info: &info,
        maintainer: &args.maintainer,
        epoch: source_date_epoch(),
        commit: commit(),
    };
    let dist = util::target_dir().join("dist");
    let staging = dist.join("staging");
    fs::create_dir_all(&dist)?;
    for stale in fs::read_dir(&dist)?.flatten() {
        if stale
            .path()
            .extension()
            .is_some_and(|e| e == "deb" || e == "rpm")
        {
            fs::remove_file(stale.path())?;
        }
    }

    phase(format!(
        "p2pctl for {TOOLS_PACKAGE}: cargo build --release -p {} --bin {}",
        tools::RUNTIME_CRATE,
        tools::BINARY
    ));
    let binary = tools::build_release(args.verbose)?;
    let stripped = staging.join("bin").join(tools::BINARY);
    tools::strip(&binary, &stripped)?;
    let date = capture(
        Command::new("date")
            .args(["-u", "+%Y-%m-%d", "-d"])
            .arg(format!("@{}", common.epoch)),
    )?;
    let frame = manpage::Frame {
        version: &info.version,
        date: date.trim(),
        files: MAN_FILES,
        see_also: &["dkms(8)"],
    };
    let built = Built {
        stripped_binary: &stripped,
        man_frame: &frame,
    };

    let mut packages = Vec::new();
    let mut dkms_tree = None;
    if args.deb_wanted() {
        let (debs, tree) = deb_packages::build_and_check(&common, &built, &dist)?;
        packages.extend(debs);
        dkms_tree = Some(tree);
    }
    if args.rpm {
        let (rpms, tree) = rpm_packages::build_and_check(&common, &built, &dist)?;
        packages.extend(rpms);
        dkms_tree.get_or_insert(tree);
    }

    if let (true, Some(tree)) = (args.dkms_build, &dkms_tree) {
        phase("dkms build of the packaged source against the cargo xtask kernel");
        let module = dkms_build::build(tree, &common.info.version, args.verbose)?;
        note(format!(
            "{} ({} KiB)",
            module.display(),
            fs::metadata(&module)?.len() / 1024
        ));
    }

    phase(format!("packages in {}", dist.display()));
    for package in &packages {
        note(format!(
            "{} ({} KiB)",
            package.file_name().unwrap_or_default().to_string_lossy(),
            fs::metadata(package)?.len().div_ceil(1024)
        ));
    }
    Ok(packages)
}

/// FILES of `p2pctl(1)`.
const MAN_FILES: &[(&str, &str)] = &[
    (
        "/sys/kernel/hsa_p2p/topology",
        "The topology published by the hsa_p2p module, in the KFD layout.",
    ),
    (
        "/sys/class/kfd/kfd/topology",
        "amdkfd's topology, when the amdgpu driver is loaded.",
    ),
    (
        "/dev/hsa_p2p",
        "The module's peer-transfer device (p2pctl copy, p2pctl bench).",
    ),
];

/// What the build made once for every format.
struct Built<'a> {
    stripped_binary: &'a Path,
    man_frame: &'a manpage::Frame<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_workspace_package_section() {
        let info = workspace_info(
            "[package]\nversion = \"9.9.9\"\n[workspace.package]\nversion = \"0.1.0\"\n\
             edition = \"2021\"\nrepository = \"https://example.org/x\"\n[other]\nversion = \"1\"\n",
        )
        .unwrap();
        assert_eq!(info.version, "0.1.0");
        assert_eq!(info.repository, "https://example.org/x");
        assert!(workspace_info("[package]\nversion = \"1\"\n").is_err());
    }

    #[test]
    fn the_real_manifest_has_a_version() {
        let manifest = fs::read_to_string(util::workspace_root().join("Cargo.toml")).unwrap();
        let info = workspace_info(&manifest).unwrap();
        assert!(!info.version.is_empty());
    }
}
