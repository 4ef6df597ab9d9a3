//! The PCIe tree of a spec with bus/device/function numbers, as firmware enumerates it: each
//! host bridge's root ports on its root bus (bus 0 of segment 0 without `[[host_bridge]]`) at
//! devices 1, 2, …; every bridge gets the next bus number of its segment depth-first.
//!
//! The VM harness builds QEMU's devices from this layout and the predictor derives both the GPUs'
//! PCI addresses and `pci_p2pdma_distance` from it, so the two agree by construction.

use hsa_p2p_core::facts::PciAddress;

use super::Spec;

/// What an element of the tree is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PcieElementKind {
    /// A root port (index into `Spec::root_ports`).
    RootPort(usize),
    /// A switch's upstream port (index into `Spec::switches`).
    SwitchUpstream(usize),
    /// A switch's downstream port.
    SwitchDownstream {
        /// Index into `Spec::switches`.
        switch: usize,
        /// Port number.
        port: u32,
    },
    /// A GPU (index into `Spec::gpus`).
    Gpu(usize),
}

/// One PCI function of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcieElement {
    /// What it is.
    pub kind: PcieElementKind,
    /// A unique label (root port / switch / GPU id, `<switch>.up`, `<switch>.<n>`), usable as a
    /// QEMU device id.
    pub label: String,
    /// The upstream bridge (`pci_upstream_bridge`), by index; `None` for root ports.
    pub parent: Option<usize>,
    /// Bus/device/function.
    pub address: PciAddress,
    /// Secondary bus of a bridge.
    pub secondary_bus: Option<u8>,
    /// ACS redirect is enabled on this bridge.
    pub acs_redirect: bool,
    /// The CPU node of the root complex above it.
    pub cpu: u32,
    /// The host bridge above it (index into `Spec::host_bridges`; `None`: the unnamed one).
    pub host_bridge: Option<usize>,
}

/// The enumerated tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcieLayout {
    /// Elements in enumeration order (a parent always precedes its children).
    pub elements: Vec<PcieElement>,
    /// Buses each host bridge numbers (root bus included) as (segment, first, end), in
    /// `Spec::host_bridges` order (one entry for the unnamed host bridge).
    bus_ranges: Vec<(u32, usize, usize)>,
}

/// Device number of the first root port on bus 0.
const FIRST_ROOT_PORT_DEVICE: u8 = 1;

struct Enumerator<'a> {
    spec: &'a Spec,
    elements: Vec<PcieElement>,
    next_bus: usize,
    segment: u32,
    host_bridge: Option<usize>,
}

impl Enumerator<'_> {
    fn take_bus(&mut self) -> u8 {
        let bus = self.next_bus;
        self.next_bus += 1;
        // Validation rejects trees beyond 256 buses; wrap rather than panic before it runs.
        bus as u8
    }

    fn address(&self, bus: u8, device: u8) -> PciAddress {
        PciAddress {
            domain: self.segment,
            bus,
            device,
            function: 0,
        }
    }

    fn push(&mut self, element: PcieElement) -> usize {
        self.elements.push(element);
        self.elements.len() - 1
    }

    /// Places whatever sits below the port `port_name` (element `port`) on bus `bus`.
    fn populate(&mut self, port_name: &str, port: usize, bus: u8, cpu: u32) {
        let spec = self.spec;
        if let Some(switch_index) = spec.switches.iter().position(|s| s.parent == port_name) {
            let switch = &spec.switches[switch_index];
            let internal_bus = self.take_bus();
            let upstream = self.push(PcieElement {
                kind: PcieElementKind::SwitchUpstream(switch_index),
                label: format!("{}.up", switch.id),
                parent: Some(port),
                address: self.address(bus, 0),
                secondary_bus: Some(internal_bus),
                acs_redirect: false,
                cpu,
                host_bridge: self.host_bridge,
            });
            for port_number in 0..switch.downstream_ports {
                let secondary = self.take_bus();
                let label = format!("{}.{port_number}", switch.id);
                let downstream = self.push(PcieElement {
                    kind: PcieElementKind::SwitchDownstream {
                        switch: switch_index,
                        port: port_number,
                    },
                    label: label.clone(),
                    parent: Some(upstream),
                    address: self.address(internal_bus, port_number as u8),
                    secondary_bus: Some(secondary),
                    acs_redirect: spec.acs_redirect(switch.acs_redirect, &label),
                    cpu,
                    host_bridge: self.host_bridge,
                });
                self.populate(&label, downstream, secondary, cpu);
            }
        } else if let Some(gpu_index) = spec.gpus.iter().position(|g| g.parent == port_name) {
            self.push(PcieElement {
                kind: PcieElementKind::Gpu(gpu_index),
                label: spec.gpus[gpu_index].id.clone(),
                parent: Some(port),
                address: self.address(bus, 0),
                secondary_bus: None,
                acs_redirect: false,
                cpu,
                host_bridge: self.host_bridge,
            });
        }
    }
}

