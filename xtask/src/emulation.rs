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
    ByteSize, IommuSetting, KernelGeneration, LayoutP2pdma, PcieElement, PcieElementKind,
    PcieLayout, Spec,
};

use crate::vm::host_channel::HotplugSlot;
use crate::vm::protocol;
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
    /// Kernel command line arguments the platform needs (IOMMU mode, ACS).
    pub kernel_args: Vec<String>,
    /// The firmware must place the BARs above 4 GiB (a DMA mask stands for a fixed address).
    pub bars_above_4g: bool,
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

/// Peer-access verdict per ordered GPU pair: (p2p link, XGMI io_link, denial reason bits,
/// the kernel's P2PDMA map type).
fn verdicts(spec: &Spec, topology: &Topology) -> Vec<(bool, bool, u32, Option<u32>)> {
    let node = |gpu: usize| gpu_node_id(spec.cpus.len(), gpu);
    let p2pdma = LayoutP2pdma::new(spec);
    let gpus = spec.gpus.len();
    let mut out = Vec::new();
    for accessor in 0..gpus {
        for owner in (0..gpus).filter(|&owner| owner != accessor) {
            let (from, to) = (node(accessor), node(owner));
            out.push((
                topology.p2p_link(from, to).is_some(),
                topology.io_link(from, to).is_some(),
                topology.denial(from, to).map_or(0, |d| d.reasons.bits()),
                p2pdma.path(owner, accessor).map_type(),
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
        config.append.push(protocol::console_loglevel_arg());
        config.hotplug = self.hotplug.clone();
        config.append.extend(self.kernel_args.iter().cloned());
        config
    }

    /// The same machine with `count` vCPUs on each NUMA node (QEMU runs them on host threads
    /// of their own, MTTCG), for work that needs real concurrency in the guest.
    pub fn with_vcpus_per_node(mut self, count: u64) -> Self {
        self.qemu_args = qemu_args(&self.spec, &self.gpus, count.max(1), self.bars_above_4g);
        self
    }
}

/// The lowest DMA mask a GPU may have (`dma_mask_bits`): QEMU's firmware places the 64-bit
/// VRAM BARs above 4 GiB, so an accessor with this mask cannot reach any of them directly.
const LOWEST_DMA_MASK_BITS: u32 = 32;

/// The kernel command line arguments of the spec's IOMMU mode: Intel VT-d on (it only matters
/// when the machine has QEMU's `intel-iommu`), identity-mapped for "passthrough".
fn iommu_kernel_args(iommu: IommuSetting) -> Vec<String> {
    match iommu {
        IommuSetting::Off => Vec::new(),
        IommuSetting::Remap => vec!["intel_iommu=on".into(), "iommu.passthrough=0".into()],
        IommuSetting::Passthrough => vec!["intel_iommu=on".into(), "iommu.passthrough=1".into()],
    }
}

/// ACS as QEMU can boot it. Switch downstream ports (`xio3130-downstream`) have no ACS
/// capability, so a redirecting one is refused; root ports (`pcie-root-port`) have it, and the
/// kernel enables RR/CR on all of them exactly when an IOMMU driver asks for ACS
/// (`pci_request_acs()`), i.e. with a vIOMMU: a spec's redirecting root port needs `iommu` on,
/// and with `iommu` on every root port not in `platform.disable_acs_redir` redirects.
fn emulate_acs(spec: &Spec, emulated: &mut Spec, adaptations: &mut Vec<String>) -> Result<()> {
    let layout = spec.layout();
    if let Some(port) = layout.elements.iter().find(|element| {
        element.acs_redirect && matches!(element.kind, PcieElementKind::SwitchDownstream { .. })
    }) {
        bail!(
            "`acs_redirect = true` on switch downstream port {:?} cannot be emulated: QEMU's \
             xio3130-downstream has no ACS capability (the decision is covered by host tests, \
             kmod/core/src/p2pdma.rs)",
            port.label
        );
    }
    let iommu = spec.platform.iommu != IommuSetting::Off;
    let disabled = |id: &str| {
        spec.platform
            .disable_acs_redir
            .iter()
            .any(|port| port == id)
    };
    for port in &mut emulated.root_ports {
        let redirects = port.acs_redirect && !disabled(&port.id);
        if redirects && !iommu {
            bail!(
                "`acs_redirect = true` on root port {:?} cannot be emulated with `iommu = \
                 \"off\"`: the kernel enables ACS redirect only when an IOMMU driver asks for it",
                port.id
            );
        }
        if iommu && !redirects && !disabled(&port.id) {
            port.acs_redirect = true;
            adaptations.push(format!(
                "root port {:?}: ACS redirect on (the kernel enables it with an IOMMU)",
                port.id
            ));
        }
    }
    Ok(())
}

/// `pci=disable_acs_redir=` for the spec's `platform.disable_acs_redir` ports, by their
/// enumerated addresses.
fn disable_acs_redir_arg(spec: &Spec) -> Option<String> {
    let layout = spec.layout();
    let addresses: Vec<String> = spec
        .platform
        .disable_acs_redir
        .iter()
        .filter_map(|port| layout.elements.iter().find(|e| &e.label == port))
        .map(|element| element.address.to_string())
        .collect();
    (!addresses.is_empty()).then(|| format!("pci=disable_acs_redir={}", addresses.join(";")))
}

/// Fixed `bar_address`es: QEMU's firmware places the BARs, so the BAR moves there and every
/// GPU whose DMA mask does not reach the spec's address gets the lowest mask, which does not
/// reach the firmware's either once the firmware is made to place them above 4 GiB (see
/// [`ROOT_PORT_PREF64_RESERVE`]). The verdict check afterwards proves nothing else changed.
/// Returns whether the BARs must lie above 4 GiB.
fn emulate_bar_addresses(spec: &Spec, emulated: &mut Spec, adaptations: &mut Vec<String>) -> bool {
    let fixed_ends: Vec<u128> = spec
        .gpus
        .iter()
        .filter_map(|gpu| {
            gpu.bar_address
                .map(|base| u128::from(base) + u128::from(gpu.bar_size().0))
        })
        .collect();
    for gpu in &mut emulated.gpus {
        if let Some(base) = gpu.bar_address.take() {
            adaptations.push(format!(
                "gpu {:?}: bar_address {base:#x} left to the firmware",
                gpu.id
            ));
        }
        let reach = 1u128 << gpu.dma_mask_bits;
        if fixed_ends.iter().any(|&end| end > reach) {
            adaptations.push(format!(
                "gpu {:?}: dma_mask_bits {} -> {LOWEST_DMA_MASK_BITS} (below the firmware's BARs \
                 as {} bits are below the spec's)",
                gpu.id, gpu.dma_mask_bits, gpu.dma_mask_bits
            ));
            gpu.dma_mask_bits = LOWEST_DMA_MASK_BITS;
        }
    }
    !fixed_ends.is_empty()
}

/// Builds the emulated machine for `spec`; `shm_prefix` names the backing files
/// (`/dev/shm/<prefix>-<gpu>`).
pub fn emulate(spec: &Spec, shm_prefix: &str) -> Result<EmulatedMachine> {
    let mut adaptations = Vec::new();
    if let Some(apu) = spec.gpus.iter().find(|g| g.apu) {
        bail!(
            "gpu {:?} is an APU and cannot be emulated: its VRAM is a carve-out of system memory \
             reached at its physical address, with no BAR; an ivshmem device's BAR2 would make \
             it a discrete GPU",
            apu.id
        );
    }
    if spec.gpus.is_empty() {
        bail!("the spec has no GPU");
    }
    let factor = scale_factor(spec)?;
    let mut emulated = spec.clone();
    emulate_acs(spec, &mut emulated, &mut adaptations)?;
    let bars_above_4g = emulate_bar_addresses(spec, &mut emulated, &mut adaptations);
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

    adapt_host_platform(spec, &mut emulated, &mut adaptations)?;

    // The adaptations must not change who may access whom.
    let original = predict(spec)?;
    let adapted = predict(&emulated)?;
    let (before, after) = (
        verdicts(spec, &original.topology),
        verdicts(&emulated, &adapted.topology),
    );
    if before != after {
        let changed = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        bail!(
            "the emulated machine would change {changed} peer-access verdicts or map types of the spec"
        );
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

    let qemu_args = qemu_args(&emulated, &emulated_gpus, 1, bars_above_4g);
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
    let mut kernel_args = iommu_kernel_args(emulated.platform.iommu);
    kernel_args.extend(disable_acs_redir_arg(&emulated));
    Ok(EmulatedMachine {
        kernel_args,
        bars_above_4g,
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

/// The 64-bit prefetchable window each root port asks the firmware for (QEMU's resource
/// reserve capability, which SeaBIOS honours) when the BARs must lie above 4 GiB: larger than
/// the whole 32-bit PCI hole, so SeaBIOS places the 64-bit BARs in its 64-bit window (it puts
/// small ones below 4 GiB otherwise).
const ROOT_PORT_PREF64_RESERVE: &str = "4G";

fn qemu_args(
    spec: &Spec,
    gpus: &[EmulatedGpu],
    vcpus_per_node: u64,
    bars_above_4g: bool,
) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut push = |a: &str, b: String| {
        args.push(a.to_string());
        args.push(b);
    };
    if spec.platform.iommu != IommuSetting::Off {
        // Intel VT-d DMA remapping; QEMU wants it before the devices it translates for.
        // Interrupt remapping would need a split irqchip, which TCG does not have.
        push("-device", "intel-iommu,intremap=off".into());
    }
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
                let reserve = if bars_above_4g {
                    format!(",pref64-reserve={ROOT_PORT_PREF64_RESERVE}")
                } else {
                    String::new()
                };
                push(
                    "-device",
                    format!(
                        "pcie-root-port,id={},bus={parent},addr={address},chassis={chassis},slot={chassis},hotplug={hotplug}{reserve}",
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
            "host bridge and CPU ids as q35 has them: its host bridge with {} CPU",
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

    fn spec(text: &str) -> Spec {
        Spec::parse(text, "test").expect("valid spec")
    }

    const SWITCH_PAIR: &str = r#"
        name = "pair"
        [platform]
        iommu = "remap"
        [[cpu]]
        [[root_port]]
        id = "rp0"
        [[switch]]
        id = "sw0"
        parent = "rp0"
        downstream_ports = 2
        [[gpu]]
        id = "gpu0"
        parent = "sw0.0"
        vram = "64M"
        [[gpu]]
        id = "gpu1"
        parent = "sw0.1"
        vram = "64M"
    "#;

    #[test]
    fn every_shipped_spec_is_emulated_with_its_platform() {
        let dir = crate::util::workspace_root().join("topologies");
        let mut specs = 0;
        for entry in std::fs::read_dir(&dir).expect("topologies/") {
            let path = entry.expect("entry").path();
            let spec = Spec::load(&path).expect("spec");
            // Some specs describe what q35 cannot be (an APU, several host bridges, another
            // kernel generation): those are refused, saying so, never emulated as something else.
            let machine = match emulate(&spec, "test") {
                Ok(machine) => machine,
                Err(error) if format!("{error:#}").contains("cannot be emulated") => continue,
                Err(error) => panic!("{path:?}: {error:#}"),
            };
            assert_eq!(machine.spec.platform.iommu, spec.platform.iommu, "{path:?}");
            assert!(
                machine
                    .adaptations
                    .iter()
                    .all(|a| !a.contains("not emulated")),
                "{path:?}: {:?}",
                machine.adaptations
            );
            specs += 1;
        }
        assert!(specs >= 8, "only {specs} specs in {dir:?}");
    }

    #[test]
    fn iommu_modes_boot_a_viommu_before_the_devices() {
        for (mode, passthrough) in [("remap", "0"), ("passthrough", "1")] {
            let text = SWITCH_PAIR.replace("\"remap\"", &format!("{mode:?}"));
            let machine = emulate(&spec(&text), "test").expect("emulable");
            let first_device = machine.qemu_args.iter().position(|a| a == "-device");
            assert_eq!(
                first_device.map(|i| machine.qemu_args[i + 1].as_str()),
                Some("intel-iommu,intremap=off"),
                "{mode}"
            );
            assert_eq!(
                machine.kernel_args,
                [
                    "intel_iommu=on".to_string(),
                    format!("iommu.passthrough={passthrough}")
                ]
            );
        }
        let off = emulate(&spec(&SWITCH_PAIR.replace("\"remap\"", "\"off\"")), "t").expect("off");
        assert!(!off.qemu_args.iter().any(|a| a.contains("iommu")));
        assert!(off.kernel_args.is_empty());
    }

    #[test]
    fn acs_redirect_in_a_switch_is_refused_naming_the_field() {
        let text = SWITCH_PAIR.replace(
            "downstream_ports = 2",
            "downstream_ports = 2\nacs_redirect = true",
        );
        let error = emulate(&spec(&text), "test")
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("`acs_redirect = true` on switch downstream port \"sw0.0\""),
            "{error}"
        );
        assert!(
            error.contains("xio3130-downstream has no ACS capability"),
            "{error}"
        );
        // Unless the kernel is told to turn it off on both ports: then the switch is plain.
        let disabled = text.replace(
            "iommu = \"remap\"",
            "iommu = \"remap\"\ndisable_acs_redir = [\"sw0.0\", \"sw0.1\"]",
        );
        let machine = emulate(&spec(&disabled), "test").expect("emulable");
        assert!(
            machine
                .kernel_args
                .contains(&"pci=disable_acs_redir=0000:02:00.0;0000:02:01.0".to_string()),
            "{:?}",
            machine.kernel_args
        );
    }

    #[test]
    fn root_port_acs_follows_the_iommu() {
        let redirecting = SWITCH_PAIR.replace("id = \"rp0\"", "id = \"rp0\"\nacs_redirect = true");
        let off = redirecting.replace("\"remap\"", "\"off\"");
        let error = emulate(&spec(&off), "test")
            .expect_err("refused")
            .to_string();
        assert!(error.contains("root port \"rp0\""), "{error}");
        assert!(emulate(&spec(&redirecting), "test").is_ok());
        // With an IOMMU the kernel enables it anyway: the emulated spec says so.
        let machine = emulate(&spec(SWITCH_PAIR), "test").expect("emulable");
        assert!(machine.spec.root_ports[0].acs_redirect);
    }

    #[test]
    fn a_fixed_bar_address_becomes_a_dma_mask_below_the_firmware_bars() {
        let path = crate::util::workspace_root().join("topologies/dma-mask-limit.toml");
        let machine = emulate(&Spec::load(&path).expect("spec"), "test").expect("emulable");
        let masks: Vec<_> = machine.spec.gpus.iter().map(|g| g.dma_mask_bits).collect();
        assert_eq!(masks, [LOWEST_DMA_MASK_BITS, 48]);
        assert!(machine.spec.gpus.iter().all(|g| g.bar_address.is_none()));
        // The firmware must put the BARs out of the 32-bit mask's reach.
        assert!(machine.bars_above_4g);
        assert!(machine
            .qemu_args
            .iter()
            .any(|a| a.starts_with("pcie-root-port,id=rp0,") && a.ends_with(",pref64-reserve=4G")));
        let same_switch = crate::util::workspace_root().join("topologies/same-switch.toml");
        let plain = emulate(&Spec::load(&same_switch).expect("spec"), "test").expect("emulable");
        assert!(!plain.qemu_args.iter().any(|a| a.contains("pref64-reserve")));
    }
}
