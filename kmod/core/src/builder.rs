//! Builds a whole KFD topology from machine facts, in the order amdkfd would.
//!
//! amdkfd adds CPU nodes first, then GPUs one at a time; each new GPU brings its io_links (its
//! PCIe link to its CPU, XGMI links to hive peers already present), its indirect p2p links to
//! the other CPUs, and peer links with every earlier GPU outside its hive. Emitting in that
//! order gives every node its links in the kernel's order. Removing a GPU and renumbering gives
//! the same topology as building without it (a property the tests check), so a driver may
//! simply rebuild on every change.
//!
//! The builder allocates nothing: it hands each record to a [`TopologySink`].

use crate::compose::{
    cpu_to_cpu_link, cpu_to_gpu_link, gpu_to_cpu_link, indirect_link, peer_link,
    upstream_peer_max_bandwidth, xgmi_link,
};
use crate::facts::{GpuFacts, MachineFacts, PeerBandwidthRule};
use crate::gate::{check_peer_access, PeerDenial};
use crate::gpu_id::{gpu_id, MAX_GPUS};
use crate::link::{LinkFlags, LinkProperties, LinkType};
use crate::link_finish::{
    cpu_reaches_gpu_memory, inbound_flags, num_sdma_xgmi_engines, outbound_flags,
    recommended_sdma_engines, NUM_SDMA_ENGINES,
};
use crate::node::{HeapType, MemBankProperties, NodeProperties};

/// The kernel's answer to `pci_p2pdma_distance(owner, accessor)`, by GPU index.
pub trait P2pdmaOracle {
    /// `Some(distance)` when the PCI core allows P2P DMA from `accessor` to `owner`'s memory,
    /// `None` when it refuses the pair.
    fn p2pdma_distance(&self, owner: usize, accessor: usize) -> Option<u32>;
}

/// What kind of node a [`NodeRecord`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A CPU (NUMA) node.
    Cpu,
    /// A GPU, with its index in [`MachineFacts::gpus`].
    Gpu(usize),
}

/// A node, as handed to the sink before any of its links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// Node id (its directory name under `nodes/`).
    pub id: u32,
    /// CPU or GPU.
    pub kind: NodeKind,
    /// `gpu_id` (0 for CPU nodes).
    pub gpu_id: u32,
    /// Node properties, without the counts (the sink knows them).
    pub properties: NodeProperties,
    /// The node's single memory bank.
    pub mem_bank: MemBankProperties,
}

/// Receives a topology record by record. Links belong to the node in `link.node_from`.
pub trait TopologySink {
    /// Error of the sink (e.g. allocation failure in the kernel).
    type Error;
    /// A new node; node ids arrive in increasing order starting at 0.
    fn add_node(&mut self, node: &NodeRecord) -> Result<(), Self::Error>;
    /// An io_link, appended to node `link.node_from`.
    fn add_io_link(&mut self, link: &LinkProperties) -> Result<(), Self::Error>;
    /// A p2p_link, appended to node `link.node_from`.
    fn add_p2p_link(&mut self, link: &LinkProperties) -> Result<(), Self::Error>;
    /// Why accessor `denial.node_from` gets no p2p link to `denial.node_to`.
    fn add_peer_denial(&mut self, denial: &PeerDenial) -> Result<(), Self::Error>;
}

/// Why facts could not be turned into a topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError<E> {
    /// There is no CPU node.
    NoCpu,
    /// The distance table is not `cpus x cpus`.
    DistanceTableSize,
    /// A GPU names a CPU node that does not exist.
    NumaNodeOutOfRange {
        /// The GPU's index.
        gpu: usize,
    },
    /// More GPUs than [`MAX_GPUS`].
    TooManyGpus,
    /// The sink failed.
    Sink(E),
}

impl<E: core::fmt::Display> core::fmt::Display for BuildError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::NoCpu => f.write_str("the machine has no CPU node"),
            BuildError::DistanceTableSize => {
                f.write_str("the NUMA distance table is not CPUs x CPUs")
            }
            BuildError::NumaNodeOutOfRange { gpu } => {
                write!(f, "GPU {gpu} is attached to a CPU node that does not exist")
            }
            BuildError::TooManyGpus => write!(f, "more than {MAX_GPUS} GPUs"),
            BuildError::Sink(error) => write!(f, "{error}"),
        }
    }
}

/// Node id of GPU `index` of a machine with `cpu_count` CPU nodes: GPU nodes follow the CPU
/// nodes, in builder (bind) order.
pub const fn gpu_node_id(cpu_count: usize, index: usize) -> u32 {
    (cpu_count + index) as u32
}

/// The GPU's first io_link, to its CPU, as the second pass leaves it: with the CPU's engines
/// only when the CPU has a link back (the pass sets them on both ends of a pair).
fn gpu_link_of(machine: &MachineFacts<'_>, index: usize, gpu: &GpuFacts) -> LinkProperties {
    let link = gpu_to_cpu_link(gpu_node_id(machine.cpus.len(), index), gpu.numa_node, gpu);
    let engines = if cpu_reaches_gpu_memory(gpu) {
        recommended_sdma_engines(gpu, None, link.link_type).0
    } else {
        0
    };
    LinkProperties {
        recommended_sdma_engine_id_mask: engines,
        ..link
    }
}

