//! The peer-access gate: each denial reason is reported exactly when its condition holds.

mod common;

use hsa_p2p_core::facts::{GpuFacts, IommuMode, PlatformFacts};
use hsa_p2p_core::gate::{bar_within_dma_mask, check_peer_access, DenialReason, DenialReasons};
use proptest::prelude::*;

/// Addressability computed independently, in 128-bit arithmetic: the BAR `[base, base + size)`
/// (at least one byte) lies below `2^bits`. A mask of 64 bits or more reaches everything (the
/// core does not second-guess a BAR that would wrap the 64-bit bus address space; the PCI core
/// never assigns one).
fn reference_addressable(owner: &GpuFacts, accessor: &GpuFacts) -> bool {
    if accessor.dma_mask_bits >= 64 {
        return true;
    }
    let limit = 1u128 << accessor.dma_mask_bits.min(64);
    let end = u128::from(owner.bar_base) + u128::from(owner.bar_size.max(1));
    end <= limit
}

fn distance() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![Just(None), (0u32..16).prop_map(Some)]
}

proptest! {
    #![proptest_config(config!("gate", 512))]

    /// The full characterisation: the reported set is exactly the set of failed conditions.
    #[test]
    fn reasons_are_exactly_the_failed_conditions(
        owner in common::gpu(2), accessor in common::gpu(2), platform in common::platform(),
        distance in distance(),
    ) {
        let reasons = check_peer_access(&owner, &accessor, &platform, distance);
        let expect = [
            (DenialReason::NoHsaAmdP2p, !platform.hsa_amd_p2p),
            (DenialReason::PcieP2pDisabled, !platform.pcie_p2p),
            (DenialReason::XgmiConnectedToCpu, owner.xgmi_connected_to_cpu),
            (DenialReason::Chipset, distance.is_none()),
            (DenialReason::SmallBar, owner.bar_size < owner.vram_size || owner.bar_size == 0),
            (DenialReason::NotAddressable,
                platform.iommu != IommuMode::Remap && !reference_addressable(&owner, &accessor)),
        ];
        for (reason, failed) in expect {
            prop_assert_eq!(reasons.contains(reason), failed, "{:?} in {:?}", reason, reasons);
        }
        // No bits besides the known reasons.
        let known: u32 = DenialReason::ALL.iter().map(|r| r.bit()).sum();
        prop_assert_eq!(reasons.bits() & !known, 0);
        prop_assert_eq!(reasons.is_empty(), reasons.iter().next().is_none());
    }

    /// amdgpu_device_is_peer_accessible without CONFIG_HSA_AMD_P2P (amdgpu_device.c): false for
    /// every pair, whatever else holds; kfd_dev_create_p2p_links adds no peer link then.
    #[test]
    fn no_hsa_amd_p2p_always_denies_first(
        owner in common::gpu(2), accessor in common::gpu(2), iommu in common::platform(),
        distance in distance(),
    ) {
        let platform = PlatformFacts { hsa_amd_p2p: false, ..iommu };
        let reasons = check_peer_access(&owner, &accessor, &platform, distance);
        prop_assert_eq!(reasons.primary(), Some(DenialReason::NoHsaAmdP2p));
    }

    #[test]
    fn pcie_p2p_off_always_denies(
        owner in common::gpu(2), accessor in common::gpu(2), iommu in common::platform(),
        distance in distance(),
    ) {
        let platform = PlatformFacts { pcie_p2p: false, hsa_amd_p2p: true, ..iommu };
        let reasons = check_peer_access(&owner, &accessor, &platform, distance);
        prop_assert!(reasons.contains(DenialReason::PcieP2pDisabled));
        prop_assert_eq!(reasons.primary(), Some(DenialReason::PcieP2pDisabled));
    }

    #[test]
    fn small_bar_owner_is_always_denied(
        mut owner in common::gpu(2), accessor in common::gpu(2), platform in common::platform(),
        distance in distance(), missing in 1u64..(1 << 30),
    ) {
        owner.bar_size = owner.vram_size - missing;
        prop_assert!(!owner.is_large_bar());
        let reasons = check_peer_access(&owner, &accessor, &platform, distance);
        prop_assert!(reasons.contains(DenialReason::SmallBar));
        // ... whereas a small-BAR *accessor* is not a reason by itself.
        let mut large_owner = owner;
        large_owner.bar_size = large_owner.vram_size;
        let reasons = check_peer_access(&large_owner, &owner, &platform, distance);
        prop_assert!(!reasons.contains(DenialReason::SmallBar));
    }

    /// Large BAR, a P2PDMA distance, an addressable BAR, pcie_p2p on and no XGMI to the CPU:
    /// always allowed, whatever else the GPUs look like.
    #[test]
    fn a_good_pair_is_always_allowed(
        mut owner in common::gpu(2), mut accessor in common::gpu(2),
        iommu in proptest::sample::select(vec![IommuMode::Remap, IommuMode::Passthrough, IommuMode::Off]),
        distance in 0u32..16, base in 0u64..(1 << 18),
    ) {
        owner.bar_size = owner.vram_size;
        owner.bar_base = base << 20;
        owner.xgmi_connected_to_cpu = false;
        accessor.dma_mask_bits = accessor.dma_mask_bits.max(40);
        let platform = PlatformFacts { iommu, pcie_p2p: true, hsa_amd_p2p: true };
        prop_assert_eq!(
            check_peer_access(&owner, &accessor, &platform, Some(distance)),
            DenialReasons::NONE
        );
    }

    /// With IOMMU remapping the DMA mask never matters.
    #[test]
    fn remapping_iommu_makes_every_bar_addressable(
        owner in common::gpu(2), mut accessor in common::gpu(2), bits in 0u32..=70,
        distance in distance(),
    ) {
        accessor.dma_mask_bits = bits;
        let platform = PlatformFacts { iommu: IommuMode::Remap, pcie_p2p: true, hsa_amd_p2p: true };
        let reasons = check_peer_access(&owner, &accessor, &platform, distance);
        prop_assert!(!reasons.contains(DenialReason::NotAddressable));
    }

    /// The DMA-mask check at its edges, for any mask width (including 0 and > 64).
    #[test]
    fn bar_within_dma_mask_matches_the_reference(
        mut owner in common::gpu(1), mut accessor in common::gpu(1), bits in 0u32..=70,
        base in prop_oneof![any::<u64>(), (0u32..64).prop_map(|b| 1u64 << b), (1u32..=64).prop_map(|b| u64::MAX >> (64 - b))],
        size in prop_oneof![0u64..4, any::<u64>(), (0u32..64).prop_map(|b| 1u64 << b)],
    ) {
        accessor.dma_mask_bits = bits;
        owner.bar_base = base;
        owner.bar_size = size;
        prop_assert_eq!(bar_within_dma_mask(&owner, &accessor), reference_addressable(&owner, &accessor));
    }

    /// Reason sets: bits are distinct, iteration is in report order, primary is the first.
    #[test]
    fn reason_sets_iterate_in_report_order(bits in any::<u32>()) {
        let set = DenialReasons::from_bits(bits);
        let listed: Vec<DenialReason> = set.iter().collect();
        let expected: Vec<DenialReason> =
            DenialReason::ALL.into_iter().filter(|r| bits & r.bit() != 0).collect();
        prop_assert_eq!(&listed, &expected);
        prop_assert_eq!(set.primary(), expected.first().copied());
        let rebuilt = listed.iter().fold(DenialReasons::NONE, |s, r| s.with(*r));
        prop_assert_eq!(rebuilt.bits(), bits & 0x3f);
        prop_assert_eq!(set.bits(), bits);
    }
}

#[test]
fn reasons_have_distinct_bits_names_and_text() {
    for (i, a) in DenialReason::ALL.iter().enumerate() {
        assert_eq!(a.bit().count_ones(), 1);
        assert!(!a.explanation().is_empty() && !a.remedy().is_empty());
        for b in &DenialReason::ALL[i + 1..] {
            assert_ne!(a.bit(), b.bit());
            assert_ne!(a.name(), b.name());
        }
    }
}

#[test]
fn bar_ending_exactly_at_the_mask_is_addressable_one_byte_more_is_not() {
    let mut owner = common::sample_gpu();
    let mut accessor = owner;
    accessor.dma_mask_bits = 44;
    owner.bar_size = 16 << 30;
    owner.bar_base = (1 << 44) - owner.bar_size;
    assert!(bar_within_dma_mask(&owner, &accessor));
    owner.bar_base += 1;
    assert!(!bar_within_dma_mask(&owner, &accessor));
    accessor.dma_mask_bits = 64;
    owner.bar_base = u64::MAX - owner.bar_size + 1;
    assert!(bar_within_dma_mask(&owner, &accessor));
}
