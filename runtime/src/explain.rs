//! `p2pctl why`: for one ordered GPU pair, whether the accessor may reach the owner's VRAM and,
//! when not, which condition failed and what a user can do about it.
//!
//! Trees published by hsa-p2p (and predictions) record the failed conditions next to the p2p
//! links (`p2p_denials/`). amdkfd's own tree does not; there the reasons are inferred from what
//! the tree does say (heap type, the presence of `p2p_links_count`), and what cannot be inferred
//! is said to be unknown, with where to look.

use hsa_p2p_core::gate::DenialReason;
use hsa_p2p_core::link::LinkProperties;
use hsa_p2p_core::node::HeapType;
use hsa_p2p_core::topology::{Node, Topology};

use crate::peers::{peer_pair, Via};

/// A failed condition in words.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reason {
    /// Short stable name (`chipset`, `small BAR`, …).
    pub name: String,
    /// What failed.
    pub explanation: String,
    /// What the user can change.
    pub remedy: String,
    /// Whether the topology recorded it (true) or it was inferred (false).
    pub recorded: bool,
    /// Where it comes from: `recorded` (the tree's `p2p_denials`), `tree` (inferred from what
    /// the tree shows) or `pci facts` (the rules applied to the machine's PCI facts).
    pub basis: &'static str,
}

impl Reason {
    fn recorded(reason: DenialReason) -> Self {
        Reason {
            name: reason.name().to_string(),
            explanation: reason.explanation().to_string(),
            remedy: reason.remedy().to_string(),
            recorded: true,
            basis: "recorded",
        }
    }

    fn inferred(reason: DenialReason, basis: &'static str) -> Self {
        Reason {
            recorded: false,
            basis,
            ..Reason::recorded(reason)
        }
    }
}

/// The verdict for a pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The accessor may reach the owner's VRAM over `link`.
    Allowed {
        /// Where the link is published.
        via: Via,
        /// The link.
        link: LinkProperties,
    },
    /// There is no usable link; `reasons` says why (empty when the tree does not tell).
    Denied {
        /// The failed conditions, most fundamental first.
        reasons: Vec<Reason>,
        /// `pci_p2pdma_distance` when the PCI core allowed the pair.
        p2pdma_distance: Option<u32>,
        /// Where to look when the reasons are not (all) known.
        hints: Vec<String>,
    },
}

/// The explanation for accessor `from` and owner `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// Accessor node id.
    pub from: u32,
    /// Owner node id.
    pub to: u32,
    /// The verdict.
    pub verdict: Verdict,
    /// Whether the reverse direction (owner reaching the accessor) is allowed.
    pub reverse_allowed: bool,
}

/// A pair that cannot be explained.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExplainError {
    /// No node with that id.
    #[error("node {node} does not exist (the topology has nodes {first} to {last})")]
    NoSuchNode {
        /// The id asked for.
        node: u32,
        /// Lowest id.
        first: u32,
        /// Highest id.
        last: u32,
    },
    /// The node is a CPU: peer access is between GPUs.
    #[error("node {0} is a CPU node; peer access is asked between two GPU nodes")]
    NotAGpu(u32),
    /// Both ends are the same GPU.
    #[error("node {0} is the same GPU on both ends")]
    SameNode(u32),
}

/// Explains whether GPU node `from` may access GPU node `to`'s VRAM.
pub fn explain(topology: &Topology, from: u32, to: u32) -> Result<Explanation, ExplainError> {
    let accessor = gpu(topology, from)?;
    let owner = gpu(topology, to)?;
    if from == to {
        return Err(ExplainError::SameNode(from));
    }
    let pair = peer_pair(topology, from, to);
    let reverse_allowed = peer_pair(topology, to, from).has_access();
    let verdict = match pair.link {
        Some((via, link)) if pair.has_access() => Verdict::Allowed { via, link: *link },
        Some((via, _)) => Verdict::Denied {
            reasons: Vec::new(),
            p2pdma_distance: None,
            hints: vec![format!(
                "the {} entry exists but its flags disable peer DMA (ENABLED unset or \
                 NO_PEER_TO_PEER_DMA set), so ROCr does not use it",
                via.name()
            )],
        },
        None => match pair.denial {
            Some(denial) => Verdict::Denied {
                reasons: denial.reasons.iter().map(Reason::recorded).collect(),
                p2pdma_distance: denial.p2pdma_distance,
                hints: Vec::new(),
            },
            None => infer_denial(topology, accessor, owner),
        },
    };
    Ok(Explanation {
        from,
        to,
        verdict,
        reverse_allowed,
    })
}

/// What an amdkfd tree without denial records still reveals about a missing peer link.
fn infer_denial(topology: &Topology, accessor: &Node, owner: &Node) -> Verdict {
    let mut reasons = Vec::new();
    let mut hints = Vec::new();
    if !accessor.reports_p2p_links {
        // node_show prints p2p_links_count whenever amdkfd has p2p_links, whatever the config:
        // its absence dates the kernel, not the option.
        reasons.push(Reason {
            name: "kernel without p2p_links".to_string(),
            explanation: "this kernel's amdkfd predates p2p_links: the node properties have no \
                          p2p_links_count, so the kernel publishes no peer links at all"
                .to_string(),
            remedy: "use a kernel whose amdkfd publishes p2p_links, built with \
                     CONFIG_HSA_AMD_P2P=y (and CONFIG_PCI_P2PDMA), or load the hsa_p2p module"
                .to_string(),
            recorded: false,
            basis: "tree",
        });
        hints.push(crate::libhsakmt::pair_hint(topology, accessor.id, owner.id));
    }
    let small_bar = owner
        .mem_banks
        .iter()
        .any(|bank| bank.heap_type == HeapType::FrameBufferPrivate);
    if small_bar {
        reasons.push(Reason::inferred(DenialReason::SmallBar, "tree"));
    }
    if accessor.reports_p2p_links && !small_bar {
        hints.push(format!(
            "the tree does not record why; the remaining conditions are the chipset \
             (`dmesg | grep 'not supported by the chipset'`), the accessor's DMA mask vs. the \
             owner's BAR address without IOMMU remapping, and amdgpu's pcie_p2p parameter; \
             `p2pctl predict` on a spec of this machine names the one that fails (node {} -> {})",
            accessor.id, owner.id
        ));
    }
    Verdict::Denied {
        reasons,
        p2pdma_distance: None,
        hints,
    }
}

