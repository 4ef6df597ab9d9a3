// SPDX-License-Identifier: GPL-2.0

//! What the module learns about one emulated GPU at probe: its descriptor page and PCI facts.

use kernel::io::Io;
use kernel::pci;
use kernel::prelude::*;

use crate::descriptor::{Descriptor, PciIdentity, DESCRIPTOR_LEN};
use crate::facts::{GpuFacts, PciAddress};
use crate::shim::{hsa_p2p_pci_domain, raw_pci_dev};

/// The BAR holding the emulated GPU's VRAM (ivshmem-plain's shared-memory BAR).
pub(crate) const VRAM_BAR: u32 = 2;

/// Reads the descriptor bytes at the start of the VRAM BAR.
pub(crate) fn read_descriptor_bytes<const SIZE: usize>(
    vram: &pci::Bar<'_, SIZE>,
) -> Result<[u8; DESCRIPTOR_LEN]> {
    let mut bytes = [0u8; DESCRIPTOR_LEN];
    for (index, chunk) in bytes.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&vram.try_read32(index * 4)?.to_le_bytes());
    }
    Ok(bytes)
}

/// The facts the rules need about `pdev`, from its descriptor and the PCI core.
pub(crate) fn gpu_facts(pdev: &pci::Device, descriptor: &Descriptor) -> Result<GpuFacts> {
    let dev_id = pdev.dev_id();
    // SAFETY: `pdev` is a live device for the duration of the call.
    let domain = unsafe { hsa_p2p_pci_domain(raw_pci_dev(pdev)) };
    let [bus, devfn] = dev_id.to_be_bytes();
    Ok(descriptor.gpu_facts(PciIdentity {
        pci: PciAddress {
            domain,
            bus,
            device: devfn >> 3,
            function: devfn & 0x7,
        },
        vendor_id: u32::from(pdev.vendor_id().as_raw()),
        device_id: u32::from(pdev.device_id()),
        bar_base: pdev.resource_start(VRAM_BAR)?,
        bar_size: pdev.resource_len(VRAM_BAR)?,
    }))
}
