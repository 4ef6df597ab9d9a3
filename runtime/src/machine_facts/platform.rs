//! Platform-wide facts: kernel command line, IOMMU units, amdgpu's `pcie_p2p`, NUMA distances
//! and the CPU vendor/family (for the kernel's "AMD Zen and newer" P2PDMA rule).

use std::fs;
use std::path::Path;

/// Facts that do not belong to one PCI function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlatformInfo {
    /// `/proc/cmdline`.
    pub cmdline: String,
    /// Entries of `/sys/class/iommu` (hardware IOMMU units, e.g. `ivhd0`, `dmar0`).
    pub iommu_units: Vec<String>,
    /// `/sys/module/amdgpu/parameters/pcie_p2p`: None when the parameter does not exist (amdgpu
    /// not loaded, or built without HSA_AMD_P2P).
    pub pcie_p2p: Option<bool>,
    /// SLIT rows of `/sys/devices/system/node/nodeN/distance`, by node; empty when unknown.
    pub numa_distances: Vec<Vec<u32>>,
    /// `vendor_id` of `/proc/cpuinfo` (`AuthenticAMD`, `GenuineIntel`).
    pub cpu_vendor: Option<String>,
    /// `cpu family` of `/proc/cpuinfo`.
    pub cpu_family: Option<u32>,
}

impl PlatformInfo {
    /// The command line's IOMMU options (`iommu=`, `amd_iommu=`, `intel_iommu=`).
    pub fn iommu_options(&self) -> Vec<&str> {
        self.cmdline
            .split_whitespace()
            .filter(|word| {
                ["iommu=", "amd_iommu=", "intel_iommu="]
                    .iter()
                    .any(|key| word.starts_with(key))
            })
            .collect()
    }

    /// The kernel's `cpu_supports_p2pdma()`: an AMD CPU of family 0x17 (Zen) or newer.
    /// `None` when `/proc/cpuinfo` was not available.
    pub fn cpu_supports_p2pdma(&self) -> Option<bool> {
        let vendor = self.cpu_vendor.as_deref()?;
        Some(crate::host_bridge::cpu_supports_p2pdma(
            vendor,
            self.cpu_family.unwrap_or(0),
        ))
    }
}

fn numa_distances(sys: &Path) -> Vec<Vec<u32>> {
    let dir = sys.join("devices/system/node");
    let mut rows: Vec<(u32, Vec<u32>)> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let node: u32 = name.strip_prefix("node")?.parse().ok()?;
            let text = fs::read_to_string(entry.path().join("distance")).ok()?;
            let row = text
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .ok()?;
            Some((node, row))
        })
        .collect();
    rows.sort_by_key(|(node, _)| *node);
    let count = rows.len();
    let square = rows
        .iter()
        .enumerate()
        .all(|(index, (node, row))| *node as usize == index && row.len() == count);
    if square {
        rows.into_iter().map(|(_, row)| row).collect()
    } else {
        Vec::new()
    }
}

fn cpuinfo_field<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == key).then(|| value.trim())
    })
}

/// Reads the platform facts below `root` (`root/sys`, `root/proc`).
pub fn read_platform(root: &Path) -> PlatformInfo {
    let sys = root.join("sys");
    let cpuinfo = fs::read_to_string(root.join("proc/cpuinfo")).unwrap_or_default();
    let mut iommu_units: Vec<String> = fs::read_dir(sys.join("class/iommu"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    iommu_units.sort();
    PlatformInfo {
        cmdline: fs::read_to_string(root.join("proc/cmdline"))
            .unwrap_or_default()
            .trim()
            .to_string(),
        iommu_units,
        pcie_p2p: fs::read_to_string(sys.join("module/amdgpu/parameters/pcie_p2p"))
            .ok()
            .map(|value| matches!(value.trim(), "Y" | "y" | "1")),
        numa_distances: numa_distances(&sys),
        cpu_vendor: cpuinfo_field(&cpuinfo, "vendor_id").map(str::to_string),
        cpu_family: cpuinfo_field(&cpuinfo, "cpu family").and_then(|f| f.parse().ok()),
    }
}
