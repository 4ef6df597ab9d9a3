//! `p2pctl snapshot`: a spec of the running machine, from its `/sys` and `/proc`, so that
//! `predict` and `why` answer "what would HSA_AMD_P2P do here" on any kernel.
//!
//! One walk: the PCI facts (`machine_facts::Inventory`) and the machine the rules see
//! (`kfd_validation::observe`, from amdkfd's tree or the hsa_p2p module's), turned into spec
//! elements: each GPU's chain of bridges becomes root ports and switches (a switch is an
//! upstream port and its downstream ports, numbered in address order), each root bus a
//! `[[host_bridge]]` with the ids of the device the kernel's whitelist looks at, every GPU with
//! its real address, BAR, VRAM, DMA mask, link, hive and generation, and the platform's IOMMU
//! mode, CPU, `pcie_p2p` and kernel generation. Without a GPU topology (amdgpu or amdkfd not
//! loaded) the PCI facts alone give the GPUs, and what only amdkfd tells is assumed and said.

use std::collections::BTreeMap;
use std::path::Path;

use hsa_p2p_core::facts::{CpuFacts, GpuFacts, IommuMode, PciAddress, PlatformFacts};
use hsa_p2p_core::pcie::{PcieGen, PcieLink};
use hsa_p2p_core::topology::Topology;

use crate::kfd_validation::{
    match_gpus, observe, ObservedMachine, TreeKind, DEFAULT_DMA_MASK_BITS,
};
use crate::machine_facts::{Inventory, PciDevice, AMD_GPU_VENDOR, AMD_VENDOR};
use crate::spec::{
    ByteSize, Cpu, Gpu, HiveWiring, HostBridge, IommuSetting, KernelGeneration, PcieLinkSpec,
    Platform, RootPort, Spec, Switch, XgmiHive, XgmiLinkSpec,
};
use crate::sysfs::read_topology;

/// A spec of the machine, with what had to be assumed.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The machine.
    pub spec: Spec,
    /// Facts that were not visible and were assumed (written as comments).
    pub notes: Vec<String>,
}

impl Snapshot {
    /// The spec as TOML, the notes as comments above it.
    pub fn to_toml(&self) -> Result<String, String> {
        let mut out = String::new();
        for note in &self.notes {
            out += &format!("# {note}\n");
        }
        let text = toml::to_string(&self.spec).map_err(|e| e.to_string())?;
        for line in text.lines() {
            out += &hex_where_read_as_hex(line);
            out += "\n";
        }
        Ok(out)
    }
}

/// Integer keys people read in hex, as the shipped specs write them: lspci's vendor:device, BAR
/// addresses, XGMI hive ids, CPU families (/proc/cpuinfo's 25 is better known as 0x19, Zen 3).
/// The TOML serializer writes every integer in decimal.
const HEX_KEYS: [&str; 5] = ["vendor_id", "device_id", "bar_address", "id", "cpu_family"];

/// `line` with its integer value in hex when its key is one of [`HEX_KEYS`].
fn hex_where_read_as_hex(line: &str) -> String {
    let hex = line.split_once(" = ").and_then(|(key, value)| {
        let value: u64 = value.parse().ok()?;
        HEX_KEYS
            .contains(&key)
            .then(|| format!("{key} = {value:#x}"))
    });
    hex.unwrap_or_else(|| line.to_string())
}

/// The KFD tree below `root` and whose it is: amdkfd's, else the hsa_p2p module's.
fn tree_below(root: &Path) -> Result<(Topology, TreeKind), String> {
    let candidates = [
        ("sys/class/kfd/kfd/topology", TreeKind::Kfd),
        ("sys/kernel/hsa_p2p/topology", TreeKind::HsaP2p),
    ];
    let mut tried = Vec::new();
    for (path, kind) in candidates {
        match read_topology(&root.join(path)) {
            Ok(tree) if tree.nodes.iter().any(|n| n.is_gpu()) => return Ok((tree, kind)),
            Ok(_) => tried.push(format!("{path}: no GPU node")),
            Err(error) => tried.push(format!("{path}: {error}")),
        }
    }
    Err(format!(
        "no GPU topology below {} ({}); a snapshot needs amdgpu and amdkfd (or the hsa_p2p \
         module) loaded",
        root.display(),
        tried.join("; ")
    ))
}

/// `0000:00:01.1` as an id (ids may not contain `.`).
fn id_of(prefix: &str, address: PciAddress) -> String {
    format!(
        "{prefix}-{:04x}-{:02x}-{:02x}-{:x}",
        address.domain, address.bus, address.device, address.function
    )
}

