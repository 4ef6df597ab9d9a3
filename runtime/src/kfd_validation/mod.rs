//! Validation of a KFD-format topology tree against what the shared rules predict from the
//! machine's PCI facts.
//!
//! Works on amdkfd's own tree (`/sys/class/kfd/kfd/topology`, GPUs driven by amdgpu, VRAM
//! aperture BAR0) and on the `hsa_p2p` module's (`/sys/kernel/hsa_p2p/topology`, emulated GPUs,
//! VRAM in BAR2). The machine's facts go through the core crate's builder, the code the module
//! runs, with a P2PDMA oracle recomputed from the PCI hierarchy ([`crate::machine_facts`]); the
//! result is compared with the tree link by link and field by field. A max_bandwidth that equals
//! what upstream amdkfd computes with its `min(iolink2, iolink2)` bug is reported as a known
//! upstream deviation, not as a failure.

mod compare;
mod facts;

use std::convert::Infallible;

use hsa_p2p_core::builder::{build_topology, BuildError};
use hsa_p2p_core::facts::{MachineFacts, PeerBandwidthRule};
use hsa_p2p_core::topology::Topology;

pub use compare::{compare, Described, Finding, LinkField};
pub use facts::{match_gpus, observe, ObservedMachine, DEFAULT_DMA_MASK_BITS};

use crate::machine_facts::{Inventory, SysfsP2pdma};

/// Whose tree is validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeKind {
    /// amdkfd's, for GPUs driven by amdgpu.
    Kfd,
    /// The `hsa_p2p` module's, for the emulated GPUs it binds.
    HsaP2p,
}

impl TreeKind {
    /// The PCI driver whose devices are the tree's GPUs.
    pub fn driver(self) -> &'static str {
        match self {
            TreeKind::Kfd => "amdgpu",
            TreeKind::HsaP2p => "hsa_p2p",
        }
    }

    /// The BAR that exposes VRAM to peers.
    pub fn vram_bar(self) -> usize {
        match self {
            // amdgpu: adev->gmc.aper_base = pci_resource_start(pdev, 0).
            TreeKind::Kfd => 0,
            // ivshmem-plain: BAR2 is the shared memory.
            TreeKind::HsaP2p => 2,
        }
    }
}

/// The outcome of one validation.
#[derive(Clone, Debug)]
pub struct Validation {
    /// What the rules predict (node ids: CPUs, then GPUs in the tree's order) for a kernel
    /// with p2p_links; a tree from an older amdkfd is compared with it without its p2p_links.
    pub predicted: Topology,
    /// Every disagreement, known upstream deviations included.
    pub findings: Vec<Finding>,
    /// Facts that had to be assumed.
    pub assumptions: Vec<String>,
    /// Node id -> label (`node 2 (0000:04:00.0)`).
    pub labels: Vec<(u32, String)>,
    /// Number of GPUs compared.
    pub gpu_count: usize,
}

impl Validation {
    /// The label of node `id`.
    pub fn label(&self, id: u32) -> String {
        self.labels
            .iter()
            .find(|(node, _)| *node == id)
            .map_or_else(|| format!("node {id}"), |(_, label)| label.clone())
    }

    fn describe(&self, filter: impl Fn(&Finding) -> bool) -> Vec<String> {
        let label = |id| self.label(id);
        self.findings
            .iter()
            .filter(|finding| filter(finding))
            .map(|finding| {
                Described {
                    finding,
                    label: &label,
                }
                .to_string()
            })
            .collect()
    }

    /// Which pairs have links disagrees with the gate.
    pub fn presence_problems(&self) -> Vec<String> {
        self.describe(Finding::is_about_presence)
    }

    /// Fields of links both sides have disagree (known upstream deviations excluded).
    pub fn property_problems(&self) -> Vec<String> {
        self.describe(|f| matches!(f, Finding::Field { .. }) && !f.is_known_upstream_deviation())
    }

    /// Known upstream deviations.
    pub fn known_deviations(&self) -> Vec<String> {
        self.describe(Finding::is_known_upstream_deviation)
    }

    /// `p2p_denials` disagree with the gate.
    pub fn denial_problems(&self) -> Vec<String> {
        self.describe(|f| matches!(f, Finding::Denial { .. }))
    }
}

/// Validates `tree` (of `kind`) against the rules applied to `inventory`'s facts.
///
/// `pcie_p2p` is the driver's `pcie_p2p` parameter. Errors list what kept the facts from being
/// assembled (a GPU node without its PCI device, a BAR not in use…).
pub fn validate(
    inventory: &Inventory,
    tree: &Topology,
    kind: TreeKind,
    pcie_p2p: bool,
) -> Result<Validation, Vec<String>> {
    let gpus = match_gpus(inventory, tree, kind)?;
    let machine = observe(inventory, tree, &gpus, kind, pcie_p2p)?;
    let oracle = SysfsP2pdma {
        inventory,
        gpus: machine.devices.clone(),
    };
    // A KFD tree is what amdkfd publishes: compare it with the rules as amdkfd applies them,
    // max_bandwidth bug included; the module publishes the corrected figure.
    let facts = MachineFacts {
        peer_bandwidth: match kind {
            TreeKind::Kfd => PeerBandwidthRule::AsAmdkfd,
            TreeKind::HsaP2p => PeerBandwidthRule::Corrected,
        },
        ..machine.facts()
    };
    let mut predicted = Topology::default();
    build_topology(&facts, &oracle, &mut predicted)
        .map_err(|error: BuildError<Infallible>| vec![error.to_string()])?;
    let findings = if kind == TreeKind::Kfd && crate::libhsakmt::predates_p2p_links(tree) {
        // An amdkfd older than p2p_links: compare with what it publishes (io_links only).
        let mut published = predicted.clone();
        crate::libhsakmt::as_published_before_p2p_links(&mut published);
        compare(&machine, &published, tree, false)
    } else {
        compare(&machine, &predicted, tree, kind == TreeKind::HsaP2p)
    };
    let labels = gpus
        .iter()
        .map(|(id, device)| (*id, format!("node {id} ({})", device.address)))
        .collect();
    Ok(Validation {
        predicted,
        findings,
        assumptions: machine.assumptions.clone(),
        labels,
        gpu_count: gpus.len(),
    })
}
