//! Strategies shared by the property tests: GPUs, links and whole machines with a P2PDMA oracle.

#![allow(dead_code)]

use hsa_p2p_core::builder::P2pdmaOracle;
use hsa_p2p_core::facts::{
    CpuFacts, GpuFacts, IommuMode, MachineFacts, PciAddress, PeerBandwidthRule, PlatformFacts,
    XgmiFacts, XgmiWiring,
};
use hsa_p2p_core::link::{LinkFlags, LinkProperties, LinkType};
use hsa_p2p_core::pcie::{PcieGen, PcieLink, PCIE_WIDTHS};
use proptest::prelude::*;
use proptest::sample::select;

pub const GIB: u64 = 1 << 30;

pub fn pcie_gen() -> impl Strategy<Value = PcieGen> {
    select(vec![
        PcieGen::Gen1,
        PcieGen::Gen2,
        PcieGen::Gen3,
        PcieGen::Gen4,
        PcieGen::Gen5,
    ])
}

pub fn pcie_link() -> impl Strategy<Value = PcieLink> {
    (pcie_gen(), select(PCIE_WIDTHS.to_vec())).prop_map(|(gen, width)| PcieLink { gen, width })
}

pub fn pci_address() -> impl Strategy<Value = PciAddress> {
    (0u32..2, any::<u8>(), 0u8..32, 0u8..8).prop_map(|(domain, bus, device, function)| PciAddress {
        domain,
        bus,
        device,
        function,
    })
}

/// Where a BAR sits: low (inside every DMA mask), between 40 and 48 bits, or anywhere.
pub fn bar_base() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..(1 << 28)).prop_map(|page| page << 12),
        ((1u64 << 40)..(1u64 << 48)),
        any::<u64>(),
    ]
}

/// A GPU hanging off CPU node `0..cpus`, outside any hive.
pub fn gpu(cpus: u32) -> impl Strategy<Value = GpuFacts> {
    let identity = (
        pci_address(),
        any::<u16>(),
        select(vec![90006u32, 90008, 90010, 90402, 110000]),
        1u32..512,
    );
    let memory = (
        1u64..=64,
        prop_oneof![
            3 => Just(None),
            1 => (0u64..8).prop_map(Some),
        ],
        bar_base(),
        select(vec![32u32, 40, 44, 48, 64]),
    );
    let link = (
        0..cpus,
        pcie_link(),
        any::<bool>(),
        proptest::bool::weighted(0.1),
        0u32..300,
        any::<u64>(),
    );
    (identity, memory, link).prop_map(
        |(
            (pci, device_id, gfx_target_version, simd_count),
            (vram_gib, small_bar_log2, bar_base, dma_mask_bits),
            (numa_node, pcie, pcie_atomics, xgmi_connected_to_cpu, drm_render_minor, unique_id),
        )| {
            let vram_size = vram_gib * GIB;
            // Small BAR: 256 MiB << k, always below the VRAM size.
            let bar_size = match small_bar_log2 {
                Some(k) => ((256u64 << 20) << k).min(vram_size / 2),
                None => vram_size,
            };
            GpuFacts {
                pci,
                vendor_id: 0x1002,
                device_id: u32::from(device_id),
                gfx_target_version,
                simd_count,
                vram_size,
                bar_base,
                bar_size,
                numa_node,
                dma_mask_bits,
                xgmi: None,
                xgmi_connected_to_cpu,
                pcie,
                pcie_atomics,
                drm_render_minor,
                unique_id,
            }
        },
    )
}

