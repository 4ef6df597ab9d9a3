//! The stable JSON documents of `p2pctl` (documented in `docs/json-output.md`).
//!
//! - `hsa-p2p/topology/v1`: `p2pctl topo --json` and `p2pctl predict --json`: every node with its
//!   properties, memory banks, io_links, p2p_links and denials, plus the peer verdict of every
//!   ordered GPU pair.
//! - `hsa-p2p/matrix/v1`: `p2pctl matrix --json`: GPU x GPU matrices.
//!
//! Field names never change within a version; new fields may be added.

use serde::Serialize;

use hsa_p2p_core::gate::PeerDenial;
use hsa_p2p_core::link::{LinkFlags, LinkProperties};
use hsa_p2p_core::node::{HeapType, MemBankProperties, NodeProperties};
use hsa_p2p_core::topology::{Node, Topology};

use super::labels::{pci_address, Labels};
use crate::peers::{peer_pair, peer_pairs, PeerPair};
use crate::views::{build_table, TableKind, ViewInput, ViewTable};

/// Schema id of [`TopologyDocument`].
pub const TOPOLOGY_SCHEMA: &str = "hsa-p2p/topology/v1";
/// Schema id of [`MatrixDocument`].
pub const MATRIX_SCHEMA: &str = "hsa-p2p/matrix/v1";
/// Schema id of `p2pctl why --json`.
pub const WHY_SCHEMA: &str = "hsa-p2p/why/v1";
/// Schema id of `p2pctl copy --json` ([`crate::device::transfer::TransferReport`]).
pub const COPY_SCHEMA: &str = "hsa-p2p/copy/v1";
/// Every document `p2pctl` prints; each is described in `docs/json-output.md`.
pub const SCHEMAS: [&str; 5] = [
    TOPOLOGY_SCHEMA,
    MATRIX_SCHEMA,
    WHY_SCHEMA,
    COPY_SCHEMA,
    crate::bench_report::BENCH_SCHEMA,
];

/// Where a topology came from.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// Read from a sysfs tree.
    Sysfs {
        /// The topology root.
        path: String,
    },
    /// Predicted from a spec file.
    Spec {
        /// The spec file.
        path: String,
        /// The spec's `name`.
        name: String,
    },
}

/// `hsa-p2p/topology/v1`.
#[derive(Clone, Debug, Serialize)]
pub struct TopologyDocument {
    /// Always [`TOPOLOGY_SCHEMA`].
    pub schema: &'static str,
    /// Where the topology came from.
    pub source: Source,
    /// `generation_id`.
    pub generation_id: u64,
    /// `system_properties`.
    pub system: SystemJson,
    /// Every node, by id.
    pub nodes: Vec<NodeJson>,
    /// Every ordered pair of distinct GPU nodes, accessor-major.
    pub peers: Vec<PeerJson>,
}

/// `system_properties`.
#[derive(Clone, Debug, Serialize)]
pub struct SystemJson {
    /// `platform_oem`.
    pub platform_oem: u64,
    /// `platform_id`.
    pub platform_id: u64,
    /// `platform_rev`.
    pub platform_rev: u64,
}

/// One node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeJson {
    /// Node id.
    pub id: u32,
    /// `cpu` or `gpu`.
    pub kind: &'static str,
    /// Display label (spec GPU id, `cpuN`, or `nodeN`).
    pub label: String,
    /// `gpu_id` (0 for CPUs).
    pub gpu_id: u32,
    /// Content of `name`.
    pub name: String,
    /// PCI address `dddd:bb:dd.f` (GPUs only).
    pub pci_address: Option<String>,
    /// Whether the kernel publishes p2p links (`p2p_links_count` present).
    pub reports_p2p_links: bool,
    /// The modelled `properties` keys.
    pub properties: NodePropertiesJson,
    /// `mem_banks/*`.
    pub mem_banks: Vec<MemBankJson>,
    /// `io_links/*`.
    pub io_links: Vec<LinkJson>,
    /// `p2p_links/*`.
    pub p2p_links: Vec<LinkJson>,
    /// `p2p_denials/*` (hsa-p2p extension).
    pub p2p_denials: Vec<DenialJson>,
}

