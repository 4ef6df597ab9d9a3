//! Turning a topology spec into an emulated machine: a QEMU q35 command line whose PCIe tree is
//! the spec's, one `ivshmem-plain` device per GPU (BAR2 = VRAM, backed by a file in /dev/shm),
//! and a descriptor page per GPU carrying the facts QEMU cannot express.
//!
//! QEMU cannot express everything a spec can. The emulated machine adapts what does not change
//! any peer-access verdict (sizes scaled down, the PCI ids of ivshmem, one vCPU per NUMA node)
//! and refuses the rest with a reason: the predicted verdicts of the original and the emulated
//! spec must agree pair by pair, or the spec is reported as not emulable.

use anyhow::{bail, Result};
use hsa_p2p_core::builder::gpu_node_id;
use hsa_p2p_core::descriptor::{Descriptor, DESCRIPTOR_LEN};
use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::predict::{gpu_facts, predict};
use hsa_p2p_runtime::spec::{
    ByteSize, IommuSetting, KernelGeneration, PcieElement, PcieElementKind, PcieLayout, Spec,
};

use crate::vm::host_channel::HotplugSlot;
use crate::vm::qmp::{Device, MemoryBackendFile};
use crate::vm::{ShmFile, VmConfig};

/// Largest BAR the emulated GPUs get (each is a file in /dev/shm and a QEMU memory region).
pub const MAX_EMULATED_BAR: u64 = 64 << 20;
/// Smallest BAR (QEMU's ivshmem needs a power of two; tiny BARs would not hold buffers).
const MIN_EMULATED_BAR: u64 = 1 << 20;
/// Guest RAM per NUMA node.
const MEMORY_PER_NODE_MIB: u64 = 256;
/// Red Hat / Qumranet vendor id and the ivshmem device id, as the guest sees the GPUs.
pub const IVSHMEM_VENDOR: u32 = 0x1af4;
/// ivshmem device id.
pub const IVSHMEM_DEVICE: u32 = 0x1110;

/// One emulated GPU.
#[derive(Clone, Debug)]
pub struct EmulatedGpu {
    /// The spec's GPU id.
    pub label: String,
    /// File under /dev/shm backing the GPU's VRAM BAR.
    pub shm_path: String,
    /// BAR (= backing file) size in bytes.
    pub bar_size: u64,
    /// Descriptor written at offset 0 of the backing file.
    pub descriptor: [u8; DESCRIPTOR_LEN],
}

/// A spec made runnable in QEMU.
#[derive(Clone, Debug)]
pub struct EmulatedMachine {
    /// The spec as the guest will see it: predictions for the guest are made from this one.
    pub spec: Spec,
    /// GPUs in spec order.
    pub gpus: Vec<EmulatedGpu>,
    /// QEMU arguments for CPUs, NUMA and the PCIe devices (machine, memory, kernel excluded).
    pub qemu_args: Vec<String>,
    /// Guest memory in MiB (all NUMA nodes together).
    pub memory_mib: u32,
    /// What was adapted, for the log.
    pub adaptations: Vec<String>,
    /// The GPUs in hot-pluggable slots (`hotplug = true`), in spec order.
    pub hotplug: Vec<HotplugSlot>,
}

fn scale_factor(spec: &Spec) -> Result<u64> {
    let largest = spec.gpus.iter().map(|g| g.bar_size().0).max().unwrap_or(0);
    let mut factor = 1u64;
    while largest / factor > MAX_EMULATED_BAR {
        factor *= 2;
    }
    for gpu in &spec.gpus {
        let bar = gpu.bar_size().0;
        if bar % factor != 0 || !(bar / factor).is_power_of_two() || bar / factor < MIN_EMULATED_BAR
        {
            bail!(
                "gpu {:?}: a BAR of {} cannot be emulated (scaled by 1/{factor} it must be a power of two of at least 1M)",
                gpu.id,
                gpu.bar_size()
            );
        }
        if gpu.vram.0 % factor != 0 {
            bail!(
                "gpu {:?}: VRAM {} does not scale by 1/{factor}",
                gpu.id,
                gpu.vram
            );
        }
    }
    Ok(factor)
}

