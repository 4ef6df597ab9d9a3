//! Predicted against actual p2p_links, field by field, with the upstream max_bandwidth bug
//! recognised as such.

use std::fmt;

use hsa_p2p_core::compose::{cpu_to_cpu_link, gpu_to_cpu_link, upstream_peer_max_bandwidth};
use hsa_p2p_core::gate::DenialReasons;
use hsa_p2p_core::link::LinkProperties;
use hsa_p2p_core::topology::Topology;

use super::facts::ObservedMachine;

/// A compared field of a link record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkField {
    /// `type`.
    Type,
    /// `weight`.
    Weight,
    /// `flags`.
    Flags,
    /// `min_bandwidth`.
    MinBandwidth,
    /// `max_bandwidth`.
    MaxBandwidth,
    /// `min_latency`.
    MinLatency,
    /// `max_latency`.
    MaxLatency,
}

impl LinkField {
    /// Every compared field, in the order of the properties file.
    pub const ALL: [LinkField; 7] = [
        LinkField::Type,
        LinkField::Weight,
        LinkField::MinLatency,
        LinkField::MaxLatency,
        LinkField::MinBandwidth,
        LinkField::MaxBandwidth,
        LinkField::Flags,
    ];

    /// The key in the properties file.
    pub fn key(self) -> &'static str {
        match self {
            LinkField::Type => "type",
            LinkField::Weight => "weight",
            LinkField::Flags => "flags",
            LinkField::MinBandwidth => "min_bandwidth",
            LinkField::MaxBandwidth => "max_bandwidth",
            LinkField::MinLatency => "min_latency",
            LinkField::MaxLatency => "max_latency",
        }
    }

    /// The field's value in `link`.
    pub fn of(self, link: &LinkProperties) -> u32 {
        match self {
            LinkField::Type => link.link_type.as_raw(),
            LinkField::Weight => link.weight,
            LinkField::Flags => link.flags.0,
            LinkField::MinBandwidth => link.min_bandwidth,
            LinkField::MaxBandwidth => link.max_bandwidth,
            LinkField::MinLatency => link.min_latency,
            LinkField::MaxLatency => link.max_latency,
        }
    }
}

/// One disagreement between the tree and the rules, about the link `from` -> `to` (actual
/// node ids; `from` accesses `to`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The rules give the pair a link; the tree has none.
    MissingLink {
        /// Accessor.
        from: u32,
        /// Owner.
        to: u32,
    },
    /// The tree has a link the gate refuses.
    UnexpectedLink {
        /// Accessor.
        from: u32,
        /// Owner.
        to: u32,
        /// Why the rules refuse it.
        reasons: DenialReasons,
    },
    /// The tree lists the same link more than once.
    DuplicateLink {
        /// Accessor.
        from: u32,
        /// Owner.
        to: u32,
    },
    /// A field differs.
    Field {
        /// Accessor.
        from: u32,
        /// Owner.
        to: u32,
        /// Which field.
        field: LinkField,
        /// The tree's value.
        actual: u32,
        /// The rules' value.
        predicted: u32,
        /// The tree's value is what upstream amdkfd computes with its max_bandwidth bug.
        known_upstream_deviation: bool,
    },
    /// The tree's `p2p_denials` (hsa_p2p only) disagree with the gate.
    Denial {
        /// Accessor.
        from: u32,
        /// Owner.
        to: u32,
        /// The tree's reasons (None: no denial recorded).
        actual: Option<DenialReasons>,
        /// The gate's reasons (None: no denial expected).
        predicted: Option<DenialReasons>,
    },
}

impl Finding {
    /// Whether the finding is about which pairs have links at all.
    pub fn is_about_presence(&self) -> bool {
        matches!(
            self,
            Finding::MissingLink { .. }
                | Finding::UnexpectedLink { .. }
                | Finding::DuplicateLink { .. }
        )
    }

    /// Whether the finding is a known upstream deviation rather than a failure.
    pub fn is_known_upstream_deviation(&self) -> bool {
        matches!(
            self,
            Finding::Field {
                known_upstream_deviation: true,
                ..
            }
        )
    }
}

fn reason_names(reasons: DenialReasons) -> String {
    let names: Vec<&str> = reasons.iter().map(|reason| reason.name()).collect();
    if names.is_empty() {
        format!("reasons {:#x}", reasons.bits())
    } else {
        names.join(", ")
    }
}

/// A finding with node labels (`node 2 (0000:04:00.0)`), as reports print it.
pub struct Described<'a> {
    /// The finding.
    pub finding: &'a Finding,
    /// Node id -> label.
    pub label: &'a dyn Fn(u32) -> String,
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.label;
        match *self.finding {
            Finding::MissingLink { from, to } => write!(
                f,
                "{} -> {}: no p2p link, but the rules allow peer access",
                label(from),
                label(to)
            ),
            Finding::UnexpectedLink { from, to, reasons } => write!(
                f,
                "{} -> {}: p2p link present, but the rules refuse peer access ({})",
                label(from),
                label(to),
                reason_names(reasons)
            ),
            Finding::DuplicateLink { from, to } => {
                write!(
                    f,
                    "{} -> {}: p2p link listed more than once",
                    label(from),
                    label(to)
                )
            }
            Finding::Field {
                from,
                to,
                field,
                actual,
                predicted,
                known_upstream_deviation,
            } => {
                write!(
                    f,
                    "{} -> {}: {} is {actual}, the rules predict {predicted}",
                    label(from),
                    label(to),
                    field.key()
                )?;
                if known_upstream_deviation {
                    f.write_str(
                        " (known upstream deviation: amdkfd's kfd_add_peer_prop computes \
                         max_bandwidth = min(iolink2, iolink2), the accessor's link only)",
                    )?;
                }
                Ok(())
            }
            Finding::Denial {
                from,
                to,
                actual,
                predicted,
            } => {
                let show = |reasons: Option<DenialReasons>| {
                    reasons.map_or("none".to_string(), reason_names)
                };
                write!(
                    f,
                    "{} -> {}: p2p_denials says {}, the gate says {}",
                    label(from),
                    label(to),
                    show(actual),
                    show(predicted)
                )
            }
        }
    }
}

