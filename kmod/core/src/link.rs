//! KFD io_link / p2p_link properties: link types, flag bits and the property record.
//!
//! io_links and p2p_links share one record and one sysfs writer in amdkfd, so they share one
//! type here as well.

/// The `type` of a link, as KFD reports it (CRAT `io_interface_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkType {
    /// 0: not specified.
    Undefined,
    /// 1: HyperTransport.
    HyperTransport,
    /// 2: PCI Express.
    Pcie,
    /// 5: Intel QPI 1.1; amdkfd uses it for every CPU<->CPU link on x86-64.
    Qpi11,
    /// 11: AMD XGMI.
    Xgmi,
    /// 16: other.
    Other,
    /// Any other value: kept as is so that parsing and writing round-trip.
    Unknown(u32),
}

impl LinkType {
    /// The numeric value written to sysfs.
    pub const fn as_raw(self) -> u32 {
        match self {
            LinkType::Undefined => 0,
            LinkType::HyperTransport => 1,
            LinkType::Pcie => 2,
            LinkType::Qpi11 => 5,
            LinkType::Xgmi => 11,
            LinkType::Other => 16,
            LinkType::Unknown(raw) => raw,
        }
    }

    /// The link type for a sysfs value.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => LinkType::Undefined,
            1 => LinkType::HyperTransport,
            2 => LinkType::Pcie,
            5 => LinkType::Qpi11,
            11 => LinkType::Xgmi,
            16 => LinkType::Other,
            other => LinkType::Unknown(other),
        }
    }

    /// A short human name, as tools such as `rocm-smi --showtopo` print it.
    pub const fn name(self) -> &'static str {
        match self {
            LinkType::Undefined => "undefined",
            LinkType::HyperTransport => "HT",
            LinkType::Pcie => "PCIE",
            LinkType::Qpi11 => "QPI",
            LinkType::Xgmi => "XGMI",
            LinkType::Other => "other",
            LinkType::Unknown(_) => "unknown",
        }
    }
}

/// The `flags` bit set of a link (CRAT_IOLINK_FLAGS_*).
///
/// User space (ROCr) honours the other bits only when [`LinkFlags::ENABLED`] is set.
/// Bit 31 (BI_DIRECTIONAL) exists only inside CRAT tables and never reaches sysfs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkFlags(pub u32);

impl LinkFlags {
    /// Bit 0: the other bits are valid ("override").
    pub const ENABLED: LinkFlags = LinkFlags(1 << 0);
    /// Bit 1: accesses over the link are not cache coherent.
    pub const NON_COHERENT: LinkFlags = LinkFlags(1 << 1);
    /// Bit 2: no 32-bit atomics over the link.
    pub const NO_ATOMICS_32: LinkFlags = LinkFlags(1 << 2);
    /// Bit 3: no 64-bit atomics over the link.
    pub const NO_ATOMICS_64: LinkFlags = LinkFlags(1 << 3);
    /// Bit 4: peer-to-peer DMA over this link is not possible; ROCr skips such links.
    pub const NO_PEER_TO_PEER_DMA: LinkFlags = LinkFlags(1 << 4);
    /// No bit set. CPU<->CPU io_links report this (it does not mean "disabled").
    pub const NONE: LinkFlags = LinkFlags(0);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: LinkFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    pub const fn union(self, other: LinkFlags) -> LinkFlags {
        LinkFlags(self.0 | other.0)
    }

    /// Whether user space may use this link for peer DMA: ENABLED and not NO_PEER_TO_PEER_DMA.
    pub const fn allows_peer_dma(self) -> bool {
        self.contains(LinkFlags::ENABLED) && !self.contains(LinkFlags::NO_PEER_TO_PEER_DMA)
    }
}

impl core::ops::BitOr for LinkFlags {
    type Output = LinkFlags;
    fn bitor(self, rhs: LinkFlags) -> LinkFlags {
        self.union(rhs)
    }
}

/// One io_link or p2p_link, with exactly the fields amdkfd writes to its `properties` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkProperties {
    /// Link type.
    pub link_type: LinkType,
    /// Interface major version.
    pub version_major: u32,
    /// Interface minor version.
    pub version_minor: u32,
    /// Node the link starts at (for a peer link: the accessing GPU).
    pub node_from: u32,
    /// Node the link ends at (for a peer link: the GPU whose BAR is accessed).
    pub node_to: u32,
    /// Relative cost; user space sorts paths by it (PCIe hop 20, XGMI 15 per hop,
    /// CPU<->CPU = SLIT distance).
    pub weight: u32,
    /// Minimum latency in ns.
    pub min_latency: u32,
    /// Maximum latency in ns.
    pub max_latency: u32,
    /// Minimum bandwidth in MB/s.
    pub min_bandwidth: u32,
    /// Maximum bandwidth in MB/s.
    pub max_bandwidth: u32,
    /// Recommended transfer size in bytes.
    pub recommended_transfer_size: u32,
    /// SDMA engines recommended for copies over this link (absent on older kernels).
    pub recommended_sdma_engine_id_mask: u32,
    /// Flag bits.
    pub flags: LinkFlags,
}

impl LinkProperties {
    /// A link of `link_type` between two nodes with every other field zero.
    pub const fn new(link_type: LinkType, node_from: u32, node_to: u32) -> Self {
        LinkProperties {
            link_type,
            version_major: 0,
            version_minor: 0,
            node_from,
            node_to,
            weight: 0,
            min_latency: 0,
            max_latency: 0,
            min_bandwidth: 0,
            max_bandwidth: 0,
            recommended_transfer_size: 0,
            recommended_sdma_engine_id_mask: 0,
            flags: LinkFlags::NONE,
        }
    }

    /// The same link seen from the other end.
    pub const fn reversed(self) -> Self {
        LinkProperties {
            node_from: self.node_to,
            node_to: self.node_from,
            ..self
        }
    }
}