/// Peer-access verdict per ordered GPU pair: (p2p link, XGMI io_link, denial reason bits).
fn verdicts(topology: &Topology, cpu_count: usize, gpus: usize) -> Vec<(bool, bool, u32)> {
    let node = |gpu: usize| gpu_node_id(cpu_count, gpu);
    let mut out = Vec::new();
    for accessor in 0..gpus {
        for owner in (0..gpus).filter(|&owner| owner != accessor) {
            let (from, to) = (node(accessor), node(owner));
            out.push((
                topology.p2p_link(from, to).is_some(),
                topology.io_link(from, to).is_some(),
                topology.denial(from, to).map_or(0, |d| d.reasons.bits()),
            ));
        }
    }
    out
}

impl EmulatedMachine {
    /// A VM configuration booting `kernel` on this machine: its memory, its QEMU devices and
    /// one /dev/shm VRAM file per GPU with the descriptor page written at offset 0.
    pub fn vm_config(&self, name: impl Into<String>, kernel: &std::path::Path) -> VmConfig {
        let mut config = VmConfig::new(name, kernel);
        config.memory_mib = self.memory_mib;
        config.qemu_args = self.qemu_args.clone();
        config.shm_files = self
            .gpus
            .iter()
            .map(|gpu| ShmFile {
                path: gpu.shm_path.clone().into(),
                size: gpu.bar_size,
                writes: vec![(0, gpu.descriptor.to_vec())],
            })
            .collect();
        config.append.push("loglevel=4".into());
        config.hotplug = self.hotplug.clone();
        config
    }

    /// The same machine with `count` vCPUs on each NUMA node (QEMU runs them on host threads
    /// of their own, MTTCG), for work that needs real concurrency in the guest.
    pub fn with_vcpus_per_node(mut self, count: u64) -> Self {
        self.qemu_args = qemu_args(&self.spec, &self.gpus, count.max(1));
        self
    }
}

/// Builds the emulated machine for `spec`; `shm_prefix` names the backing files
/// (`/dev/shm/<prefix>-<gpu>`).
pub fn emulate(spec: &Spec, shm_prefix: &str) -> Result<EmulatedMachine> {
    let mut adaptations = Vec::new();
    if spec.root_ports.iter().any(|p| p.acs_redirect)
        || spec.switches.iter().any(|s| s.acs_redirect)
    {
        bail!("ACS redirect cannot be emulated: QEMU's ports do not enable it without a vIOMMU");
    }
    if let Some(apu) = spec.gpus.iter().find(|g| g.apu) {
        bail!(
            "gpu {:?} is an APU and cannot be emulated: its VRAM is a carve-out of system memory \
             reached at its physical address, with no BAR; an ivshmem device's BAR2 would make \
             it a discrete GPU",
            apu.id
        );
    }
    if spec.gpus.iter().any(|g| g.bar_address.is_some()) {
        bail!("a fixed bar_address cannot be emulated: firmware in QEMU places the BARs");
    }
    if spec.gpus.is_empty() {
        bail!("the spec has no GPU");
    }
    let factor = scale_factor(spec)?;
    let mut emulated = spec.clone();
    if factor > 1 {
        adaptations.push(format!("VRAM and BAR sizes scaled by 1/{factor}"));
    }
    for gpu in &mut emulated.gpus {
        let bar = gpu.bar_size().0 / factor;
        gpu.vram = ByteSize(gpu.vram.0 / factor);
        gpu.bar = Some(ByteSize(bar));
        gpu.vendor_id = IVSHMEM_VENDOR;
        gpu.device_id = IVSHMEM_DEVICE;
    }
    adaptations.push("GPUs appear with ivshmem's PCI ids 1af4:1110".into());
    for cpu in &mut emulated.cpus {
        cpu.cores = 1;
    }
    if spec.platform.iommu != IommuSetting::Off {
        emulated.platform.iommu = IommuSetting::Off;
        adaptations.push(format!(
            "iommu {:?} not emulated (no vIOMMU): the guest runs without one",
            spec.platform.iommu
        ));
    }

    adapt_host_platform(spec, &mut emulated, &mut adaptations)?;

    // The adaptations must not change who may access whom.
    let original = predict(spec)?;
    let adapted = predict(&emulated)?;
    let gpus = spec.gpus.len();
    let (before, after) = (
        verdicts(&original.topology, spec.cpus.len(), gpus),
        verdicts(&adapted.topology, spec.cpus.len(), gpus),
    );
    if before != after {
        let changed = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        bail!("the emulated machine would change {changed} peer-access verdicts of the spec");
    }

    let facts = gpu_facts(&emulated)?;
    let emulated_gpus = emulated
        .gpus
        .iter()
        .zip(&facts)
        .map(|(gpu, facts)| EmulatedGpu {
            label: gpu.id.clone(),
            shm_path: format!("/dev/shm/{shm_prefix}-{}", gpu.id),
            bar_size: facts.bar_size,
            descriptor: Descriptor::of(facts).encode(),
        })
        .collect::<Vec<_>>();

    let qemu_args = qemu_args(&emulated, &emulated_gpus, 1);
    let layout = emulated.layout();
    let hotplug = layout
        .elements
        .iter()
        .filter_map(|element| match element.kind {
            PcieElementKind::Gpu(index) if emulated.gpus[index].hotplug => Some(HotplugSlot {
                address: element.address.to_string(),
                device: gpu_device(&layout, element, &emulated_gpus[index]),
                backend: vram_backend(&emulated_gpus[index]),
            }),
            _ => None,
        })
        .collect();
    Ok(EmulatedMachine {
        memory_mib: (MEMORY_PER_NODE_MIB * emulated.cpus.len() as u64) as u32,
        spec: emulated,
        gpus: emulated_gpus,
        qemu_args,
        adaptations,
        hotplug,
    })
}

