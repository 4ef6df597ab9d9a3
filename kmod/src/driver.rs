// SPDX-License-Identifier: GPL-2.0

//! The PCI driver: binds emulated GPUs, validates their descriptor, registers their VRAM BAR
//! as P2PDMA memory and adds them to the published topology.

use kernel::device::Core;
use kernel::pci;
use kernel::prelude::*;

use crate::descriptor::Descriptor;
use crate::gpu::{gpu_facts, read_descriptor_bytes, VRAM_BAR};
use crate::platform::numa_node_count;
use crate::registry::{BoundGpu, REGISTRY};
use crate::shim::{hsa_p2p_p2pdma_add_bar, hsa_p2p_set_dma_mask, raw_pci_dev};
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

fn register_p2pdma(pdev: &pci::Device) -> Result {
    // SAFETY: `pdev` is bound for the duration of the call; the registration is device-managed
    // and released when the driver unbinds.
    kernel::error::to_result(unsafe { hsa_p2p_p2pdma_add_bar(raw_pci_dev(pdev), VRAM_BAR as i32) })
}

impl pci::Driver for HsaP2pDriver {
    type IdInfo = ();
    type Data<'bound> = BoundDevice<'bound>;
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pdev.enable_device_mem()?;
        pdev.set_master();
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
        // SAFETY: `pdev` is bound for the duration of the call.
        let ret = unsafe { hsa_p2p_set_dma_mask(raw_pci_dev(pdev), descriptor.dma_mask_bits) };
        kernel::error::to_result(ret).inspect_err(|_| {
            dev_err!(
                pdev,
                "cannot set a {}-bit DMA mask\n",
                descriptor.dma_mask_bits
            );
        })?;
        if facts.is_large_bar() {
            register_p2pdma(pdev).inspect_err(|error| {
                dev_err!(pdev, "cannot register BAR2 as P2PDMA memory: {:?}\n", error);
            })?;
        }
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
            dev_err!(pdev, "topology not republished after unbind: {:?}\n", error);
        }
    }
}

impl Drop for BoundDevice<'_> {
    fn drop(&mut self) {
        dev_dbg!(self.pdev, "unbound\n");
    }
}