/// Translates node ids of the prediction (CPUs, then GPUs in builder order) to the tree's.
struct NodeMap<'a> {
    machine: &'a ObservedMachine<'a>,
}

impl NodeMap<'_> {
    fn to_actual(&self, predicted: u32) -> u32 {
        let cpus = self.machine.cpus.len() as u32;
        if predicted < cpus {
            predicted
        } else {
            self.machine
                .gpu_nodes
                .get((predicted - cpus) as usize)
                .copied()
                .unwrap_or(u32::MAX)
        }
    }

    fn gpu_index(&self, actual: u32) -> Option<usize> {
        self.machine.gpu_nodes.iter().position(|id| *id == actual)
    }
}

/// What upstream amdkfd reports as max_bandwidth for the peer link `from` -> `to` (actual node
/// ids), when both are GPUs.
fn upstream_max_bandwidth(
    machine: &ObservedMachine<'_>,
    map: &NodeMap<'_>,
    from: u32,
    to: u32,
) -> Option<u32> {
    let (accessor, owner) = (map.gpu_index(from)?, map.gpu_index(to)?);
    let facts = machine.facts();
    let (accessor_gpu, owner_gpu) = (&machine.gpus[accessor], &machine.gpus[owner]);
    let accessor_link = gpu_to_cpu_link(from, accessor_gpu.numa_node, accessor_gpu);
    let cpu_hop = (owner_gpu.numa_node != accessor_gpu.numa_node).then(|| {
        let distance = facts
            .numa_distance(owner_gpu.numa_node, accessor_gpu.numa_node)
            .unwrap_or(0);
        cpu_to_cpu_link(
            owner_gpu.numa_node,
            accessor_gpu.numa_node,
            distance,
            machine.cpu_link_bandwidth_mbs,
        )
    });
    Some(upstream_peer_max_bandwidth(
        &accessor_link,
        cpu_hop.as_ref(),
    ))
}

/// Every disagreement between `actual` and `predicted` over the p2p_links of the GPU nodes
/// (and, with `compare_denials`, the `p2p_denials`).
pub fn compare(
    machine: &ObservedMachine<'_>,
    predicted: &Topology,
    actual: &Topology,
    compare_denials: bool,
) -> Vec<Finding> {
    let map = NodeMap { machine };
    let mut findings = Vec::new();
    // (from, to) -> link, in actual node ids.
    let predicted_links: Vec<LinkProperties> = predicted
        .nodes
        .iter()
        .flat_map(|node| &node.p2p_links)
        .map(|link| LinkProperties {
            node_from: map.to_actual(link.node_from),
            node_to: map.to_actual(link.node_to),
            ..*link
        })
        .collect();
    let predicted_denial = |from: u32, to: u32| {
        predicted
            .nodes
            .iter()
            .flat_map(|node| &node.p2p_denials)
            .find(|d| map.to_actual(d.node_from) == from && map.to_actual(d.node_to) == to)
            .map(|d| d.reasons)
    };
    let gpu_nodes = &machine.gpu_nodes;

    for &from in gpu_nodes {
        let actual_links: Vec<&LinkProperties> = actual
            .node(from)
            .map(|node| node.p2p_links.iter().collect())
            .unwrap_or_default();
        for (index, link) in actual_links.iter().enumerate() {
            let to = link.node_to;
            if actual_links[..index].iter().any(|l| l.node_to == to) {
                findings.push(Finding::DuplicateLink { from, to });
                continue;
            }
            let Some(expected) = predicted_links
                .iter()
                .find(|l| l.node_from == from && l.node_to == to)
            else {
                findings.push(Finding::UnexpectedLink {
                    from,
                    to,
                    reasons: predicted_denial(from, to).unwrap_or_default(),
                });
                continue;
            };
            for field in LinkField::ALL {
                let (actual_value, predicted_value) = (field.of(link), field.of(expected));
                if actual_value == predicted_value {
                    continue;
                }
                let known_upstream_deviation = field == LinkField::MaxBandwidth
                    && upstream_max_bandwidth(machine, &map, from, to) == Some(actual_value);
                findings.push(Finding::Field {
                    from,
                    to,
                    field,
                    actual: actual_value,
                    predicted: predicted_value,
                    known_upstream_deviation,
                });
            }
        }
        for expected in predicted_links.iter().filter(|l| l.node_from == from) {
            if !actual_links.iter().any(|l| l.node_to == expected.node_to) {
                findings.push(Finding::MissingLink {
                    from,
                    to: expected.node_to,
                });
            }
        }
        if compare_denials {
            for &to in gpu_nodes.iter().filter(|to| **to != from) {
                let actual_reasons = actual.denial(from, to).map(|denial| denial.reasons);
                let predicted_reasons = predicted_denial(from, to);
                if actual_reasons != predicted_reasons {
                    findings.push(Finding::Denial {
                        from,
                        to,
                        actual: actual_reasons,
                        predicted: predicted_reasons,
                    });
                }
            }
        }
    }
    findings
}