/// amdgpu has no `pcie_p2p` parameter (it exists only with CONFIG_HSA_AMD_P2P), yet amdkfd
/// publishes p2p_links: a kernel built without the option.
fn no_hsa_amd_p2p() -> Reason {
    Reason::inferred(DenialReason::NoHsaAmdP2p, "pci facts")
}

fn gpu(topology: &Topology, id: u32) -> Result<&Node, ExplainError> {
    let node = topology.node(id).ok_or_else(|| ExplainError::NoSuchNode {
        node: id,
        first: topology.nodes.first().map_or(0, |n| n.id),
        last: topology.nodes.last().map_or(0, |n| n.id),
    })?;
    if node.is_gpu() {
        Ok(node)
    } else {
        Err(ExplainError::NotAGpu(id))
    }
}

/// [`explain`], and where the tree does not record why a pair has no P2P (amdkfd's own tree),
/// the rules applied to the machine's PCI facts below `machine_root` (`/` on the machine itself):
/// the same prediction `cargo xtask test-hw` validates the tree against. What the facts cannot
/// settle stays a hint; facts that could not be read are said, not hidden.
pub fn explain_on_machine(
    topology: &Topology,
    from: u32,
    to: u32,
    machine_root: &std::path::Path,
) -> Result<Explanation, ExplainError> {
    let mut explanation = explain(topology, from, to)?;
    let accessor_reports_p2p_links = topology.node(from).is_some_and(|n| n.reports_p2p_links);
    let Verdict::Denied {
        reasons,
        hints,
        p2pdma_distance,
    } = &mut explanation.verdict
    else {
        return Ok(explanation);
    };
    if reasons.iter().any(|reason| reason.recorded) {
        return Ok(explanation);
    }
    let inventory = match crate::machine_facts::Inventory::collect(machine_root) {
        Ok(inventory) => inventory,
        Err(error) => {
            hints.push(format!(
                "the machine's PCI facts could not be read: {error}"
            ));
            return Ok(explanation);
        }
    };
    // Without the parameter amdgpu has no HSA_AMD_P2P at all; that is said below as its own
    // reason, and the gate's other conditions are judged as if it were there.
    let pcie_p2p = inventory.platform.pcie_p2p.unwrap_or(true);
    let validation = match crate::kfd_validation::validate(
        &inventory,
        topology,
        crate::kfd_validation::TreeKind::Kfd,
        pcie_p2p,
    ) {
        Ok(validation) => validation,
        Err(problems) => {
            hints.push(format!(
                "the rules could not be applied to the machine's PCI facts: {}",
                problems.join("; ")
            ));
            return Ok(explanation);
        }
    };
    let predicted = match explain(&validation.predicted, from, to) {
        Ok(predicted) => predicted,
        Err(error) => {
            hints.push(format!(
                "the prediction from the PCI facts has no such pair: {error}"
            ));
            return Ok(explanation);
        }
    };
    if !accessor_reports_p2p_links {
        // The tree's reason stands (the kernel has no p2p_links); the facts say what a kernel
        // with them and HSA_AMD_P2P would decide.
        hints.push(match &predicted.verdict {
            Verdict::Allowed { .. } => "with p2p_links and HSA_AMD_P2P, the rules applied to \
                                        the machine's PCI facts allow this pair"
                .to_string(),
            Verdict::Denied {
                reasons: predicted, ..
            } => {
                let names: Vec<&str> = predicted.iter().map(|r| r.name.as_str()).collect();
                format!(
                    "with p2p_links and HSA_AMD_P2P the pair would still be denied ({})",
                    names.join(", ")
                )
            }
        });
        return Ok(explanation);
    }
    match predicted.verdict {
        Verdict::Denied {
            reasons: predicted_reasons,
            p2pdma_distance: predicted_distance,
            ..
        } => {
            // The facts name the failed conditions; what the tree alone suggested is replaced.
            *reasons = predicted_reasons
                .into_iter()
                .map(|reason| Reason {
                    recorded: false,
                    basis: "pci facts",
                    ..reason
                })
                .collect();
            hints.retain(|hint| !hint.starts_with("the tree does not record why"));
            if inventory.platform.pcie_p2p.is_none() && accessor_reports_p2p_links {
                reasons.insert(0, no_hsa_amd_p2p());
            }
            hints.extend(
                validation
                    .assumptions
                    .iter()
                    .map(|assumption| format!("assumed: {assumption}")),
            );
            *p2pdma_distance = predicted_distance;
        }
        Verdict::Allowed { .. } if inventory.platform.pcie_p2p.is_none() => {
            reasons.insert(0, no_hsa_amd_p2p());
            hints.retain(|hint| !hint.starts_with("the tree does not record why"));
        }
        Verdict::Allowed { .. } => hints.push(
            "the rules applied to the machine's PCI facts allow this pair, yet the kernel \
             published no link: the kernel's P2PDMA decision differs from the whitelist used \
             here, or the driver predates HSA_AMD_P2P; `cargo xtask test-hw` lists every such \
             disagreement"
                .to_string(),
        ),
    }
    Ok(explanation)
}
