//! What the rules need to know about a machine: CPUs/NUMA nodes, GPUs and platform settings.
//!
//! The kernel module fills these from the PCI core and each device's descriptor page; the
//! predictor fills them from a topology spec. The rules never look anywhere else.

use crate::gpu_id::KnownGpuId;
use crate::pcie::PcieLink;

/// A PCI function address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    /// Domain (segment).
    pub domain: u32,
    /// Bus.
    pub bus: u8,
    /// Device (0..32).
    pub device: u8,
    /// Function (0..8).
    pub function: u8,
}

impl PciAddress {
    /// KFD's `location_id`: `(bus << 8) | (device << 3) | function`.
    pub const fn location_id(self) -> u32 {
        ((self.bus as u32) << 8)
            | (((self.device & 0x1f) as u32) << 3)
            | (self.function & 0x7) as u32
    }

    /// The address KFD's `domain` and `location_id` name (the inverse of [`Self::location_id`]).
    pub const fn from_location_id(domain: u32, location_id: u32) -> Self {
        PciAddress {
            domain,
            bus: (location_id >> 8) as u8,
            device: ((location_id >> 3) & 0x1f) as u8,
            function: (location_id & 0x7) as u8,
        }
    }
}

impl core::fmt::Display for PciAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// How the IOMMU treats device DMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IommuMode {
    /// DMA is translated: any BAR is reachable by a peer whatever its DMA mask.
    Remap,
    /// Identity mapping (`iommu=pt`): the peer's DMA mask must cover the BAR.
    Passthrough,
    /// No IOMMU: the peer's DMA mask must cover the BAR.
    Off,
}

/// Platform-wide settings that the peer-access gate consults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlatformFacts {
    /// IOMMU mode.
    pub iommu: IommuMode,
    /// amdgpu's `pcie_p2p` module parameter (default on).
    pub pcie_p2p: bool,
}

/// A CPU (NUMA) node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuFacts {
    /// Number of CPU cores.
    pub cpu_cores: u32,
    /// System memory of the node in bytes.
    pub memory_bytes: u64,
}

/// Membership of a GPU in an XGMI hive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct XgmiFacts {
    /// Hive id (non-zero); GPUs with equal ids are in one hive.
    pub hive_id: u64,
    /// Position of the GPU in the hive (0..hive_size).
    pub position: u32,
    /// Number of GPUs in the hive.
    pub hive_size: u32,
    /// Every member links to every other (otherwise the members form a ring).
    pub fully_connected: bool,
    /// Bandwidth of one XGMI link in MB/s.
    pub link_bandwidth_mbs: u32,
    /// XGMI links between two directly connected members.
    pub links_per_peer: u32,
}

impl XgmiFacts {
    /// XGMI hops between two members of one hive (ring distance unless fully connected).
    pub const fn hops_to(&self, other: &XgmiFacts) -> u32 {
        if self.fully_connected || self.hive_size == 0 {
            return 1;
        }
        let a = self.position % self.hive_size;
        let b = other.position % self.hive_size;
        let forward = a.abs_diff(b);
        let backward = self.hive_size - forward;
        if forward < backward {
            forward
        } else {
            backward
        }
    }
}

/// A GPU as the rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GpuFacts {
    /// PCI address.
    pub pci: PciAddress,
    /// PCI vendor id.
    pub vendor_id: u32,
    /// PCI device id.
    pub device_id: u32,
    /// gfx target version, e.g. 90010 (gfx90a).
    pub gfx_target_version: u32,
    /// SIMD units.
    pub simd_count: u32,
    /// Real VRAM size in bytes.
    pub vram_size: u64,
    /// Bus address of the VRAM BAR (the aperture a peer writes to).
    pub bar_base: u64,
    /// Size of the VRAM BAR in bytes; smaller than `vram_size` means small BAR.
    pub bar_size: u64,
    /// The CPU node the GPU hangs off.
    pub numa_node: u32,
    /// Width of the GPU's DMA mask in bits (40, 44 or 48 by generation).
    pub dma_mask_bits: u32,
    /// XGMI hive membership.
    pub xgmi: Option<XgmiFacts>,
    /// The GPU's XGMI also connects it to the CPU (APU-like parts): peers never use its BAR.
    pub xgmi_connected_to_cpu: bool,
    /// PCIe link to the host.
    pub pcie: PcieLink,
    /// The GPU may issue PCIe atomics to the host.
    pub pcie_atomics: bool,
    /// DRM render node minor.
    pub drm_render_minor: u32,
    /// Unique id (0 when unknown).
    pub unique_id: u64,
}

impl GpuFacts {
    /// amdgpu's "large BAR": the whole VRAM is visible through the BAR.
    pub const fn is_large_bar(&self) -> bool {
        self.bar_size > 0 && self.bar_size >= self.vram_size
    }

    /// Whether both GPUs are members of the same XGMI hive.
    pub fn shares_hive_with(&self, other: &GpuFacts) -> bool {
        match (&self.xgmi, &other.xgmi) {
            (Some(a), Some(b)) => a.hive_id != 0 && a.hive_id == b.hive_id,
            _ => false,
        }
    }
}

/// Which `max_bandwidth` peer links report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PeerBandwidthRule {
    /// The narrowest hop of the path: both GPUs' links and the CPU<->CPU link between them
    /// (what `kfd_add_peer_prop` means; what the module publishes).
    #[default]
    Corrected,
    /// As amdkfd (Linux 7.3) publishes it, bug included: `kfd_add_peer_prop` computes
    /// `min(iolink2->max_bandwidth, iolink2->max_bandwidth)`, so the owner's link is ignored
    /// (see [`crate::compose::upstream_peer_max_bandwidth`]). For comparing real trees.
    AsAmdkfd,
}

/// Everything the rules need about one machine.
#[derive(Clone, Copy, Debug)]
pub struct MachineFacts<'a> {
    /// CPU nodes, in proximity-domain order.
    pub cpus: &'a [CpuFacts],
    /// SLIT distances, row-major `cpus.len() x cpus.len()`.
    pub numa_distances: &'a [u32],
    /// Bandwidth reported on CPU<->CPU links in MB/s (0 when the platform reports none, as with
    /// amdkfd's virtual CRAT).
    pub cpu_link_bandwidth_mbs: u32,
    /// GPUs, in the order the driver added them.
    pub gpus: &'a [GpuFacts],
    /// The `gpu_id`s handed out before (kept across unbind and rebind; empty for a prediction).
    pub known_gpu_ids: &'a [KnownGpuId],
    /// Platform settings.
    pub platform: PlatformFacts,
    /// Which `max_bandwidth` peer links report.
    pub peer_bandwidth: PeerBandwidthRule,
}

impl MachineFacts<'_> {
    /// SLIT distance between two CPU nodes, if both exist.
    pub fn numa_distance(&self, from: u32, to: u32) -> Option<u32> {
        let n = self.cpus.len();
        let (from, to) = (from as usize, to as usize);
        if from >= n || to >= n {
            return None;
        }
        self.numa_distances.get(from * n + to).copied()
    }
}
