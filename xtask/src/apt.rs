//! Debian packages: the host's own (bookworm) packages and private apt configurations that
//! reach other suites without touching the system's sources.
//!
//! A private configuration has its own sources file, package lists and cache under
//! `target/apt/<name>/`; apt still uses the system's dpkg status. Two are used:
//! - `bookworm-backports`: bookworm + bookworm-backports, to install QEMU 10 with
//!   `-t bookworm-backports` (its dependencies come from bookworm; libc6 is never upgraded);
//! - `trixie-backports`: only ever used to *download* `linux-source-7.3` (arch all), never to
//!   install anything;
//! - `bookworm-<arch>`: bookworm's packages of another architecture, only ever used to
//!   *download* (e.g. the arm64 Rust standard library for `cargo xtask cross-check`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::{self, capture, note, run, run_logged};

const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
const DEBIAN_SECURITY: &str = "http://deb.debian.org/debian-security";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Is `package` installed (dpkg status "install ok installed")?
pub fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.starts_with(b"install ok installed"))
}

/// The installed version of `package`, if any.
pub fn installed_version(package: &str) -> Option<String> {
    if !is_installed(package) {
        return None;
    }
    capture(Command::new("dpkg-query").args(["-W", "-f=${Version}", package]))
        .ok()
        .map(|v| v.trim().to_owned())
}

fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

/// Installs the host (bookworm) packages that are missing, running `apt-get update` first only
/// when something is missing.
pub fn ensure_host_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        note(format!("{} host packages present", packages.len()));
        return Ok(());
    }
    note(format!("installing {}", missing.join(" ")));
    require_root("install host packages")?;
    let log = util::target_dir().join("apt/host-install.log");
    run_logged(apt_get().args(["update", "-q"]), &log, false)?;
    run_logged(
        apt_get()
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
        &log,
        false,
    )
    .with_context(|| format!("cannot install {}", missing.join(" ")))
}

fn require_root(what: &str) -> Result<()> {
    let uid = capture(Command::new("id").arg("-u")).unwrap_or_default();
    if uid.trim() != "0" {
        bail!("need root to {what} (apt-get); run as root or install them yourself");
    }
    Ok(())
}

/// An apt configuration with its own sources, lists and cache.
pub struct PrivateApt {
    root: PathBuf,
    /// A foreign architecture whose package lists this configuration also fetches.
    foreign_architecture: Option<String>,
}

impl PrivateApt {
    /// bookworm, bookworm-updates, bookworm-security and bookworm-backports.
    pub fn bookworm_backports() -> Result<Self> {
        Self::new(
            "bookworm-backports",
            &format!(
                "Types: deb\nURIs: {DEBIAN_MIRROR}\nSuites: bookworm bookworm-updates bookworm-backports\n\
                 Components: main\nSigned-By: {KEYRING}\n\n\
                 Types: deb\nURIs: {DEBIAN_SECURITY}\nSuites: bookworm-security\n\
                 Components: main\nSigned-By: {KEYRING}\n"
            ),
        )
    }

    /// trixie-backports only: for downloading arch-all packages, never for installing.
    pub fn trixie_backports() -> Result<Self> {
        Self::new(
            "trixie-backports",
            &format!(
                "Types: deb\nURIs: {DEBIAN_MIRROR}\nSuites: trixie-backports\n\
                 Components: main\nSigned-By: {KEYRING}\n"
            ),
        )
    }

    /// bookworm, bookworm-updates and bookworm-security for the Debian architecture `arch`
    /// (e.g. `arm64`): for downloading that architecture's packages, never for installing.
    pub fn bookworm_foreign(arch: &str) -> Result<Self> {
        let mut apt = Self::new(
            &format!("bookworm-{arch}"),
            &format!(
                "Types: deb\nURIs: {DEBIAN_MIRROR}\nSuites: bookworm bookworm-updates\n\
                 Components: main\nArchitectures: {arch}\nSigned-By: {KEYRING}\n\n\
                 Types: deb\nURIs: {DEBIAN_SECURITY}\nSuites: bookworm-security\n\
                 Components: main\nArchitectures: {arch}\nSigned-By: {KEYRING}\n"
            ),
        )?;
        apt.foreign_architecture = Some(arch.to_owned());
        Ok(apt)
    }

