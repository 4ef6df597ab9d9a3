//! A gzip'd newc initramfs: busybox-static, an `/init` that mounts the usual file systems,
//! runs the caller's script and reports its exit status on the serial console, plus the
//! caller's files (modules, static binaries, data).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::run;

/// The busybox-static binary (Debian package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// Line the guest prints, followed by the script's exit status, before powering off.
pub const EXIT_SENTINEL: &str = "HSA_P2P_EXIT=";
/// Line the guest prints once user space runs.
pub const BOOT_SENTINEL: &str = "HSA_P2P_BOOTED";

/// Where a guest file's content comes from.
#[derive(Clone, Debug)]
pub enum Content {
    /// A file on the host, copied.
    Host(PathBuf),
    /// Bytes given inline.
    Bytes(Vec<u8>),
}

/// A file placed in the initramfs.
#[derive(Clone, Debug)]
pub struct GuestFile {
    /// Absolute path in the guest, e.g. `/hsa_p2p.ko` or `/bin/p2pctl`.
    pub guest_path: String,
    /// The file's content.
    pub content: Content,
    /// Unix permission bits.
    pub mode: u32,
}

impl GuestFile {
    /// A host file copied to `guest_path`, executable if the host file is.
    pub fn host(guest_path: impl Into<String>, host: impl Into<PathBuf>) -> Self {
        let host = host.into();
        let mode = fs::metadata(&host).map_or(0o644, |m| m.permissions().mode() & 0o777);
        Self {
            guest_path: guest_path.into(),
            content: Content::Host(host),
            mode,
        }
    }

    /// An inline file.
    pub fn bytes(guest_path: impl Into<String>, bytes: impl Into<Vec<u8>>, mode: u32) -> Self {
        Self {
            guest_path: guest_path.into(),
            content: Content::Bytes(bytes.into()),
            mode,
        }
    }
}

/// What the initramfs holds besides busybox and `/init`.
#[derive(Clone, Debug, Default)]
pub struct Initramfs {
    /// Shell script (busybox sh) run by `/init` after mounting proc, sys, dev, debugfs and
    /// /tmp; its exit status is the VM's exit code.
    pub script: String,
    /// Extra files.
    pub files: Vec<GuestFile>,
}

fn init_script() -> String {
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tmpfs tmpfs /tmp
echo {BOOT_SENTINEL}
sh /test.sh
status=$?
{checker_reports}
echo "{EXIT_SENTINEL}$status"
poweroff -f
"#,
        checker_reports = super::protocol::print_checker_reports()
    )
}

impl Initramfs {
    /// Writes the archive to `output`, staging the tree in `staging` (emptied first).
    pub fn build(&self, staging: &Path, output: &Path) -> Result<()> {
        if !Path::new(BUSYBOX).exists() {
            bail!("{BUSYBOX} not found: install busybox-static (or run `cargo xtask kernel`)");
        }
        let _ = fs::remove_dir_all(staging);
        for dir in ["bin", "dev", "proc", "sys", "tmp"] {
            fs::create_dir_all(staging.join(dir))
                .with_context(|| format!("cannot create {}", staging.join(dir).display()))?;
        }
        let mut files = vec![
            GuestFile::bytes("/bin/busybox", fs::read(BUSYBOX)?, 0o755),
            GuestFile::bytes("/init", init_script(), 0o755),
            GuestFile::bytes("/test.sh", self.script.clone(), 0o755),
        ];
        files.extend(self.files.iter().cloned());
        for file in &files {
            let relative = file.guest_path.trim_start_matches('/');
            if relative.is_empty() || relative.split('/').any(|c| c == "..") {
                bail!("bad guest path {:?}", file.guest_path);
            }
            let path = staging.join(relative);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            match &file.content {
                Content::Host(host) => fs::copy(host, &path).map(drop).with_context(|| {
                    format!("cannot copy {} into the initramfs", host.display())
                })?,
                Content::Bytes(bytes) => fs::write(&path, bytes)?,
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(file.mode))?;
        }
        if let Some(dir) = output.parent() {
            fs::create_dir_all(dir)?;
        }
        // newc with every file owned by root; fast gzip (the kernel has RD_GZIP).
        run(Command::new("sh")
            .current_dir(staging)
            .arg("-c")
            .arg(r#"find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1 > "$0""#)
            .arg(output))
        .context("cannot pack the initramfs (cpio, gzip)")
    }
}