fn cpu_link(machine: &MachineFacts<'_>, from: u32, to: u32) -> LinkProperties {
    let distance = machine.numa_distance(from, to).unwrap_or(0);
    cpu_to_cpu_link(from, to, distance, machine.cpu_link_bandwidth_mbs)
}

fn gpu_node_record(machine: &MachineFacts<'_>, index: usize, gpu: &GpuFacts) -> NodeRecord {
    let heap_type = if gpu.is_large_bar() {
        HeapType::FrameBufferPublic
    } else {
        HeapType::FrameBufferPrivate
    };
    NodeRecord {
        id: gpu_node_id(machine.cpus.len(), index),
        kind: NodeKind::Gpu(index),
        gpu_id: gpu_id(machine.gpus, machine.known_gpu_ids, index),
        properties: NodeProperties {
            simd_count: gpu.simd_count,
            gfx_target_version: gpu.gfx_target_version,
            vendor_id: gpu.vendor_id,
            device_id: gpu.device_id,
            location_id: gpu.pci.location_id(),
            domain: gpu.pci.domain,
            drm_render_minor: gpu.drm_render_minor,
            hive_id: gpu.xgmi.map_or(0, |xgmi| xgmi.hive_id),
            num_sdma_engines: NUM_SDMA_ENGINES,
            num_sdma_xgmi_engines: num_sdma_xgmi_engines(gpu),
            local_mem_size: gpu.vram_size,
            unique_id: gpu.unique_id,
            ..NodeProperties::default()
        },
        mem_bank: MemBankProperties {
            heap_type,
            size_in_bytes: gpu.vram_size,
            flags: 0,
            width: 0,
            mem_clk_max: 0,
        },
    }
}

/// Builds the topology of `machine`, handing every record to `sink` in amdkfd's order.
pub fn build_topology<S: TopologySink>(
    machine: &MachineFacts<'_>,
    oracle: &impl P2pdmaOracle,
    sink: &mut S,
) -> Result<(), BuildError<S::Error>> {
    let cpu_count = machine.cpus.len();
    if cpu_count == 0 {
        return Err(BuildError::NoCpu);
    }
    if machine.numa_distances.len() != cpu_count * cpu_count {
        return Err(BuildError::DistanceTableSize);
    }
    if machine.gpus.len() > MAX_GPUS {
        return Err(BuildError::TooManyGpus);
    }
    if let Some(gpu) = machine
        .gpus
        .iter()
        .position(|gpu| gpu.numa_node as usize >= cpu_count)
    {
        return Err(BuildError::NumaNodeOutOfRange { gpu });
    }

    for (index, cpu) in machine.cpus.iter().enumerate() {
        let id = index as u32;
        sink.add_node(&NodeRecord {
            id,
            kind: NodeKind::Cpu,
            gpu_id: 0,
            properties: NodeProperties {
                cpu_cores_count: cpu.cpu_cores,
                ..NodeProperties::default()
            },
            mem_bank: MemBankProperties {
                heap_type: HeapType::System,
                size_in_bytes: cpu.memory_bytes,
                flags: 0,
                width: 0,
                mem_clk_max: 0,
            },
        })
        .map_err(BuildError::Sink)?;
        for other in (0..cpu_count as u32).filter(|other| *other != id) {
            sink.add_io_link(&cpu_link(machine, id, other))
                .map_err(BuildError::Sink)?;
        }
    }

    for (index, gpu) in machine.gpus.iter().enumerate() {
        add_gpu(machine, oracle, sink, index, gpu).map_err(BuildError::Sink)?;
    }
    Ok(())
}

