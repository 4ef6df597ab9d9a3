//! Topology specs (`topologies/*.toml`): one description of a machine for the predictor, the
//! VM harness and the tests. The format is documented in `docs/topology-spec.md`.

mod bar_placement;
mod id_lines;
mod layout;
mod p2pdma;
mod size;
mod validate;
mod what_if;
mod xgmi;

use std::path::Path;

use hsa_p2p_core::facts::PciAddress;
use serde::{Deserialize, Serialize};

pub use bar_placement::DEFAULT_BAR_WINDOW;
pub use layout::{PcieElement, PcieElementKind, PcieLayout};
pub use p2pdma::{LayoutP2pdma, P2pdmaPath};
pub use size::{ByteSize, InvalidSize};
pub use what_if::apply_settings;

/// A machine: CPUs (NUMA nodes), the PCIe tree, XGMI hives, GPUs and platform settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Short name.
    pub name: String,
    /// What the machine shows.
    #[serde(default)]
    pub description: String,
    /// Platform settings.
    #[serde(default)]
    pub platform: Platform,
    /// CPU nodes, in proximity-domain order.
    #[serde(rename = "cpu")]
    pub cpus: Vec<Cpu>,
    /// Host bridges (root complexes), each with its PCI segment and root bus; none: one
    /// unnamed host bridge, segment 0, bus 0, not on the P2PDMA whitelist.
    #[serde(rename = "host_bridge", default, skip_serializing_if = "Vec::is_empty")]
    pub host_bridges: Vec<HostBridge>,
    /// PCIe root ports.
    #[serde(rename = "root_port", default)]
    pub root_ports: Vec<RootPort>,
    /// PCIe switches.
    #[serde(rename = "switch", default)]
    pub switches: Vec<Switch>,
    /// XGMI hives.
    #[serde(rename = "xgmi_hive", default, skip_serializing_if = "Vec::is_empty")]
    pub xgmi_hives: Vec<XgmiHive>,
    /// GPUs, in the order the driver adds them.
    #[serde(rename = "gpu", default)]
    pub gpus: Vec<Gpu>,
}

/// How the IOMMU treats device DMA.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IommuSetting {
    /// DMA remapping (translation) on.
    Remap,
    /// `iommu=pt`: identity mapping.
    Passthrough,
    /// No IOMMU.
    #[default]
    Off,
}

/// What the kernel's amdkfd and amdgpu were built to publish.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum KernelGeneration {
    /// amdkfd publishes p2p_links and amdgpu is built with CONFIG_HSA_AMD_P2P: peer links.
    #[default]
    HsaAmdP2p,
    /// p2p_links (`p2p_links_count`, indirect links to the other CPUs) but amdgpu built without
    /// CONFIG_HSA_AMD_P2P: no peer links, no `pcie_p2p` parameter.
    WithoutHsaAmdP2p,
    /// amdkfd before p2p_links: no `p2p_links_count`, no p2p_links at all (ROCm's libhsakmt
    /// then synthesizes indirect links itself).
    BeforeP2pLinks,
}

