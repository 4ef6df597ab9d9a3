//! The peer-access gate: may GPU `accessor` reach GPU `owner`'s VRAM BAR?
//!
//! Mirrors `amdgpu_device_is_peer_accessible(owner, accessor)`, but reports *every* condition
//! that failed instead of a bare boolean, so that user space can explain it.

use crate::facts::{GpuFacts, IommuMode, PlatformFacts};

/// One condition of the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DenialReason {
    /// amdgpu was built without CONFIG_HSA_AMD_P2P: `kfd_dev_create_p2p_links` adds no peer
    /// links and `amdgpu_device_is_peer_accessible` is false for every pair.
    NoHsaAmdP2p,
    /// amdgpu's `pcie_p2p` module parameter is off.
    PcieP2pDisabled,
    /// The owner's XGMI connects it to the CPU; its VRAM is not reached through a PCIe BAR.
    XgmiConnectedToCpu,
    /// `pci_p2pdma_distance` refused the pair: no common upstream bridge and a host bridge that
    /// is not on the P2PDMA whitelist (or an ACS-redirected path through such a bridge).
    Chipset,
    /// The owner's BAR does not expose all of its VRAM.
    SmallBar,
    /// The owner's BAR lies beyond the accessor's DMA mask and the IOMMU does not remap.
    NotAddressable,
}

impl DenialReason {
    /// Every reason, in the order the gate reports them.
    pub const ALL: [DenialReason; 6] = [
        DenialReason::NoHsaAmdP2p,
        DenialReason::PcieP2pDisabled,
        DenialReason::XgmiConnectedToCpu,
        DenialReason::Chipset,
        DenialReason::SmallBar,
        DenialReason::NotAddressable,
    ];

    /// The reason's bit in [`DenialReasons`] (and in the `reasons` sysfs value).
    pub const fn bit(self) -> u32 {
        match self {
            DenialReason::PcieP2pDisabled => 1 << 0,
            DenialReason::XgmiConnectedToCpu => 1 << 1,
            DenialReason::Chipset => 1 << 2,
            DenialReason::SmallBar => 1 << 3,
            DenialReason::NotAddressable => 1 << 4,
            DenialReason::NoHsaAmdP2p => 1 << 5,
        }
    }

    /// A short stable name, used in JSON and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            DenialReason::NoHsaAmdP2p => "no HSA_AMD_P2P",
            DenialReason::PcieP2pDisabled => "pcie_p2p disabled",
            DenialReason::XgmiConnectedToCpu => "XGMI connected to CPU",
            DenialReason::Chipset => "chipset",
            DenialReason::SmallBar => "small BAR",
            DenialReason::NotAddressable => "DMA mask",
        }
    }

    /// What failed, in words.
    pub const fn explanation(self) -> &'static str {
        match self {
            DenialReason::NoHsaAmdP2p => {
                "the kernel's amdgpu was built without CONFIG_HSA_AMD_P2P: amdkfd publishes \
                p2p_links (indirect links to the other CPUs) but never a peer link between GPUs, \
                and amdgpu has no pcie_p2p parameter"
            }
            DenialReason::PcieP2pDisabled => {
                "peer-to-peer over PCIe is switched off by the amdgpu module parameter pcie_p2p=0"
            }
            DenialReason::XgmiConnectedToCpu => {
                "the owner is connected to the CPU over XGMI, so its memory is not reached \
                through a PCIe BAR"
            }
            DenialReason::Chipset => {
                "PCIe P2P access between these devices is not supported by the chipset: they \
                share no PCIe switch and the host bridge is not on the kernel's P2PDMA \
                whitelist (or ACS redirects the path through it)"
            }
            DenialReason::SmallBar => {
                "the owner's VRAM BAR is smaller than its VRAM (small BAR), so a peer cannot \
                reach all of its memory"
            }
            DenialReason::NotAddressable => {
                "the owner's BAR lies above the accessor's DMA mask and the IOMMU does not \
                remap DMA"
            }
        }
    }

    /// What a user can do about it.
    pub const fn remedy(self) -> &'static str {
        match self {
            DenialReason::NoHsaAmdP2p => {
                "use a kernel built with CONFIG_HSA_AMD_P2P=y (it needs CONFIG_HSA_AMD and \
                CONFIG_PCI_P2PDMA), or load the hsa_p2p module"
            }
            DenialReason::PcieP2pDisabled => {
                "load amdgpu with pcie_p2p=1 (the default), e.g. remove 'amdgpu.pcie_p2p=0' \
                from the kernel command line"
            }
            DenialReason::XgmiConnectedToCpu => {
                "none needed for CPU access; peers of such a GPU must use XGMI or system memory"
            }
            DenialReason::Chipset => {
                "place both GPUs behind one PCIe switch, or use a platform whose host bridge is \
                whitelisted for P2PDMA (AMD Zen and newer, some Intel Xeon); if ACS redirect \
                is on, disable it with pci=disable_acs_redir=<bridges>"
            }
            DenialReason::SmallBar => {
                "enable Resizable BAR and Above 4G Decoding in the firmware setup so the BAR \
                covers all of VRAM"
            }
            DenialReason::NotAddressable => {
                "enable IOMMU DMA remapping (e.g. drop iommu=pt / amd_iommu=off), or have the \
                firmware place the BAR lower (below the peer's DMA limit)"
            }
        }
    }
}

