//! The checks the `kfd` and `hsa_p2p` suites share, parameterised by the tree's kind.

use hsa_p2p_core::topology::Topology;

use crate::context::Context;
use crate::kfd_validation::{match_gpus, validate, TreeKind, Validation};
use crate::machine_facts::Inventory;
use crate::report::Outcome;
use crate::runner::TestOutput;

/// A tree with at least one GPU node and the machine's facts, or the output that ends the test.
pub struct Subject<'a> {
    /// The tree.
    pub tree: &'a Topology,
    /// The facts.
    pub inventory: &'a Inventory,
}

/// Resolves the tree of a test: a skip (no tree, no GPU) or a failure (unreadable) ends it.
pub fn subject<'a>(
    context: &'a Context,
    tree: Option<Result<&'a Topology, &'a str>>,
    absent: impl FnOnce() -> TestOutput,
) -> Result<Subject<'a>, TestOutput> {
    let tree = match tree {
        None => return Err(absent()),
        Some(Err(error)) => {
            return Err(Outcome::fail(format!("unreadable topology: {error}")).into())
        }
        Some(Ok(tree)) => tree,
    };
    if !tree.nodes.iter().any(|node| node.is_gpu()) {
        return Err(Outcome::skip("the topology has no GPU node").into());
    }
    let inventory = context
        .inventory()
        .map_err(|error| TestOutput::from(Outcome::fail(format!("PCI facts: {error}"))))?;
    Ok(Subject { tree, inventory })
}

/// The tree is readable and consistent (the reader checks links, counts and numbering).
pub fn tree_is_consistent(subject: &Subject<'_>) -> TestOutput {
    let gpus = subject.tree.nodes.iter().filter(|n| n.is_gpu()).count();
    TestOutput::with_notes(
        Outcome::Pass,
        vec![format!(
            "{} nodes ({gpus} GPUs), generation_id {}",
            subject.tree.nodes.len(),
            subject.tree.generation_id
        )],
    )
}

/// Every GPU node is a PCI device bound to the kind's driver, and every bound device a node.
pub fn gpus_match_pci_devices(subject: &Subject<'_>, kind: TreeKind) -> TestOutput {
    match match_gpus(subject.inventory, subject.tree, kind) {
        Ok(pairs) => TestOutput::with_notes(
            Outcome::Pass,
            pairs
                .iter()
                .map(|(node, device)| format!("node {node} is {}", device.address))
                .collect(),
        ),
        Err(problems) => Outcome::Fail(problems).into(),
    }
}

/// Runs the validation and turns its result into the test's output with `check`.
pub fn with_validation(
    subject: &Subject<'_>,
    kind: TreeKind,
    pcie_p2p: bool,
    check: impl FnOnce(&Validation) -> TestOutput,
) -> TestOutput {
    match validate(subject.inventory, subject.tree, kind, pcie_p2p) {
        Ok(validation) => {
            let mut output = check(&validation);
            output.notes.extend(
                validation
                    .assumptions
                    .iter()
                    .map(|assumption| format!("assumed: {assumption}")),
            );
            output
        }
        Err(problems) => Outcome::Fail(problems).into(),
    }
}

/// Which pairs have p2p links agrees with the gate.
pub fn peer_access_matches_gate(validation: &Validation) -> TestOutput {
    let links: usize = validation
        .predicted
        .nodes
        .iter()
        .map(|node| node.p2p_links.len())
        .sum();
    TestOutput::with_notes(
        Outcome::from_problems(validation.presence_problems()),
        vec![format!(
            "{} GPUs, {links} p2p links predicted (indirect links included)",
            validation.gpu_count
        )],
    )
}
