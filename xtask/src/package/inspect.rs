//! Installs the built packages into a scratch root (`.deb`: `dpkg-deb -x`, plus the control
//! members with `dpkg-deb -e`; `.rpm`: `rpm2cpio | cpio`) and checks what a user would get. For
//! both formats: every payload file with its contents and mode, the expected files, the DKMS
//! tree whose `#[path]` attributes still resolve and the scriptlets that register it. Per
//! format: `md5sums`, the control fields and the Debian documentation; the RPM's header
//! version, digests (`rpm -K`) and file list with SHA-256 digests (`rpm -qp --dump`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use super::dkms::{self, Scriptlet, DKMS_NAME, KBUILD_WRAPPER};
use super::payload::Payload;
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

/// The package file a scratch root was made from.
pub enum Archive {
    /// The `.deb` and its control members unpacked into `control_dir`.
    Deb {
        deb: PathBuf,
        control_dir: PathBuf,
    },
    Rpm {
        rpm: PathBuf,
    },
}

/// A package unpacked into `root`.
pub struct Installed {
    pub package: String,
    pub root: PathBuf,
    pub archive: Archive,
}

/// Unpacks a `.deb` or `.rpm` into `root` (shared by all packages, as on a real system).
pub fn install(package: &Path, root: &Path) -> Result<Installed> {
    match package.extension().and_then(|e| e.to_str()) {
        Some("deb") => install_deb(package, root),
        Some("rpm") => install_rpm(package, root),
        _ => bail!("{} is neither a .deb nor an .rpm", package.display()),
    }
}

/// Unpacks `deb` into `root`.
fn install_deb(deb: &Path, root: &Path) -> Result<Installed> {
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
        root: root.to_path_buf(),
        archive: Archive::Deb {
            deb: deb.to_path_buf(),
            control_dir,
        },
    })
}

/// Unpacks `rpm` into `root` (`rpm2cpio | cpio`, what `rpm --root` would write without
/// running the scriptlets or needing a database).
fn install_rpm(rpm: &Path, root: &Path) -> Result<Installed> {
    let package = rpm_query(rpm, "%{NAME}")?;
    fs::create_dir_all(root)?;
    let mut archive = Command::new("rpm2cpio")
        .arg(rpm)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start rpm2cpio (install the rpm2cpio package)")?;
    let stdout = archive.stdout.take().expect("piped");
    run(Command::new("cpio")
        .args(["-idmu", "--quiet", "--no-absolute-filenames"])
        .current_dir(root)
        .stdin(stdout))
    .with_context(|| format!("cannot unpack {}", rpm.display()))?;
    ensure!(
        archive.wait()?.success(),
        "rpm2cpio {} failed",
        rpm.display()
    );
    Ok(Installed {
        package,
        root: root.to_path_buf(),
        archive: Archive::Rpm {
            rpm: rpm.to_path_buf(),
        },
    })
}

fn rpm_query(rpm: &Path, format: &str) -> Result<String> {
    Ok(
        capture(Command::new("rpm").args(["-qp", "--qf", format]).arg(rpm))?
            .trim()
            .to_owned(),
    )
}

impl Installed {
    fn control_dir(&self) -> Result<&Path> {
        match &self.archive {
            Archive::Deb { control_dir, .. } => Ok(control_dir),
            Archive::Rpm { .. } => bail!("{}: an RPM has no control members", self.package),
        }
    }

    fn control(&self) -> Result<String> {
        fs::read_to_string(self.control_dir()?.join("control")).context("control member missing")
    }

    /// The format's own checks ([`Self::check_deb`], [`Self::check_rpm`]) for the package
    /// version (`<upstream>-<revision>`); returns the number of files they covered.
    pub fn check_package(&self, version: &str) -> Result<usize> {
        match &self.archive {
            Archive::Deb { .. } => self.check_deb(version),
            Archive::Rpm { .. } => self.check_rpm(version),
        }
    }