/// Platform settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// IOMMU mode.
    #[serde(default)]
    pub iommu: IommuSetting,
    /// Shorthand: the host bridges allow P2P DMA through them, whatever `cpu_vendor` and the
    /// host bridges' ids say.
    #[serde(default)]
    pub host_bridge_whitelisted: bool,
    /// `/proc/cpuinfo`'s `vendor_id` (`AuthenticAMD`, `GenuineIntel`), for the kernel's
    /// `cpu_supports_p2pdma`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_vendor: Option<String>,
    /// `/proc/cpuinfo`'s `cpu family` (AMD Zen: 0x17 and newer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_family: Option<u32>,
    /// amdgpu's `pcie_p2p` module parameter (exists only with CONFIG_HSA_AMD_P2P).
    #[serde(default = "default_true")]
    pub pcie_p2p: bool,
    /// What the kernel's amdkfd/amdgpu publish.
    #[serde(default)]
    pub kernel: KernelGeneration,
    /// Bandwidth the platform reports on CPU<->CPU links, MB/s (0 = none, as amdkfd's virtual CRAT).
    #[serde(default)]
    pub cpu_link_bandwidth_mbs: u32,
    /// Ports (root port ids or switch downstream ports `<switch>.<n>`) whose ACS redirect the
    /// kernel turns off at boot (`pci=disable_acs_redir=<their addresses>`): their
    /// `acs_redirect` no longer counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disable_acs_redir: Vec<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            iommu: IommuSetting::Off,
            host_bridge_whitelisted: false,
            cpu_vendor: None,
            cpu_family: None,
            pcie_p2p: true,
            kernel: KernelGeneration::default(),
            cpu_link_bandwidth_mbs: 0,
            disable_acs_redir: Vec::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// A CPU (NUMA) node.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// CPU cores.
    #[serde(default = "default_cores")]
    pub cores: u32,
    /// System memory of the node.
    #[serde(default)]
    pub memory: ByteSize,
    /// SLIT row: distance to every CPU node (default 10 to itself, 20 to the others).
    #[serde(default)]
    pub distances: Option<Vec<u32>>,
}

fn default_cores() -> u32 {
    8
}

/// A host bridge (root complex): the PCI segment and root bus its root ports sit on, and the
/// ids of its device 00.0 (or first root port), which `pci_p2pdma_whitelist` matches.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostBridge {
    /// Unique id, used as `host_bridge` by root ports.
    pub id: String,
    /// PCI segment (domain).
    #[serde(default)]
    pub segment: u32,
    /// Root bus number.
    #[serde(default)]
    pub bus: u8,
    /// PCI vendor id of the host bridge device.
    pub vendor_id: u16,
    /// PCI device id of the host bridge device.
    pub device_id: u16,
}

/// A PCIe root port.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RootPort {
    /// Unique id, used as `parent` by switches and GPUs.
    pub id: String,
    /// The CPU node whose root complex holds the port.
    #[serde(default)]
    pub cpu: u32,
    /// ACS redirect is enabled on the port.
    #[serde(default)]
    pub acs_redirect: bool,
    /// The host bridge the port belongs to (required when the spec declares host bridges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_bridge: Option<String>,
    /// The port's link capability (the slot): what amdgpu reports for a GPU right below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie: Option<PcieLinkSpec>,
}

/// A PCIe switch: one upstream port and `downstream_ports` downstream ports.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    /// Unique id; its downstream ports are `<id>.0`, `<id>.1`, ….
    pub id: String,
    /// A root port id or a downstream port `<switch>.<n>`.
    pub parent: String,
    /// Number of downstream ports.
    pub downstream_ports: u32,
    /// ACS redirect is enabled on the downstream ports.
    #[serde(default)]
    pub acs_redirect: bool,
    /// The downstream ports' link capability: what amdgpu reports for a GPU right below one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie: Option<PcieLinkSpec>,
}

/// How the members of an XGMI hive are wired.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HiveWiring {
    /// Every member links to every other.
    #[default]
    Full,
    /// Members form a ring in declaration order.
    Ring,
    /// Only the pairs listed as `[[xgmi_hive.link]]` are linked; the others reach each other
    /// through members (weight 15 per hop, no bandwidth of their own).
    Links,
}

/// Direct XGMI links between two hive members (amdgpu's `num_links` for the pair).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct XgmiLinkSpec {
    /// The two GPU ids.
    pub gpus: [String; 2],
    /// Number of links joining them.
    pub count: u32,
}

/// An XGMI hive.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct XgmiHive {
    /// Hive id (non-zero), referenced by GPUs.
    pub id: u64,
    /// Wiring.
    #[serde(default)]
    pub wiring: HiveWiring,
    /// Bandwidth of one XGMI link, MB/s (default: the rate amdgpu sets for each member's GPU
    /// generation, `amdgpu_xgmi_early_init`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_bandwidth_mbs: Option<u32>,
    /// Links between two directly connected members (`full` and `ring` wiring; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links_per_peer: Option<u32>,
    /// The linked pairs (`links` wiring).
    #[serde(rename = "link", default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<XgmiLinkSpec>,
}