/// A set of [`DenialReason`]s; empty means the gate passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DenialReasons(u32);

impl DenialReasons {
    /// The empty set.
    pub const NONE: DenialReasons = DenialReasons(0);

    /// The raw bits (unknown bits are kept).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The set for raw bits.
    pub const fn from_bits(bits: u32) -> Self {
        DenialReasons(bits)
    }

    /// Whether the gate passed.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether `reason` is in the set.
    pub const fn contains(self, reason: DenialReason) -> bool {
        self.0 & reason.bit() != 0
    }

    /// The set with `reason` added.
    pub const fn with(self, reason: DenialReason) -> Self {
        DenialReasons(self.0 | reason.bit())
    }

    /// The first reason in report order, if any.
    pub fn primary(self) -> Option<DenialReason> {
        self.iter().next()
    }

    /// The known reasons in the set, in report order.
    pub fn iter(self) -> impl Iterator<Item = DenialReason> {
        DenialReason::ALL
            .into_iter()
            .filter(move |reason| self.contains(*reason))
    }
}

/// Why one GPU has no p2p link to another (published next to the p2p links).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerDenial {
    /// The accessing node.
    pub node_from: u32,
    /// The owning node.
    pub node_to: u32,
    /// The failed conditions (never empty in a published denial).
    pub reasons: DenialReasons,
    /// `pci_p2pdma_distance` when the PCI core allowed the pair.
    pub p2pdma_distance: Option<u32>,
}

/// Whether `accessor`'s DMA can reach `owner`'s whole BAR without IOMMU remapping.
pub fn bar_within_dma_mask(owner: &GpuFacts, accessor: &GpuFacts) -> bool {
    if accessor.dma_mask_bits >= 64 {
        return true;
    }
    let Some(last) = owner.bar_base.checked_add(owner.bar_size.saturating_sub(1)) else {
        return false;
    };
    let mask = (1u64 << accessor.dma_mask_bits) - 1;
    owner.bar_base & !mask == 0 && last & !mask == 0
}

/// Evaluates the gate for `accessor` reaching `owner`'s BAR.
///
/// `p2pdma_distance` is the kernel's `pci_p2pdma_distance(owner, accessor)`: `None` when the PCI
/// core refuses the pair.
pub fn check_peer_access(
    owner: &GpuFacts,
    accessor: &GpuFacts,
    platform: &PlatformFacts,
    p2pdma_distance: Option<u32>,
) -> DenialReasons {
    let mut reasons = DenialReasons::NONE;
    if !platform.hsa_amd_p2p {
        reasons = reasons.with(DenialReason::NoHsaAmdP2p);
    }
    if !platform.pcie_p2p {
        reasons = reasons.with(DenialReason::PcieP2pDisabled);
    }
    if owner.xgmi_connected_to_cpu {
        reasons = reasons.with(DenialReason::XgmiConnectedToCpu);
    }
    if p2pdma_distance.is_none() {
        reasons = reasons.with(DenialReason::Chipset);
    }
    if !owner.is_large_bar() {
        reasons = reasons.with(DenialReason::SmallBar);
    }
    if platform.iommu != IommuMode::Remap && !bar_within_dma_mask(owner, accessor) {
        reasons = reasons.with(DenialReason::NotAddressable);
    }
    reasons
}
