//! PCIe link facts and the bandwidth figure amdgpu derives from them.

/// A PCIe generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PcieGen {
    /// 2.5 GT/s.
    Gen1,
    /// 5 GT/s.
    Gen2,
    /// 8 GT/s.
    Gen3,
    /// 16 GT/s.
    Gen4,
    /// 32 GT/s.
    Gen5,
}

impl PcieGen {
    /// The generation for its number (1..=5).
    pub const fn from_number(number: u32) -> Option<Self> {
        match number {
            1 => Some(PcieGen::Gen1),
            2 => Some(PcieGen::Gen2),
            3 => Some(PcieGen::Gen3),
            4 => Some(PcieGen::Gen4),
            5 => Some(PcieGen::Gen5),
            _ => None,
        }
    }

    /// The generation's number (1..=5).
    pub const fn number(self) -> u32 {
        match self {
            PcieGen::Gen1 => 1,
            PcieGen::Gen2 => 2,
            PcieGen::Gen3 => 3,
            PcieGen::Gen4 => 4,
            PcieGen::Gen5 => 5,
        }
    }

    /// Per-lane factor in Mbit/s that amdgpu uses (amdgpu_amdkfd_get_pcie_bandwidth_mbytes).
    pub const fn lane_mbits(self) -> u32 {
        match self {
            PcieGen::Gen1 => 2500,
            PcieGen::Gen2 => 5000,
            PcieGen::Gen3 => 8000,
            PcieGen::Gen4 => 16000,
            PcieGen::Gen5 => 32000,
        }
    }
}

/// The widths a PCIe link can train to.
pub const PCIE_WIDTHS: [u32; 7] = [1, 2, 4, 8, 12, 16, 32];

/// A GPU's PCIe link: generation and lane count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PcieLink {
    /// Generation.
    pub gen: PcieGen,
    /// Number of lanes.
    pub width: u32,
}

impl PcieLink {
    /// The slowest link every PCIe device supports (Gen1 x1): amdgpu reports it as the
    /// io_link's `min_bandwidth`.
    pub const MINIMUM: PcieLink = PcieLink {
        gen: PcieGen::Gen1,
        width: 1,
    };

    /// Bandwidth in MB/s as amdgpu computes it: lanes x per-lane Mbit/s / 8, rounded down
    /// (Gen4 x16 = 32000). Saturates instead of overflowing for absurd widths.
    pub const fn bandwidth_mbs(self) -> u32 {
        self.width.saturating_mul(self.gen.lane_mbits()) / 8
    }
}
