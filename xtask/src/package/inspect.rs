//! Installs the built packages into a scratch root (`dpkg-deb -x`, plus the control members
//! with `dpkg-deb -e`) and checks what a user would get: the expected files with the right
//! modes, `md5sums` matching every file, the control fields, the documentation, and a DKMS
//! tree whose `#[path]` attributes still resolve.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use super::dkms::{self, DKMS_NAME, KBUILD_WRAPPER};
use crate::util::{capture, run};

/// One file the installed package must contain.
pub struct Expected {
    pub path: String,
    pub executable: bool,
}

impl Expected {
    pub fn file(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            executable: false,
        }
    }

    pub fn program(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            executable: true,
        }
    }
}

/// A package unpacked into `root` (data) with its control members in `control_dir`.
pub struct Installed {
    pub package: String,
    pub deb: PathBuf,
    pub root: PathBuf,
    pub control_dir: PathBuf,
}

/// Unpacks `deb` into `root` (shared by all packages, as on a real system).
pub fn install(deb: &Path, root: &Path) -> Result<Installed> {
    let package = capture(Command::new("dpkg-deb").arg("-f").arg(deb).arg("Package"))?
        .trim()
        .to_owned();
    fs::create_dir_all(root)?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root))
        .with_context(|| format!("cannot unpack {}", deb.display()))?;
    let control_dir = root.join("var/lib/dpkg/info-unpacked").join(&package);
    let _ = fs::remove_dir_all(&control_dir);
    fs::create_dir_all(control_dir.parent().expect("nested"))?;
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(deb)
        .arg(&control_dir))?;
    Ok(Installed {
        package,
        deb: deb.to_path_buf(),
        root: root.to_path_buf(),
        control_dir,
    })
}

impl Installed {
    fn control(&self) -> Result<String> {
        fs::read_to_string(self.control_dir.join("control")).context("control member missing")
    }

    /// The value of a control field.
    pub fn field(&self, name: &str) -> Result<String> {
        let control = self.control()?;
        control
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_owned)
            .with_context(|| format!("{}: no {name} field", self.package))
    }

    /// Checks the files every package has, the expected files, and the md5sums.
    pub fn check(&self, version: &str, expected: &[Expected]) -> Result<usize> {
        ensure!(
            self.field("Version")? == version,
            "{}: Version is {}, expected {version}",
            self.package,
            self.field("Version")?
        );
        let doc = format!("usr/share/doc/{}", self.package);
        let copyright = fs::read_to_string(self.root.join(&doc).join("copyright"))
            .with_context(|| format!("{}: {doc}/copyright missing", self.package))?;
        ensure!(
            copyright.starts_with(
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
            ),
            "{}: copyright is not machine-readable",
            self.package
        );
        let changelog = gunzip(&self.root.join(&doc).join("changelog.Debian.gz"))?;
        let source = self.field("Source")?;
        ensure!(
            changelog.starts_with(&format!("{source} ({version}) ")),
            "{}: changelog.Debian.gz does not start with the entry of {version}: {:?}",
            self.package,
            changelog.lines().next()
        );
        for file in expected {
            let path = self.root.join(file.path.trim_start_matches('/'));
            let mode = fs::metadata(&path)
                .with_context(|| format!("{}: {} not installed", self.package, file.path))?
                .permissions()
                .mode();
            if file.executable {
                ensure!(
                    mode & 0o111 != 0,
                    "{}: {} is not executable",
                    self.package,
                    file.path
                );
            }
        }
        self.check_md5sums()
    }

    /// Every line of `md5sums` matches an installed file; every installed file is listed.
    fn check_md5sums(&self) -> Result<usize> {
        let md5sums = fs::read_to_string(self.control_dir.join("md5sums"))
            .with_context(|| format!("{}: md5sums missing", self.package))?;
        let listed: Vec<&str> = md5sums
            .lines()
            .filter_map(|l| l.split_once("  ").map(|(_, path)| path))
            .collect();
        // Regular files of the archive (`dpkg-deb -c`: mode, owner, size, date, time, path).
        let listing = capture(Command::new("dpkg-deb").arg("-c").arg(&self.deb))?;
        let mut shipped: Vec<&str> = listing
            .lines()
            .filter(|l| l.starts_with('-'))
            .filter_map(|l| l.split_whitespace().nth(5))
            .map(|p| p.trim_start_matches("./"))
            .collect();
        shipped.sort_unstable();
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        ensure!(
            sorted == shipped,
            "{}: md5sums lists {sorted:?} but the package ships {shipped:?}",
            self.package
        );
        let output = Command::new("md5sum")
            .arg("--check")
            .arg("--quiet")
            .current_dir(&self.root)
            .stdin(fs::File::open(self.control_dir.join("md5sums"))?)
            .output()
            .context("cannot run md5sum")?;
        if !output.status.success() {
            bail!(
                "{}: md5sums do not match the installed files: {}",
                self.package,
                String::from_utf8_lossy(&output.stdout).trim()
            );
        }
        Ok(listed.len())
    }
}

/// The DKMS package's own checks: dkms.conf, the wrapper, the sources and the maintainer
/// scripts that register the module with DKMS.
pub fn check_dkms_tree(installed: &Installed, upstream_version: &str) -> Result<PathBuf> {
    let tree = installed
        .root
        .join(format!("usr/src/{DKMS_NAME}-{upstream_version}"));
    let conf = fs::read_to_string(tree.join("dkms.conf")).context("dkms.conf missing")?;
    ensure!(
        conf.contains(&format!("PACKAGE_VERSION=\"{upstream_version}\"")),
        "dkms.conf does not name version {upstream_version}"
    );
    ensure!(
        conf.contains("BUILT_MODULE_NAME[0]=\"hsa_p2p\""),
        "dkms.conf does not name hsa_p2p"
    );
    ensure!(
        tree.join(KBUILD_WRAPPER).is_file(),
        "{KBUILD_WRAPPER} missing"
    );
    let mounted = dkms::check_path_attributes(&tree)?;
    ensure!(mounted > 0, "no core file mounted");
    let postinst = fs::read_to_string(installed.control_dir.join("postinst"))?;
    let prerm = fs::read_to_string(installed.control_dir.join("prerm"))?;
    for (script, text, command) in [
        ("postinst", &postinst, "dkms add"),
        ("postinst", &postinst, "dkms install"),
        ("prerm", &prerm, "dkms remove"),
    ] {
        ensure!(text.contains(command), "{script} does not run `{command}`");
        ensure!(
            !text.contains("@VERSION@"),
            "{script} still has a @VERSION@ placeholder"
        );
    }
    Ok(tree)
}

fn gunzip(path: &Path) -> Result<String> {
    capture(Command::new("gzip").arg("-dc").arg(path))
        .with_context(|| format!("cannot decompress {}", path.display()))
}
