// SPDX-License-Identifier: GPL-2.0

//! The GPUs bound to the driver and the topology published for them.
//!
//! Every bind and unbind rebuilds the whole topology from the remaining GPUs' facts with the
//! shared core builder and republishes it with a new `generation_id`. Rebuilding equals
//! amdkfd's remove-and-renumber (a property the core's host tests check), and keeps one code
//! path for every change.

use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::pci;
use kernel::prelude::*;
use kernel::sync::{aref::ARef, Arc};

use crate::builder::{build_topology, BuildError, P2pdmaOracle};
use crate::facts::{GpuFacts, IommuMode, MachineFacts, PeerBandwidthRule, PlatformFacts};
use crate::fault_points;
use crate::gpu_id::{KnownGpuId, MAX_GPUS};
use crate::platform::{iommu_mode, numa_facts};
use crate::publish::{publish, KernelTopology, PeerTable};
use crate::shim::{hsa_p2p_p2pdma_distance, raw_pci_dev};
use crate::sysfs::TopologyDir;
use crate::vram::Vram;

/// A GPU bound to the driver.
pub(crate) struct BoundGpu {
    pub(crate) pdev: ARef<pci::Device>,
    pub(crate) facts: GpuFacts,
    /// Its VRAM BAR, for the misc device's buffers.
    pub(crate) vram: Arc<Vram>,
}

/// Whether an accessor may reach an owner's VRAM, as published.
pub(crate) enum PeerAccess {
    /// Both are the same GPU.
    Local,
    /// A p2p link from the accessor to the owner is published.
    Linked,
    /// No p2p link; the published denial's reason bits (0 when none is published).
    Denied(u32),
}

/// The bound GPUs, in bind order (= KFD node order), and what is published for them.
pub(crate) struct Registry {
    gpus: KVec<BoundGpu>,
    /// Every `gpu_id` handed out since the module was loaded, so that a GPU bound again gets
    /// its id back (and nobody else takes it meanwhile).
    known_gpu_ids: KVec<KnownGpuId>,
    generation: u64,
    published: Option<TopologyDir>,
    pcie_p2p: bool,
    peers: PeerTable,
}

kernel::sync::global_lock! {
    // SAFETY: initialised in the module's `init` before the driver is registered.
    pub(crate) unsafe(uninit) static REGISTRY: Mutex<Registry> = Registry::new();
}

/// `pci_p2pdma_distance` between bound GPUs.
struct KernelP2pdma<'a> {
    gpus: &'a [BoundGpu],
}

impl P2pdmaOracle for KernelP2pdma<'_> {
    fn p2pdma_distance(&self, owner: usize, accessor: usize) -> Option<u32> {
        let (owner, accessor) = (self.gpus.get(owner)?, self.gpus.get(accessor)?);
        // SAFETY: both devices are kept alive by the `ARef`s in the registry, which is locked
        // by our caller for the whole build.
        let distance = unsafe {
            hsa_p2p_p2pdma_distance(raw_pci_dev(&owner.pdev), raw_pci_dev(&accessor.pdev))
        };
        u32::try_from(distance).ok()
    }
}

impl Registry {
    const fn new() -> Self {
        Self {
            gpus: KVec::new(),
            known_gpu_ids: KVec::new(),
            generation: 0,
            published: None,
            pcie_p2p: true,
            peers: PeerTable::new(),
        }
    }

    /// Sets amdgpu's `pcie_p2p` switch (from the module parameter).
    pub(crate) fn set_pcie_p2p(&mut self, enabled: bool) {
        self.pcie_p2p = enabled;
    }