/// The label of the element's parent bridge (QEMU's bus name), `pcie.0` for root ports.
fn parent_bus(layout: &PcieLayout, element: &PcieElement) -> String {
    element
        .parent
        .map(|p| layout.elements[p].label.clone())
        .unwrap_or_else(|| "pcie.0".into())
}

/// A GPU's VRAM: its /dev/shm file.
fn vram_backend(gpu: &EmulatedGpu) -> MemoryBackendFile {
    MemoryBackendFile {
        id: format!("vram-{}", gpu.label),
        mem_path: gpu.shm_path.clone(),
        size: gpu.bar_size,
    }
}

/// A GPU's QEMU device: `ivshmem-plain` on its VRAM backend, at its place in the tree.
fn gpu_device(layout: &PcieLayout, element: &PcieElement, gpu: &EmulatedGpu) -> Device {
    Device {
        driver: "ivshmem-plain".into(),
        id: gpu.label.clone(),
        properties: vec![
            ("memdev".into(), vram_backend(gpu).id),
            ("bus".into(), parent_bus(layout, element)),
            ("addr".into(), format!("{:x}.0", element.address.device)),
        ],
    }
}

/// `hotplug=on` for a port holding a hot-pluggable GPU, `off` for every other port: the guest
/// sees a hot-plug slot exactly where the spec has one.
fn port_hotplug(spec: &Spec, layout: &PcieLayout, port: usize) -> &'static str {
    let hot = layout.elements.iter().any(|child| {
        child.parent == Some(port)
            && matches!(child.kind, PcieElementKind::Gpu(index) if spec.gpus[index].hotplug)
    });
    if hot {
        "on"
    } else {
        "off"
    }
}

