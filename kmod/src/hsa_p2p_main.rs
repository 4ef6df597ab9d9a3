// SPDX-License-Identifier: GPL-2.0

//! hsa_p2p: PCIe peer-to-peer between GPUs through large BARs, published as a KFD-format
//! topology with `p2p_links` under `/sys/kernel/hsa_p2p/topology`, and peer memory (VRAM
//! buffers, peer mappings, copies) through the misc device `/dev/hsa_p2p`.
//!
//! The rules (which pairs may talk, how links are composed) live in the shared `no_std` core
//! crate in `kmod/core`; its files are compiled into this module unchanged, mounted at the crate
//! root so that their `crate::` paths resolve as in the core crate itself.

use kernel::{driver::Registration, pci, prelude::*, InPlaceModule};

#[path = "../core/src/abi.rs"]
pub mod abi;
#[path = "../core/src/builder.rs"]
pub mod builder;
#[path = "../core/src/compose.rs"]
pub mod compose;
#[path = "../core/src/descriptor.rs"]
pub mod descriptor;
#[path = "../core/src/facts.rs"]
pub mod facts;
#[path = "../core/src/gate.rs"]
pub mod gate;
#[path = "../core/src/gpu_id.rs"]
pub mod gpu_id;
#[path = "../core/src/link.rs"]
pub mod link;
#[path = "../core/src/link_finish.rs"]
pub mod link_finish;
#[path = "../core/src/node.rs"]
pub mod node;
#[path = "../core/src/numa.rs"]
pub mod numa;
#[path = "../core/src/p2pdma.rs"]
pub mod p2pdma;
#[path = "../core/src/pcie.rs"]
pub mod pcie;
#[path = "../core/src/properties.rs"]
pub mod properties;

mod async_copy;
mod buffer;
mod copy_engine;
mod copy_queues;
mod driver;
mod eventfd;
mod fault_points;
mod gpu;
mod limits;
mod map_type;
mod peer;
mod platform;
mod publish;
mod registry;
mod shim;
mod sysfs;
mod user_mapping;
mod vram;

const MODULE_NAME: &CStr = <LocalModule as kernel::ModuleMetadata>::NAME;

/// Removes the published topology when the module goes, after the driver (and so every GPU)
/// is gone.
struct PublishedTopology;

impl PublishedTopology {
    fn publish(pcie_p2p: bool) -> Result<Self> {
        let mut registry = registry::REGISTRY.lock();
        registry.set_pcie_p2p(pcie_p2p);
        registry.republish()?;
        Ok(Self)
    }
}

impl Drop for PublishedTopology {
    fn drop(&mut self) {
        let mut registry = registry::REGISTRY.lock();
        registry.unpublish();
        // A static is never dropped: its vectors are freed here.
        registry.release_storage();
    }
}

#[pin_data]
struct HsaP2pModule {
    // Dropped first: no file can be open at module exit (each holds a module reference).
    #[pin]
    _device: peer::PeerDevice,
    // Then unbinding every GPU before the topology goes.
    #[pin]
    _driver: Registration<pci::Adapter<driver::HsaP2pDriver>>,
    _topology: PublishedTopology,
    #[pin]
    _fault_points: fault_points::FaultPoints,
    // Last: destroying the copy queues drains them once nothing can queue a copy any more.
    _copy_queues: copy_queues::CopyQueues,
}

impl InPlaceModule for HsaP2pModule {
    fn init(module: &'static kernel::ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: module init runs once, before the driver is registered, so nothing can lock
        // the registry yet.
        unsafe { registry::REGISTRY.init() };
        try_pin_init!(Self {
            _copy_queues: copy_queues::CopyQueues::create()?,
            _fault_points <- fault_points::FaultPoints::create(),
            _topology: PublishedTopology::publish(module_parameters::pcie_p2p.value())?,
            _driver <- Registration::new(MODULE_NAME, module),
            _device <- peer::PeerDevice::register(),
        })
    }
}

module! {
    type: HsaP2pModule,
    name: "hsa_p2p",
    authors: ["hsa-p2p developers"],
    description: "PCIe peer-to-peer between GPUs through large BARs, with a KFD-style p2p topology",
    license: "GPL v2",
    params: {
        pcie_p2p: bool {
            default: true,
            description: "Allow PCIe peer-to-peer access between GPUs (as amdgpu's pcie_p2p)",
        },
        max_buffers_per_file: u32 {
            default: crate::abi::DEFAULT_MAX_BUFFERS_PER_FILE,
            description: "Most VRAM buffers one open /dev/hsa_p2p may hold (ENOSPC beyond)",
        },
        max_bytes_per_file: u64 {
            default: crate::abi::DEFAULT_MAX_BYTES_PER_FILE,
            description: "Most VRAM bytes one open /dev/hsa_p2p may hold (ENOSPC beyond)",
        },
        max_async_copies_per_file: u32 {
            default: crate::abi::DEFAULT_MAX_ASYNC_COPIES_PER_FILE,
            description: "Most asynchronous copies one open /dev/hsa_p2p may have unreaped (EBUSY)",
        },
        copy_engines: u32 {
            default: 0,
            description: "Engines a direct copy is split across (0: the topology's, >= 2)",
        },
    },
}