    /// Adds a GPU and republishes. On failure the GPU is gone again (its VRAM revoked, so no
    /// buffer can be allocated on a BAR the failed probe releases) and the remaining GPUs are
    /// republished, as if it never came.
    pub(crate) fn add(&mut self, gpu: BoundGpu) -> Result {
        self.gpus.push(gpu, GFP_KERNEL)?;
        let published = if fault_points::publish_fails() {
            Err(ENOMEM)
        } else {
            self.republish()
        };
        let error = match published.and_then(|()| self.remember_gpu_ids()) {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        if let Some(gpu) = self.gpus.pop() {
            gpu.vram.revoke_all();
        }
        self.republish_or_forget();
        Err(error)
    }

    /// Republishes after a change that already happened; when that fails, the lookup tables
    /// are emptied (they index GPUs by position, which the change moved): the device then
    /// finds no GPU until the next successful republish, rather than a wrong one.
    fn republish_or_forget(&mut self) {
        if let Err(error) = self.republish() {
            pr_err!("topology not republished: {:?}\n", error);
            self.peers = PeerTable::new();
        }
    }

    /// Records the `gpu_id`s of the bound GPUs that have none recorded. The record is bounded:
    /// when full, records of GPUs that are not bound make room, oldest first.
    fn remember_gpu_ids(&mut self) -> Result {
        const MAX_KNOWN: usize = 2 * MAX_GPUS;
        for &(index, gpu_id) in self.peers.gpu_ids.iter() {
            let Some(gpu) = self.gpus.get(index) else {
                continue;
            };
            if self
                .known_gpu_ids
                .iter()
                .any(|known| known.names(&gpu.facts))
            {
                continue;
            }
            if self.known_gpu_ids.len() >= MAX_KNOWN {
                let gpus = &self.gpus;
                let unbound = self
                    .known_gpu_ids
                    .iter()
                    .position(|known| !gpus.iter().any(|gpu| known.names(&gpu.facts)));
                if let Some(unbound) = unbound {
                    self.known_gpu_ids.remove(unbound)?;
                }
            }
            self.known_gpu_ids.push(
                KnownGpuId {
                    pci: gpu.facts.pci,
                    unique_id: gpu.facts.unique_id,
                    gpu_id,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(())
    }

    /// Frees the registry's storage (module exit, after every GPU is gone).
    pub(crate) fn release_storage(&mut self) {
        self.gpus = KVec::new();
        self.known_gpu_ids = KVec::new();
        self.peers = PeerTable::new();
    }

    /// Removes the GPU `pdev`, if bound, and republishes (a failure is logged and leaves no
    /// stale lookup table, see [`Self::republish_or_forget`]). Before it returns (so before the
    /// device's resources go), nothing refers to the GPU any more: its buffers are revoked (no
    /// user mapping, no peer mapping of them) and every peer mapping it holds as the accessor
    /// of another GPU's buffer is gone.
    pub(crate) fn remove(&mut self, pdev: &pci::Device) -> Result {
        let Some(index) = self
            .gpus
            .iter()
            .position(|gpu| raw_pci_dev(&gpu.pdev) == raw_pci_dev(pdev))
        else {
            return Ok(());
        };
        let going = self.gpus.remove(index)?;
        going.vram.revoke_all();
        for gpu in self.gpus.iter() {
            gpu.vram.drop_peer_mappings_of(&going.vram);
        }
        drop(going);
        self.republish_or_forget();
        Ok(())
    }

    /// The VRAM of the bound GPU `gpu_id`.
    pub(crate) fn vram(&self, gpu_id: u32) -> Option<Arc<Vram>> {
        let (index, _) = self.peers.gpu_ids.iter().find(|(_, id)| *id == gpu_id)?;
        self.gpus.get(*index).map(|gpu| gpu.vram.clone())
    }

    /// The `gpu_id` of the bound GPU whose VRAM is `vram` (`None` once it is unbound).
    pub(crate) fn gpu_id(&self, vram: &Vram) -> Option<u32> {
        let index = self
            .gpus
            .iter()
            .position(|gpu| core::ptr::eq(&*gpu.vram, vram))?;
        self.peers
            .gpu_ids
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, id)| *id)
    }

    /// Whether GPU `accessor` may reach the VRAM of GPU `owner` (both `gpu_id`s).
    pub(crate) fn peer_access(&self, accessor: u32, owner: u32) -> PeerAccess {
        if accessor == owner {
            return PeerAccess::Local;
        }
        if self.peers.links.contains(&(accessor, owner)) {
            return PeerAccess::Linked;
        }
        PeerAccess::Denied(
            self.peers
                .denials
                .iter()
                .find(|(from, to, _)| (*from, *to) == (accessor, owner))
                .map_or(0, |(_, _, reasons)| *reasons),
        )
    }

    /// Removes the published tree (module exit, after every GPU is gone; the bookkeeping goes
    /// with [`Self::release_storage`]).
    pub(crate) fn unpublish(&mut self) {
        self.published = None;
    }

    /// Rebuilds the topology from the bound GPUs and publishes it with a new generation.
    pub(crate) fn republish(&mut self) -> Result {
        let numa = numa_facts()?;
        let mut facts = KVec::with_capacity(self.gpus.len(), GFP_KERNEL)?;
        for gpu in self.gpus.iter() {
            facts.push(gpu.facts, GFP_KERNEL)?;
        }
        let iommu = self
            .gpus
            .first()
            .map_or(IommuMode::Off, |gpu| iommu_mode(&gpu.pdev));
        let machine = MachineFacts {
            cpus: &numa.cpus,
            numa_distances: &numa.distances,
            cpu_link_bandwidth_mbs: 0,
            gpus: &facts,
            known_gpu_ids: &self.known_gpu_ids,
            platform: PlatformFacts {
                iommu,
                pcie_p2p: self.pcie_p2p,
                hsa_amd_p2p: true,
            },
            peer_bandwidth: PeerBandwidthRule::Corrected,
        };
        let mut topology = KernelTopology::new();
        let oracle = KernelP2pdma { gpus: &self.gpus };
        build_topology(&machine, &oracle, &mut topology).map_err(|error| match error {
            BuildError::Sink(_) => ENOMEM,
            BuildError::NoCpu
            | BuildError::DistanceTableSize
            | BuildError::NumaNodeOutOfRange { .. }
            | BuildError::TooManyGpus => EINVAL,
        })?;
        self.peers = topology.peer_table()?;
        self.generation += 1;
        publish(&mut self.published, &topology, self.generation)?;
        pr_info!(
            "topology generation {}: {} GPUs, {} p2p links\n",
            self.generation,
            self.gpus.len(),
            topology.p2p_link_count()
        );
        Ok(())
    }
}
