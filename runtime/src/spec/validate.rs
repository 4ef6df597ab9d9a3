//! Checks that a parsed spec describes a machine that can exist.

use std::collections::{HashMap, HashSet};

use hsa_p2p_core::gpu_id::MAX_GPUS;
use hsa_p2p_core::pcie::{PcieGen, PCIE_WIDTHS};

use super::Spec;

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
        if self.root_ports.len() > MAX_ROOT_PORTS {
            return Err(format!(
                "{} root ports: at most {MAX_ROOT_PORTS} fit on bus 0",
                self.root_ports.len()
            ));
        }
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
            .root_ports
            .iter()
            .map(|p| &p.id)
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
            if hive.links_per_peer == 0 {
                return Err(format!(
                    "xgmi_hive {}: links_per_peer must be >= 1",
                    hive.id
                ));
            }
        }
        for gpu in &self.gpus {
            let name = &gpu.id;
            if gpu.vram.0 == 0 || gpu.bar_size().0 == 0 {
                return Err(format!("gpu {name:?}: vram and bar must be non-zero"));
            }
            if !(32..=64).contains(&gpu.dma_mask_bits) {
                return Err(format!("gpu {name:?}: dma_mask_bits must be 32..=64"));
            }
            if PcieGen::from_number(gpu.pcie.gen).is_none() {
                return Err(format!("gpu {name:?}: pcie gen must be 1..=5"));
            }
            if !PCIE_WIDTHS.contains(&gpu.pcie.width) {
                return Err(format!(
                    "gpu {name:?}: pcie width must be one of {PCIE_WIDTHS:?}"
                ));
            }
            if let Some(hive) = gpu.xgmi_hive {
                if self.hive(hive).is_none() {
                    return Err(format!("gpu {name:?}: xgmi_hive {hive} is not declared"));
                }
            }
        }
        for port in &self.platform.disable_acs_redir {
            self.check_parent("platform.disable_acs_redir", port)?;
        }
        self.bar_addresses()?;
        if self.layout().bus_count() > 256 {
            return Err("the PCIe tree needs more than 256 bus numbers".into());
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
                        "{child:?}: switch {switch:?} has downstream ports 0..{}",
                        s.downstream_ports
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
