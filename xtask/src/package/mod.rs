//! `cargo xtask package`: Debian packages into `target/dist/`.
//!
//! - `hsa-p2p-dkms_<version>_all.deb`: the module's source for DKMS under
//!   `/usr/src/hsa-p2p-<upstream>/` (see [`dkms`]), with maintainer scripts that run
//!   `dkms add`/`install`/`remove`;
//! - `hsa-p2p-tools_<version>_amd64.deb`: the release `p2pctl` and its man page (see [`tools`]).
//!
//! Then, always: both are unpacked into a scratch root and checked ([`inspect`]), and `lintian`
//! must report no error ([`lintian`]). With `--dkms-build`, the unpacked DKMS source is also
//! built by the real `dkms` against the kernel of `cargo xtask kernel` ([`dkms_build`]).
//!
//! The version is the workspace's (`[workspace.package] version` of the root Cargo.toml) plus a
//! Debian revision; dates come from the last commit, so rebuilding a commit gives the same files.

mod changelog;
mod control;
mod copyright;
mod deb;
mod dkms;
mod dkms_build;
mod inspect;
mod lintian;
mod manpage;
mod tools;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::apt;
use crate::util::{self, capture, note, phase};
use changelog::ChangelogEntry;
use control::Control;
use copyright::Copyright;
use deb::{DebPackage, MODE_EXECUTABLE, MODE_FILE};
use inspect::Expected;

/// Debian source name shared by both binary packages.
const SOURCE: &str = "hsa-p2p";
const DKMS_PACKAGE: &str = "hsa-p2p-dkms";
const TOOLS_PACKAGE: &str = "hsa-p2p-tools";
const DEFAULT_MAINTAINER: &str = "hsa-p2p developers <hsa-p2p@example.org>";
const COPYRIGHT_HOLDERS: &str = "2026 hsa-p2p developers";

/// Host packages the packaging needs: dpkg-dev (dpkg-shlibdeps), binutils (strip), lintian.
const PACKAGING_TOOLS: &[&str] = &["dpkg-dev", "binutils", "lintian", "gzip", "man-db"];

/// Options of `cargo xtask package`.
#[derive(clap::Args, Debug)]
pub struct PackageArgs {
    /// Debian revision appended to the workspace version (`<version>-<revision>`).
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

/// Settings both packages share.
struct Common<'a> {
    info: &'a WorkspaceInfo,
    version: String,
    maintainer: &'a str,
    epoch: u64,
    date: String,
    commit: String,
}

impl Common<'_> {
    fn control(&self, package: &str, architecture: &str, section: &str) -> Control {
        Control {
            package: package.to_owned(),
            source: SOURCE.to_owned(),
            version: self.version.clone(),
            architecture: architecture.to_owned(),
            maintainer: self.maintainer.to_owned(),
            section: section.to_owned(),
            depends: Vec::new(),
            recommends: Vec::new(),
            homepage: self.info.repository.clone(),
            synopsis: String::new(),
            description: String::new(),
            installed_size_kib: None,
        }
    }

    /// `copyright` and `changelog.Debian.gz` under `/usr/share/doc/<package>/`.
    fn add_docs(&self, deb: &DebPackage, comment: &str) -> Result<()> {
        let doc = deb.doc_dir();
        let copyright = Copyright {
            upstream_name: SOURCE,
            contact: self.maintainer,
            source: &self.info.repository,
            holders: COPYRIGHT_HOLDERS,
            comment,
        };
        deb.add_bytes(
            &format!("{doc}/copyright"),
            copyright.render().as_bytes(),
            MODE_FILE,
        )?;
        let changes = [format!(
            "Package hsa-p2p {} (workspace version), built from commit {}.",
            self.info.version, self.commit
        )];
        let entry = ChangelogEntry {
            source: SOURCE,
            version: &self.version,
            maintainer: self.maintainer,
            changes: &changes,
            date: &self.date,
        };
        deb.add_bytes(
            &format!("{doc}/changelog.Debian.gz"),
            &changelog::gzip(entry.render().as_bytes())?,
            MODE_FILE,
        )
    }

    /// Ships `packaging/lintian/<package>` as the package's lintian overrides, if present.
    fn add_lintian_overrides(&self, deb: &DebPackage) -> Result<()> {
        let package = &deb.control.package;
        let overrides = util::workspace_root().join(format!("packaging/lintian/{package}"));
        if overrides.is_file() {
            deb.add_file(
                &format!("/usr/share/lintian/overrides/{package}"),
                &overrides,
                MODE_FILE,
            )?;
        }
        Ok(())
    }
}

