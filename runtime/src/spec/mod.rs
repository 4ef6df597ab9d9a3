//! Topology specs (`topologies/*.toml`): one description of a machine for the predictor, the
//! VM harness and the tests. The format is documented in `docs/topology-spec.md`.

mod bar_placement;
mod id_lines;
mod layout;
mod p2pdma;
mod size;
mod validate;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use bar_placement::DEFAULT_BAR_WINDOW;
pub use layout::{PcieElement, PcieElementKind, PcieLayout};
pub use p2pdma::{LayoutP2pdma, P2pdmaPath};
pub use size::{ByteSize, InvalidSize};

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
    /// PCIe root ports.
    #[serde(rename = "root_port", default)]
    pub root_ports: Vec<RootPort>,
    /// PCIe switches.
    #[serde(rename = "switch", default)]
    pub switches: Vec<Switch>,
    /// XGMI hives.
    #[serde(rename = "xgmi_hive", default)]
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

/// Platform settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// IOMMU mode.
    #[serde(default)]
    pub iommu: IommuSetting,
    /// The host bridge allows P2P DMA through it (on the kernel's whitelist, or a CPU the kernel
    /// trusts for it: AMD Zen and newer).
    #[serde(default)]
    pub host_bridge_whitelisted: bool,
    /// amdgpu's `pcie_p2p` module parameter.
    #[serde(default = "default_true")]
    pub pcie_p2p: bool,
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
            pcie_p2p: true,
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
    /// Bandwidth of one XGMI link, MB/s.
    pub link_bandwidth_mbs: u32,
    /// Links between two directly connected members.
    #[serde(default = "default_links_per_peer")]
    pub links_per_peer: u32,
}

fn default_links_per_peer() -> u32 {
    1
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
    /// Bus address of the BAR (default: assigned in order from 128 GiB up).
    #[serde(default)]
    pub bar_address: Option<u64>,
    /// DMA mask width in bits.
    #[serde(default = "default_dma_mask_bits")]
    pub dma_mask_bits: u32,
    /// PCIe link.
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
        /// The file (or `<inline>`).
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
        id_lines::duplicate_id(text)
            .map_or_else(|| spec.validate(), Err)
            .map_err(|message| SpecError::Invalid {
                path: origin.to_string(),
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

    /// The PCIe tree with bus numbers assigned depth-first, as firmware and Linux enumerate it.
    pub fn layout(&self) -> PcieLayout {
        PcieLayout::of(self)
    }
}