    /// What vouches for the files' integrity in this format, for messages.
    pub fn integrity(&self) -> &'static str {
        match &self.archive {
            Archive::Deb { .. } => "md5sums match",
            Archive::Rpm { .. } => "header digests match",
        }
    }

    /// The package's dependencies as the format records them (`Depends`; `Requires` without
    /// rpmlib's own).
    pub fn dependencies(&self) -> Result<String> {
        match &self.archive {
            Archive::Deb { .. } => Ok(format!("Depends: {}", self.field("Depends")?)),
            Archive::Rpm { rpm } => {
                let requires = capture(Command::new("rpm").args(["-qp", "--requires"]).arg(rpm))?;
                let requires: Vec<&str> = requires
                    .lines()
                    .filter(|r| !r.starts_with("rpmlib("))
                    .collect();
                Ok(format!("Requires: {}", requires.join(", ")))
            }
        }
    }

    /// Every file of `payload` is installed with the same contents and mode.
    pub fn check_payload(&self, payload: &Payload) -> Result<usize> {
        for file in payload.files() {
            let path = self.root.join(file.path.trim_start_matches('/'));
            let contents = fs::read(&path)
                .with_context(|| format!("{}: {} not installed", self.package, file.path))?;
            ensure!(
                contents == file.contents,
                "{}: {} differs from what was packaged",
                self.package,
                file.path
            );
            let mode = fs::metadata(&path)?.permissions().mode() & 0o7777;
            ensure!(
                mode == file.mode,
                "{}: {} has mode {mode:04o}, packaged {:04o}",
                self.package,
                file.path,
                file.mode
            );
        }
        Ok(payload.files().len())
    }

    /// The commands the package runs at `scriptlet` (maintainer script or RPM scriptlet).
    pub fn scriptlet(&self, scriptlet: Scriptlet) -> Result<String> {
        match &self.archive {
            Archive::Deb { control_dir, .. } => {
                let name = match scriptlet {
                    Scriptlet::PostInstall => "postinst",
                    Scriptlet::PreRemove => "prerm",
                };
                fs::read_to_string(control_dir.join(name))
                    .with_context(|| format!("{}: no {name}", self.package))
            }
            Archive::Rpm { rpm } => {
                let tag = match scriptlet {
                    Scriptlet::PostInstall => "%{POSTIN}",
                    Scriptlet::PreRemove => "%{PREUN}",
                };
                rpm_query(rpm, tag)
            }
        }
    }

    /// The RPM's own checks: `VERSION-RELEASE`, the header and payload digests, and its file
    /// list (`rpm -qp --dump`: path, size, mtime, SHA-256, mode, …) naming exactly the installed
    /// files with their digests.
    fn check_rpm(&self, version_release: &str) -> Result<usize> {
        let Archive::Rpm { rpm } = &self.archive else {
            bail!("{}: not an RPM", self.package);
        };
        let found = rpm_query(rpm, "%{VERSION}-%{RELEASE}")?;
        ensure!(
            found == version_release,
            "{}: version is {found}, expected {version_release}",
            self.package
        );
        let checked = capture(Command::new("rpm").args(["-K", "--nosignature"]).arg(rpm))
            .with_context(|| format!("{}: rpm -K fails", self.package))?;
        ensure!(
            checked.trim_end().ends_with("digests OK"),
            "{}: rpm -K: {}",
            self.package,
            checked.trim()
        );
        let dump = capture(Command::new("rpm").args(["-qp", "--dump"]).arg(rpm))?;
        let mut files = 0;
        for line in dump.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [path, _size, _mtime, digest, mode, ..] = fields[..] else {
                bail!("{}: unexpected rpm --dump line {line:?}", self.package);
            };
            let installed = self.root.join(path.trim_start_matches('/'));
            // Directories (mode 040755) have no digest.
            if mode.starts_with("04") {
                ensure!(
                    installed.is_dir(),
                    "{}: directory {path} missing",
                    self.package
                );
                continue;
            }
            let sum = capture(Command::new("sha256sum").arg(&installed))
                .with_context(|| format!("{}: {path} listed but not installed", self.package))?;
            ensure!(
                sum.split_whitespace().next() == Some(digest),
                "{}: {path} does not match its SHA-256 in the RPM header",
                self.package
            );
            files += 1;
        }
        Ok(files)
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

    /// The expected files are installed, programs executable.
    pub fn check_expected(&self, expected: &[Expected]) -> Result<()> {
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
        Ok(())
    }

    /// The Debian package's own checks: `Version`, the machine-readable copyright, the
    /// changelog and the md5sums.
    fn check_deb(&self, version: &str) -> Result<usize> {
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
        self.check_md5sums()
    }

    /// Every line of `md5sums` matches an installed file; every installed file is listed.
    fn check_md5sums(&self) -> Result<usize> {
        let Archive::Deb { deb, control_dir } = &self.archive else {
            bail!("{}: not a Debian package", self.package);
        };
        let md5sums = fs::read_to_string(control_dir.join("md5sums"))
            .with_context(|| format!("{}: md5sums missing", self.package))?;
        let listed: Vec<&str> = md5sums
            .lines()
            .filter_map(|l| l.split_once("  ").map(|(_, path)| path))
            .collect();
        // Regular files of the archive (`dpkg-deb -c`: mode, owner, size, date, time, path).
        let listing = capture(Command::new("dpkg-deb").arg("-c").arg(deb))?;
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
            .stdin(fs::File::open(control_dir.join("md5sums"))?)
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
    let postinst = installed.scriptlet(Scriptlet::PostInstall)?;
    let prerm = installed.scriptlet(Scriptlet::PreRemove)?;
    for (script, text, command) in [
        ("post-install", &postinst, "dkms add"),
        ("post-install", &postinst, "dkms install"),
        ("pre-remove", &prerm, "dkms remove"),
    ] {
        ensure!(text.contains(command), "{script} does not run `{command}`");
        ensure!(!text.contains('@'), "{script} still has an @…@ placeholder");
    }
    for (script, text) in [("post-install", &postinst), ("pre-remove", &prerm)] {
        check_shell_syntax(text).with_context(|| format!("{}: {script}", installed.package))?;
    }
    Ok(tree)
}