/// A GPU's PCIe link.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PcieLinkSpec {
    /// Generation, 1..=5.
    pub gen: u32,
    /// Lanes.
    pub width: u32,
}

impl Default for PcieLinkSpec {
    fn default() -> Self {
        PcieLinkSpec { gen: 4, width: 16 }
    }
}

/// A GPU.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// Unique id (a label for humans and tools).
    pub id: String,
    /// A root port id or a switch downstream port `<switch>.<n>`.
    pub parent: String,
    /// VRAM size.
    pub vram: ByteSize,
    /// VRAM BAR size (default: equal to `vram`, i.e. large BAR).
    #[serde(default)]
    pub bar: Option<ByteSize>,
    /// PCI address as the machine has it, `DDDD:BB:DD.F` (default: numbered as firmware
    /// enumerates the spec's tree); KFD's `domain` and `location_id` come from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Bus address of the BAR (default: assigned in order from 128 GiB up).
    #[serde(default)]
    pub bar_address: Option<u64>,
    /// DMA mask width in bits.
    #[serde(default = "default_dma_mask_bits")]
    pub dma_mask_bits: u32,
    /// The GPU's own PCIe link capability; amdgpu reports its port's (`pcie` of the root port
    /// or switch above it) when that is given.
    #[serde(default)]
    pub pcie: PcieLinkSpec,
    /// The GPU can do PCIe atomics.
    #[serde(default = "default_true")]
    pub pcie_atomics: bool,
    /// XGMI hive id.
    #[serde(default)]
    pub xgmi_hive: Option<u64>,
    /// XGMI also connects the GPU to the CPU.
    #[serde(default)]
    pub xgmi_connected_to_cpu: bool,
    /// An APU's integrated GPU (`AMD_IS_APU`): its VRAM is a carve-out of system memory, with
    /// no BAR behind it. amdgpu's `gmc_v9_0_mc_init`/`gmc_v11_0_mc_init` set `aper_base` to the
    /// carve-out's physical address and `aper_size` to the real VRAM size, so the rules see a
    /// large BAR at `bar_address` (required; `bar` must not be given).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub apu: bool,
    /// gfx target version (90010 = gfx90a).
    #[serde(default = "default_gfx")]
    pub gfx_target_version: u32,
    /// PCI vendor id.
    #[serde(default = "default_vendor")]
    pub vendor_id: u32,
    /// PCI device id.
    #[serde(default = "default_device")]
    pub device_id: u32,
    /// SIMD units.
    #[serde(default = "default_simds")]
    pub simd_count: u32,
    /// The GPU sits in a hot-pluggable slot (PCIe native hot-plug on its root or downstream
    /// port): the emulated machine can remove and re-add it. No effect on the topology.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hotplug: bool,
}

fn default_dma_mask_bits() -> u32 {
    44
}
fn default_gfx() -> u32 {
    90010
}
fn default_vendor() -> u32 {
    0x1002
}
fn default_device() -> u32 {
    0x740f
}
fn default_simds() -> u32 {
    416
}

impl Gpu {
    /// BAR size (the VRAM size unless given).
    pub fn bar_size(&self) -> ByteSize {
        self.bar.unwrap_or(self.vram)
    }
}