    fn new(name: &str, sources: &str) -> Result<Self> {
        let root = util::target_dir().join("apt").join(name);
        for dir in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(root.join(dir))
                .with_context(|| format!("cannot create {}", root.join(dir).display()))?;
        }
        let file = root.join("sources.sources");
        if fs::read_to_string(&file).ok().as_deref() != Some(sources) {
            fs::write(&file, sources)
                .with_context(|| format!("cannot write {}", file.display()))?;
            // Lists of other sources would be stale.
            let _ = fs::remove_dir_all(root.join("lists"));
            fs::create_dir_all(root.join("lists/partial"))?;
        }
        Ok(Self {
            root,
            foreign_architecture: None,
        })
    }

    fn options(&self, cmd: &mut Command) {
        let root = &self.root;
        cmd.arg("-o")
            .arg(format!(
                "Dir::Etc::sourcelist={}",
                root.join("sources.sources").display()
            ))
            .args(["-o", "Dir::Etc::sourceparts=/nonexistent"])
            .arg("-o")
            .arg(format!(
                "Dir::State::Lists={}",
                root.join("lists").display()
            ))
            .arg("-o")
            .arg(format!("Dir::Cache={}", root.join("cache").display()));
        if let Some(arch) = &self.foreign_architecture {
            // apt ignores sources of architectures it is not configured for.
            cmd.arg("-o").arg(format!("APT::Architectures::={arch}"));
        }
    }

    /// An `apt-get` command using this configuration.
    pub fn apt_get(&self) -> Command {
        let mut cmd = apt_get();
        self.options(&mut cmd);
        cmd
    }

    fn apt_cache(&self) -> Command {
        let mut cmd = Command::new("apt-cache");
        self.options(&mut cmd);
        cmd
    }

    fn has_lists(&self) -> bool {
        fs::read_dir(self.root.join("lists")).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains("Packages"))
        })
    }

    /// Fetches the package lists (`apt-get update`), unconditionally.
    pub fn update(&self) -> Result<()> {
        note(format!(
            "apt-get update ({})",
            self.root.file_name().unwrap_or_default().to_string_lossy()
        ));
        capture(self.apt_get().args(["update", "-qq"]))
            .map(drop)
            .context("private apt update failed (is the Debian mirror reachable?)")
    }

    /// Fetches the package lists unless they are present (or `refresh` asks for it).
    pub fn ensure_lists(&self, refresh: bool) -> Result<()> {
        if refresh || !self.has_lists() {
            self.update()?;
        }
        Ok(())
    }

    /// The candidate version of `package` in this configuration's lists.
    pub fn candidate(&self, package: &str) -> Result<String> {
        let policy = capture(self.apt_cache().args(["policy", package]))?;
        policy
            .lines()
            .find_map(|l| l.trim().strip_prefix("Candidate:"))
            .map(|v| v.trim().to_owned())
            .filter(|v| v != "(none)")
            .with_context(|| format!("package {package} not found in {}", self.root.display()))
    }

    /// Downloads `package=version` into `dir`, returning the .deb's path.
    pub fn download(&self, package: &str, version: &str, dir: &Path) -> Result<PathBuf> {
        fs::create_dir_all(dir)?;
        run(self
            .apt_get()
            .current_dir(dir)
            // The download goes to a root-owned directory: no `_apt` sandbox user.
            .args(["-o", "APT::Sandbox::User=root", "download", "-q"])
            .arg(format!("{package}={version}")))
        .with_context(|| format!("cannot download {package} {version}"))?;
        // apt-get download escapes ':' of epochs as %3a; `name:arch` is saved as `name_…`.
        let name = package.split_once(':').map_or(package, |(name, _)| name);
        let name = format!("{name}_{}_", version.replace(':', "%3a"));
        fs::read_dir(dir)?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(&name))
            })
            .with_context(|| format!("downloaded {package} .deb not found in {}", dir.display()))
    }

    /// Installs packages, preferring `target_release` (e.g. `bookworm-backports`).
    pub fn install(&self, target_release: &str, packages: &[&str]) -> Result<()> {
        require_root("install packages")?;
        run_logged(
            self.apt_get()
                .args(["install", "-y", "-q", "--no-install-recommends", "-t"])
                .arg(target_release)
                .args(packages),
            &self.root.join("install.log"),
            false,
        )
        .with_context(|| {
            format!(
                "cannot install {} from {target_release}",
                packages.join(" ")
            )
        })
    }
}