/// Any link record, every field arbitrary (the type through `from_raw`, so it is canonical).
pub fn any_link() -> impl Strategy<Value = LinkProperties> {
    (
        (
            any::<u32>().prop_map(LinkType::from_raw),
            any::<u32>(),
            any::<u32>(),
        ),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(
            |(
                (link_type, version_major, version_minor),
                (node_from, node_to, weight),
                (min_latency, max_latency, min_bandwidth, max_bandwidth),
                (recommended_transfer_size, recommended_sdma_engine_id_mask, flags),
            )| LinkProperties {
                link_type,
                version_major,
                version_minor,
                node_from,
                node_to,
                weight,
                min_latency,
                max_latency,
                min_bandwidth,
                max_bandwidth,
                recommended_transfer_size,
                recommended_sdma_engine_id_mask,
                flags: LinkFlags(flags),
            },
        )
}

/// A link with realistic magnitudes (no saturation), for sum/min properties.
pub fn small_link() -> impl Strategy<Value = LinkProperties> {
    (
        (0u32..20, 0u32..16, 0u32..16),
        (0u32..1000, 0u32..100_000, 0u32..100_000),
        (0u32..1_000_000, 0u32..1_000_000, 0u32..32),
    )
        .prop_map(
            |(
                (node_from, node_to, flags),
                (weight, min_latency, max_latency),
                (min_bandwidth, max_bandwidth, type_raw),
            )| LinkProperties {
                weight,
                min_latency,
                max_latency,
                min_bandwidth,
                max_bandwidth,
                flags: LinkFlags(flags),
                ..LinkProperties::new(LinkType::from_raw(type_raw), node_from, node_to)
            },
        )
}

/// An oracle answering from a table, `table[owner][accessor]`.
#[derive(Clone, Debug)]
pub struct TableOracle(pub Vec<Vec<Option<u32>>>);

impl P2pdmaOracle for TableOracle {
    fn p2pdma_distance(&self, owner: usize, accessor: usize) -> Option<u32> {
        *self.0.get(owner)?.get(accessor)?
    }
}

impl TableOracle {
    /// The table without GPU `index` (what the PCI core answers once that GPU is gone).
    pub fn without(&self, index: usize) -> TableOracle {
        TableOracle(
            self.0
                .iter()
                .enumerate()
                .filter(|(row, _)| *row != index)
                .map(|(_, row)| {
                    row.iter()
                        .enumerate()
                        .filter(|(column, _)| *column != index)
                        .map(|(_, d)| *d)
                        .collect()
                })
                .collect(),
        )
    }
}

/// An owned machine: what [`MachineFacts`] borrows.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cpus: Vec<CpuFacts>,
    pub numa_distances: Vec<u32>,
    pub cpu_link_bandwidth_mbs: u32,
    pub gpus: Vec<GpuFacts>,
    pub platform: PlatformFacts,
    pub oracle: TableOracle,
    pub peer_bandwidth: PeerBandwidthRule,
}

impl Machine {
    pub fn facts(&self) -> MachineFacts<'_> {
        MachineFacts {
            cpus: &self.cpus,
            numa_distances: &self.numa_distances,
            cpu_link_bandwidth_mbs: self.cpu_link_bandwidth_mbs,
            gpus: &self.gpus,
            known_gpu_ids: &[],
            platform: self.platform,
            peer_bandwidth: self.peer_bandwidth,
        }
    }

    /// The same machine without GPU `index` (XGMI hive facts left as they were: the hive's
    /// wiring does not change when one member's driver unbinds).
    pub fn without_gpu(&self, index: usize) -> Machine {
        let mut machine = self.clone();
        machine.gpus.remove(index);
        machine.oracle = self.oracle.without(index);
        machine
    }
}

pub fn platform() -> impl Strategy<Value = PlatformFacts> {
    (
        select(vec![
            IommuMode::Remap,
            IommuMode::Passthrough,
            IommuMode::Off,
        ]),
        proptest::bool::weighted(0.85),
        proptest::bool::weighted(0.9),
    )
        .prop_map(|(iommu, pcie_p2p, hsa_amd_p2p)| PlatformFacts {
            iommu,
            pcie_p2p,
            hsa_amd_p2p,
        })
}