fn add_gpu<S: TopologySink>(
    machine: &MachineFacts<'_>,
    oracle: &impl P2pdmaOracle,
    sink: &mut S,
    index: usize,
    gpu: &GpuFacts,
) -> Result<(), S::Error> {
    let node = gpu_node_id(machine.cpus.len(), index);
    sink.add_node(&gpu_node_record(machine, index, gpu))?;

    // io_links: the PCIe link to the GPU's CPU (and back, if the CPU may reach the GPU's
    // memory), then XGMI links to hive peers; flags and engines as the second pass sets them.
    let gpu_link = gpu_link_of(machine, index, gpu);
    sink.add_io_link(&gpu_link)?;
    if cpu_reaches_gpu_memory(gpu) {
        sink.add_io_link(&cpu_to_gpu_link(&gpu_link))?;
    }
    for (peer_index, peer) in machine.gpus[..index].iter().enumerate() {
        if let (true, Some(mine), Some(theirs)) = (gpu.shares_hive_with(peer), gpu.xgmi, peer.xgmi)
        {
            let peer_node = gpu_node_id(machine.cpus.len(), peer_index);
            let (inbound, both_non_coherent) = inbound_flags(gpu, Some(peer), LinkType::Xgmi);
            let outbound = outbound_flags(gpu, LinkType::Xgmi);
            let (out_engines, in_engines) =
                recommended_sdma_engines(gpu, Some(peer), LinkType::Xgmi);
            sink.add_io_link(&LinkProperties {
                flags: if both_non_coherent {
                    outbound | LinkFlags::NON_COHERENT
                } else {
                    outbound
                },
                recommended_sdma_engine_id_mask: out_engines,
                ..xgmi_link(node, peer_node, &mine, &theirs)
            })?;
            sink.add_io_link(&LinkProperties {
                flags: inbound,
                recommended_sdma_engine_id_mask: in_engines,
                ..xgmi_link(peer_node, node, &theirs, &mine)
            })?;
        }
    }

    // Indirect links to every CPU the GPU is not attached to; CPU -> GPU only with a large BAR.
    for far_cpu in (0..machine.cpus.len() as u32).filter(|cpu| *cpu != gpu.numa_node) {
        let link = indirect_link(&gpu_link, &cpu_link(machine, far_cpu, gpu.numa_node));
        sink.add_p2p_link(&link)?;
        if gpu.is_large_bar() {
            sink.add_p2p_link(&cpu_to_gpu_link(&link))?;
        }
    }

    // Peer links with each earlier GPU outside the hive: first the earlier GPU reaching the new
    // one's BAR, then the new one reaching the earlier GPU's.
    for (peer_index, peer) in machine.gpus[..index].iter().enumerate() {
        if gpu.shares_hive_with(peer) {
            continue;
        }
        let to_new = peer_access(machine, oracle, index, peer_index);
        let to_peer = peer_access(machine, oracle, peer_index, index);
        let (inbound, _) = inbound_flags(gpu, Some(peer), LinkType::Pcie);
        // The link towards the new GPU copies its io_link before the second pass (flags 0, no
        // engines); the pass reaches it only as the way back of a link the new GPU has.
        let to_new_flags = if to_peer.is_ok() {
            inbound
        } else {
            LinkFlags::NONE
        };
        let to_peer_flags = if to_new.is_ok() {
            outbound_flags(gpu, LinkType::Pcie) | LinkFlags::NON_COHERENT
        } else {
            outbound_flags(gpu, LinkType::Pcie)
        };
        add_peer_link(machine, sink, index, peer_index, to_new, to_new_flags)?;
        add_peer_link(machine, sink, peer_index, index, to_peer, to_peer_flags)?;
    }
    Ok(())
}

/// Why `accessor` may not reach `owner`'s BAR (GPU indices), if it may not.
fn peer_access(
    machine: &MachineFacts<'_>,
    oracle: &impl P2pdmaOracle,
    owner: usize,
    accessor: usize,
) -> Result<Option<u32>, PeerDenial> {
    let distance = oracle.p2pdma_distance(owner, accessor);
    let reasons = check_peer_access(
        &machine.gpus[owner],
        &machine.gpus[accessor],
        &machine.platform,
        distance,
    );
    if reasons.is_empty() {
        return Ok(distance);
    }
    Err(PeerDenial {
        node_from: gpu_node_id(machine.cpus.len(), accessor),
        node_to: gpu_node_id(machine.cpus.len(), owner),
        reasons,
        p2pdma_distance: distance,
    })
}

/// Adds the link from `accessor` to `owner` (GPU indices) with `flags` if the gate passed,
/// else the denial.
///
/// The link copies the owner's first io_link (kfd_add_peer_prop): as the second pass left it
/// for an earlier GPU, as the CRAT gave it (no engines) for the GPU being added.
fn add_peer_link<S: TopologySink>(
    machine: &MachineFacts<'_>,
    sink: &mut S,
    owner: usize,
    accessor: usize,
    access: Result<Option<u32>, PeerDenial>,
    flags: LinkFlags,
) -> Result<(), S::Error> {
    if let Err(denial) = access {
        return sink.add_peer_denial(&denial);
    }
    let (owner_gpu, accessor_gpu) = (&machine.gpus[owner], &machine.gpus[accessor]);
    let mut owner_link = gpu_link_of(machine, owner, owner_gpu);
    if owner > accessor {
        owner_link.recommended_sdma_engine_id_mask = 0;
    }
    let accessor_link = gpu_link_of(machine, accessor, accessor_gpu);
    let cpu_hop = (owner_gpu.numa_node != accessor_gpu.numa_node)
        .then(|| cpu_link(machine, owner_gpu.numa_node, accessor_gpu.numa_node));
    let link = peer_link(
        &owner_link,
        &accessor_link,
        cpu_hop.as_ref(),
        gpu_node_id(machine.cpus.len(), accessor),
        gpu_node_id(machine.cpus.len(), owner),
    );
    let max_bandwidth = match machine.peer_bandwidth {
        PeerBandwidthRule::Corrected => link.max_bandwidth,
        PeerBandwidthRule::AsAmdkfd => {
            upstream_peer_max_bandwidth(&accessor_link, cpu_hop.as_ref())
        }
    };
    sink.add_p2p_link(&LinkProperties {
        flags,
        max_bandwidth,
        ..link
    })
}
