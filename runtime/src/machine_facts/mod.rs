//! PCI and platform facts collected from a sysfs root.
//!
//! Every path is relative to a root directory: `/` on a real machine, a fixture directory with
//! `sys/` and `proc/` in tests. Nothing here needs a GPU or root privileges; missing files make
//! the corresponding fact unknown rather than failing.

mod acs;
mod p2pdma;
mod pci;
mod platform;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use hsa_p2p_core::facts::{IommuMode, PciAddress};

pub use p2pdma::{SysfsP2pdma, AMD_VENDOR};
pub use pci::{parse_address, parse_resources, PciDevice, Resource};
pub use platform::PlatformInfo;

/// AMD/ATI's PCI vendor id for GPUs.
pub const AMD_GPU_VENDOR: u16 = 0x1002;

/// Why facts could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// The PCI device list is missing.
    #[error("{path}: no PCI devices directory (is sysfs mounted?)")]
    NoPciDevices {
        /// `sys/bus/pci/devices`.
        path: PathBuf,
    },
    /// One device entry is unusable.
    #[error("{path}: {message}")]
    Device {
        /// Its entry.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The machine's PCI functions and platform facts.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Every PCI function, by address.
    pub devices: Vec<PciDevice>,
    /// Platform facts.
    pub platform: PlatformInfo,
}

impl Inventory {
    /// Collects the facts below `root` (`/` on a real machine).
    pub fn collect(root: &Path) -> Result<Inventory, FactsError> {
        let sys = root.join("sys");
        let dir = sys.join("bus/pci/devices");
        let entries = fs::read_dir(&dir).map_err(|_| FactsError::NoPciDevices { path: dir })?;
        let mut devices = entries
            .flatten()
            .map(|entry| pci::read_device(&sys, &entry.path()))
            .collect::<Result<Vec<_>, _>>()?;
        devices.sort_by_key(|device| device.address);
        Ok(Inventory {
            devices,
            platform: platform::read_platform(root),
        })
    }

    /// The device at `address`.
    pub fn device(&self, address: PciAddress) -> Option<&PciDevice> {
        self.devices.iter().find(|d| d.address == address)
    }

    /// The device's nearest upstream bridge (its root or switch downstream port).
    pub fn upstream_port(&self, device: &PciDevice) -> Option<&PciDevice> {
        self.device(*device.upstream.first()?)
    }

    /// AMD GPUs driven by amdgpu, in PCI address order (amdgpu's probe order).
    pub fn amdgpu_devices(&self) -> Vec<&PciDevice> {
        self.devices
            .iter()
            .filter(|d| d.vendor == AMD_GPU_VENDOR && d.is_display())
            .filter(|d| d.driver.as_deref() == Some("amdgpu"))
            .collect()
    }

    /// Devices bound to the `driver` driver.
    pub fn bound_to(&self, driver: &str) -> Vec<&PciDevice> {
        self.devices
            .iter()
            .filter(|d| d.driver.as_deref() == Some(driver))
            .collect()
    }

    /// The IOMMU mode amdgpu's peer check sees for `gpus` (`amdgpu_device_check_iommu_remap`):
    /// remapping only when every GPU sits in a translating IOMMU group (`DMA`, `DMA-FQ`);
    /// passthrough when a GPU's group is `identity`; off when a GPU has no group.
    pub fn iommu_mode(&self, gpus: &[&PciDevice]) -> IommuMode {
        let mut mode = IommuMode::Remap;
        for gpu in gpus {
            match (gpu.iommu_group, gpu.iommu_group_type.as_deref()) {
                (None, _) => return IommuMode::Off,
                (Some(_), Some(kind)) if kind.starts_with("DMA") => {}
                (Some(_), Some(_)) => mode = IommuMode::Passthrough,
                // Group type unreadable: the command line tells whether DMA is identity-mapped.
                (Some(_), None) => {
                    let options = self.platform.iommu_options();
                    if options
                        .iter()
                        .any(|o| *o == "iommu=pt" || o.ends_with("=off"))
                    {
                        mode = IommuMode::Passthrough;
                    }
                }
            }
        }
        if gpus.is_empty() && self.platform.iommu_units.is_empty() {
            return IommuMode::Off;
        }
        mode
    }

    /// Human-readable facts for the preflight: IOMMU, ACS, BARs, `pcie_p2p`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut facts = Vec::new();
        let gpus = self.amdgpu_devices();
        let units = if self.platform.iommu_units.is_empty() {
            "none".to_string()
        } else {
            self.platform.iommu_units.join(" ")
        };
        let options = self.platform.iommu_options().join(" ");
        facts.push((
            "iommu".to_string(),
            format!(
                "units: {units}; command line: {}; GPUs see: {:?}",
                if options.is_empty() { "-" } else { &options },
                self.iommu_mode(&gpus)
            ),
        ));
        let redirecting: Vec<String> = self
            .devices
            .iter()
            .filter(|d| d.is_bridge() && d.acs_redirect == Some(true))
            .map(|d| d.address.to_string())
            .collect();
        let unknown = self
            .devices
            .iter()
            .filter(|d| d.is_bridge() && d.acs_redirect.is_none())
            .count();
        facts.push((
            "acs_redirect".to_string(),
            format!(
                "{}{}",
                if redirecting.is_empty() {
                    "no bridge redirects".to_string()
                } else {
                    format!("redirecting bridges: {}", redirecting.join(" "))
                },
                if unknown > 0 {
                    format!(" ({unknown} bridges unknown: config space not readable)")
                } else {
                    String::new()
                }
            ),
        ));
        facts.push((
            "pcie_p2p".to_string(),
            match self.platform.pcie_p2p {
                Some(true) => "amdgpu pcie_p2p=Y".to_string(),
                Some(false) => "amdgpu pcie_p2p=N: no peer links".to_string(),
                None => {
                    "amdgpu parameter absent (amdgpu not loaded, or no HSA_AMD_P2P)".to_string()
                }
            },
        ));
        let mut bars = String::new();
        for gpu in &gpus {
            let bar = gpu.bar(0).map_or(0, |bar| bar.size());
            let _ = write!(
                bars,
                "{}{}: BAR0 {} MiB, VRAM {} MiB",
                if bars.is_empty() { "" } else { "; " },
                gpu.address,
                bar >> 20,
                gpu.vram_total.unwrap_or(0) >> 20
            );
        }
        facts.push((
            "gpu_bars".to_string(),
            if bars.is_empty() {
                "no amdgpu GPU".to_string()
            } else {
                bars
            },
        ));
        facts
    }
}