/// A machine with 1..=3 CPU nodes (symmetric SLIT table, 10 on the diagonal), 0..=max_gpus
/// GPUs, some of them in up to two XGMI hives, and a random P2PDMA oracle.
pub fn machine(max_gpus: usize) -> impl Strategy<Value = Machine> {
    (1u32..=3)
        .prop_flat_map(move |cpus| {
            let n = cpus as usize;
            (
                Just(cpus),
                proptest::collection::vec((1u32..64, 1u64..512), n),
                proptest::collection::vec(select(vec![12u32, 16, 20, 21, 32]), n * n),
                select(vec![0u32, 25_000, 64_000]),
                proptest::collection::vec((gpu(cpus), 0u8..3), 0..=max_gpus),
                platform(),
                any::<bool>(),
            )
        })
        .prop_flat_map(
            |(cpus, cpu_facts, raw_distances, bandwidth, gpus, platform, ring)| {
                let n = cpus as usize;
                let gpu_count = gpus.len();
                let cpu_facts: Vec<CpuFacts> = cpu_facts
                    .into_iter()
                    .map(|(cores, mem)| CpuFacts {
                        cpu_cores: cores,
                        memory_bytes: mem * GIB,
                    })
                    .collect();
                // Symmetric: use the upper triangle for both halves.
                let mut numa_distances = vec![0u32; n * n];
                for from in 0..n {
                    for to in 0..n {
                        numa_distances[from * n + to] = if from == to {
                            10
                        } else {
                            raw_distances[from.min(to) * n + from.max(to)]
                        };
                    }
                }
                // Hive membership: label 0 = no hive, 1 and 2 = hives 0x100 and 0x200.
                let mut facts: Vec<GpuFacts> = gpus.iter().map(|(g, _)| *g).collect();
                for hive in [1u8, 2] {
                    let members: Vec<usize> =
                        (0..gpu_count).filter(|&i| gpus[i].1 == hive).collect();
                    for (position, &member) in members.iter().enumerate() {
                        let wiring = if ring {
                            XgmiWiring::Ring(2)
                        } else {
                            XgmiWiring::Full(2)
                        };
                        facts[member].xgmi = Some(XgmiFacts::member(
                            u64::from(hive) << 8,
                            position as u32,
                            members.len() as u32,
                            23_000,
                            wiring,
                        ));
                    }
                }
                let oracle = proptest::collection::vec(
                    proptest::collection::vec(
                        prop_oneof![1 => Just(None), 3 => (1u32..8).prop_map(Some)],
                        gpu_count,
                    ),
                    gpu_count,
                );
                (
                    Just((cpu_facts, numa_distances, bandwidth, facts, platform)),
                    oracle,
                )
            },
        )
        .prop_map(
            |((cpus, numa_distances, cpu_link_bandwidth_mbs, gpus, platform), table)| Machine {
                cpus,
                numa_distances,
                cpu_link_bandwidth_mbs,
                gpus,
                platform,
                oracle: TableOracle(table),
                peer_bandwidth: PeerBandwidthRule::Corrected,
            },
        )
}

/// A fixed large-BAR Gen4 x16 MI210-like GPU on CPU node 0.
pub fn sample_gpu() -> GpuFacts {
    GpuFacts {
        pci: PciAddress {
            domain: 0,
            bus: 0x43,
            device: 0,
            function: 0,
        },
        vendor_id: 0x1002,
        device_id: 0x740f,
        gfx_target_version: 90010,
        simd_count: 416,
        vram_size: 64 * GIB,
        bar_base: 128 * GIB,
        bar_size: 64 * GIB,
        numa_node: 0,
        dma_mask_bits: 44,
        xgmi: None,
        xgmi_connected_to_cpu: false,
        pcie: PcieLink {
            gen: PcieGen::Gen4,
            width: 16,
        },
        pcie_atomics: true,
        drm_render_minor: 128,
        unique_id: 0,
    }
}

/// A proptest config with `cases` cases whose failures persist in
/// `kmod/core/proptest-regressions/<file>.txt` (the default `SourceParallel` cannot place files of
/// `tests/` and would write next to the sources).
#[macro_export]
macro_rules! config {
    ($file:literal, $cases:expr) => {
        ::proptest::test_runner::Config {
            cases: $cases,
            failure_persistence: Some(Box::new(
                ::proptest::test_runner::FileFailurePersistence::Direct(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/proptest-regressions/",
                    $file,
                    ".txt"
                )),
            )),
            ..::proptest::test_runner::Config::default()
        }
    };
}
