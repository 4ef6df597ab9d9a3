//! A Debian binary package assembled by hand the way debhelper would lay it out, then built
//! with `dpkg-deb`: files under a staging root, `DEBIAN/control` with `Installed-Size`,
//! `DEBIAN/md5sums` of every shipped file, maintainer scripts, and the per-package
//! documentation (`copyright`, `changelog.Debian.gz`) under `/usr/share/doc/<package>/`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::control::Control;
use super::payload::{Payload, MODE_EXECUTABLE, MODE_FILE};
use crate::util::{capture, run};

/// A binary package being staged under `root` (the future `/`).
pub struct DebPackage {
    pub control: Control,
    root: PathBuf,
}

impl DebPackage {
    /// Starts an empty staging root at `root` (removing what an earlier run left there).
    pub fn new(control: Control, root: PathBuf) -> Result<Self> {
        if root.exists() {
            fs::remove_dir_all(&root)
                .with_context(|| format!("cannot remove {}", root.display()))?;
        }
        fs::create_dir_all(root.join("DEBIAN"))
            .with_context(|| format!("cannot create {}", root.display()))?;
        Ok(Self { control, root })
    }

    /// Ships the files of `payload` (shared with the `.rpm`), or Debian's own files.
    pub fn add_payload(&self, payload: &Payload) -> Result<()> {
        payload.stage(&self.root)
    }

    /// Adds a maintainer script (`postinst`, `prerm`, ...) to `DEBIAN/`.
    pub fn add_maintainer_script(&self, name: &str, text: &str) -> Result<()> {
        let target = self.root.join("DEBIAN").join(name);
        fs::write(&target, text).with_context(|| format!("cannot write {}", target.display()))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(MODE_EXECUTABLE))?;
        Ok(())
    }

    /// Shipped files (not `DEBIAN/`), relative to the root, sorted.
    fn shipped_files(&self) -> Result<Vec<PathBuf>> {
        fn walk(dir: &Path, root: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
            for entry in
                fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?
            {
                let path = entry?.path();
                if path.is_dir() {
                    if path != root.join("DEBIAN") {
                        walk(&path, root, files)?;
                    }
                } else {
                    files.push(path.strip_prefix(root)?.to_path_buf());
                }
            }
            Ok(())
        }
        let mut files = Vec::new();
        walk(&self.root, &self.root, &mut files)?;
        files.sort();
        Ok(files)
    }

    /// Writes `DEBIAN/md5sums` and `DEBIAN/control`, normalises directory modes and builds
    /// `<out_dir>/<package>_<version>_<arch>.deb`; file times in the archive are clamped to
    /// `source_date_epoch` (reproducible builds).
    pub fn build(mut self, out_dir: &Path, source_date_epoch: u64) -> Result<PathBuf> {
        let files = self.shipped_files()?;
        let mut md5sums = String::new();
        let mut installed_bytes = 0u64;
        for file in &files {
            let path = self.root.join(file);
            let sum = capture(Command::new("md5sum").arg(&path))?;
            let digest = sum.split_whitespace().next().unwrap_or_default();
            md5sums.push_str(&format!("{digest}  {}\n", file.display()));
            installed_bytes += fs::metadata(&path)?.len();
        }
        fs::write(self.root.join("DEBIAN/md5sums"), md5sums)?;
        fs::set_permissions(
            self.root.join("DEBIAN/md5sums"),
            fs::Permissions::from_mode(MODE_FILE),
        )?;
        // dpkg's estimate: KiB of the files plus one per file and directory (rounded up).
        let entries = files.len() as u64 + count_dirs(&self.root)?;
        self.control.installed_size_kib = Some(installed_bytes.div_ceil(1024) + entries);
        let control = self.root.join("DEBIAN/control");
        fs::write(&control, self.control.render())
            .with_context(|| format!("cannot write {}", control.display()))?;
        fs::set_permissions(&control, fs::Permissions::from_mode(MODE_FILE))?;
        set_dir_modes(&self.root)?;

        fs::create_dir_all(out_dir)?;
        let deb = out_dir.join(self.control.file_name());
        run(Command::new("dpkg-deb")
            .env("SOURCE_DATE_EPOCH", source_date_epoch.to_string())
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&self.root)
            .arg(&deb)
            .stdout(std::process::Stdio::null()))
        .with_context(|| format!("dpkg-deb could not build {}", deb.display()))?;
        Ok(deb)
    }
}

fn count_dirs(dir: &Path) -> Result<u64> {
    let mut count = 0;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && !path.ends_with("DEBIAN") {
            count += 1 + count_dirs(&path)?;
        }
    }
    Ok(count)
}

/// Directories 0755 whatever the umask was (lintian: non-standard-dir-perm).
fn set_dir_modes(dir: &Path) -> Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(MODE_EXECUTABLE))?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            set_dir_modes(&path)?;
        }
    }
    Ok(())
}