/// `cargo xtask package`.
/// Returns the built packages.
pub fn package(args: &PackageArgs) -> Result<Vec<PathBuf>> {
    phase("packaging tools");
    let mut needed = PACKAGING_TOOLS.to_vec();
    if args.dkms_build {
        needed.push("dkms");
    }
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
    let epoch = source_date_epoch();
    let common = Common {
        version: control::debian_version(&info.version, args.revision),
        info: &info,
        maintainer: &args.maintainer,
        epoch,
        date: changelog::rfc2822(epoch)?,
        commit: commit(),
    };
    let dist = util::target_dir().join("dist");
    let staging = dist.join("staging");
    fs::create_dir_all(&dist)?;
    for stale in fs::read_dir(&dist)?.flatten() {
        if stale.path().extension().is_some_and(|e| e == "deb") {
            fs::remove_file(stale.path())?;
        }
    }

    phase(format!("{DKMS_PACKAGE} {}", common.version));
    let dkms_deb = build_dkms_package(&common, &staging)?;
    note(dkms_deb.display().to_string());

    phase(format!(
        "{TOOLS_PACKAGE} {}: cargo build --release -p {} --bin {}",
        common.version,
        tools::RUNTIME_CRATE,
        tools::BINARY
    ));
    let tools_deb = build_tools_package(&common, &staging, args.verbose)?;
    note(tools_deb.display().to_string());

    phase("install into a scratch root (dpkg-deb -x) and check the files");
    let scratch = dist.join("scratch-root");
    let _ = fs::remove_dir_all(&scratch);
    let installed_dkms = inspect::install(&dkms_deb, &scratch)?;
    let usr_src = format!("usr/src/{}-{}", dkms::DKMS_NAME, info.version);
    let files = installed_dkms.check(
        &common.version,
        &[
            Expected::file(format!("{usr_src}/dkms.conf")),
            Expected::file(format!("{usr_src}/Kbuild")),
            Expected::file(format!("{usr_src}/src/hsa_p2p_main.rs")),
            Expected::program(format!("{usr_src}/{}", dkms::KBUILD_WRAPPER)),
        ],
    )?;
    let tree = inspect::check_dkms_tree(&installed_dkms, &info.version)?;
    note(format!(
        "{DKMS_PACKAGE}: {files} files, md5sums match, #[path] attributes resolve in /{usr_src}"
    ));
    let installed_tools = inspect::install(&tools_deb, &scratch)?;
    let files = installed_tools.check(
        &common.version,
        &[
            Expected::program("usr/bin/p2pctl"),
            Expected::file("usr/share/man/man1/p2pctl.1.gz"),
        ],
    )?;
    capture(Command::new(scratch.join("usr/bin/p2pctl")).arg("--help"))
        .context("the installed p2pctl does not run")?;
    note(format!(
        "{TOOLS_PACKAGE}: {files} files, md5sums match, p2pctl --help runs; Depends: {}",
        installed_tools.field("Depends")?
    ));

    phase("lintian");
    let (tags, output) = lintian::run(&[&dkms_deb, &tools_deb])?;
    fs::write(dist.join("lintian.txt"), &output)?;
    for tag in &tags {
        note(tag.to_string());
    }
    let errors = tags.iter().filter(|t| t.severity == 'E').count();
    let warnings = tags.iter().filter(|t| t.severity == 'W').count();
    note(format!(
        "{errors} error(s), {warnings} warning(s), {} other tag(s) (full output: {})",
        tags.len() - errors - warnings,
        dist.join("lintian.txt").display()
    ));
    if errors > 0 {
        bail!("lintian reports {errors} error(s) (see above)");
    }

    if args.dkms_build {
        phase("dkms build of the packaged source against the cargo xtask kernel");
        let module = dkms_build::build(&tree, &info.version, args.verbose)?;
        note(format!(
            "{} ({} KiB)",
            module.display(),
            fs::metadata(&module)?.len() / 1024
        ));
    }

    phase(format!("packages in {}", dist.display()));
    for deb in [&dkms_deb, &tools_deb] {
        note(format!(
            "{} ({} KiB)",
            deb.file_name().unwrap_or_default().to_string_lossy(),
            fs::metadata(deb)?.len().div_ceil(1024)
        ));
    }
    Ok(vec![dkms_deb, tools_deb])
}

