//! The topology the kernel rules produce for a spec: spec -> machine facts -> core builder.

use hsa_p2p_core::builder::{build_topology, gpu_node_id, BuildError, P2pdmaOracle};
use hsa_p2p_core::facts::{
    CpuFacts, GpuFacts, IommuMode, MachineFacts, PeerBandwidthRule, PlatformFacts,
};
use hsa_p2p_core::pcie::{PcieGen, PcieLink};
use hsa_p2p_core::topology::Topology;

use crate::spec::{IommuSetting, KernelGeneration, LayoutP2pdma, Spec};

/// The predicted topology of a spec.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// The KFD topology the kernel module would publish.
    pub topology: Topology,
    /// The spec's GPU ids in bind order (the `i`-th bound GPU is node `gpu_node_id(cpus, i)`).
    pub gpu_labels: Vec<String>,
    /// The facts the rules were given, by GPU index.
    pub gpus: Vec<GpuFacts>,
}

impl Prediction {
    /// The node id of the GPU labelled `label` in the spec.
    pub fn node_of(&self, label: &str) -> Option<u32> {
        let cpus = self.topology.nodes.iter().filter(|n| !n.is_gpu()).count();
        self.gpu_labels
            .iter()
            .position(|l| l == label)
            .map(|index| gpu_node_id(cpus, index))
    }
}

/// A spec the rules reject.
#[derive(Debug, thiserror::Error)]
#[error("spec {name:?}: {message}")]
pub struct PredictError {
    name: String,
    message: String,
}

/// The facts of every GPU in `spec`, in spec order; an error when its BARs do not fit (see
/// [`Spec::bar_addresses`]).
pub fn gpu_facts(spec: &Spec) -> Result<Vec<GpuFacts>, PredictError> {
    let layout = spec.layout();
    let bar_bases = spec.bar_addresses().map_err(|message| PredictError {
        name: spec.name.clone(),
        message,
    })?;
    Ok(spec
        .gpus
        .iter()
        .zip(bar_bases)
        .enumerate()
        .map(|(index, (gpu, bar_base))| {
            let element = layout.gpu_element(index).map(|e| &layout.elements[e]);
            let bar_size = gpu.bar_size().0;
            GpuFacts {
                pci: spec.gpu_address(&layout, index),
                vendor_id: gpu.vendor_id,
                device_id: gpu.device_id,
                gfx_target_version: gpu.gfx_target_version,
                simd_count: gpu.simd_count,
                vram_size: gpu.vram.0,
                bar_base,
                bar_size,
                numa_node: element.map_or(0, |e| e.cpu),
                dma_mask_bits: gpu.dma_mask_bits,
                xgmi: spec.xgmi_facts(index),
                xgmi_connected_to_cpu: gpu.xgmi_connected_to_cpu,
                pcie: {
                    let link = spec.platform_link(index);
                    PcieLink {
                        gen: PcieGen::from_number(link.gen).unwrap_or(PcieGen::Gen1),
                        width: link.width,
                    }
                },
                pcie_atomics: gpu.pcie_atomics,
                drm_render_minor: 0,
                unique_id: 0,
            }
        })
        .collect())
}

/// Applies the kernel rules to `spec`, GPUs bound in spec order.
pub fn predict(spec: &Spec) -> Result<Prediction, PredictError> {
    predict_with(spec, PeerBandwidthRule::Corrected)
}

/// Like [`predict`], with peer links' `max_bandwidth` computed by `rule`
/// ([`PeerBandwidthRule::AsAmdkfd`]: what amdkfd publishes, bug included).
pub fn predict_with(spec: &Spec, rule: PeerBandwidthRule) -> Result<Prediction, PredictError> {
    let all: Vec<usize> = (0..spec.gpus.len()).collect();
    predict_bound(spec, &all, rule)
}

/// The oracle for GPUs bound in another order (or a subset): builder index -> spec index.
struct BindOrder<'a> {
    paths: LayoutP2pdma,
    order: &'a [usize],
}

impl P2pdmaOracle for BindOrder<'_> {
    fn p2pdma_distance(&self, owner: usize, accessor: usize) -> Option<u32> {
        self.paths
            .p2pdma_distance(*self.order.get(owner)?, *self.order.get(accessor)?)
    }
}

/// Applies the kernel rules to the GPUs of `spec` listed in `order` (spec indices), bound in
/// that order: what the driver publishes after GPUs were unbound and bound again. Each GPU keeps
/// its facts (PCI address, BAR, hive position); only node numbering and link order follow the
/// bind order.
pub fn predict_in_bind_order(spec: &Spec, order: &[usize]) -> Result<Prediction, PredictError> {
    predict_bound(spec, order, PeerBandwidthRule::Corrected)
}

fn predict_bound(
    spec: &Spec,
    order: &[usize],
    peer_bandwidth: PeerBandwidthRule,
) -> Result<Prediction, PredictError> {
    let error = |message: String| PredictError {
        name: spec.name.clone(),
        message,
    };
    if let Some(bad) = order.iter().find(|&&index| index >= spec.gpus.len()) {
        return Err(error(format!("no GPU with index {bad}")));
    }
    let cpus: Vec<CpuFacts> = spec
        .cpus
        .iter()
        .map(|cpu| CpuFacts {
            cpu_cores: cpu.cores,
            memory_bytes: cpu.memory.0,
        })
        .collect();
    let distances: Vec<u32> = (0..cpus.len())
        .flat_map(|from| (0..cpus.len()).map(move |to| (from, to)))
        .map(|(from, to)| spec.numa_distance(from, to))
        .collect();
    let all_facts = gpu_facts(spec)?;
    let gpus: Vec<GpuFacts> = order.iter().map(|&index| all_facts[index]).collect();
    let machine = MachineFacts {
        cpus: &cpus,
        numa_distances: &distances,
        cpu_link_bandwidth_mbs: spec.platform.cpu_link_bandwidth_mbs,
        gpus: &gpus,
        known_gpu_ids: &[],
        platform: PlatformFacts {
            iommu: match spec.platform.iommu {
                IommuSetting::Remap => IommuMode::Remap,
                IommuSetting::Passthrough => IommuMode::Passthrough,
                IommuSetting::Off => IommuMode::Off,
            },
            pcie_p2p: spec.platform.pcie_p2p,
            hsa_amd_p2p: spec.platform.kernel == KernelGeneration::HsaAmdP2p,
        },
        peer_bandwidth,
    };
    let mut topology = Topology {
        generation_id: 1,
        ..Topology::default()
    };
    let oracle = BindOrder {
        paths: LayoutP2pdma::new(spec),
        order,
    };
    build_topology(&machine, &oracle, &mut topology)
        .map_err(|e: BuildError<std::convert::Infallible>| error(e.to_string()))?;
    if spec.platform.kernel == KernelGeneration::BeforeP2pLinks {
        // No kfd_dev_create_p2p_links and no p2p_links_count in node_show: nothing below
        // p2p_links, and no denial records either (the kernel made no per-pair decision).
        for node in &mut topology.nodes {
            node.p2p_links.clear();
            node.p2p_denials.clear();
            node.reports_p2p_links = false;
        }
    }
    Ok(Prediction {
        topology,
        gpu_labels: order
            .iter()
            .map(|&index| spec.gpus[index].id.clone())
            .collect(),
        gpus,
    })
}