/// Builds the PCIe part of the spec from the GPUs' bridge chains.
struct TreeBuilder<'a> {
    inventory: &'a Inventory,
    root_ports: BTreeMap<PciAddress, RootPort>,
    switches: BTreeMap<PciAddress, Switch>,
}

impl TreeBuilder<'_> {
    fn acs(&self, address: PciAddress) -> bool {
        self.inventory
            .device(address)
            .and_then(|d| d.acs_redirect)
            .unwrap_or(false)
    }

    /// The `parent` of the device below `chain[0]` (its bridges, nearest first, root port
    /// last): a root port id or `<switch>.<n>`.
    fn parent_of(&mut self, chain: &[PciAddress], cpu: u32, host_bridge: &str) -> String {
        match chain {
            [] => String::new(),
            [root_port] => {
                let acs_redirect = self.acs(*root_port);
                let entry = self.root_ports.entry(*root_port).or_insert(RootPort {
                    id: id_of("rp", *root_port),
                    cpu,
                    acs_redirect,
                    host_bridge: Some(host_bridge.to_string()),
                    // The GPU's link below already is the one the validation derives.
                    pcie: None,
                });
                entry.id.clone()
            }
            [downstream, upstream, rest @ ..] => {
                let parent = self.parent_of(rest, cpu, host_bridge);
                let mut ports: Vec<&PciDevice> = (self.inventory.devices.iter())
                    .filter(|d| d.is_bridge() && d.upstream.first() == Some(upstream))
                    .collect();
                ports.sort_by_key(|d| d.address);
                let port = ports
                    .iter()
                    .position(|d| d.address == *downstream)
                    .unwrap_or(0);
                let redirect = ports.iter().any(|d| d.acs_redirect == Some(true));
                let switch = self.switches.entry(*upstream).or_insert(Switch {
                    id: id_of("sw", *upstream),
                    parent,
                    downstream_ports: ports.len().max(port + 1) as u32,
                    acs_redirect: redirect,
                    pcie: None,
                });
                format!("{}.{port}", switch.id)
            }
        }
    }
}

/// The device `pci_host_bridge_dev` looks at: device 00.0 of the root bus, else its first root
/// port.
fn host_bridge_ids(inventory: &Inventory, segment: u32, bus: u8) -> Option<(u16, u16)> {
    let on_bus: Vec<&PciDevice> = (inventory.devices.iter())
        .filter(|d| d.address.domain == segment && d.address.bus == bus)
        .collect();
    on_bus
        .iter()
        .find(|d| d.address.device == 0 && d.address.function == 0)
        .or_else(|| on_bus.iter().find(|d| d.is_bridge()))
        .map(|d| (d.vendor, d.device))
}