fn build_dkms_package(common: &Common, staging: &Path) -> Result<PathBuf> {
    let mut control = common.control(DKMS_PACKAGE, "all", "kernel");
    control.depends = vec!["dkms (>= 3.0)".to_owned()];
    // The module must be compiled by the rustc that built the kernel; Debian's is rustc-web
    // (bookworm) or rustc.
    control.recommends = vec!["rustc-web | rustc".to_owned()];
    control.synopsis =
        "PCIe peer-to-peer between GPUs, KFD-style topology (DKMS source)".to_owned();
    control.description = "hsa_p2p is a Rust kernel module that binds GPUs, decides which pairs \
        may reach\neach other's VRAM through PCIe BARs (the rules of amdgpu's peer-to-peer \
        support),\nand publishes the result as a KFD-format topology with p2p_links under\n\
        /sys/kernel/hsa_p2p/topology.\n\n\
        This package provides the module's source for DKMS. It builds only for kernels\n\
        configured with CONFIG_RUST=y whose Rust build artefacts are installed, with\n\
        the same rustc that built the kernel; for any other kernel the build stops\n\
        with a sentence saying which of these is missing."
        .to_owned();
    let deb = DebPackage::new(control, staging.join(DKMS_PACKAGE))?;
    dkms::stage(&deb, &common.info.version)?;
    common.add_docs(&deb, "")?;
    common.add_lintian_overrides(&deb)?;
    deb.build(&util::target_dir().join("dist"), common.epoch)
}

fn build_tools_package(common: &Common, staging: &Path, verbose: bool) -> Result<PathBuf> {
    let binary = tools::build_release(verbose)?;
    // Named p2pctl: clap prints argv[0] in the help texts the man page is made from.
    let stripped = staging.join("bin").join(tools::BINARY);
    tools::strip(&binary, &stripped)?;
    let mut control = common.control(TOOLS_PACKAGE, "amd64", "utils");
    control.depends =
        tools::shared_library_depends(&stripped, TOOLS_PACKAGE, &staging.join("shlibdeps"))?;
    control.synopsis = "p2pctl: inspect and explain GPU peer-to-peer topologies".to_owned();
    control.description = "p2pctl reads a KFD-format topology (the hsa_p2p module's\n\
        /sys/kernel/hsa_p2p/topology or amdkfd's /sys/class/kfd/kfd/topology), prints\n\
        the peer-access matrix and explains why two GPUs can or cannot reach each\n\
        other's memory over PCIe."
        .to_owned();
    let deb = DebPackage::new(control, staging.join(TOOLS_PACKAGE))?;
    deb.add_file("/usr/bin/p2pctl", &stripped, MODE_EXECUTABLE)?;

    let (help, commands) = tools::help_texts(&stripped)?;
    if help.trim().is_empty() {
        note("warning: `p2pctl --help` printed nothing: the man page has no OPTIONS AND COMMANDS section");
    }
    let date = capture(
        Command::new("date")
            .args(["-u", "+%Y-%m-%d", "-d"])
            .arg(format!("@{}", common.epoch)),
    )?;
    let man = manpage::ManPage {
        name: tools::BINARY,
        fallback_summary: "inspect and explain GPU peer-to-peer topologies",
        version: &common.info.version,
        date: date.trim(),
        help: &help,
        commands: &commands,
        description: &[
            "p2pctl reads a KFD-format topology tree and reports which GPUs may access each \
             other's VRAM through PCIe BARs, with the reason for every refused pair.",
            "It reads the tree published by the hsa_p2p kernel module (package hsa-p2p-dkms) \
             or amdkfd's own tree.",
        ],
        files: &[
            (
                "/sys/kernel/hsa_p2p/topology",
                "The topology published by the hsa_p2p module, in the KFD layout.",
            ),
            (
                "/sys/class/kfd/kfd/topology",
                "amdkfd's topology, when the amdgpu driver is loaded.",
            ),
        ],
        see_also: "dkms(8)",
    }
    .render();
    deb.add_bytes(
        "/usr/share/man/man1/p2pctl.1.gz",
        &changelog::gzip(man.as_bytes())?,
        MODE_FILE,
    )?;
    let crates = tools::linked_crates()?;
    let comment = if crates.is_empty() {
        String::new()
    } else {
        format!(
            "/usr/bin/p2pctl statically links these Rust crates (name, version,\nlicense):\n{}",
            crates.join("\n")
        )
    };
    common.add_docs(&deb, &comment)?;
    common.add_lintian_overrides(&deb)?;
    deb.build(&util::target_dir().join("dist"), common.epoch)
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
