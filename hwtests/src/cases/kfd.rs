//! amdkfd's own topology (`/sys/class/kfd/kfd/topology`) on a machine running upstream amdgpu,
//! validated against the shared rules applied to the machine's PCI facts.

use super::tree_checks::{self, subject, Subject};
use crate::context::Context;
use crate::kfd_validation::TreeKind;
use crate::report::Outcome;
use crate::runner::{Test, TestOutput};

/// The `kfd` suite.
pub const TESTS: &[Test] = &[
    Test {
        suite: "kfd",
        name: "tree_is_consistent",
        description: "amdkfd's topology reads back consistently and has GPU nodes",
        run: tree_is_consistent,
    },
    Test {
        suite: "kfd",
        name: "gpus_match_pci_devices",
        description: "every KFD GPU node is an amdgpu PCI device and every amdgpu device a node",
        run: gpus_match_pci_devices,
    },
    Test {
        suite: "kfd",
        name: "peer_access_matches_gate",
        description: "exactly the GPU pairs the peer-access gate allows have p2p links",
        run: peer_access_matches_gate,
    },
    Test {
        suite: "kfd",
        name: "p2p_link_properties_match_rules",
        description: "type, weight, latencies, bandwidths and flags of every p2p link match the \
                      rules (upstream's max_bandwidth bug is reported, not failed)",
        run: p2p_link_properties_match_rules,
    },
];

fn kfd_subject(context: &Context) -> Result<Subject<'_>, TestOutput> {
    subject(context, context.kfd_tree(), || {
        Outcome::skip(format!(
            "no KFD topology at {}: amdgpu is not loaded or there is no AMD GPU",
            context.kfd_topology_path().display()
        ))
        .into()
    })
}

/// amdgpu's `pcie_p2p`; without the parameter amdgpu was built without HSA_AMD_P2P and builds
/// no peer links, which is what the rules predict with it off.
pub(super) fn pcie_p2p(context: &Context) -> (bool, Option<String>) {
    match context.module_parameter("amdgpu", "pcie_p2p") {
        Some(value) => (value, None),
        None => (
            false,
            Some(
                "amdgpu has no pcie_p2p parameter (no HSA_AMD_P2P): no peer links expected".into(),
            ),
        ),
    }
}

fn tree_is_consistent(context: &Context) -> TestOutput {
    match kfd_subject(context) {
        Ok(subject) => tree_checks::tree_is_consistent(&subject),
        Err(output) => output,
    }
}

fn gpus_match_pci_devices(context: &Context) -> TestOutput {
    match kfd_subject(context) {
        Ok(subject) => tree_checks::gpus_match_pci_devices(&subject, TreeKind::Kfd),
        Err(output) => output,
    }
}

fn validated(
    context: &Context,
    check: impl FnOnce(&crate::kfd_validation::Validation) -> TestOutput,
) -> TestOutput {
    let subject = match kfd_subject(context) {
        Ok(subject) => subject,
        Err(output) => return output,
    };
    let (enabled, note) = pcie_p2p(context);
    let mut output = tree_checks::with_validation(&subject, TreeKind::Kfd, enabled, check);
    output.notes.extend(note);
    output
}

fn peer_access_matches_gate(context: &Context) -> TestOutput {
    validated(context, tree_checks::peer_access_matches_gate)
}

fn p2p_link_properties_match_rules(context: &Context) -> TestOutput {
    validated(context, |validation| {
        TestOutput::with_notes(
            Outcome::from_problems(validation.property_problems()),
            validation.known_deviations(),
        )
    })
}