/// The modelled keys of a node's `properties`.
#[derive(Clone, Debug, Serialize)]
pub struct NodePropertiesJson {
    pub cpu_cores_count: u32,
    pub simd_count: u32,
    pub gfx_target_version: u32,
    pub vendor_id: u32,
    pub device_id: u32,
    pub location_id: u32,
    pub domain: u32,
    pub drm_render_minor: u32,
    pub hive_id: u64,
    pub num_sdma_engines: u32,
    pub num_sdma_xgmi_engines: u32,
    pub local_mem_size: u64,
    pub unique_id: u64,
}

/// A memory bank.
#[derive(Clone, Debug, Serialize)]
pub struct MemBankJson {
    /// Raw `heap_type`.
    pub heap_type: u32,
    /// `system`, `fb_public` (large BAR), `fb_private` (small BAR) or `unknown`.
    pub heap: &'static str,
    pub size_in_bytes: u64,
    pub flags: u32,
    pub width: u32,
    pub mem_clk_max: u32,
}

/// An io_link or p2p_link, every key of its `properties` file.
#[derive(Clone, Debug, Serialize)]
pub struct LinkJson {
    /// Raw link type (2 PCIe, 11 XGMI, …).
    #[serde(rename = "type")]
    pub link_type: u32,
    /// Link type name.
    pub type_name: &'static str,
    pub version_major: u32,
    pub version_minor: u32,
    pub node_from: u32,
    pub node_to: u32,
    pub weight: u32,
    pub min_latency: u32,
    pub max_latency: u32,
    /// MB/s.
    pub min_bandwidth: u32,
    /// MB/s.
    pub max_bandwidth: u32,
    pub recommended_transfer_size: u32,
    pub recommended_sdma_engine_id_mask: u32,
    /// Raw flag bits.
    pub flags: u32,
    /// Names of the set flag bits.
    pub flag_names: Vec<&'static str>,
}

/// A recorded denial.
#[derive(Clone, Debug, Serialize)]
pub struct DenialJson {
    pub node_from: u32,
    pub node_to: u32,
    /// Raw reason bits.
    pub reason_bits: u32,
    /// Reason names (`chipset`, `small BAR`, …).
    pub reasons: Vec<&'static str>,
    /// `pci_p2pdma_distance` when the PCI core allowed the pair.
    pub p2pdma_distance: Option<u32>,
}

/// The verdict of one ordered GPU pair.
#[derive(Clone, Debug, Serialize)]
pub struct PeerJson {
    /// Accessor node.
    pub from: u32,
    /// Owner node.
    pub to: u32,
    /// Whether the accessor may reach the owner's VRAM.
    pub access: bool,
    /// `io_links`, `p2p_links`, or null when there is no link.
    pub via: Option<&'static str>,
    /// Link type name, or null.
    pub link_type: Option<&'static str>,
    /// Link weight, or null.
    pub weight: Option<u32>,
    /// Link max bandwidth in MB/s, or null.
    pub max_bandwidth: Option<u32>,
    /// Recorded denial reasons (empty when allowed or unknown).
    pub reasons: Vec<&'static str>,
}

/// `hsa-p2p/matrix/v1`: GPU x GPU matrices, row = accessor, column = owner; the diagonal is null.
#[derive(Clone, Debug, Serialize)]
pub struct MatrixDocument {
    /// Always [`MATRIX_SCHEMA`].
    pub schema: &'static str,
    /// Where the topology came from.
    pub source: Source,
    /// The matrices (their fields sit at the document's top level).
    #[serde(flatten)]
    pub matrices: PairMatrices,
    /// The view tables asked for (all by default), as `p2pctl matrix` prints them.
    pub tables: Vec<ViewTable>,
}

