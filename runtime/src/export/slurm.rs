//! `p2pctl export slurm`: one `gres.conf` line per GPU, as Slurm's GPU autodetection would
//! write it, with the XGMI link counts in `Links=`.
//!
//! Slurm's gres.conf(5): `Links` is "a comma-delimited list of numbers identifying the number
//! of connections between this device and other devices", in device order, `-1` for the device
//! itself and `0` for no connection; a line with `Links` names a single `File`. The NVML
//! autodetection fills it with NVLink counts; the RSMI one writes `-1` and zeros (only the PCI
//! order). Here the count is the XGMI links between directly linked hive members (the spec's
//! links of the pair when known, else 1) and 0 for PCIe peers, so Slurm co-schedules
//! XGMI-connected GPUs first. Devices are in PCI address order, Slurm's GPU order.

use std::fmt::Write;

use hsa_p2p_core::compose::XGMI_WEIGHT_PER_HOP;
use hsa_p2p_core::link::LinkType;

use crate::views::ViewInput;

/// A gres.conf `Type` from a GPU's KFD name (`gfx942`): lower case, only letters, digits, `_`
/// and `-`; `amdgpu` when the name is empty.
pub fn slurm_type(name: &str) -> String {
    let cleaned: String = name
        .trim()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect();
    if cleaned.is_empty() {
        "amdgpu".to_string()
    } else {
        cleaned
    }
}

/// The gres.conf text for the GPUs of `input` (a comment header, then one line per GPU).
/// `type_override` replaces every GPU's `Type`. GPUs without a known render minor get no `File`
/// (Slurm then counts them without binding a device) and a comment saying so.
pub fn gres_lines(input: &ViewInput<'_>, type_override: Option<&str>, source: &str) -> String {
    let topology = input.topology;
    let mut gpus: Vec<u32> = input.gpus.clone();
    gpus.sort_by_key(|&id| topology.node(id).map(|n| n.pci_address()));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# gres.conf lines for {source}, written by p2pctl export slurm."
    );
    let _ = writeln!(
        out,
        "# GPUs in PCI address order; Links= counts XGMI links to each GPU in this order \
         (-1: itself, 0: none)."
    );
    for &gpu in &gpus {
        let Some(node) = topology.node(gpu) else {
            continue;
        };
        let place = input.placement.gpu(gpu);
        let links: Vec<String> = gpus
            .iter()
            .map(|&other| {
                if other == gpu {
                    return "-1".to_string();
                }
                let direct_xgmi = topology.io_link(gpu, other).is_some_and(|link| {
                    link.link_type == LinkType::Xgmi && link.weight <= XGMI_WEIGHT_PER_HOP
                });
                if direct_xgmi {
                    place
                        .xgmi_links
                        .get(&other)
                        .copied()
                        .unwrap_or(1)
                        .to_string()
                } else {
                    "0".to_string()
                }
            })
            .collect();
        let _ = write!(
            out,
            "Name=gpu Type={}",
            type_override.map_or_else(|| slurm_type(&node.name), slurm_type)
        );
        match place.render_minor {
            Some(minor) => {
                let _ = write!(out, " File=/dev/dri/renderD{minor}");
            }
            None => {
                let _ = write!(out, " Count=1");
            }
        }
        if let Some(cpus) = &place.cpulist {
            let _ = write!(out, " Cores={cpus}");
        }
        let _ = writeln!(
            out,
            " Links={}  # {} {}",
            links.join(","),
            input.labels.name(gpu),
            node.pci_address()
        );
    }
    out
}