/// Takes a snapshot of the machine below `root` (`/` on the machine itself).
pub fn snapshot(root: &Path) -> Result<Snapshot, String> {
    let inventory = Inventory::collect(root).map_err(|e| e.to_string())?;
    let pcie_p2p = inventory.platform.pcie_p2p;
    let (machine, kernel, source) = match tree_below(root) {
        Ok((tree, kind)) => {
            let gpus = match_gpus(&inventory, &tree, kind).map_err(|p| p.join("; "))?;
            let machine = observe(&inventory, &tree, &gpus, kind, pcie_p2p.unwrap_or(true))
                .map_err(|p| p.join("; "))?;
            let kernel = if tree.nodes.iter().all(|n| !n.reports_p2p_links) {
                KernelGeneration::BeforeP2pLinks
            } else if pcie_p2p.is_none() && kind == TreeKind::Kfd {
                KernelGeneration::WithoutHsaAmdP2p
            } else {
                KernelGeneration::HsaAmdP2p
            };
            (machine, kernel, format!("{} tree", kind.driver()))
        }
        Err(why) => (
            pci_only(&inventory).map_err(|none| format!("{why}; {none}"))?,
            KernelGeneration::HsaAmdP2p,
            "PCI facts only: no GPU topology".to_string(),
        ),
    };
    let mut notes = vec![format!("p2pctl snapshot of {} ({source})", root.display())];
    notes.extend(machine.assumptions.iter().map(|a| format!("assumed: {a}")));

    let count = machine.cpus.len();
    let cpus = (machine.cpus.iter().enumerate())
        .map(|(index, cpu)| Cpu {
            cores: cpu.cpu_cores,
            memory: ByteSize(cpu.memory_bytes),
            distances: Some(machine.numa_distances[index * count..(index + 1) * count].to_vec()),
        })
        .collect();

    let mut builder = TreeBuilder {
        inventory: &inventory,
        root_ports: BTreeMap::new(),
        switches: BTreeMap::new(),
    };
    let mut spec_gpus = Vec::new();
    let mut bridges: BTreeMap<String, (u32, u8)> = BTreeMap::new();
    for (index, (facts, device)) in machine.gpus.iter().zip(&machine.devices).enumerate() {
        let chain = &device.upstream;
        if chain.is_empty() || chain.len() % 2 == 0 {
            return Err(format!(
                "{}: its bridges ({}) are not a root port with switches (upstream and \
                 downstream port pairs) above it",
                device.address,
                chain
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" <- ")
            ));
        }
        let top = chain[chain.len() - 1];
        let host_bridge = format!("hb-{:04x}-{:02x}", top.domain, top.bus);
        bridges.insert(host_bridge.clone(), (top.domain, top.bus));
        let parent = builder.parent_of(chain, facts.numa_node, &host_bridge);
        spec_gpus.push(Gpu {
            id: format!("gpu{index}"),
            parent,
            vram: ByteSize(facts.vram_size),
            bar: Some(ByteSize(facts.bar_size)),
            address: Some(facts.pci.to_string()),
            bar_address: Some(facts.bar_base),
            dma_mask_bits: facts.dma_mask_bits,
            pcie: PcieLinkSpec {
                gen: facts.pcie.gen.number(),
                width: facts.pcie.width,
            },
            pcie_atomics: facts.pcie_atomics,
            xgmi_hive: facts.xgmi.map(|x| x.hive_id),
            xgmi_connected_to_cpu: facts.xgmi_connected_to_cpu,
            // sysfs shows an APU's iGPU as a PCI device like any other: not told apart here.
            apu: false,
            gfx_target_version: facts.gfx_target_version,
            vendor_id: facts.vendor_id,
            device_id: facts.device_id,
            simd_count: facts.simd_count,
            // Whether the slot is hot-pluggable matters only to the emulated machine's tests.
            hotplug: false,
        });
    }

    let mut host_bridges = Vec::new();
    for (id, (segment, bus)) in &bridges {
        let (vendor_id, device_id) =
            host_bridge_ids(&inventory, *segment, *bus).unwrap_or_else(|| {
                notes.push(format!(
                    "{id}: no device 00.0 or root port on its root bus: ids 0000:0000"
                ));
                (0, 0)
            });
        host_bridges.push(HostBridge {
            id: id.clone(),
            segment: *segment,
            bus: *bus,
            vendor_id,
            device_id,
        });
    }
    let mut platform = Platform {
        iommu: match machine.platform.iommu {
            IommuMode::Remap => IommuSetting::Remap,
            IommuMode::Passthrough => IommuSetting::Passthrough,
            IommuMode::Off => IommuSetting::Off,
        },
        cpu_vendor: inventory.platform.cpu_vendor.clone(),
        cpu_family: inventory
            .platform
            .cpu_vendor
            .as_ref()
            .and(inventory.platform.cpu_family),
        pcie_p2p: pcie_p2p.unwrap_or(true),
        kernel,
        cpu_link_bandwidth_mbs: machine.cpu_link_bandwidth_mbs,
        ..Platform::default()
    };
    match platform.kernel {
        KernelGeneration::HsaAmdP2p => {}
        KernelGeneration::WithoutHsaAmdP2p => notes.push(
            "amdgpu has no pcie_p2p parameter: built without CONFIG_HSA_AMD_P2P; `p2pctl \
             predict THIS.toml --set platform.kernel=hsa-amd-p2p` shows what it would do"
                .into(),
        ),
        KernelGeneration::BeforeP2pLinks => notes.push(
            "amdkfd publishes no p2p_links_count (older than p2p_links); `p2pctl predict \
             THIS.toml --set platform.kernel=hsa-amd-p2p` shows what HSA_AMD_P2P would do"
                .into(),
        ),
    }
    if inventory.platform.cpu_supports_p2pdma().is_none()
        && host_bridges.iter().all(|b| b.vendor_id == AMD_VENDOR)
    {
        platform.host_bridge_whitelisted = true;
        notes.push(
            "no /proc/cpuinfo: AMD host bridges stand in for an AMD Zen CPU \
             (host_bridge_whitelisted = true)"
                .into(),
        );
    }

    let spec = Spec {
        name: "snapshot".into(),
        description: format!("Snapshot of {} by p2pctl snapshot", root.display()),
        platform,
        cpus,
        host_bridges,
        root_ports: builder.root_ports.into_values().collect(),
        switches: builder.switches.into_values().collect(),
        xgmi_hives: hives(&machine.gpus, &spec_gpus),
        gpus: spec_gpus,
    };
    Ok(Snapshot { spec, notes })
}

