//! Checks that a parsed spec describes a machine that can exist.

use std::collections::{HashMap, HashSet};

use hsa_p2p_core::gpu_id::MAX_GPUS;
use hsa_p2p_core::pcie::{PcieGen, PCIE_WIDTHS};

use super::{KernelGeneration, PcieLinkSpec, Spec};
use crate::machine_facts::parse_address;

/// Root ports sit on bus 0 at devices 1..=30 (0 is the host bridge, 31 the LPC bridge on q35).
pub(super) const MAX_ROOT_PORTS: usize = 30;

/// What a `parent` string names.
pub(super) enum ParentRef<'a> {
    RootPort(&'a str),
    SwitchPort(&'a str, u32),
}

pub(super) fn parse_parent(parent: &str) -> ParentRef<'_> {
    match parent.rsplit_once('.') {
        Some((switch, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            ParentRef::SwitchPort(switch, port.parse().unwrap_or(u32::MAX))
        }
        _ => ParentRef::RootPort(parent),
    }
}

/// A GPU id must not read as another node's name on a command line (see
/// `crate::node_names`): not a number, `nodeN` or `cpuN`, and `gpuN` only for the N-th GPU.
fn check_gpu_name(id: &str, index: usize) -> Result<(), String> {
    let number = |prefix: &str| {
        id.strip_prefix(prefix)
            .filter(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    };
    if number("").or(number("node")).or(number("cpu")).is_some() {
        return Err(format!(
            "gpu id {id:?} reads as a node id, nodeN or cpuN on the command line; choose \
             another id"
        ));
    }
    match number("gpu") {
        Some(n) if n != index.to_string() => Err(format!(
            "gpu id {id:?} is GPU number {index} of the spec, so `gpu{index}` and {id:?} would \
             name different GPUs; call it \"gpu{index}\" or a name that is not gpuN"
        )),
        _ => Ok(()),
    }
}

/// A link's generation and width, as amdgpu's bandwidth table knows them.
fn check_link(owner: &str, link: PcieLinkSpec) -> Result<(), String> {
    if PcieGen::from_number(link.gen).is_none() {
        return Err(format!("{owner}: pcie gen must be 1..=5"));
    }
    if !PCIE_WIDTHS.contains(&link.width) {
        return Err(format!(
            "{owner}: pcie width must be one of {PCIE_WIDTHS:?}"
        ));
    }
    Ok(())
}

impl Spec {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` is empty".into());
        }
        if self.cpus.is_empty() {
            return Err("at least one [[cpu]] is required".into());
        }
        if self.gpus.len() > MAX_GPUS {
            return Err(format!(
                "{} GPUs: at most {MAX_GPUS} are supported",
                self.gpus.len()
            ));
        }
        self.check_host_bridges()?;
        for (index, cpu) in self.cpus.iter().enumerate() {
            if let Some(row) = &cpu.distances {
                if row.len() != self.cpus.len() {
                    return Err(format!(
                        "cpu {index}: `distances` has {} entries, expected one per CPU ({})",
                        row.len(),
                        self.cpus.len()
                    ));
                }
                if row.contains(&0) {
                    return Err(format!("cpu {index}: a NUMA distance of 0 is not valid"));
                }
            }
        }

        let mut ids = HashSet::new();
        let all_ids = self
            .host_bridges
            .iter()
            .map(|b| &b.id)
            .chain(self.root_ports.iter().map(|p| &p.id))
            .chain(self.switches.iter().map(|s| &s.id))
            .chain(self.gpus.iter().map(|g| &g.id));
        for id in all_ids {
            if id.is_empty() || id.contains('.') {
                return Err(format!("id {id:?} must be non-empty and contain no '.'"));
            }
            if !ids.insert(id.as_str()) {
                return Err(format!("id {id:?} is used twice"));
            }
        }
        for (index, gpu) in self.gpus.iter().enumerate() {
            check_gpu_name(&gpu.id, index)?;
        }
        for (kind, id, link) in (self.root_ports.iter())
            .map(|p| ("root port", &p.id, p.pcie))
            .chain(self.switches.iter().map(|s| ("switch", &s.id, s.pcie)))
        {
            if let Some(link) = link {
                check_link(&format!("{kind} {id:?}"), link)?;
            }
        }
        for port in &self.root_ports {
            if port.cpu as usize >= self.cpus.len() {
                return Err(format!(
                    "root port {:?} is on cpu {}, but there are only {} CPUs",
                    port.id,
                    port.cpu,
                    self.cpus.len()
                ));
            }
        }

        // Every root port and downstream port holds at most one device.
        let mut occupied: HashMap<String, String> = HashMap::new();
        let children = self
            .switches
            .iter()
            .map(|s| (&s.id, &s.parent))
            .chain(self.gpus.iter().map(|g| (&g.id, &g.parent)));
        for (child, parent) in children {
            self.check_parent(child, parent)?;
            if let Some(other) = occupied.insert(parent.clone(), child.clone()) {
                return Err(format!(
                    "{other:?} and {child:?} both sit on port {parent:?}"
                ));
            }
        }
        for switch in &self.switches {
            if switch.downstream_ports == 0 || switch.downstream_ports > 32 {
                return Err(format!(
                    "switch {:?}: downstream_ports must be 1..=32",
                    switch.id
                ));
            }
            self.root_port_of(&switch.parent)?;
        }

        let mut hive_ids = HashSet::new();
        for hive in &self.xgmi_hives {
            if hive.id == 0 || !hive_ids.insert(hive.id) {
                return Err(format!(
                    "xgmi_hive id {} must be non-zero and unique",
                    hive.id
                ));
            }
        }
        for gpu in &self.gpus {
            let name = &gpu.id;
            if gpu.vram.0 == 0 || gpu.bar_size().0 == 0 {
                return Err(format!("gpu {name:?}: vram and bar must be non-zero"));
            }
            if gpu.apu && gpu.bar.is_some() {
                return Err(format!(
                    "gpu {name:?}: an APU has no VRAM BAR: amdgpu maps its whole carve-out \
                     (aper_size = real VRAM, gmc_v9_0_mc_init), so `bar` cannot be given"
                ));
            }
            if gpu.apu && gpu.bar_address.is_none() {
                return Err(format!(
                    "gpu {name:?}: an APU needs `bar_address`: the physical address of its \
                     carve-out in system memory (amdgpu's aper_base, get_mc_fb_offset)"
                ));
            }
            if !(32..=64).contains(&gpu.dma_mask_bits) {
                return Err(format!("gpu {name:?}: dma_mask_bits must be 32..=64"));
            }
            check_link(&format!("gpu {name:?}"), gpu.pcie)?;
            if let Some(hive) = gpu.xgmi_hive {
                if self.hive(hive).is_none() {
                    return Err(format!("gpu {name:?}: xgmi_hive {hive} is not declared"));
                }
            }
        }
        for hive in &self.xgmi_hives {
            hive.check(self)?;
        }
        self.check_gpu_addresses()?;
        for port in &self.platform.disable_acs_redir {
            self.check_parent("platform.disable_acs_redir", port)?;
        }
        self.bar_addresses()?;
        self.check_bus_ranges()
    }

    /// Host bridges and the platform's CPU: every root port on a declared host bridge when
    /// there are any, at most [`MAX_ROOT_PORTS`] per root bus, a CPU family only with a vendor.
    fn check_host_bridges(&self) -> Result<(), String> {
        if !self.platform.pcie_p2p && self.platform.kernel != KernelGeneration::HsaAmdP2p {
            return Err(
                "platform: pcie_p2p = false needs kernel = \"hsa-amd-p2p\": amdgpu \
                        has the pcie_p2p parameter only when built with CONFIG_HSA_AMD_P2P"
                    .into(),
            );
        }
        if self.platform.cpu_family.is_some() && self.platform.cpu_vendor.is_none() {
            return Err("platform: cpu_family needs cpu_vendor (e.g. \"AuthenticAMD\")".into());
        }
        for port in &self.root_ports {
            match (&port.host_bridge, self.host_bridges.is_empty()) {
                (None, false) => {
                    return Err(format!(
                        "root port {:?}: host_bridge is required when the spec declares \
                         [[host_bridge]]",
                        port.id
                    ))
                }
                (Some(name), _) if !self.host_bridges.iter().any(|b| b.id == *name) => {
                    return Err(format!(
                        "root port {:?}: host_bridge {name:?} names no [[host_bridge]]",
                        port.id
                    ))
                }
                _ => {}
            }
        }
        let names: Vec<Option<&str>> = if self.host_bridges.is_empty() {
            vec![None]
        } else {
            self.host_bridges
                .iter()
                .map(|b| Some(b.id.as_str()))
                .collect()
        };
        for name in names {
            let ports = (self.root_ports.iter())
                .filter(|p| name.is_none() || p.host_bridge.as_deref() == name)
                .count();
            if ports > MAX_ROOT_PORTS {
                let bridge = name.map_or(String::new(), |n| format!(" on host bridge {n:?}"));
                return Err(format!(
                    "{ports} root ports{bridge}: at most {MAX_ROOT_PORTS} fit on a root bus"
                ));
            }
        }
        Ok(())
    }

    /// Each host bridge numbers its buses from its root bus up: they must stay below 256 and
    /// not run into another host bridge's of the same segment.
    fn check_bus_ranges(&self) -> Result<(), String> {
        let layout = self.layout();
        let ranges = layout.bus_ranges();
        let name = |index: usize| {
            self.host_bridges
                .get(index)
                .map_or("the PCIe tree".to_string(), |b| {
                    format!("host bridge {:?}", b.id)
                })
        };
        for (index, &(segment, first, end)) in ranges.iter().enumerate() {
            if end > 256 {
                return Err(format!(
                    "{} needs buses {first:#04x}..{end:#x}: more than 256 bus numbers",
                    name(index)
                ));
            }
            let overlapping = ranges.iter().enumerate().find(|&(other, &(s, f, e))| {
                other != index && s == segment && f < end && first < e
            });
            if let Some((other, _)) = overlapping {
                return Err(format!(
                    "{} (segment {segment:#x}, buses {first:#04x}..{end:#04x}) overlaps {}'s \
                     buses; give them different `bus` or `segment` values",
                    name(index),
                    name(other)
                ));
            }
        }
        Ok(())
    }

    /// Explicit GPU addresses parse as `DDDD:BB:DD.F` and name one GPU each.
    fn check_gpu_addresses(&self) -> Result<(), String> {
        let mut seen = HashMap::new();
        for gpu in &self.gpus {
            let Some(text) = &gpu.address else { continue };
            let address = parse_address(text).ok_or_else(|| {
                format!(
                    "gpu {:?}: address {text:?} is not a PCI address DDDD:BB:DD.F",
                    gpu.id
                )
            })?;
            if let Some(other) = seen.insert(address, &gpu.id) {
                return Err(format!(
                    "gpu {:?}: address {text:?} is also gpu {other:?}'s",
                    gpu.id
                ));
            }
        }
        Ok(())
    }

    fn check_parent(&self, child: &str, parent: &str) -> Result<(), String> {
        match parse_parent(parent) {
            ParentRef::RootPort(port) => {
                if self.root_ports.iter().any(|p| p.id == port) {
                    Ok(())
                } else {
                    Err(format!("{child:?}: parent {parent:?} is no root port (a switch port is written <switch>.<n>)"))
                }
            }
            ParentRef::SwitchPort(switch, port) => {
                match self.switches.iter().find(|s| s.id == switch) {
                    Some(s) if port < s.downstream_ports => Ok(()),
                    Some(s) => Err(format!(
                        "{child:?}: switch {switch:?} has no port {port}: its {} downstream \
                         ports are {switch}.0 to {switch}.{}",
                        s.downstream_ports,
                        s.downstream_ports.saturating_sub(1)
                    )),
                    None => Err(format!("{child:?}: parent {parent:?} names no switch")),
                }
            }
        }
    }

    /// The root port above `parent`, following switch parents (rejects cycles).
    pub(super) fn root_port_of(&self, parent: &str) -> Result<usize, String> {
        let mut current = parent.to_string();
        for _ in 0..=self.switches.len() {
            match parse_parent(&current) {
                ParentRef::RootPort(port) => {
                    return self
                        .root_ports
                        .iter()
                        .position(|p| p.id == port)
                        .ok_or_else(|| format!("{current:?} is no root port"));
                }
                ParentRef::SwitchPort(switch, _) => {
                    let switch = self
                        .switches
                        .iter()
                        .find(|s| s.id == switch)
                        .ok_or_else(|| format!("{current:?} names no switch"))?;
                    current = switch.parent.clone();
                }
            }
        }
        Err(format!("switches above {parent:?} form a cycle"))
    }
}