fn qemu_args(spec: &Spec, gpus: &[EmulatedGpu], vcpus_per_node: u64) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut push = |a: &str, b: String| {
        args.push(a.to_string());
        args.push(b);
    };
    let nodes = spec.cpus.len() as u64;
    push("-smp", (nodes * vcpus_per_node).to_string());
    if spec.platform.host_bridge_whitelisted {
        // The kernel trusts P2P through the host bridge on AMD Zen (family >= 0x17) CPUs.
        push("-cpu", "EPYC".into());
    }
    if nodes > 1 {
        for node in 0..nodes {
            push(
                "-object",
                format!("memory-backend-ram,id=ram{node},size={MEMORY_PER_NODE_MIB}M"),
            );
            let (first, last) = (node * vcpus_per_node, (node + 1) * vcpus_per_node - 1);
            let cpus = if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            };
            push(
                "-numa",
                format!("node,nodeid={node},cpus={cpus},memdev=ram{node}"),
            );
        }
        for from in 0..spec.cpus.len() {
            for to in (0..spec.cpus.len()).filter(|&to| to != from) {
                push(
                    "-numa",
                    format!(
                        "dist,src={from},dst={to},val={}",
                        spec.numa_distance(from, to)
                    ),
                );
            }
        }
    }
    let layout = spec.layout();
    if spec.gpus.iter().any(|gpu| gpu.hotplug) {
        // PCIe native hot-plug (pciehp) rather than q35's ACPI hot-plug of root ports.
        push(
            "-global",
            "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off".into(),
        );
    }
    let mut chassis = 0;
    for (index, element) in layout.elements.iter().enumerate() {
        let parent = parent_bus(&layout, element);
        let address = format!("{:x}.0", element.address.device);
        let hotplug = port_hotplug(spec, &layout, index);
        match &element.kind {
            PcieElementKind::RootPort(_) => {
                chassis += 1;
                push(
                    "-device",
                    format!(
                        "pcie-root-port,id={},bus={parent},addr={address},chassis={chassis},slot={chassis},hotplug={hotplug}",
                        element.label
                    ),
                );
            }
            PcieElementKind::SwitchUpstream(_) => push(
                "-device",
                format!(
                    "x3130-upstream,id={},bus={parent},addr={address}",
                    element.label
                ),
            ),
            PcieElementKind::SwitchDownstream { .. } => {
                chassis += 1;
                push(
                    "-device",
                    format!(
                        "xio3130-downstream,id={},bus={parent},addr={address},chassis={chassis},slot={chassis},hotplug={hotplug}",
                        element.label
                    ),
                );
            }
            PcieElementKind::Gpu(index) => {
                let gpu = &gpus[*index];
                push("-object", vram_backend(gpu).qemu_arg());
                push("-device", gpu_device(&layout, element, gpu).qemu_arg());
            }
        }
    }
    args
}

/// The guest runs the hsa_p2p module (HSA_AMD_P2P on any kernel): other kernel generations are
/// refused. QEMU's q35 has one host bridge (8086:29c0, segment 0, bus 0) and numbers the buses
/// itself: several host bridges or segments are refused; the host bridge's ids and the CPU become
/// the harness's one knob (an EPYC CPU, which the kernel trusts, when the spec's host bridge
/// lets P2P through), and explicit GPU addresses give way to QEMU's.
fn adapt_host_platform(
    spec: &Spec,
    emulated: &mut Spec,
    adaptations: &mut Vec<String>,
) -> Result<()> {
    if spec.platform.kernel != KernelGeneration::HsaAmdP2p {
        bail!(
            "kernel = {:?} cannot be emulated: the guest runs the hsa_p2p module, which \
             publishes p2p_links and peer links (HSA_AMD_P2P) whatever the kernel",
            spec.platform.kernel
        );
    }
    if spec.host_bridges.len() > 1 {
        bail!("several host bridges cannot be emulated: QEMU's q35 machine has one");
    }
    if let Some(bridge) = spec.host_bridges.first() {
        if bridge.segment != 0 || bridge.bus != 0 {
            bail!(
                "host bridge {:?} on segment {:#x} bus {:#x} cannot be emulated: q35's is on \
                 segment 0 bus 0",
                bridge.id,
                bridge.segment,
                bridge.bus
            );
        }
    }
    let described = !spec.host_bridges.is_empty() || spec.platform.cpu_vendor.is_some();
    if described {
        emulated.platform.host_bridge_whitelisted = spec.host_bridge_trusted();
        emulated.platform.cpu_vendor = None;
        emulated.platform.cpu_family = None;
        emulated.host_bridges.clear();
        for port in &mut emulated.root_ports {
            port.host_bridge = None;
        }
        adaptations.push(format!(
            "host bridge and CPU ids not emulated: q35's host bridge with {} CPU",
            if emulated.platform.host_bridge_whitelisted {
                "an EPYC (trusted for P2P)"
            } else {
                "the default"
            }
        ));
    }
    if spec.gpus.iter().any(|gpu| gpu.address.is_some()) {
        for gpu in &mut emulated.gpus {
            gpu.address = None;
        }
        adaptations.push("GPU PCI addresses as QEMU numbers them".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apu_is_refused_naming_the_gpu_and_why() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../topologies/ryzen-8700g-apu-with-rx7900xtx.toml");
        let spec = Spec::load(&path).unwrap();
        let Err(error) = emulate(&spec, "unused") else {
            panic!("an APU spec was emulated");
        };
        let message = format!("{error:#}");
        assert!(
            message.starts_with("gpu \"radeon780m\" is an APU and cannot be emulated"),
            "{message}"
        );
    }
}