impl Spec {
    /// Whether the port `label`, whose spec says `acs_redirect`, redirects once the kernel has
    /// applied `pci=disable_acs_redir=` (`platform.disable_acs_redir`).
    fn acs_redirect(&self, acs_redirect: bool, label: &str) -> bool {
        acs_redirect
            && !self
                .platform
                .disable_acs_redir
                .iter()
                .any(|port| port == label)
    }
}

impl PcieLayout {
    /// Enumerates the tree of `spec` (which may not be validated yet: unknown parents are left out).
    pub fn of(spec: &Spec) -> PcieLayout {
        let mut enumerator = Enumerator {
            spec,
            elements: Vec::new(),
            next_bus: 0,
            segment: 0,
            host_bridge: None,
        };
        let bridges: Vec<(Option<usize>, u32, u8)> = if spec.host_bridges.is_empty() {
            vec![(None, 0, 0)]
        } else {
            (spec.host_bridges.iter().enumerate())
                .map(|(index, bridge)| (Some(index), bridge.segment, bridge.bus))
                .collect()
        };
        let mut bus_ranges = Vec::new();
        for (host_bridge, segment, root_bus) in bridges {
            enumerator.segment = segment;
            enumerator.host_bridge = host_bridge;
            enumerator.next_bus = usize::from(root_bus) + 1;
            let name = host_bridge.map(|index| spec.host_bridges[index].id.as_str());
            let ports =
                spec.root_ports.iter().enumerate().filter(|(_, port)| {
                    host_bridge.is_none() || port.host_bridge.as_deref() == name
                });
            for (slot, (index, root_port)) in ports.enumerate() {
                let secondary = enumerator.take_bus();
                let element = enumerator.push(PcieElement {
                    kind: PcieElementKind::RootPort(index),
                    label: root_port.id.clone(),
                    parent: None,
                    address: enumerator.address(root_bus, FIRST_ROOT_PORT_DEVICE + slot as u8),
                    secondary_bus: Some(secondary),
                    acs_redirect: spec.acs_redirect(root_port.acs_redirect, &root_port.id),
                    cpu: root_port.cpu,
                    host_bridge,
                });
                enumerator.populate(&root_port.id, element, secondary, root_port.cpu);
            }
            bus_ranges.push((segment, usize::from(root_bus), enumerator.next_bus));
        }
        PcieLayout {
            elements: enumerator.elements,
            bus_ranges,
        }
    }

    /// Bus numbers used, bus 0 included (the furthest any host bridge reaches).
    pub fn bus_count(&self) -> usize {
        self.bus_ranges
            .iter()
            .map(|(_, _, end)| *end)
            .max()
            .unwrap_or(1)
    }

    /// Each host bridge's buses as (segment, first, end), in `Spec::host_bridges` order.
    pub fn bus_ranges(&self) -> &[(u32, usize, usize)] {
        &self.bus_ranges
    }

    /// The element of GPU `gpu`.
    pub fn gpu_element(&self, gpu: usize) -> Option<usize> {
        self.elements
            .iter()
            .position(|e| e.kind == PcieElementKind::Gpu(gpu))
    }

    /// The chain from element `start` up to its root port: `start`, its upstream bridge, ….
    pub fn upstream_chain(&self, start: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(start), |&index| self.elements[index].parent)
    }
}