/// A spec that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file cannot be read.
    #[error("cannot read topology spec {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for a spec.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// What toml/serde said, with the location.
        message: String,
    },
    /// The spec is well-formed but describes an impossible machine.
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or `<inline>`), with the line of the element at fault when the message
        /// names one (`spec.toml:12`).
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Spec {
    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Spec::parse(&text, &path.display().to_string())
    }

    /// Parses and validates spec text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Spec, SpecError> {
        let spec: Spec = toml::from_str(text).map_err(|error| SpecError::Syntax {
            path: origin.to_string(),
            message: error.to_string().trim_end().to_string(),
        })?;
        if let Some(message) = id_lines::duplicate_id(text) {
            return Err(SpecError::Invalid {
                path: origin.to_string(),
                message,
            });
        }
        spec.validate().map_err(|message| SpecError::Invalid {
            path: match id_lines::line_of_named_element(text, &message) {
                Some(line) => format!("{origin}:{line}"),
                None => origin.to_string(),
            },
            message,
        })?;
        Ok(spec)
    }

    /// SLIT distance between two CPU nodes (defaults: 10 local, 20 remote).
    pub fn numa_distance(&self, from: usize, to: usize) -> u32 {
        self.cpus
            .get(from)
            .and_then(|cpu| cpu.distances.as_ref())
            .and_then(|row| row.get(to).copied())
            .unwrap_or(if from == to { 10 } else { 20 })
    }

    /// The XGMI hive with id `id`.
    pub fn hive(&self, id: u64) -> Option<&XgmiHive> {
        self.xgmi_hives.iter().find(|hive| hive.id == id)
    }

    /// The kernel's `cpu_supports_p2pdma()` for the spec's CPU (false when not given).
    pub fn cpu_supports_p2pdma(&self) -> bool {
        match (&self.platform.cpu_vendor, self.platform.cpu_family) {
            (Some(vendor), Some(family)) => crate::host_bridge::cpu_supports_p2pdma(vendor, family),
            _ => false,
        }
    }

    /// Whether the host bridge lets P2P between two of its root ports through: the shorthand,
    /// a CPU the kernel trusts, or the (first) host bridge on the whitelist
    /// (`host_bridge_whitelist` for two devices under one host bridge).
    pub fn host_bridge_trusted(&self) -> bool {
        self.platform.host_bridge_whitelisted
            || self.cpu_supports_p2pdma()
            || crate::host_bridge::host_bridge_whitelisted(
                self.host_bridges
                    .first()
                    .map(|b| (b.vendor_id, b.device_id)),
                true,
            )
    }

    /// The link amdkfd reports for GPU `index` (`amdgpu_amdkfd_get_pcie_bandwidth_mbytes` takes
    /// the platform bits of `pcie_gen_mask`/`pcie_mlw_mask`, which `amdgpu_device_get_pcie_info`
    /// sets from the link partner's capability, `amdgpu_device_partner_bandwidth`): the `pcie`
    /// of the port right above the GPU, else the GPU's own.
    pub fn platform_link(&self, index: usize) -> PcieLinkSpec {
        let Some(gpu) = self.gpus.get(index) else {
            return PcieLinkSpec::default();
        };
        let port = match validate::parse_parent(&gpu.parent) {
            validate::ParentRef::RootPort(id) => self
                .root_ports
                .iter()
                .find(|p| p.id == id)
                .and_then(|p| p.pcie),
            validate::ParentRef::SwitchPort(id, _) => self
                .switches
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.pcie),
        };
        port.unwrap_or(gpu.pcie)
    }

    /// GPU `index`'s PCI address: its `address`, else where `layout` numbers it.
    pub fn gpu_address(&self, layout: &PcieLayout, index: usize) -> PciAddress {
        self.gpus
            .get(index)
            .and_then(|gpu| gpu.address.as_deref())
            .and_then(crate::machine_facts::parse_address)
            .or_else(|| {
                layout
                    .gpu_element(index)
                    .map(|e| layout.elements[e].address)
            })
            .unwrap_or_default()
    }

    /// The members of hive `id`, by spec GPU index in hive position order.
    pub fn hive_members(&self, id: u64) -> Vec<usize> {
        (0..self.gpus.len())
            .filter(|&index| self.gpus[index].xgmi_hive == Some(id))
            .collect()
    }

    /// The PCIe tree with bus numbers assigned depth-first, as firmware and Linux enumerate it.
    pub fn layout(&self) -> PcieLayout {
        PcieLayout::of(self)
    }
}