/// The machine from PCI facts alone (amdgpu or amdkfd not loaded): AMD display devices (those
/// amdgpu drives, else all), their BAR0 as the VRAM aperture, and what only amdgpu or amdkfd
/// would tell assumed and said.
fn pci_only(inventory: &Inventory) -> Result<ObservedMachine<'_>, String> {
    let mut devices = inventory.amdgpu_devices();
    if devices.is_empty() {
        devices = (inventory.devices.iter())
            .filter(|d| d.vendor == AMD_GPU_VENDOR && d.is_display() && d.bar(0).is_some())
            .collect();
    }
    if devices.is_empty() {
        return Err("and no AMD GPU with a BAR0 among the PCI devices".into());
    }
    let mut assumptions = vec![
        "gfx_target_version, SIMDs and XGMI hives unknown without amdkfd (0, none)".to_string(),
        "PCIe atomics supported".to_string(),
    ];
    let slit = &inventory.platform.numa_distances;
    let count = slit.len().max(1);
    let numa_distances = if slit.is_empty() {
        assumptions.push("one CPU node (no NUMA distances in sysfs)".into());
        vec![10]
    } else {
        slit.iter().flatten().copied().collect()
    };
    let mut gpus = Vec::new();
    for device in &devices {
        let bar = device.bar(0).unwrap_or_default();
        let vram_size = device.vram_total.unwrap_or_else(|| {
            assumptions.push(format!("{}: VRAM = its BAR0 (large BAR)", device.address));
            bar.size()
        });
        let pcie = device
            .capable_link(inventory.upstream_port(device))
            .unwrap_or_else(|| {
                assumptions.push(format!("{}: PCIe link unknown, Gen4 x16", device.address));
                PcieLink {
                    gen: PcieGen::Gen4,
                    width: 16,
                }
            });
        gpus.push(GpuFacts {
            pci: device.address,
            vendor_id: u32::from(device.vendor),
            device_id: u32::from(device.device),
            gfx_target_version: 0,
            simd_count: 0,
            vram_size,
            bar_base: bar.start,
            bar_size: bar.size(),
            numa_node: device.numa_node.unwrap_or(0).min(count as u32 - 1),
            dma_mask_bits: device.dma_mask_bits.unwrap_or(DEFAULT_DMA_MASK_BITS),
            xgmi: None,
            xgmi_connected_to_cpu: false,
            pcie,
            pcie_atomics: true,
            drm_render_minor: 0,
            unique_id: 0,
        });
    }
    Ok(ObservedMachine {
        cpus: vec![CpuFacts::default(); count],
        numa_distances,
        cpu_link_bandwidth_mbs: 0,
        gpu_nodes: (0..gpus.len() as u32).map(|i| i + count as u32).collect(),
        gpus,
        platform: PlatformFacts {
            iommu: inventory.iommu_mode(&devices),
            pcie_p2p: inventory.platform.pcie_p2p.unwrap_or(true),
            hsa_amd_p2p: true,
        },
        devices,
        assumptions,
    })
}

/// Each hive with the links its members' XGMI io_links show (a member pair one hop apart
/// whose links report no bandwidth counts as one link).
fn hives(facts: &[hsa_p2p_core::facts::GpuFacts], gpus: &[Gpu]) -> Vec<XgmiHive> {
    let mut hives: BTreeMap<u64, XgmiHive> = BTreeMap::new();
    for (index, gpu) in facts.iter().enumerate() {
        let Some(xgmi) = gpu.xgmi else { continue };
        let hive = hives.entry(xgmi.hive_id).or_insert(XgmiHive {
            id: xgmi.hive_id,
            wiring: HiveWiring::Links,
            link_bandwidth_mbs: Some(xgmi.link_bandwidth_mbs),
            links_per_peer: None,
            links: Vec::new(),
        });
        for (peer_index, peer) in facts.iter().enumerate().skip(index + 1) {
            let Some(other) = peer.xgmi.filter(|o| o.hive_id == xgmi.hive_id) else {
                continue;
            };
            let entry = xgmi.peer(&other);
            let count = match (entry.num_links, entry.num_hops) {
                (0, 1) => 1,
                (links, _) => u32::from(links),
            };
            if count > 0 {
                hive.links.push(XgmiLinkSpec {
                    gpus: [gpus[index].id.clone(), gpus[peer_index].id.clone()],
                    count,
                });
            }
        }
    }
    hives.into_values().collect()
}
