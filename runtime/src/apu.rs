//! What a peer link with an APU's integrated GPU means. Linux 7.3 has no APU rule in the
//! peer-access gate: for an APU (`AMD_IS_APU`, not passed through to a VM) amdgpu's
//! `gmc_v9_0_mc_init`/`gmc_v11_0_mc_init` set `aper_base` to the carve-out's physical address
//! (`get_mc_fb_offset`) and `aper_size` to the real VRAM size, so visible == real VRAM:
//! `amdgpu_device_is_peer_accessible` and `kfd_dev_is_large_bar` see a large BAR, and the pair
//! passes whenever `pci_p2pdma_distance` and the DMA mask allow it. The link amdkfd publishes
//! then leads to system memory, not to device memory behind a BAR.

/// The notes `p2pctl why` adds for a pair whose accessor and/or owner is an APU's iGPU.
pub fn pair_notes(accessor_is_apu: bool, owner_is_apu: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if owner_is_apu {
        notes.push(
            "the owner is an APU's integrated GPU: its VRAM is a carve-out of system memory \
             with no BAR behind it; amdgpu takes the carve-out as a large BAR (aper_base = its \
             physical address, aper_size = the real VRAM size: gmc_v9_0_mc_init / \
             gmc_v11_0_mc_init), so the peer-access gate and kfd_dev_is_large_bar pass and a \
             peer reaches it at its physical address: through system memory, not over PCIe \
             peer-to-peer"
                .to_string(),
        );
    }
    if accessor_is_apu {
        notes.push(
            "the accessor is an APU's integrated GPU: it reaches the owner's BAR from the \
             SoC's internal bus, through the host bridge (pci_p2pdma_distance: an AMD Zen \
             CPU's host bridge is trusted, cpu_supports_p2pdma)"
                .to_string(),
        );
    }
    notes
}
