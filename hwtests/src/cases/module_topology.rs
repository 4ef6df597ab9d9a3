//! The `hsa_p2p` module's topology (`/sys/kernel/hsa_p2p/topology`), validated against the
//! shared rules applied to the machine's PCI facts and the emulated GPUs' descriptor facts.
//!
//! Unlike amdkfd, the module computes peer max_bandwidth correctly: the upstream bug value is a
//! failure here.

use super::tree_checks::{self, subject, Subject};
use crate::context::{Context, ModuleState};
use crate::kfd_validation::{TreeKind, Validation};
use crate::report::Outcome;
use crate::runner::{Test, TestOutput};

/// The `hsa_p2p` suite.
pub const TESTS: &[Test] = &[
    Test {
        suite: "hsa_p2p",
        name: "tree_is_consistent",
        description: "the module's topology reads back consistently and has GPU nodes",
        run: tree_is_consistent,
    },
    Test {
        suite: "hsa_p2p",
        name: "bound_gpus_match_pci_devices",
        description:
            "every GPU node is a PCI device bound to hsa_p2p and every bound device a node",
        run: bound_gpus_match_pci_devices,
    },
    Test {
        suite: "hsa_p2p",
        name: "peer_access_matches_gate",
        description: "exactly the GPU pairs the peer-access gate allows have p2p links",
        run: peer_access_matches_gate,
    },
    Test {
        suite: "hsa_p2p",
        name: "p2p_link_properties_match_rules",
        description: "every field of every p2p link matches the fixed rules",
        run: p2p_link_properties_match_rules,
    },
    Test {
        suite: "hsa_p2p",
        name: "p2p_denials_match_gate",
        description: "every refused pair has a p2p_denials record with the gate's reasons",
        run: p2p_denials_match_gate,
    },
];

fn module_subject(context: &Context) -> Result<Subject<'_>, TestOutput> {
    if let ModuleState::Unavailable(reason) = &context.module {
        return Err(Outcome::skip(reason.clone()).into());
    }
    subject(context, context.module_tree(), || {
        let path = context.module_topology_path();
        if context.module == ModuleState::Loaded {
            Outcome::fail(format!(
                "the module is loaded but {} does not exist",
                path.display()
            ))
        } else {
            Outcome::skip(format!(
                "the hsa_p2p module is not loaded (no {})",
                path.display()
            ))
        }
        .into()
    })
}

fn tree_is_consistent(context: &Context) -> TestOutput {
    match module_subject(context) {
        Ok(subject) => tree_checks::tree_is_consistent(&subject),
        Err(output) => output,
    }
}

fn bound_gpus_match_pci_devices(context: &Context) -> TestOutput {
    match module_subject(context) {
        Ok(subject) => tree_checks::gpus_match_pci_devices(&subject, TreeKind::HsaP2p),
        Err(output) => output,
    }
}

fn validated(context: &Context, check: impl FnOnce(&Validation) -> TestOutput) -> TestOutput {
    match module_subject(context) {
        Ok(subject) => {
            let pcie_p2p = context
                .module_parameter("hsa_p2p", "pcie_p2p")
                .unwrap_or(true);
            tree_checks::with_validation(&subject, TreeKind::HsaP2p, pcie_p2p, check)
        }
        Err(output) => output,
    }
}

fn peer_access_matches_gate(context: &Context) -> TestOutput {
    validated(context, tree_checks::peer_access_matches_gate)
}

fn p2p_link_properties_match_rules(context: &Context) -> TestOutput {
    validated(context, |validation| {
        let mut problems = validation.property_problems();
        problems.extend(validation.known_deviations());
        Outcome::from_problems(problems).into()
    })
}

fn p2p_denials_match_gate(context: &Context) -> TestOutput {
    validated(context, |validation| {
        Outcome::from_problems(validation.denial_problems()).into()
    })
}