/// `sh -n`: the script parses (the shared commands pasted into a maintainer script or an RPM
/// scriptlet must still be valid shell).
fn check_shell_syntax(script: &str) -> Result<()> {
    let output = Command::new("sh")
        .args(["-n", "-c", script])
        .output()
        .context("cannot run sh")?;
    ensure!(
        output.status.success(),
        "not valid shell: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

fn gunzip(path: &Path) -> Result<String> {
    capture(Command::new("gzip").arg("-dc").arg(path))
        .with_context(|| format!("cannot decompress {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::super::payload::{MODE_EXECUTABLE, MODE_FILE};
    use super::*;

    fn unpacked(root: &Path) -> Installed {
        Installed {
            package: "p".to_owned(),
            root: root.to_path_buf(),
            archive: Archive::Rpm {
                rpm: root.join("p.rpm"),
            },
        }
    }

    #[test]
    fn the_payload_check_sees_missing_changed_and_mode_changed_files() {
        let mut payload = Payload::default();
        payload.add_bytes("/usr/bin/tool", b"binary", MODE_EXECUTABLE);
        payload.add_bytes("/usr/share/doc/p/README", b"text", MODE_FILE);
        let root = tempfile::tempdir().unwrap();
        payload.stage(root.path()).unwrap();
        let installed = unpacked(root.path());
        assert_eq!(installed.check_payload(&payload).unwrap(), 2);

        let readme = root.path().join("usr/share/doc/p/README");
        fs::write(&readme, "other").unwrap();
        let error = installed.check_payload(&payload).unwrap_err().to_string();
        assert!(error.contains("differs from what was packaged"), "{error}");

        fs::write(&readme, "text").unwrap();
        fs::set_permissions(&readme, fs::Permissions::from_mode(0o755)).unwrap();
        let error = installed.check_payload(&payload).unwrap_err().to_string();
        assert!(error.contains("has mode 0755, packaged 0644"), "{error}");

        fs::remove_file(root.path().join("usr/bin/tool")).unwrap();
        let error = installed.check_payload(&payload).unwrap_err().to_string();
        assert!(error.contains("/usr/bin/tool not installed"), "{error}");
    }

    #[test]
    fn scriptlets_must_be_valid_shell() {
        assert!(check_shell_syntax("if true; then\n    echo ok\nfi\n").is_ok());
        let error =
            check_shell_syntax("case \"$1\" in\nconfigure)\n    echo\nesac; fi\n").unwrap_err();
        assert!(error.to_string().contains("not valid shell"), "{error}");
    }

    #[test]
    fn expected_programs_must_be_executable() {
        let root = tempfile::tempdir().unwrap();
        let mut payload = Payload::default();
        payload.add_bytes("/usr/bin/tool", b"binary", MODE_FILE);
        payload.stage(root.path()).unwrap();
        let installed = unpacked(root.path());
        assert!(installed
            .check_expected(&[Expected::file("/usr/bin/tool")])
            .is_ok());
        let error = installed
            .check_expected(&[Expected::program("/usr/bin/tool")])
            .unwrap_err();
        assert!(error.to_string().contains("is not executable"), "{error}");
        assert!(installed
            .check_expected(&[Expected::file("/usr/share/zsh/site-functions/_tool")])
            .is_err());
    }
}