/// GPU x GPU matrices, row = accessor, column = owner; the diagonal is null.
#[derive(Clone, Debug, Serialize)]
pub struct PairMatrices {
    /// The GPUs, in row/column order.
    pub gpus: Vec<MatrixGpu>,
    /// May the row GPU access the column GPU's VRAM?
    pub access: Vec<Vec<Option<bool>>>,
    /// Link type name (`PCIE`, `XGMI`), null on the diagonal and where there is no link.
    pub link_type: Vec<Vec<Option<&'static str>>>,
    /// Link weight.
    pub weight: Vec<Vec<Option<u32>>>,
    /// Link max bandwidth, MB/s.
    pub max_bandwidth: Vec<Vec<Option<u32>>>,
}

/// A matrix row/column.
#[derive(Clone, Debug, Serialize)]
pub struct MatrixGpu {
    /// Node id.
    pub node: u32,
    /// Display label.
    pub label: String,
    /// PCI address.
    pub pci_address: Option<String>,
}

/// Builds `hsa-p2p/topology/v1`.
pub fn topology_document(topology: &Topology, labels: &Labels, source: Source) -> TopologyDocument {
    TopologyDocument {
        schema: TOPOLOGY_SCHEMA,
        source,
        generation_id: topology.generation_id,
        system: SystemJson {
            platform_oem: topology.system.platform_oem,
            platform_id: topology.system.platform_id,
            platform_rev: topology.system.platform_rev,
        },
        nodes: topology
            .nodes
            .iter()
            .map(|node| node_json(node, labels))
            .collect(),
        peers: peer_pairs(topology).iter().map(peer_json).collect(),
    }
}

/// Builds `hsa-p2p/matrix/v1` for the GPUs of `input`, with the view tables `kinds`.
pub fn matrix_document(
    input: &ViewInput<'_>,
    kinds: &[TableKind],
    source: Source,
) -> MatrixDocument {
    MatrixDocument {
        schema: MATRIX_SCHEMA,
        source,
        matrices: pair_matrices(input.topology, input.labels, &input.gpus),
        tables: kinds.iter().map(|&kind| build_table(kind, input)).collect(),
    }
}

/// The GPU x GPU matrices of the GPU nodes `gpu_ids` of `topology`.
pub fn pair_matrices(topology: &Topology, labels: &Labels, gpu_ids: &[u32]) -> PairMatrices {
    let gpus: Vec<&Node> = gpu_ids.iter().filter_map(|&id| topology.node(id)).collect();
    PairMatrices {
        gpus: gpus
            .iter()
            .map(|node| MatrixGpu {
                node: node.id,
                label: labels.name(node.id),
                pci_address: pci_address(node),
            })
            .collect(),
        access: pair_matrix(topology, gpu_ids, |pair| Some(pair.has_access())),
        link_type: pair_matrix(topology, gpu_ids, |pair| {
            pair.link.map(|(_, link)| link.link_type.name())
        }),
        weight: pair_matrix(topology, gpu_ids, |pair| {
            pair.link.map(|(_, link)| link.weight)
        }),
        max_bandwidth: pair_matrix(topology, gpu_ids, |pair| {
            pair.link.map(|(_, link)| link.max_bandwidth)
        }),
    }
}

