//! A copy of the sysfs and procfs facts the checks read (PCI functions, amdkfd's topology,
//! IOMMU, NUMA, amdgpu's `pcie_p2p`, the kernel command line and CPU), laid out as below `/`
//! so that [`crate::Context`] reads the copy exactly as it reads the machine.
//!
//! Symbolic links are recreated with their original (relative) targets; regular files are
//! copied by content (sysfs reports a size of 4096 for every attribute, so the content is
//! read, never the size trusted).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The attributes of a PCI function the facts read.
pub const PCI_FILES: &[&str] = &[
    "vendor",
    "device",
    "class",
    "resource",
    "config",
    "current_link_speed",
    "current_link_width",
    "max_link_speed",
    "max_link_width",
    "numa_node",
    "dma_mask_bits",
    "mem_info_vram_total",
    "mem_info_vis_vram_total",
];

/// The links of a PCI function the facts read (only their targets' names matter).
pub const PCI_LINKS: &[&str] = &["iommu_group", "driver"];

/// Single files copied when they exist.
const FILES: &[&str] = &[
    "proc/cmdline",
    "proc/cpuinfo",
    "sys/module/amdgpu/parameters/pcie_p2p",
];

struct Copier<'a> {
    root: &'a Path,
    dest: &'a Path,
    copied: Vec<PathBuf>,
}

impl Copier<'_> {
    fn file(&mut self, relative: &Path) -> io::Result<()> {
        let Ok(content) = fs::read(self.root.join(relative)) else {
            // Absent or unreadable (like a write-only attribute): the fact stays unknown.
            return Ok(());
        };
        let target = self.dest.join(relative);
        fs::create_dir_all(target.parent().expect("below the destination"))?;
        fs::write(&target, content)?;
        self.copied.push(relative.to_path_buf());
        Ok(())
    }

    fn link(&mut self, relative: &Path) -> io::Result<()> {
        let Ok(target) = fs::read_link(self.root.join(relative)) else {
            return Ok(());
        };
        let link = self.dest.join(relative);
        fs::create_dir_all(link.parent().expect("below the destination"))?;
        if fs::symlink_metadata(&link).is_ok() {
            fs::remove_file(&link)?;
        }
        std::os::unix::fs::symlink(target, &link)?;
        self.copied.push(relative.to_path_buf());
        Ok(())
    }

    /// Every regular file below `relative`, following no link.
    fn tree(&mut self, relative: &Path) -> io::Result<()> {
        let Ok(entries) = fs::read_dir(self.root.join(relative)) else {
            return Ok(());
        };
        let mut names: Vec<_> = entries.flatten().map(|entry| entry.file_name()).collect();
        names.sort();
        for name in names {
            let child = relative.join(name);
            let meta = fs::symlink_metadata(self.root.join(&child))?;
            if meta.is_dir() {
                self.tree(&child)?;
            } else if meta.is_file() {
                self.file(&child)?;
            }
        }
        Ok(())
    }

    /// The names in directory `relative`, sorted.
    fn names(&self, relative: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root.join(relative))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// `absolute` (a resolved path on the machine) relative to the root.
    fn relative(&self, absolute: &Path) -> Option<PathBuf> {
        let root = fs::canonicalize(self.root).ok()?;
        absolute.strip_prefix(root).ok().map(Path::to_path_buf)
    }

    fn pci_devices(&mut self) -> io::Result<()> {
        for name in self.names("sys/bus/pci/devices") {
            let entry = Path::new("sys/bus/pci/devices").join(&name);
            self.link(&entry)?;
            let Some(device) = fs::canonicalize(self.root.join(&entry))
                .ok()
                .and_then(|path| self.relative(&path))
            else {
                continue;
            };
            for file in PCI_FILES {
                self.file(&device.join(file))?;
            }
            for link in PCI_LINKS {
                self.link(&device.join(link))?;
            }
        }
        for group in self.names("sys/kernel/iommu_groups") {
            self.file(
                &Path::new("sys/kernel/iommu_groups")
                    .join(group)
                    .join("type"),
            )?;
        }
        Ok(())
    }

    fn kfd(&mut self) -> io::Result<()> {
        let class = Path::new("sys/class/kfd/kfd");
        self.link(class)?;
        let resolved = fs::canonicalize(self.root.join(class).join("topology"))
            .ok()
            .and_then(|path| self.relative(&path));
        if let Some(topology) = resolved {
            self.tree(&topology)?;
        }
        Ok(())
    }

    fn platform(&mut self) -> io::Result<()> {
        for unit in self.names("sys/class/iommu") {
            self.link(&Path::new("sys/class/iommu").join(unit))?;
        }
        for node in self.names("sys/devices/system/node") {
            if node.starts_with("node") {
                self.file(
                    &Path::new("sys/devices/system/node")
                        .join(node)
                        .join("distance"),
                )?;
            }
        }
        for file in FILES {
            self.file(Path::new(file))?;
        }
        Ok(())
    }
}

/// Copies the facts below `root` (`/` on the machine) into `dest`; returns the copied paths,
/// relative to both.
pub fn snapshot(root: &Path, dest: &Path) -> io::Result<Vec<PathBuf>> {
    let mut copier = Copier {
        root,
        dest,
        copied: Vec::new(),
    };
    copier.pci_devices()?;
    copier.kfd()?;
    copier.platform()?;
    Ok(copier.copied)
}
