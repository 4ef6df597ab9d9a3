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
    /// amdgpu was built with CONFIG_HSA_AMD_P2P (`kfd_dev_create_p2p_links` adds peer links
    /// only then). The hsa_p2p module is HSA_AMD_P2P itself: always true there.
    pub hsa_amd_p2p: bool,
}

/// A CPU (NUMA) node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuFacts {
    /// Number of CPU cores.
    pub cpu_cores: u32,
    /// System memory of the node in bytes.
    pub memory_bytes: u64,
}

/// Most members an XGMI hive can have here (amdgpu allows 64; real hives have at most 8 GPUs).
pub const XGMI_MAX_HIVE: usize = 16;

/// XGMI link counts between hive members, by hive position: `links[a][b]` links join members
/// `a` and `b` directly (0: none, they reach each other through other members).
pub type XgmiLinkTable = [[u8; XGMI_MAX_HIVE]; XGMI_MAX_HIVE];

/// What a member's PSP XGMI topology table says about one peer (`psp_xgmi_node_info`): the
/// hops between them and the links joining them directly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct XgmiPeer {
    /// Hops to the peer (amdgpu reads bits 2:0, `amdgpu_xgmi_get_hops_count`).
    pub num_hops: u8,
    /// Links joining the two directly; 0 when the peer is reached through others
    /// (`amdgpu_xgmi_get_bandwidth` then reports no bandwidth).
    pub num_links: u8,
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
    /// Bandwidth of one XGMI link in MB/s (amdgpu: `max_speed * max_width * 1000 / 8`, see
    /// [`xgmi_link_rate_mbs`]).
    pub link_bandwidth_mbs: u32,
    /// The member's topology table, by peer position (entries from `hive_size` on are zero).
    pub peers: [XgmiPeer; XGMI_MAX_HIVE],
}

/// The per-link XGMI rate amdgpu sets for a GPU generation (`amdgpu_xgmi_early_init`): 25 GT/s
/// x16 for GC 9.4.0-9.4.2 (gfx906, gfx908, gfx90a), 32 GT/s x16 for GC 9.4.3/9.4.4/9.5.0
/// (gfx942, gfx950), in MB/s as `amdgpu_xgmi_get_bandwidth` computes it; 0 for other parts
/// (amdgpu leaves `max_speed` at 0).
pub const fn xgmi_link_rate_mbs(gfx_target_version: u32) -> u32 {
    const fn rate(gts: u32, lanes: u32) -> u32 {
        gts * lanes * 1000 / 8
    }
    match gfx_target_version {
        90006 | 90008 | 90010 => rate(25, 16),
        90402 | 90500 => rate(32, 16),
        _ => 0,
    }
}

/// How the members of a hive are wired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XgmiWiring<'a> {
    /// Every member links to every other with this many links.
    Full(u8),
    /// Members form a ring in position order, neighbours joined by this many links.
    Ring(u8),
    /// Link counts per pair of positions (a symmetric table).
    Links(&'a XgmiLinkTable),
}

impl XgmiWiring<'_> {
    /// Links between positions `a` and `b` of a hive of `size` members.
    pub const fn links(&self, a: usize, b: usize, size: usize) -> u8 {
        if a == b || a >= size || b >= size {
            return 0;
        }
        match self {
            XgmiWiring::Full(links) => *links,
            XgmiWiring::Ring(links) => {
                let d = a.abs_diff(b);
                if d == 1 || d == size - 1 {
                    *links
                } else {
                    0
                }
            }
            XgmiWiring::Links(table) => table[a][b],
        }
    }
}

impl XgmiFacts {
    /// The member at `position` of a hive of `hive_size` GPUs wired as `wiring`: its topology
    /// table holds the direct links and the fewest hops to each peer (breadth-first over the
    /// links; an unreachable peer gets 0 hops, as amdgpu reports a peer it cannot find).
    pub fn member(
        hive_id: u64,
        position: u32,
        hive_size: u32,
        link_bandwidth_mbs: u32,
        wiring: XgmiWiring<'_>,
    ) -> XgmiFacts {
        let size = (hive_size as usize).min(XGMI_MAX_HIVE);
        let start = position as usize;
        let mut peers = [XgmiPeer::default(); XGMI_MAX_HIVE];
        let mut queue = [0usize; XGMI_MAX_HIVE];
        let mut seen = [false; XGMI_MAX_HIVE];
        let (mut head, mut tail) = (0, 0);
        if start < size {
            seen[start] = true;
            queue[tail] = start;
            tail += 1;
        }
        while head < tail {
            let at = queue[head];
            head += 1;
            for next in 0..size {
                if !seen[next] && wiring.links(at, next, size) > 0 {
                    seen[next] = true;
                    peers[next].num_hops = peers[at].num_hops.saturating_add(1);
                    queue[tail] = next;
                    tail += 1;
                }
            }
        }
        for (peer, entry) in peers.iter_mut().enumerate().take(size) {
            entry.num_links = wiring.links(start, peer, size);
        }
        XgmiFacts {
            hive_id,
            position,
            hive_size,
            link_bandwidth_mbs,
            peers,
        }
    }

    /// What this member's topology table says about `other` (zero for a position outside it).
    pub const fn peer(&self, other: &XgmiFacts) -> XgmiPeer {
        let index = other.position as usize;
        if index < XGMI_MAX_HIVE {
            self.peers[index]
        } else {
            XgmiPeer {
                num_hops: 0,
                num_links: 0,
            }
        }
    }

    /// XGMI hops to another member, as `amdgpu_xgmi_get_hops_count` reads them (bits 2:0).
    pub const fn hops_to(&self, other: &XgmiFacts) -> u32 {
        (self.peer(other).num_hops & 0x7) as u32
    }

    /// XGMI links joining this member to `other` directly.
    pub const fn links_to(&self, other: &XgmiFacts) -> u32 {
        self.peer(other).num_links as u32
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
