// SPDX-License-Identifier: GPL-2.0

//! The PCI driver: binds emulated GPUs, validates their descriptor, registers their VRAM BAR
//! as P2PDMA memory and adds them to the published topology.

use kernel::bindings;
use kernel::device::Core;
use kernel::dma::{Device as _, DmaMask};
use kernel::pci;
use kernel::prelude::*;

use crate::descriptor::{Descriptor, DESCRIPTOR_PAGE_SIZE};
use crate::gpu::{gpu_facts, read_descriptor_bytes, VRAM_BAR};
use crate::platform::numa_node_count;
use crate::registry::{BoundGpu, REGISTRY};
use crate::shim::{hsa_p2p_p2pdma_init, raw_pci_dev};
use crate::vram::Vram;

/// The ivshmem-plain device id (vendor Red Hat / Qumranet 0x1af4).
const IVSHMEM_PLAIN: u32 = 0x1110;

pub(crate) struct HsaP2pDriver;

/// A bound GPU's driver data. The VRAM BAR mapping lives in the registry's [`Vram`] (shared
/// with the misc device's buffers) and is revoked by devres when the GPU unbinds.
pub(crate) struct BoundDevice<'bound> {
    pdev: &'bound pci::Device,
}

kernel::pci_device_table!(
    PCI_TABLE,
    <HsaP2pDriver as pci::Driver>::IdInfo,
    [(
        pci::DeviceId::from_id(pci::Vendor::REDHAT_QUMRANET, IVSHMEM_PLAIN),
        ()
    )]
);

fn init_p2pdma(pdev: &pci::Device) -> Result {
    // SAFETY: `pdev` is bound for the duration of the call; the provider is device-managed
    // and released when the driver unbinds (after `unbind`, which removes every mapping).
    kernel::error::to_result(unsafe { hsa_p2p_p2pdma_init(raw_pci_dev(pdev)) })
}

/// Enables `pdev` (memory decoding, for the descriptor), device-managed: it is disabled again
/// when probe fails or the driver unbinds. The 7.3 `pci::Device` only offers the unmanaged
/// `pci_enable_device_mem`, which nothing would undo.
fn enable_managed(pdev: &pci::Device) -> Result {
    // SAFETY: `pdev` is being probed; `pcim_enable_device` registers its own undo with devres.
    kernel::error::to_result(unsafe { bindings::pcim_enable_device(raw_pci_dev(pdev).cast()) })
}

impl pci::Driver for HsaP2pDriver {
    type IdInfo = ();
    type Data<'bound> = BoundDevice<'bound>;
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        // What the PCI core knows is checked before the device is touched.
        if pdev.resource_len(VRAM_BAR)? < DESCRIPTOR_PAGE_SIZE {
            dev_err!(pdev, "BAR{} cannot hold the descriptor page\n", VRAM_BAR);
            return Err(ENODEV);
        }
        enable_managed(pdev)?;
        let vram = pdev.iomap_region(VRAM_BAR, c"hsa_p2p")?;
        let descriptor = Descriptor::decode(&read_descriptor_bytes(&vram)?).map_err(|error| {
            // The core's errors implement `core::fmt::Display`; `Arguments` bridges to the
            // kernel's.
            dev_err!(
                pdev,
                "not an hsa-p2p GPU: {} (descriptor at BAR2 offset 0)\n",
                format_args!("{error}")
            );
            EINVAL
        })?;
        let nodes = numa_node_count();
        if descriptor.numa_node >= nodes {
            dev_err!(
                pdev,
                "descriptor names NUMA node {}, but {} nodes are online\n",
                descriptor.numa_node,
                nodes
            );
            return Err(EINVAL);
        }
        let facts = gpu_facts(pdev, &descriptor)?;
        let mask = DmaMask::try_new(descriptor.dma_mask_bits.min(64))?;
        // SAFETY: the device is being probed: nothing maps DMA for it concurrently.
        unsafe { pdev.dma_set_mask_and_coherent(mask) }.inspect_err(|_| {
            dev_err!(
                pdev,
                "cannot set a {}-bit DMA mask\n",
                descriptor.dma_mask_bits
            );
        })?;
        if facts.is_large_bar() {
            init_p2pdma(pdev).inspect_err(|error| {
                dev_err!(
                    pdev,
                    "cannot set up BAR2 as a P2PDMA provider: {:?}\n",
                    error
                );
            })?;
        }
        // Validated: only now may it master the bus.
        pdev.set_master();
        dev_info!(
            pdev,
            "GPU: VRAM {} MiB, BAR2 {} MiB at {:#x} ({} BAR), NUMA node {}, DMA mask {} bits\n",
            facts.vram_size >> 20,
            facts.bar_size >> 20,
            facts.bar_base,
            if facts.is_large_bar() {
                "large"
            } else {
                "small"
            },
            facts.numa_node,
            facts.dma_mask_bits
        );
        let vram = Vram::new(pdev, vram.into_devres()?, VRAM_BAR)?;
        REGISTRY.lock().add(BoundGpu {
            pdev: pdev.into(),
            facts,
            vram,
        })?;
        Ok(BoundDevice { pdev })
    }

    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, _this: Pin<&Self::Data<'bound>>) {
        if let Err(error) = REGISTRY.lock().remove(pdev) {
            dev_err!(pdev, "not removed from the registry: {:?}\n", error);
        }
    }
}

impl Drop for BoundDevice<'_> {
    fn drop(&mut self) {
        dev_dbg!(self.pdev, "unbound\n");
    }
}