/// `cell` of every ordered pair of `gpus`, null on the diagonal.
fn pair_matrix<T>(
    topology: &Topology,
    gpus: &[u32],
    cell: impl Fn(&PeerPair<'_>) -> Option<T>,
) -> Vec<Vec<Option<T>>> {
    gpus.iter()
        .map(|&from| {
            gpus.iter()
                .map(|&to| {
                    if from == to {
                        None
                    } else {
                        cell(&peer_pair(topology, from, to))
                    }
                })
                .collect()
        })
        .collect()
}

fn node_json(node: &Node, labels: &Labels) -> NodeJson {
    NodeJson {
        id: node.id,
        kind: if node.is_gpu() { "gpu" } else { "cpu" },
        label: labels.name(node.id),
        gpu_id: node.gpu_id,
        name: node.name.clone(),
        pci_address: pci_address(node),
        reports_p2p_links: node.reports_p2p_links,
        properties: node_properties_json(&node.properties),
        mem_banks: node.mem_banks.iter().map(mem_bank_json).collect(),
        io_links: node.io_links.iter().map(link_json).collect(),
        p2p_links: node.p2p_links.iter().map(link_json).collect(),
        p2p_denials: node.p2p_denials.iter().map(denial_json).collect(),
    }
}

fn node_properties_json(p: &NodeProperties) -> NodePropertiesJson {
    NodePropertiesJson {
        cpu_cores_count: p.cpu_cores_count,
        simd_count: p.simd_count,
        gfx_target_version: p.gfx_target_version,
        vendor_id: p.vendor_id,
        device_id: p.device_id,
        location_id: p.location_id,
        domain: p.domain,
        drm_render_minor: p.drm_render_minor,
        hive_id: p.hive_id,
        num_sdma_engines: p.num_sdma_engines,
        num_sdma_xgmi_engines: p.num_sdma_xgmi_engines,
        local_mem_size: p.local_mem_size,
        unique_id: p.unique_id,
    }
}

fn mem_bank_json(bank: &MemBankProperties) -> MemBankJson {
    MemBankJson {
        heap_type: bank.heap_type.as_raw(),
        heap: match bank.heap_type {
            HeapType::System => "system",
            HeapType::FrameBufferPublic => "fb_public",
            HeapType::FrameBufferPrivate => "fb_private",
            HeapType::Unknown(_) => "unknown",
        },
        size_in_bytes: bank.size_in_bytes,
        flags: bank.flags,
        width: bank.width,
        mem_clk_max: bank.mem_clk_max,
    }
}

/// Names of the flag bits set in `flags`.
pub fn flag_names(flags: LinkFlags) -> Vec<&'static str> {
    [
        (LinkFlags::ENABLED, "ENABLED"),
        (LinkFlags::NON_COHERENT, "NON_COHERENT"),
        (LinkFlags::NO_ATOMICS_32, "NO_ATOMICS_32"),
        (LinkFlags::NO_ATOMICS_64, "NO_ATOMICS_64"),
        (LinkFlags::NO_PEER_TO_PEER_DMA, "NO_PEER_TO_PEER_DMA"),
    ]
    .into_iter()
    .filter(|(bit, _)| flags.contains(*bit))
    .map(|(_, name)| name)
    .collect()
}

fn link_json(link: &LinkProperties) -> LinkJson {
    LinkJson {
        link_type: link.link_type.as_raw(),
        type_name: link.link_type.name(),
        version_major: link.version_major,
        version_minor: link.version_minor,
        node_from: link.node_from,
        node_to: link.node_to,
        weight: link.weight,
        min_latency: link.min_latency,
        max_latency: link.max_latency,
        min_bandwidth: link.min_bandwidth,
        max_bandwidth: link.max_bandwidth,
        recommended_transfer_size: link.recommended_transfer_size,
        recommended_sdma_engine_id_mask: link.recommended_sdma_engine_id_mask,
        flags: link.flags.0,
        flag_names: flag_names(link.flags),
    }
}

fn denial_json(denial: &PeerDenial) -> DenialJson {
    DenialJson {
        node_from: denial.node_from,
        node_to: denial.node_to,
        reason_bits: denial.reasons.bits(),
        reasons: denial.reasons.iter().map(|reason| reason.name()).collect(),
        p2pdma_distance: denial.p2pdma_distance,
    }
}

fn peer_json(pair: &PeerPair<'_>) -> PeerJson {
    PeerJson {
        from: pair.from,
        to: pair.to,
        access: pair.has_access(),
        via: pair.link.map(|(via, _)| via.name()),
        link_type: pair.link.map(|(_, link)| link.link_type.name()),
        weight: pair.link.map(|(_, link)| link.weight),
        max_bandwidth: pair.link.map(|(_, link)| link.max_bandwidth),
        reasons: pair
            .denial
            .map(|denial| denial.reasons.iter().map(|r| r.name()).collect())
            .unwrap_or_default(),
    }
}
