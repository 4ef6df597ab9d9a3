//! KFD node records: node properties, memory banks and the system-wide properties.

/// The counts a node's `properties` file reports for its sub-directories.
///
/// They are not stored in [`NodeProperties`]: a writer derives them from what it publishes, and a
/// reader cross-checks them against the directories it finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeCounts {
    /// `mem_banks_count`.
    pub mem_banks: u32,
    /// `caches_count`.
    pub caches: u32,
    /// `io_links_count`.
    pub io_links: u32,
    /// `p2p_links_count`; `None` on kernels that do not build p2p links (the key is absent there).
    pub p2p_links: Option<u32>,
}

/// The fields of a node's `properties` file that hsa-p2p models, in the kernel's key order.
///
/// Every other key of a real kernel's file is ignored by the reader and not written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeProperties {
    /// CPU cores (0 on GPU nodes).
    pub cpu_cores_count: u32,
    /// SIMD units (0 on CPU nodes).
    pub simd_count: u32,
    /// gfx target version, e.g. 90010 for gfx90a (0 on CPU nodes).
    pub gfx_target_version: u32,
    /// PCI vendor id (0 on CPU nodes).
    pub vendor_id: u32,
    /// PCI device id (0 on CPU nodes).
    pub device_id: u32,
    /// `(bus << 8) | (device << 3) | function`.
    pub location_id: u32,
    /// PCI domain (segment).
    pub domain: u32,
    /// DRM render node minor (e.g. 128 for renderD128; 0 on CPU nodes).
    pub drm_render_minor: u32,
    /// XGMI hive id, 0 when the GPU is in no hive.
    pub hive_id: u64,
    /// SDMA engines usable for PCIe copies.
    pub num_sdma_engines: u32,
    /// SDMA engines dedicated to XGMI copies.
    pub num_sdma_xgmi_engines: u32,
    /// Local memory (VRAM) size in bytes.
    pub local_mem_size: u64,
    /// A per-device unique id (0 when unknown).
    pub unique_id: u64,
}

/// Where a memory bank lives, as KFD's `heap_type` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeapType {
    /// 0: system memory (CPU nodes).
    System,
    /// 1: frame buffer fully visible through the BAR ("large BAR").
    FrameBufferPublic,
    /// 2: frame buffer only partly visible through the BAR ("small BAR").
    FrameBufferPrivate,
    /// Any other value, kept for round-tripping.
    Unknown(u32),
}

impl HeapType {
    /// The numeric value written to sysfs.
    pub const fn as_raw(self) -> u32 {
        match self {
            HeapType::System => 0,
            HeapType::FrameBufferPublic => 1,
            HeapType::FrameBufferPrivate => 2,
            HeapType::Unknown(raw) => raw,
        }
    }

    /// The heap type for a sysfs value.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => HeapType::System,
            1 => HeapType::FrameBufferPublic,
            2 => HeapType::FrameBufferPrivate,
            other => HeapType::Unknown(other),
        }
    }
}

/// A node's `mem_banks/N/properties`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemBankProperties {
    /// Heap type: public frame buffer means the whole VRAM is CPU/peer visible (large BAR).
    pub heap_type: HeapType,
    /// Size in bytes.
    pub size_in_bytes: u64,
    /// Flags (0 here).
    pub flags: u32,
    /// Memory bus width in bits (0 when unknown).
    pub width: u32,
    /// Maximum memory clock in MHz (0 when unknown).
    pub mem_clk_max: u32,
}

/// The topology's `system_properties` file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SystemProperties {
    /// OEM id of the platform (from the CRAT header; 0 for a virtual CRAT).
    pub platform_oem: u64,
    /// Platform id.
    pub platform_id: u64,
    /// Platform revision.
    pub platform_rev: u64,
}
